"""Follow-up records (随访) and the next due date, per the NBPHS-3 schedule in bot.clinical.

A record holds every field of the NBPHS-3 follow-up form (clinical-reference.md, "Follow-up form"):
the numbers the panel and indicators query are columns, the rest (symptoms, lifestyle now and
target, side effects, medicines, referral destination) sits in `details` through `FollowUpForm`.
A chat follow-up (bot.services.chat_followups) first writes a DRAFT; `confirm` makes it a record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import clinical
from bot.services.clock import Clock
from bot.services.db import read_session
from bot.services.panel import PanelService
from bot.services.plan_focus import current_plan
from storage.chat_followup_models import OPEN_STATUSES, ChatFollowUp
from storage.models import FollowUp, PatientProfile

WAYS = ("clinic", "home", "phone", "online")
OUTCOMES = ("controlled", "unsatisfactory", "adverse_reaction", "complication")
# Answer vocabularies of the form (clinical-reference.md, "Follow-up form").
HTN_SYMPTOMS = ("headache_dizziness", "nausea_vomiting", "blurred_vision_tinnitus", "breathless",
                "palpitations_chest", "nosebleed", "numb_limbs", "leg_oedema")
DM_SYMPTOMS = ("thirst", "hunger", "urination", "blurred_vision", "infections", "numb_hands_feet",
               "leg_oedema", "weight_loss")
SALT_LEVELS = ("light", "medium", "heavy")
GOOD_FAIR_POOR = ("good", "fair", "poor")
ADHERENCE = ("regular", "intermittent", "not_taking")
HYPO_REACTIONS = ("none", "occasional", "frequent")
FOOT_PULSE = ("felt", "weak", "absent")


@dataclass
class FollowUpForm:
    """The NBPHS-3 follow-up form beyond date/way/outcome/BP/fasting glucose/weight (those are columns).

    Lifestyle values are what the patient reports (ranges like "1-5" from chat buttons, or numbers
    the doctor types); `*_target` the doctor's targets. Empty means "not asked / not known"."""

    symptoms: list[str] = field(default_factory=list)  # [] with symptoms_none=True means "none"
    symptoms_none: bool = False
    heart_rate: int | None = None
    bmi: float | None = None
    target_weight_kg: float | None = None
    target_bmi: float | None = None
    foot_pulse: str = ""  # felt|weak|absent (diabetes)
    hba1c: float | None = None
    hba1c_date: str = ""
    cigarettes_per_day: str = ""
    alcohol_liang_per_day: str = ""
    exercise_per_week: str = ""
    exercise_minutes: str = ""
    salt: str = ""  # light|medium|heavy
    staple_g_per_day: str = ""  # diabetes
    mood: str = ""  # good|fair|poor (psychological adjustment)
    advice: str = ""  # following medical advice: good|fair|poor
    lifestyle_target: dict[str, str] = field(default_factory=dict)  # same keys as above
    med_adherence: str = ""  # regular|intermittent|not_taking
    side_effects: list[str] = field(default_factory=list)  # [] = none
    hypo_reactions: str = ""  # none|occasional|frequent
    medicines: str = ""  # names, doses and frequency as written
    insulin: str = ""
    referral_reason: str = ""
    referral_to: str = ""
    readings_from: dict[str, str] = field(default_factory=dict)  # auto-filled sign -> ISO time measured

    def details(self) -> dict[str, Any]:
        """What goes into FollowUp.details (the columns are filled separately by `columns`)."""
        skip = {"heart_rate", "bmi", "hba1c", "med_adherence", "hypo_reactions"}
        return {k: v for k, v in asdict(self).items() if k not in skip and v not in ("", [], {}, None, False)}

    def columns(self) -> dict[str, Any]:
        referral = " -> ".join(x for x in (self.referral_reason, self.referral_to) if x)
        return {"heart_rate": self.heart_rate, "bmi": self.bmi, "hba1c": self.hba1c,
                "med_adherence": self.med_adherence or None, "hypo_reactions": self.hypo_reactions or None,
                "referral": referral[:256] or None}

    @classmethod
    def of(cls, row: FollowUp) -> FollowUpForm:
        """The form back from a stored record."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in (row.details or {}).items() if k in known}
        form = cls(**values)
        form.heart_rate, form.bmi, form.hba1c = row.heart_rate, row.bmi, row.hba1c
        form.med_adherence, form.hypo_reactions = row.med_adherence or "", row.hypo_reactions or ""
        return form


@dataclass(frozen=True)
class FollowUpResult:
    followup_id: int
    next_due: date
    refer: bool  # uncontrolled at consecutive follow-ups: BP-UNCONTROLLED / GLU-UNCONTROLLED


@dataclass(frozen=True)
class Signs:
    """Signs the doctor adds to a draft (any may be missing)."""

    systolic: int | None = None
    diastolic: int | None = None
    heart_rate: int | None = None
    fasting_mmol: float | None = None
    weight_kg: float | None = None


def signs_from_text(text: str) -> Signs | None:
    """"138/86 HR 72 fasting glucose 6.5 65kg" (any order, Chinese too) -> Signs, via the reading
    parser so the same plausibility rules (BP-RANGE, GLU-RANGE) apply. None when nothing usable."""
    found: dict[str, Any] = {}
    for r in clinical.parse_readings(text):
        if r.problem is not None:
            continue
        if r.kind == "bp":
            found.update(systolic=r.systolic, diastolic=r.diastolic, heart_rate=r.pulse)
        elif r.kind == "glucose" and r.mmol is not None:
            found["fasting_mmol"] = r.mmol
        elif r.kind == "weight" and r.kg is not None:
            found["weight_kg"] = r.kg
    return Signs(**found) if found else None


class FollowUpService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, panel: PanelService):
        self._sessions = sessions
        self._clock = clock
        self._panel = panel

    async def record(self, doctor_id: int, patient_id: int, *, way: str, outcome: str,
                     visit_date: date | None = None, systolic: int | None = None, diastolic: int | None = None,
                     fasting_mmol: float | None = None, weight_kg: float | None = None,
                     medication_change: str = "", details: dict[str, Any] | None = None,
                     form: FollowUpForm | None = None, source: str | None = None) -> FollowUpResult | None:
        """None when the patient is not in the doctor's teams (same answer as "no such patient")."""
        if way not in WAYS or outcome not in OUTCOMES:
            raise ValueError("unknown follow-up way or outcome")
        if await self._panel.team_patient(doctor_id, patient_id) is None:
            return None
        when = visit_date or self._clock.now().date()
        async with self._sessions.begin() as session:
            profile = await session.get(PatientProfile, patient_id)
            assert profile is not None
            row = FollowUp(patient_id=patient_id, doctor_id=doctor_id, visit_date=when, way=way, outcome=outcome,
                           systolic=systolic, diastolic=diastolic, fasting_mmol=fasting_mmol, weight_kg=weight_kg,
                           medication_change=medication_change[:512],
                           details={**(form.details() if form else {}), **(details or {})},
                           created_at=self._clock.now(), source=source, confirmed_at=self._clock.now(),
                           **(form.columns() if form else {}))
            session.add(row)
            return await self._finish(session, profile, row, outcome, when)

    async def _finish(self, session: AsyncSession, profile: PatientProfile, row: FollowUp, outcome: str,
                      when: date) -> FollowUpResult:
        """Shared by `record` and `confirm`: the next due date, referral advice, contact time, and
        any open chat follow-up invitation closed (this follow-up answers it).

        The next date follows the patient's care plan interval when there is a plan, bounded by the
        reference's risk rule (quarterly / monthly at the latest) and the 2-week recheck after an
        uncontrolled follow-up: see bot.clinical.next_followup_due."""
        await session.flush()  # row.id, and the row itself must not count as "previous"
        previous = list(await session.scalars(
            select(FollowUp.outcome).where(FollowUp.patient_id == profile.user_id, FollowUp.status == "confirmed",
                                           FollowUp.id != row.id)
            .order_by(FollowUp.visit_date.desc(), FollowUp.id.desc()).limit(5)))
        streak = 0
        for earlier in [outcome, *previous]:
            if earlier != "unsatisfactory":
                break
            streak += 1
        plan = await current_plan(session, profile.user_id)  # issue 10: the plan's interval drives the date
        next_due = clinical.next_followup_due(when, profile.risk, outcome, False,  # type: ignore[arg-type]
                                              plan_days=plan.followup_days if plan else None)
        row.next_due = next_due
        profile.next_followup_due = next_due
        profile.last_contact_at = self._clock.now()
        await session.flush()
        await session.execute(update(ChatFollowUp).where(ChatFollowUp.patient_id == profile.user_id,
                                                         ChatFollowUp.status.in_(OPEN_STATUSES))
                              .values(status="closed"))
        await session.execute(update(ChatFollowUp).where(ChatFollowUp.followup_id == row.id)
                              .values(status="confirmed"))
        return FollowUpResult(row.id, next_due, clinical.needs_referral(streak))

    async def draft(self, doctor_id: int, followup_id: int) -> FollowUp | None:
        """A draft of one of the doctor's team's patients, else None."""
        async with self._sessions() as session:
            row = await session.get(FollowUp, followup_id)
        if row is None or row.status != "draft" or await self._panel.team_patient(doctor_id, row.patient_id) is None:
            return None
        return row

    async def set_way(self, doctor_id: int, followup_id: int, way: str) -> FollowUp | None:
        if way not in WAYS or await self.draft(doctor_id, followup_id) is None:
            return None
        async with self._sessions.begin() as session:
            row = await session.get(FollowUp, followup_id)
            assert row is not None
            row.way = way
        return row

    async def add_signs(self, doctor_id: int, followup_id: int, signs: Signs) -> FollowUp | None:
        """The doctor's measured signs replace the readings the chat filled in."""
        if await self.draft(doctor_id, followup_id) is None:
            return None
        async with self._sessions.begin() as session:
            row = await session.get(FollowUp, followup_id)
            profile = await session.get(PatientProfile, row.patient_id) if row else None
            assert row is not None
            readings_from = dict((row.details or {}).get("readings_from", {}))
            for name in ("systolic", "diastolic", "heart_rate", "fasting_mmol", "weight_kg"):
                value = getattr(signs, name)
                if value is not None:
                    setattr(row, name, value)
                    readings_from.pop({"systolic": "bp", "diastolic": "bp"}.get(name, name), None)
            if signs.weight_kg and profile is not None and profile.height_cm:
                row.bmi = round(signs.weight_kg / (profile.height_cm / 100) ** 2, 1)
            row.details = {**(row.details or {}), "readings_from": readings_from, "signs_by_doctor": True}
        return row

    async def confirm(self, doctor_id: int, followup_id: int, outcome: str) -> FollowUpResult | None:
        """The doctor confirms a draft in one step with the classification; the next due date follows
        the rules exactly as for a follow-up recorded directly. None: not a draft of the doctor's team."""
        if outcome not in OUTCOMES:
            raise ValueError("unknown follow-up outcome")
        if await self.draft(doctor_id, followup_id) is None:
            return None
        async with self._sessions.begin() as session:
            row = await session.get(FollowUp, followup_id, with_for_update=True)
            if row is None or row.status != "draft":
                return None  # confirmed by a colleague a moment ago
            profile = await session.get(PatientProfile, row.patient_id)
            assert profile is not None
            row.status, row.outcome, row.doctor_id = "confirmed", outcome, doctor_id
            row.confirmed_at = self._clock.now()
            return await self._finish(session, profile, row, outcome, row.visit_date)

    async def history(self, patient_id: int, limit: int = 10, *, session: AsyncSession | None = None
                      ) -> list[FollowUp]:
        async with read_session(self._sessions, session) as session:
            return list(await session.scalars(select(FollowUp).where(FollowUp.patient_id == patient_id)
                                              .order_by(FollowUp.visit_date.desc(), FollowUp.id.desc()).limit(limit)))


def form_from_fields(values: Any) -> FollowUpForm:
    """The rest of the form from a web form's fields (the dashboard's follow-up form); unknown or
    badly typed values are left empty rather than refused, like the dashboard's other optional fields."""

    def text(name: str, allowed: tuple[str, ...] | None = None) -> str:
        raw = str(values.get(name, "") or "").strip()[:64]
        return raw if allowed is None or raw in allowed else ""

    def number(name: str, kind: type = float) -> Any:
        try:
            return kind(str(values.get(name, "")).strip()) if str(values.get(name, "")).strip() else None
        except ValueError:
            return None

    symptoms = [s for s in str(values.get("symptoms", "")).replace(",", " ").split() if s in (*HTN_SYMPTOMS,
                                                                                            *DM_SYMPTOMS)]
    return FollowUpForm(
        symptoms=symptoms, heart_rate=number("heart_rate", int), bmi=number("bmi"),
        target_weight_kg=number("target_weight_kg"), foot_pulse=text("foot_pulse", FOOT_PULSE),
        hba1c=number("hba1c"), hba1c_date=text("hba1c_date"), cigarettes_per_day=text("cigarettes_per_day"),
        alcohol_liang_per_day=text("alcohol_liang_per_day"), exercise_per_week=text("exercise_per_week"),
        exercise_minutes=text("exercise_minutes"), salt=text("salt", SALT_LEVELS),
        staple_g_per_day=text("staple_g_per_day"), mood=text("mood", GOOD_FAIR_POOR),
        advice=text("advice", GOOD_FAIR_POOR), med_adherence=text("med_adherence", ADHERENCE),
        side_effects=[x for x in [text("side_effects")] if x],
        hypo_reactions=text("hypo_reactions", HYPO_REACTIONS), medicines=str(values.get("medicines", ""))[:512],
        insulin=text("insulin"), referral_reason=str(values.get("referral_reason", ""))[:128],
        referral_to=str(values.get("referral_to", ""))[:120])
