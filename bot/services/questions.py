"""Questions to the care team ("Ask my doctor") and "Trouble with my care" flags.

A question is stored and, in the same transaction, queued in the outbox to every member of the
patient's team (their "team inbox") with the patient's context. A team member answers by replying
to that message or with its Answer button; the answer goes to the patient (and to the caregiver
who asked) through the outbox, and the other members' copies are edited to say who answered.

Privacy: every read and every answer is scoped like the panel (`PanelService` rules: the patient
is in one of the doctor's teams or the doctor is their own doctor); anything else is "not found".
Hardship flags are shown to that team only; circles and caregivers never see them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_timedelta
from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clinical.questions import QuestionSafety, question_safety
from bot.services.alerts import AlertService
from bot.services.clock import Clock
from bot.services.db import read_session
from bot.services.targets import age_of
from bot.services.working_hours import WorkingHours
from content.i18n import Translator, translator
from content.render import reading_text
from storage.models import Alert, Outbox, PatientProfile, Reading, Team, TeamMember, User
from storage.question_models import CareTrouble, Question

MAX_QUESTION = 2000
MAX_ANSWER = 3500


def _(msgid: str) -> str:
    return msgid


TROUBLE_LABELS = {
    "medicines": _("I cannot afford or get my medicines"),
    "travel": _("I cannot travel to the clinic"),
    "support": _("I have nobody to help me"),
}
TROUBLE_KINDS = tuple(TROUBLE_LABELS)
# The team's short words for the same flags (panel, /patient, dashboard).
TROUBLE_TEAM_LABELS = {
    "medicines": _("cannot afford or get medicines"),
    "travel": _("cannot travel to the clinic"),
    "support": _("nobody to help"),
}


@dataclass(frozen=True)
class AskResult:
    question_id: int | None  # None: the patient has no team or doctor to ask
    duplicate: bool = False
    safety: QuestionSafety = field(default_factory=QuestionSafety)
    next_open: datetime | None = None  # None: the team is working now
    recipients: int = 0
    hours_start: str = "08:00"  # the team's working hours, local to the team
    hours_end: str = "17:30"


@dataclass(frozen=True)
class AnswerResult:
    ok: bool
    reason: str = ""  # "not_found" | "already" | "empty" | ""
    question_id: int | None = None
    patient_name: str = ""
    answered_by: str = ""


@dataclass(frozen=True)
class OpenQuestion:
    id: int
    patient_id: int
    patient_name: str
    text: str
    created_at: datetime
    urgent: bool
    asker_role: str


def _name(user: User | None) -> str:
    return (user.display_name or user.first_name) if user is not None else "?"


def excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class QuestionService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, alerts: AlertService,
                 default_timezone: str = "Asia/Shanghai"):
        self._sessions = sessions
        self._clock = clock
        self._alerts = alerts
        self._default_tz = default_timezone

    # ---- scope ----------------------------------------------------------------------------------
    @staticmethod
    def _in_scope(doctor_id: int) -> object:
        """SQL condition on PatientProfile: the patient belongs to this doctor's teams or to the doctor."""
        teams = select(TeamMember.team_id).where(TeamMember.user_id == doctor_id)
        return or_(PatientProfile.team_id.in_(teams), PatientProfile.doctor_id == doctor_id)

    async def _may_see(self, session: AsyncSession, doctor_id: int, patient_id: int) -> bool:
        found = await session.scalar(select(PatientProfile.user_id).where(
            PatientProfile.user_id == patient_id, self._in_scope(doctor_id)))  # type: ignore[arg-type]
        return found is not None

    async def _team_inbox(self, session: AsyncSession, profile: PatientProfile) -> list[User]:
        """Everyone who gets the patient's questions: the own doctor first, then the team."""
        members: list[User] = []
        if profile.team_id is not None:
            members = list(await session.scalars(
                select(User).join(TeamMember, TeamMember.user_id == User.id)
                .where(TeamMember.team_id == profile.team_id).order_by(TeamMember.oncall_order, User.id)))
        if profile.doctor_id is not None and all(m.id != profile.doctor_id for m in members):
            own = await session.get(User, profile.doctor_id)
            if own is not None:
                members.insert(0, own)
        return members

    async def hours_for(self, session: AsyncSession, profile: PatientProfile | None) -> WorkingHours:
        team = await session.get(Team, profile.team_id) if profile is not None and profile.team_id else None
        if team is None:
            return WorkingHours.of(None, None, None, self._default_tz)
        return WorkingHours.of(team.timezone, team.work_start, team.work_end, self._default_tz)

    # ---- asking ---------------------------------------------------------------------------------
    async def ask(self, patient_id: int, asker_id: int, text: str, *,
                  source_update_id: int | None = None) -> AskResult:
        """Store the question and queue it to the team inbox; an urgent-sounding one also raises
        the symptom alert (the reading path for urgent readings is the dialog's, as for free text)."""
        text = text.strip()[:MAX_QUESTION]
        safety = question_safety(text)
        now = self._clock.now()
        if source_update_id is not None:
            async with self._sessions() as session:
                earlier = await session.scalar(select(Question.id).where(Question.source_update_id == source_update_id))
            if earlier is not None:  # a redelivered update: asked (and alerted) already
                return AskResult(earlier, True, safety)
        if safety.signs:  # first, so the doctor's alert goes out before the question's copy
            await self._alerts.raise_symptom_alert(patient_id, safety.signs, where="question to the care team")
        try:
            return await self._ask(patient_id, asker_id, text, safety, now, source_update_id)
        except IntegrityError:  # the same update raced in twice: the first one won
            return AskResult(None, True, safety)

    async def _ask(self, patient_id: int, asker_id: int, text: str, safety: QuestionSafety, now: datetime,
                   source_update_id: int | None) -> AskResult:
        async with self._sessions.begin() as session:
            if source_update_id is not None:
                earlier = await session.scalar(select(Question).where(Question.source_update_id == source_update_id))
                if earlier is not None:
                    return AskResult(earlier.id, True, safety)
            patient = await session.get(User, patient_id)
            profile = await session.get(PatientProfile, patient_id)
            if patient is None or profile is None or (profile.team_id is None and profile.doctor_id is None):
                return AskResult(None, False, safety)
            hours = await self.hours_for(session, profile)
            question = Question(
                patient_id=patient_id, asker_id=asker_id,
                asker_role="patient" if asker_id == patient_id else "caregiver", team_id=profile.team_id,
                text=text, urgent=safety.urgent, signs=",".join(sorted(safety.signs))[:256], created_at=now,
                source_update_id=source_update_id)
            session.add(question)
            await session.flush()
            asker = patient if asker_id == patient_id else await session.get(User, asker_id)
            inbox = [m for m in await self._team_inbox(session, profile) if m.chat_id]
            context = await self._context(session, patient, profile, now)
            for member in inbox:
                t = translator(member.language)
                body = self._team_text(t, question, patient, asker, context)
                session.add(Outbox(
                    kind="question", recipient_id=member.id, chat_id=member.chat_id,
                    payload={"text": body + "\n\n" + t("Reply to this message to answer, or press Answer."),
                             "body": body, "buttons": answer_buttons(question.id, member.language),
                             "question_id": question.id},
                    dedupe_key=f"q:{question.id}:to:{member.id}", next_attempt_at=now))
            return AskResult(question.id, False, safety, hours.next_open(now), len(inbox),
                             hours.start.strftime("%H:%M"), hours.end.strftime("%H:%M"))

    async def _context(self, session: AsyncSession, patient: User, profile: PatientProfile,
                       now: datetime) -> dict[str, object]:
        readings = list(await session.scalars(
            select(Reading).where(Reading.patient_id == patient.id, Reading.kind.in_(("bp", "glucose")))
            .order_by(Reading.measured_at.desc()).limit(3)))
        open_alerts = await session.scalar(select(func.count(Alert.id)).where(
            Alert.patient_id == patient.id, Alert.status == "open")) or 0
        return {"age": age_of(profile, now), "conditions": sorted(profile.condition_set), "readings": readings,
                "open_alerts": int(open_alerts), "unit": profile.glucose_unit, "patient_id": patient.id}

    @staticmethod
    def _team_text(t: Translator, question: Question, patient: User, asker: User | None,
                   context: dict[str, object]) -> str:
        """The inbox message: who asks, the patient's context, the question, how to answer."""
        name = _name(patient)
        head = "❓ " + t("Question #{id} from {name}", id=question.id, name=name)
        if question.asker_role == "caregiver":
            head += " " + t("(asked by their family member {name})", name=_name(asker))
        age = context["age"]
        conditions = ", ".join(t(str(c).capitalize()) for c in context["conditions"])  # type: ignore[attr-defined]
        readings = [reading_text(r, t, str(context["unit"])) for r in context["readings"]]  # type: ignore[attr-defined]
        lines = [
            head,
            f"#{context['patient_id']} {name}, " + t("age {age}", age=age if age is not None else "?")
            + (f", {conditions}" if conditions else ""),
            t("Last readings: {list}", list="; ".join(readings) if readings else t("none")),
        ]
        if context["open_alerts"]:
            lines.append("🔴 " + t("Open alerts: {n}", n=context["open_alerts"]))
        if question.urgent:
            lines.append("⚠️ " + t("This sounds urgent: they were told to call 120 or go to hospital now."))
        lines += ["", "«" + question.text + "»"]
        return "\n".join(lines).rstrip()

    # ---- answering ------------------------------------------------------------------------------
    async def question_for(self, doctor_id: int, question_id: int) -> Question | None:
        """The question when this doctor may see it (their team's patient), else None."""
        async with self._sessions() as session:
            question = await session.get(Question, question_id)
            if question is None or not await self._may_see(session, doctor_id, question.patient_id):
                return None
            return question

    async def answer_reply(self, doctor_id: int, chat_id: int, message_id: int, text: str) -> AnswerResult | None:
        """A reply in the chat: None when the replied-to message is not one of our question messages."""
        async with self._sessions() as session:
            row = await session.scalar(select(Outbox).where(
                Outbox.recipient_id == doctor_id, Outbox.chat_id == chat_id, Outbox.kind == "question",
                Outbox.telegram_message_id == message_id).limit(1))
        if row is None or not (row.payload or {}).get("question_id"):
            return None
        return await self.answer(int(row.payload["question_id"]), doctor_id, text)

    async def answer(self, question_id: int, doctor_id: int, text: str) -> AnswerResult:
        text = text.strip()[:MAX_ANSWER]
        if not text:
            return AnswerResult(False, "empty", question_id)
        now = self._clock.now()
        async with self._sessions.begin() as session:
            question = await session.get(Question, question_id, with_for_update=True)
            if question is None or not await self._may_see(session, doctor_id, question.patient_id):
                return AnswerResult(False, "not_found")
            patient = await session.get(User, question.patient_id)
            if question.answered_at is not None:
                return AnswerResult(False, "already", question.id, _name(patient),
                                    _name(await session.get(User, question.answered_by)))
            doctor = await session.get(User, doctor_id)
            name = _name(doctor)
            question.answered_by, question.answered_at, question.answer = doctor_id, now, text
            asker = await session.get(User, question.asker_id) if question.asker_id else None
            if patient is not None and patient.chat_id:
                t = translator(patient.language)
                head = (t("💬 {name} from your care team answered:", name=name) if question.asker_role == "patient"
                        else t("💬 {name} from your care team answered the question your family member asked:",
                               name=name))
                session.add(Outbox(kind="notice", recipient_id=patient.id, chat_id=patient.chat_id,
                                   payload={"text": self._answer_text(t, head, question)},
                                   dedupe_key=f"q:{question.id}:answer:{patient.id}", next_attempt_at=now))
            if question.asker_role == "caregiver" and asker is not None and asker.chat_id:
                t = translator(asker.language)
                head = t("💬 {name} from the care team answered your question about {patient}:", name=name,
                         patient=_name(patient))
                session.add(Outbox(kind="notice", recipient_id=asker.id, chat_id=asker.chat_id,
                                   payload={"text": self._answer_text(t, head, question)},
                                   dedupe_key=f"q:{question.id}:answer:{asker.id}", next_attempt_at=now))
            await self._close_inbox_copies(session, question, name, now)
            return AnswerResult(True, "", question.id, _name(patient), name)

    @staticmethod
    def _answer_text(t: Translator, head: str, question: Question) -> str:
        return "\n".join([head, question.answer or "", "", t("Your question: «{text}»",
                                                              text=excerpt(question.text))])

    async def _close_inbox_copies(self, session: AsyncSession, question: Question, name: str, now: datetime) -> None:
        """Every team member's copy now says who answered, without the Answer button."""
        rows = await session.scalars(select(Outbox).where(Outbox.kind == "question",
                                                          Outbox.dedupe_key.like(f"q:{question.id}:to:%")))
        for row in rows:
            member = await session.get(User, row.recipient_id) if row.recipient_id else None
            t = translator(member.language if member else "en")
            local = now.astimezone(ZoneInfo(member.timezone if member else self._default_tz))
            note = "✅ " + t("Answered by {name} at {time}", name=name, time=local.strftime("%m-%d %H:%M"))
            body = (row.payload or {}).get("body") or (row.payload or {}).get("text", "")
            payload = {"text": f"{body}\n\n{note}", "body": body, "question_id": question.id}
            if row.status == "sent" and row.telegram_message_id:
                session.add(Outbox(kind="edit", recipient_id=row.recipient_id, chat_id=row.chat_id,
                                   payload={**payload, "message_id": row.telegram_message_id},
                                   dedupe_key=f"q:{question.id}:edit:{row.recipient_id}", next_attempt_at=now))
            elif row.status in ("pending", "sending"):
                row.payload = payload

    # ---- lists ----------------------------------------------------------------------------------
    def _open_query(self, doctor_id: int) -> Select[tuple[Question, str, str]]:
        return (select(Question, User.display_name, User.first_name)
                .join(User, User.id == Question.patient_id)
                .join(PatientProfile, PatientProfile.user_id == Question.patient_id)
                .where(Question.answered_at.is_(None), self._in_scope(doctor_id)))  # type: ignore[arg-type]

    async def open_for(self, doctor_id: int, limit: int = 50) -> list[OpenQuestion]:
        """Unanswered questions of the doctor's patients: urgent first, then the oldest."""
        async with self._sessions() as session:
            rows = (await session.execute(self._open_query(doctor_id)
                                          .order_by(Question.urgent.desc(), Question.created_at, Question.id)
                                          .limit(limit))).all()
        return [OpenQuestion(q.id, q.patient_id, display or first, q.text, q.created_at, q.urgent, q.asker_role)
                for q, display, first in rows]

    async def open_count(self, doctor_id: int) -> int:
        async with self._sessions() as session:
            sub = self._open_query(doctor_id).subquery()
            return int(await session.scalar(select(func.count()).select_from(sub)) or 0)

    async def of_patient(self, patient_id: int, limit: int = 20, *, session: AsyncSession | None = None
                         ) -> list[Question]:
        """A patient's latest questions (the caller has checked the doctor may see this patient)."""
        async with read_session(self._sessions, session) as session:
            return list(await session.scalars(select(Question).where(Question.patient_id == patient_id)
                                              .order_by(Question.created_at.desc(), Question.id.desc())
                                              .limit(limit)))

    # ---- trouble with my care -------------------------------------------------------------------
    async def troubles(self, patient_id: int, *, session: AsyncSession | None = None) -> list[CareTrouble]:
        """The patient's flags still raised, oldest first."""
        async with read_session(self._sessions, session) as session:
            return list(await session.scalars(select(CareTrouble).where(
                CareTrouble.patient_id == patient_id, CareTrouble.cleared_at.is_(None))
                .order_by(CareTrouble.raised_at, CareTrouble.id)))

    async def troubles_for(self, patient_ids: Iterable[int]) -> dict[int, list[str]]:
        """Raised flag kinds per patient, for a panel page (the caller scoped the ids)."""
        ids = list(patient_ids)
        found: dict[int, list[str]] = {}
        if not ids:
            return found
        async with self._sessions() as session:
            rows = await session.execute(select(CareTrouble.patient_id, CareTrouble.kind).where(
                CareTrouble.patient_id.in_(ids), CareTrouble.cleared_at.is_(None)).order_by(CareTrouble.id))
            for pid, kind in rows.all():
                if kind not in found.setdefault(pid, []):
                    found[pid].append(kind)
        return found

    async def set_trouble(self, patient_id: int, kind: str, raised: bool, by: int | None = None) -> bool:
        """Raise or clear one flag; True when something changed. Raising tells the own doctor once."""
        if kind not in TROUBLE_KINDS:
            return False
        now = self._clock.now()
        async with self._sessions.begin() as session:
            current = await session.scalar(select(CareTrouble).where(
                CareTrouble.patient_id == patient_id, CareTrouble.kind == kind, CareTrouble.cleared_at.is_(None))
                .limit(1))
            if not raised:
                if current is None:
                    return False
                current.cleared_at = now
                return True
            if current is not None:
                return False
            flag = CareTrouble(patient_id=patient_id, kind=kind, raised_at=now, raised_by=by)
            session.add(flag)
            await session.flush()
            patient = await session.get(User, patient_id)
            profile = await session.get(PatientProfile, patient_id)
            inbox = [m for m in await self._team_inbox(session, profile) if m.chat_id] if profile else []
            if patient is not None and inbox:
                member = inbox[0]
                t = translator(member.language)
                text = "🆘 " + t("{name} reports trouble with their care: {what}. Open /patient {id}",
                                 name=_name(patient), what=t(TROUBLE_TEAM_LABELS[kind]), id=patient_id)
                session.add(Outbox(kind="notice", recipient_id=member.id, chat_id=member.chat_id,
                                   payload={"text": text}, dedupe_key=f"trouble:{flag.id}", next_attempt_at=now))
            return True


def waited(t: Translator, since: datetime, now: datetime) -> str:
    """How long a question has waited ("3 hours", "2 days"), in the reader's language."""
    return format_timedelta(now - since, threshold=1.5, locale=t.locale)


def answer_buttons(question_id: int, language: str) -> list[list[list[str]]]:
    t = translator(language)
    return [[[t("Answer"), f"qa:ans:{question_id}"]]]
