"""Follow-ups in the chat (issue 10): when a patient's follow-up is due, the bot invites them to a short
button questionnaire (the self-reported parts of the NBPHS-3 form), fills in their latest readings,
and sends the answers to their doctor as a DRAFT follow-up record the doctor confirms in one step.

Policy (design choices, written down here and in the report):
- Due: the profile's `next_followup_due` (set by every confirmed follow-up, bot.clinical rules); a
  linked patient never followed up is due one interval (quarterly / monthly for high risk) after linking.
- Invitations go out on the due day from 10:00 to 20:00 in the patient's local time (outside that
  window they wait for the next 10:00). A second invitation follows 3 days later; 3 days after the
  second one a patient who has not answered is listed for a phone call or home visit (/tocall and the
  dashboard). Unreachable patients (blocked the bot) count as not answering. A follow-up recorded
  any other way (/followup, dashboard) closes the invitation.
- A chat follow-up is of way "online". For a patient living away from home (`away_since` set by the
  patient with /away or by the doctor) that is what it stays; for a patient at home the draft offers
  the doctor the other ways too (the answers then served as the form filled before a visit).
- Answers live on the cycle row while the patient is pressing buttons, so a restart loses nothing and
  any handler process can continue the questionnaire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import clinical
from bot.clinical import thresholds as th
from bot.clinical.schedule import next_occurrence, zone
from bot.services.clock import Clock
from bot.services.db import read_session, with_retry
from bot.services.followups import (
    ADHERENCE,
    DM_SYMPTOMS,
    GOOD_FAIR_POOR,
    HTN_SYMPTOMS,
    HYPO_REACTIONS,
    SALT_LEVELS,
    FollowUpForm,
    FollowUpResult,
    FollowUpService,
)
from bot.services.panel import PanelService
from content.i18n import Translator, translator
from storage.chat_followup_models import ChatFollowUp
from storage.models import FollowUp, Outbox, PatientProfile, Reading, TeamMember, User

INVITE_AT = time(10, 0)  # local: a polite hour, after morning medicines and measurements
INVITE_UNTIL = time(20, 0)
INVITE_SPACING = timedelta(days=3)
MAX_INVITATIONS = 2
READINGS_WITHIN = timedelta(days=90)  # older readings are not "latest" enough to fill the form
BATCH = 200
START_EVERY = timedelta(minutes=10)  # looking for newly due patients scans the profiles: not every tick


def _(msgid: str) -> str:
    return msgid


@dataclass(frozen=True)
class Question:
    """One screen of the questionnaire: a key of FollowUpForm, a prompt and button options."""

    key: str
    prompt: str
    options: tuple[str, ...]
    multi: bool = False
    only: str | None = None  # a condition ("hypertension" / "diabetes") the question is for


LABELS: dict[str, str] = {
    # symptoms (clinical-reference.md, "Follow-up form")
    "headache_dizziness": _("Headache or dizziness"), "nausea_vomiting": _("Nausea or vomiting"),
    "blurred_vision_tinnitus": _("Blurred vision or ringing ears"), "breathless": _("Short of breath"),
    "palpitations_chest": _("Palpitations or chest tightness"), "nosebleed": _("Nosebleed that won't stop"),
    "numb_limbs": _("Numb arms or legs"), "leg_oedema": _("Swollen legs"), "thirst": _("Very thirsty"),
    "hunger": _("Very hungry"), "urination": _("Passing much urine"), "blurred_vision": _("Blurred vision"),
    "infections": _("Infections"), "numb_hands_feet": _("Numb or tingling hands/feet"),
    "weight_loss": _("Losing weight"),
    # side effects
    "cough": _("Dry cough"), "ankle_swelling": _("Swollen ankles"), "dizzy": _("Dizzy when standing"),
    "stomach": _("Stomach upset"), "rash": _("Rash"), "other": _("Something else"),
    # scales
    "none": _("None"), "light": _("Light"), "medium": _("Medium"), "heavy": _("Salty"),
    "good": _("Good"), "fair": _("Fair"), "poor": _("Poor"), "regular": _("Every day as prescribed"),
    "intermittent": _("Sometimes forget or stop"), "not_taking": _("Not taking them"),
    "occasional": _("Occasionally"), "frequent": _("Often"),
}
# Number ranges are shown as they are ("1-5"); these few need words.
RANGE_LABELS: dict[str, str] = {"0": _("None"), "<1": _("Less than 1"), "5+": _("5 or more")}
SIDE_EFFECTS = ("dizzy", "cough", "ankle_swelling", "stomach", "rash", "other")

QUESTIONS: tuple[Question, ...] = (
    Question("symptoms", _("Since the last check, have you had any of these? Press all that apply, then Done."),
             (), multi=True),
    Question("cigarettes_per_day", _("How many cigarettes do you smoke a day?"), ("0", "1-5", "6-10", "11+")),
    Question("alcohol_liang_per_day", _("How much alcohol do you drink a day (liang, 50 ml of spirits)?"),
             ("0", "<1", "1-2", "3+")),
    Question("exercise_per_week", _("How many times a week do you exercise (brisk walk, tai chi, ...)?"),
             ("0", "1-2", "3-4", "5+")),
    Question("exercise_minutes", _("How long each time (minutes)?"), ("<15", "15-30", "30-60", "60+")),
    Question("salt", _("How salty is your food?"), SALT_LEVELS),
    Question("staple_g_per_day", _("How much staple food (rice, noodles, bread) a day, in grams?"),
             ("<150", "150-250", "250-350", "350+"), only="diabetes"),
    Question("mood", _("How is your mood lately?"), GOOD_FAIR_POOR),
    Question("advice", _("How well can you follow the doctor's advice (diet, exercise)?"), GOOD_FAIR_POOR),
    Question("med_adherence", _("How do you take your medicines?"), ADHERENCE),
    Question("side_effects", _("Any side effects from your medicines? Press all that apply, then Done."),
             SIDE_EFFECTS, multi=True),
    Question("hypo_reactions", _("Low blood sugar episodes (shaky, sweaty, hungry)?"), HYPO_REACTIONS,
             only="diabetes"),
)
QUESTION_BY_KEY = {q.key: q for q in QUESTIONS}
FORM_LABELS = {
    "symptoms": _("Symptoms"), "cigarettes_per_day": _("Cigarettes a day"),
    "alcohol_liang_per_day": _("Alcohol (liang a day)"), "exercise_per_week": _("Exercise times a week"),
    "exercise_minutes": _("Minutes each time"), "salt": _("Salt"), "staple_g_per_day": _("Staple food g a day"),
    "mood": _("Mood"), "advice": _("Following advice"), "med_adherence": _("Medicines"),
    "side_effects": _("Side effects"), "hypo_reactions": _("Low blood sugar episodes"),
}
WAY_LABELS = {"clinic": _("Clinic"), "home": _("Home visit"), "phone": _("Phone"), "online": _("Online chat")}
OUTCOME_LABELS = {"controlled": _("Controlled"), "unsatisfactory": _("Unsatisfactory"),
                  "adverse_reaction": _("Adverse reaction"), "complication": _("Complication")}


def _conditions(profile: PatientProfile | None) -> frozenset[str]:
    found = profile.condition_set if profile else frozenset()
    return found or frozenset({"hypertension", "diabetes"})  # unknown: ask everything


def symptom_options(conditions: frozenset[str]) -> tuple[str, ...]:
    options: list[str] = []
    for condition, symptoms in (("hypertension", HTN_SYMPTOMS), ("diabetes", DM_SYMPTOMS)):
        if condition in conditions:
            options += [s for s in symptoms if s not in options]
    return tuple(options)


def question_for(q: Question, conditions: frozenset[str]) -> Question:
    if q.key == "symptoms":
        return Question(q.key, q.prompt, symptom_options(conditions), multi=True)
    return q


def next_question(conditions: frozenset[str], answers: dict[str, Any]) -> Question | None:
    """The first question not answered yet that applies to this patient (None: all done)."""
    for q in QUESTIONS:
        if q.only and q.only not in conditions:
            continue
        if q.key == "exercise_minutes" and answers.get("exercise_per_week") == "0":
            continue
        if q.key not in answers:
            return question_for(q, conditions)
    return None


def option_label(t: Translator, value: str) -> str:
    if value in LABELS:
        return t(LABELS[value])
    return t(RANGE_LABELS[value]) if value in RANGE_LABELS else value


@dataclass(frozen=True)
class Step:
    """What the patient sees next."""

    ok: bool  # False: the invitation is not theirs, closed, or the button is from an earlier question
    question: Question | None = None
    selected: tuple[str, ...] = ()
    done: bool = False
    followup_id: int | None = None
    doctor_name: str = ""


@dataclass(frozen=True)
class Draft:
    """A draft (or confirmed) chat follow-up, ready to show the doctor."""

    followup: FollowUp
    patient_name: str
    away: bool
    form: FollowUpForm = field(default_factory=FollowUpForm)


@dataclass(frozen=True)
class ToCall:
    """A patient who did not answer 2 invitations: to phone or visit."""

    patient_id: int
    name: str
    phone: str | None
    due_date: date
    invitations: int
    last_invited_at: datetime | None
    listed_at: datetime | None
    away_since: datetime | None
    last_contact_at: datetime | None


def _value_text(t: Translator, value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(option_label(t, v) for v in value) if value else t("None")
    return option_label(t, str(value))


def draft_text(t: Translator, draft: Draft, tz: str) -> str:
    """The doctor's view of a chat follow-up record (also after signs were added)."""
    row, form = draft.followup, draft.form
    head = t("📝 Follow-up answered in the chat: #{id} {name}", id=row.patient_id, name=draft.patient_name)
    if draft.away:
        head += " — " + t("lives away from home")
    lines = [head, t("Way: {way}", way=t(WAY_LABELS.get(row.way, row.way)))]
    signs = []
    stamp = form.readings_from

    def when(key: str) -> str:
        return f" ({datetime.fromisoformat(stamp[key]).astimezone(zone(tz)):%m-%d})" if key in stamp else ""

    if row.systolic and row.diastolic:
        signs.append(t("BP {bp}", bp=f"{row.systolic}/{row.diastolic}") + when("bp"))
    if row.heart_rate:
        signs.append(t("heart rate {n}", n=row.heart_rate))
    if row.fasting_mmol is not None:
        signs.append(t("fasting glucose {v} mmol/L", v=f"{row.fasting_mmol:.1f}") + when("fasting_mmol"))
    if row.weight_kg is not None:
        signs.append(t("weight {kg} kg", kg=f"{row.weight_kg:g}") + when("weight_kg"))
    if row.bmi is not None:
        signs.append(t("BMI {bmi}", bmi=f"{row.bmi:.1f}"))
    lines.append(t("Signs: {signs}", signs="; ".join(signs) if signs else t("no recent readings")))
    if stamp:
        lines.append(t("(dates in brackets: the patient's latest readings, filled in automatically)"))
    answers = row.details or {}
    symptoms = [] if form.symptoms_none else form.symptoms
    lines.append(f"{t(FORM_LABELS['symptoms'])}: {_value_text(t, symptoms)}")
    for key in ("cigarettes_per_day", "alcohol_liang_per_day", "exercise_per_week", "exercise_minutes", "salt",
                "staple_g_per_day", "mood", "advice"):
        if answers.get(key):
            lines.append(f"{t(FORM_LABELS[key])}: {_value_text(t, answers[key])}")
    if row.med_adherence:
        lines.append(f"{t(FORM_LABELS['med_adherence'])}: {_value_text(t, row.med_adherence)}")
    lines.append(f"{t(FORM_LABELS['side_effects'])}: {_value_text(t, form.side_effects)}")
    if row.hypo_reactions:
        lines.append(f"{t(FORM_LABELS['hypo_reactions'])}: {_value_text(t, row.hypo_reactions)}")
    if row.status == "draft":
        lines.append(t("Confirm with the classification of this follow-up (one press):"))
    else:
        lines.append(t("✅ Confirmed: {outcome}. Next follow-up due: {date}.",
                       outcome=t(OUTCOME_LABELS.get(row.outcome or "", row.outcome or "")),
                       date=row.next_due.isoformat() if row.next_due else "-"))
    return "\n".join(lines)


def draft_buttons(t: Translator, draft: Draft) -> list[list[list[str]]]:
    """Outbox-style buttons ([[label, data], ...] rows) under a draft."""
    fid = draft.followup.id
    rows = [[[f"✅ {t(OUTCOME_LABELS[k])}", f"cfd:ok:{fid}:{k}"] for k in ("controlled", "unsatisfactory")],
            [[f"✅ {t(OUTCOME_LABELS[k])}", f"cfd:ok:{fid}:{k}"] for k in ("adverse_reaction", "complication")]]
    if not draft.away:  # at home: the doctor may have seen them another way (see the module notes)
        rows.append([[("• " if draft.followup.way == k else "") + t(WAY_LABELS[k]), f"cfd:way:{fid}:{k}"]
                     for k in ("online", "clinic", "home", "phone")])
    rows.append([[t("➕ Add signs (BP, heart rate, glucose, weight)"), f"cfd:signs:{fid}"]])
    return rows


class ChatFollowUpService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, panel: PanelService,
                 followups: FollowUpService, *, postgres: bool = False):
        self._sessions = sessions
        self._clock = clock
        self._panel = panel
        self._followups = followups
        self._postgres = postgres
        self._last_start: datetime | None = None

    # --- the tick: start cycles, send invitations, list the ones who did not answer ---------------
    async def tick(self, now: datetime | None = None) -> int:
        """Returns the number of outbox rows queued."""
        now = now or self._clock.now()
        if self._last_start is None or not timedelta(0) <= now - self._last_start < START_EVERY:
            await with_retry(lambda: self._start_cycles(now))
            self._last_start = now
        queued = 0
        while True:
            n, more = await with_retry(lambda: self._invite_batch(now))
            queued += n
            if not more:
                return queued

    @staticmethod
    def invite_time(now: datetime, tz: str) -> datetime:
        local = now.astimezone(zone(tz)).time()
        if INVITE_AT <= local < INVITE_UNTIL:
            return now
        nxt = next_occurrence((INVITE_AT,), None, tz, now)
        assert nxt is not None
        return nxt

    @staticmethod
    def due_date(profile_due: date | None, linked_at: datetime | None, risk: str) -> date | None:
        """The follow-up due date (see the module notes); None for a patient never linked to a team."""
        if profile_due is not None:
            return profile_due
        if linked_at is None:
            return None
        return clinical.next_followup_due(linked_at.date(), "high" if risk == "high" else "standard")

    async def _start_cycles(self, now: datetime) -> None:
        soonest_link = now - timedelta(days=min(th.FOLLOWUP_HIGH_RISK_DAYS, th.FOLLOWUP_STANDARD_DAYS))
        has_cycle = exists().where(
            ChatFollowUp.patient_id == PatientProfile.user_id,
            or_(ChatFollowUp.status.in_(("invited", "answered", "to_call")),
                PatientProfile.next_followup_due.is_(None),
                ChatFollowUp.due_date >= PatientProfile.next_followup_due))
        async with self._sessions.begin() as session:
            rows = (await session.execute(
                select(PatientProfile.user_id, PatientProfile.next_followup_due, PatientProfile.linked_at,
                       PatientProfile.risk, User.timezone)
                .join(User, User.id == PatientProfile.user_id)
                .where(or_(PatientProfile.doctor_id.is_not(None), PatientProfile.team_id.is_not(None)),
                       User.chat_id.is_not(None),
                       or_(PatientProfile.next_followup_due <= now.date() + timedelta(days=1),
                           and_(PatientProfile.next_followup_due.is_(None), PatientProfile.linked_at <= soonest_link)),
                       ~has_cycle)
                .limit(2000))).all()
            values = []
            for uid, due, linked_at, risk, tz in rows:
                day = self.due_date(due, linked_at, risk)
                if day is None or day > now.astimezone(zone(tz)).date():
                    continue
                values.append({"patient_id": uid, "due_date": day, "status": "invited", "invitations": 0,
                               "next_invite_at": self.invite_time(now, tz), "answers": {}, "created_at": now})
            if values:
                dialect = postgresql if self._postgres else sqlite
                await session.execute(dialect.insert(ChatFollowUp).on_conflict_do_nothing(
                    index_elements=["patient_id", "due_date"]), values)

    async def _invite_batch(self, now: datetime) -> tuple[int, bool]:
        async with self._sessions.begin() as session:
            query = (select(ChatFollowUp).where(ChatFollowUp.status == "invited", ChatFollowUp.next_invite_at <= now)
                     .order_by(ChatFollowUp.next_invite_at, ChatFollowUp.id).limit(BATCH))
            if self._postgres:
                query = query.with_for_update(skip_locked=True)
            cycles = list(await session.scalars(query))
            # One query each for the patients, their profiles and their doctors (not three per row).
            people = {u.id: (u, p) for u, p in (await session.execute(
                select(User, PatientProfile).join(PatientProfile, PatientProfile.user_id == User.id)
                .where(User.id.in_([c.patient_id for c in cycles])))).all()} if cycles else {}
            doctor_ids = {p.doctor_id for _u, p in people.values() if p.doctor_id is not None}
            doctors = {d.id: d for d in await session.scalars(select(User).where(User.id.in_(doctor_ids)))} \
                if doctor_ids else {}
            queued = 0
            for cycle in cycles:
                if cycle.invitations >= MAX_INVITATIONS:
                    cycle.status, cycle.listed_at, cycle.next_invite_at = "to_call", now, None
                    continue
                if cycle.patient_id not in people:
                    continue
                user, profile = people[cycle.patient_id]
                at = self.invite_time(now, user.timezone)
                if at > now:
                    cycle.next_invite_at = at
                    continue
                cycle.invitations += 1
                cycle.last_invited_at, cycle.next_invite_at = now, now + INVITE_SPACING
                if user.chat_id is None or user.unreachable_at is not None:
                    continue  # counts as not answered: they will be listed for a call
                doctor = doctors.get(profile.doctor_id or 0) or await self._doctor_of(session, cycle.patient_id)
                session.add(Outbox(kind="notice", recipient_id=user.id, chat_id=user.chat_id,
                                   payload=self.invitation(user, doctor, cycle), next_attempt_at=now,
                                   dedupe_key=f"cf:{cycle.id}:inv:{cycle.invitations}", created_at=now))
                queued += 1
            return queued, len(cycles) == BATCH

    @staticmethod
    def invitation(user: User, doctor: User | None, cycle: ChatFollowUp) -> dict[str, Any]:
        t = translator(user.language)
        name = (doctor.display_name or doctor.first_name) if doctor else t("your doctor")
        if cycle.invitations <= 1:
            text = t("Hello! It is time for your regular follow-up with {doctor}. Please answer a few quick "
                     "questions with the buttons (about 2 minutes). Your latest readings are added for you.",
                     doctor=name)
        else:
            text = t("A gentle reminder: {doctor} is waiting for your follow-up answers. It takes about "
                     "2 minutes.", doctor=name)
        return {"text": text, "buttons": [[[t("📝 Start the follow-up"), f"cf:go:{cycle.id}"]]]}

    async def _doctor_of(self, session: AsyncSession, patient_id: int) -> User | None:
        """The patient's own doctor, else the first on call in their team."""
        profile = await session.get(PatientProfile, patient_id)
        if profile is None:
            return None
        if profile.doctor_id is not None:
            doctor = await session.get(User, profile.doctor_id)
            if doctor is not None:
                return doctor
        if profile.team_id is None:
            return None
        return await session.scalar(select(User).join(TeamMember, TeamMember.user_id == User.id)
                                    .where(TeamMember.team_id == profile.team_id)
                                    .order_by(TeamMember.oncall_order, User.id).limit(1))

    # --- the patient's questionnaire ----------------------------------------------------------------
    async def current(self, patient_id: int, cycle_id: int) -> Step:
        """The question to show when the patient presses "Start" (or comes back to it)."""
        async with self._sessions() as session:
            cycle = await session.get(ChatFollowUp, cycle_id)
            if cycle is None or cycle.patient_id != patient_id or cycle.status not in ("invited", "to_call"):
                return Step(ok=False)
            profile = await session.get(PatientProfile, patient_id)
            answers = dict(cycle.answers or {})
        q = next_question(_conditions(profile), answers)
        return Step(ok=True, question=q, selected=tuple(answers.get("~" + q.key, [])) if q else ())

    async def toggle(self, patient_id: int, cycle_id: int, key: str, value: str) -> Step:
        """A multi-choice button pressed: add or remove it from the selection."""
        async with self._sessions.begin() as session:
            cycle, q = await self._open_question(session, patient_id, cycle_id, key)
            if cycle is None or q is None or not q.multi or value not in q.options:
                return Step(ok=False)
            picked = list(cycle.answers.get("~" + key, []))
            picked = [v for v in picked if v != value] if value in picked else [*picked, value]
            cycle.answers = {**cycle.answers, "~" + key: picked}
            return Step(ok=True, question=q, selected=tuple(picked))

    async def answer(self, patient_id: int, cycle_id: int, key: str, value: str) -> Step:
        """A single-choice answer, or "done"/"none" for a multi-choice question. The last answer makes
        the draft record and queues it to the doctor, in the same transaction."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            cycle, q = await self._open_question(session, patient_id, cycle_id, key)
            if cycle is None or q is None:
                return Step(ok=False)
            answers = dict(cycle.answers)
            if q.multi and value in ("done", "none"):
                answers[key] = [] if value == "none" else list(answers.pop("~" + key, []))
                answers.pop("~" + key, None)
            elif not q.multi and value in q.options:
                answers[key] = value
            else:
                return Step(ok=False)
            cycle.answers = answers
            profile = await session.get(PatientProfile, patient_id)
            nxt = next_question(_conditions(profile), answers)
            if nxt is not None:
                return Step(ok=True, question=nxt)
            assert profile is not None
            doctor = await self._doctor_of(session, patient_id)
            row = await self._make_draft(session, cycle, profile, doctor, now)
            return Step(ok=True, done=True, followup_id=row.id,
                        doctor_name=(doctor.display_name or doctor.first_name) if doctor else "")

    async def _open_question(self, session: AsyncSession, patient_id: int, cycle_id: int,
                             key: str) -> tuple[ChatFollowUp | None, Question | None]:
        query = select(ChatFollowUp).where(ChatFollowUp.id == cycle_id)
        if self._postgres:
            query = query.with_for_update()
        cycle = await session.scalar(query)
        if cycle is None or cycle.patient_id != patient_id or cycle.status not in ("invited", "to_call"):
            return None, None
        profile = await session.get(PatientProfile, patient_id)
        q = next_question(_conditions(profile), dict(cycle.answers or {}))
        return (cycle, q) if q is not None and q.key == key else (None, None)

    async def _make_draft(self, session: AsyncSession, cycle: ChatFollowUp, profile: PatientProfile,
                          doctor: User | None, now: datetime) -> FollowUp:
        answers = cycle.answers
        user = await session.get(User, profile.user_id)
        assert user is not None
        form = FollowUpForm(
            symptoms=list(answers.get("symptoms", [])), symptoms_none=not answers.get("symptoms"),
            cigarettes_per_day=answers.get("cigarettes_per_day", ""),
            alcohol_liang_per_day=answers.get("alcohol_liang_per_day", ""),
            exercise_per_week=answers.get("exercise_per_week", ""), exercise_minutes=answers.get("exercise_minutes", ""),
            salt=answers.get("salt", ""), staple_g_per_day=answers.get("staple_g_per_day", ""),
            mood=answers.get("mood", ""), advice=answers.get("advice", ""),
            med_adherence=answers.get("med_adherence", ""), side_effects=list(answers.get("side_effects", [])),
            hypo_reactions=answers.get("hypo_reactions", ""))
        signs = await self._latest_signs(session, profile, now, form)
        row = FollowUp(patient_id=profile.user_id, doctor_id=doctor.id if doctor else None,
                       visit_date=now.astimezone(zone(user.timezone)).date(), way="online", status="draft",
                       details=form.details(), source="chat", created_at=now, **signs, **form.columns())
        session.add(row)
        await session.flush()
        cycle.status, cycle.answered_at, cycle.followup_id = "answered", now, row.id
        profile.last_contact_at = now
        if doctor is not None and doctor.chat_id is not None:
            draft = Draft(row, user.display_name or user.first_name, profile.away_since is not None, form)
            t = translator(doctor.language)
            session.add(Outbox(kind="notice", recipient_id=doctor.id, chat_id=doctor.chat_id,
                               payload={"text": draft_text(t, draft, doctor.timezone),
                                        "buttons": draft_buttons(t, draft)},
                               dedupe_key=f"cfdraft:{row.id}", next_attempt_at=now, created_at=now))
        return row

    async def _latest_signs(self, session: AsyncSession, profile: PatientProfile, now: datetime,
                            form: FollowUpForm) -> dict[str, Any]:
        """The patient's latest BP (with pulse), fasting glucose and weight of the last 90 days."""
        since = now - READINGS_WITHIN
        signs: dict[str, Any] = {}

        async def latest(*conditions: Any) -> Reading | None:
            return await session.scalar(select(Reading).where(
                Reading.patient_id == profile.user_id, Reading.measured_at >= since, *conditions)
                .order_by(Reading.measured_at.desc(), Reading.id.desc()).limit(1))

        bp = await latest(Reading.kind == "bp")
        if bp is not None:
            signs.update(systolic=bp.systolic, diastolic=bp.diastolic, heart_rate=bp.pulse)
            form.readings_from["bp"] = bp.measured_at.isoformat()
        glucose = await latest(Reading.kind == "glucose", Reading.context == "fasting")
        if glucose is not None and glucose.mmol is not None:
            signs["fasting_mmol"] = glucose.mmol
            form.readings_from["fasting_mmol"] = glucose.measured_at.isoformat()
        weight = await latest(Reading.kind == "weight")
        if weight is not None and weight.kg is not None:
            signs["weight_kg"] = weight.kg
            form.readings_from["weight_kg"] = weight.measured_at.isoformat()
            if profile.height_cm:
                form.bmi = round(weight.kg / (profile.height_cm / 100) ** 2, 1)
        form.heart_rate = signs.pop("heart_rate", None)
        return signs

    # --- the doctor's side ------------------------------------------------------------------------
    async def draft(self, doctor_id: int, followup_id: int) -> Draft | None:
        """A chat follow-up record of one of the doctor's team's patients (draft or confirmed)."""
        async with self._sessions() as session:
            row = await session.get(FollowUp, followup_id)
            if row is None or row.source != "chat":
                return None
            found = await self._panel.team_patient(doctor_id, row.patient_id)
            if found is None:
                return None
            user, profile = found
            return Draft(row, user.display_name or user.first_name, profile.away_since is not None,
                         FollowUpForm.of(row))

    async def confirm(self, doctor: User, followup_id: int, outcome: str) -> FollowUpResult | None:
        """One press: the classification confirms the draft; the patient hears the next date."""
        result = await self._followups.confirm(doctor.id, followup_id, outcome)
        if result is None:
            return None
        now = self._clock.now()
        async with self._sessions.begin() as session:
            row = await session.get(FollowUp, followup_id)
            patient = await session.get(User, row.patient_id) if row else None
            if patient is not None and patient.chat_id is not None and patient.unreachable_at is None:
                t = translator(patient.language)
                text = t("{doctor} has read your follow-up answers. Thank you! Your next follow-up is due "
                         "on {date}.", doctor=doctor.display_name or doctor.first_name,
                         date=result.next_due.isoformat())
                session.add(Outbox(kind="notice", recipient_id=patient.id, chat_id=patient.chat_id,
                                   payload={"text": text}, dedupe_key=f"cfdone:{followup_id}",
                                   next_attempt_at=now, created_at=now))
        return result

    async def pending_drafts(self, doctor_id: int, limit: int = 5) -> list[Draft]:
        """Chat follow-ups of the doctor's teams waiting for confirmation, oldest first (/drafts): any team
        member can confirm, e.g. when the patient's own doctor is away."""
        async with self._sessions() as session:
            rows = (await session.execute(
                select(FollowUp, User, PatientProfile)
                .join(User, User.id == FollowUp.patient_id)
                .join(PatientProfile, PatientProfile.user_id == FollowUp.patient_id)
                .where(FollowUp.status == "draft", FollowUp.source == "chat",
                       or_(PatientProfile.team_id.in_(select(TeamMember.team_id).where(TeamMember.user_id == doctor_id)),
                           PatientProfile.doctor_id == doctor_id))
                .order_by(FollowUp.created_at, FollowUp.id).limit(limit))).all()
        return [Draft(f, u.display_name or u.first_name, p.away_since is not None, FollowUpForm.of(f))
                for f, u, p in rows]

    async def patient_drafts(self, doctor_id: int, patient_id: int) -> list[Draft]:
        """One patient's chat follow-ups waiting for confirmation (the dashboard's patient page); [] when
        the patient is not in the doctor's teams."""
        found = await self._panel.team_patient(doctor_id, patient_id)
        return [] if found is None else await self.drafts_of(*found)

    async def drafts_of(self, patient: User, profile: PatientProfile, *, session: AsyncSession | None = None
                        ) -> list[Draft]:
        """`patient_drafts` for a caller that has already checked the doctor may see this patient (the
        patient page, in its one read session: the check is not made twice)."""
        async with read_session(self._sessions, session) as session:
            rows = list(await session.scalars(select(FollowUp).where(
                FollowUp.patient_id == patient.id, FollowUp.status == "draft", FollowUp.source == "chat")
                .order_by(FollowUp.created_at, FollowUp.id)))
        return [Draft(f, patient.display_name or patient.first_name, profile.away_since is not None,
                      FollowUpForm.of(f)) for f in rows]

    async def to_call(self, doctor_id: int, limit: int = 50) -> list[ToCall]:
        """Patients of the doctor's teams who did not answer 2 invitations, longest waiting first."""
        async with self._sessions() as session:
            rows = (await session.execute(
                select(ChatFollowUp, User, PatientProfile)
                .join(User, User.id == ChatFollowUp.patient_id)
                .join(PatientProfile, PatientProfile.user_id == ChatFollowUp.patient_id)
                .where(ChatFollowUp.status == "to_call",
                       or_(PatientProfile.team_id.in_(select(TeamMember.team_id).where(TeamMember.user_id == doctor_id)),
                           PatientProfile.doctor_id == doctor_id))
                .order_by(ChatFollowUp.listed_at, ChatFollowUp.id).limit(limit))).all()
        return [ToCall(u.id, u.display_name or u.first_name, u.phone, c.due_date, c.invitations, c.last_invited_at,
                       c.listed_at, p.away_since, p.last_contact_at) for c, u, p in rows]

    # --- living away from home ------------------------------------------------------------------------
    async def set_away(self, patient_id: int, away: bool) -> bool:
        """False when the person has no patient profile."""
        async with self._sessions.begin() as session:
            profile = await session.get(PatientProfile, patient_id)
            if profile is None:
                return False
            if away and profile.away_since is None:
                profile.away_since = self._clock.now()
            elif not away:
                profile.away_since = None
            return True
