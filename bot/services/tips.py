"""Personal tips: what fits this person now, shown without repeats, with their feedback.

Why a service: "fits now" needs the profile, the last readings and their 7-day averages against
the person's OWN targets, and their care plan (issue 10): the topics of the plan's lifestyle goals
that recent follow-up answers do not show as met come first after reading-based tips
(bot.services.plan_focus); the choice itself is a pure function in ``content.catalog``. Showing a
tip is one transaction: build the context, read the seen set, write the view.

Rotation: each view row carries a ``round``. The tips of the highest round are "seen"; when every
fitting tip has been seen the catalogue hands back the best one again and we open the next round,
so older rounds (and their feedback) stay on record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import clinical
from bot.services.clock import Clock
from bot.services.plan_focus import plan_focus
from bot.services.readings import age_of, targets_for
from content.catalog import Catalog, Tip, TipContext, default_catalog
from storage.models import CaregiverLink, PatientProfile, Reading, User
from storage.tips_models import TipView

AVERAGE_DAYS = 7
HYPO_DAYS = 14  # "recent hypo": a reading < 3.9 mmol/L within 14 days
MIN_READINGS_FOR_AVERAGE = 2  # one reading is not an average
CONDITIONS = frozenset({"hypertension", "diabetes"})


@dataclass(frozen=True)
class ShownTip:
    view_id: int
    tip: Tip
    restarted: bool  # every fitting tip had been seen: a new round began with this one


@dataclass(frozen=True)
class ExerciseCheck:
    """The person's own last readings as the exercise planner needs them."""

    safety: clinical.ExerciseSafety
    age: int | None
    last_bp: tuple[int, int] | None
    last_glucose_mmol: float | None
    last_reading_urgent: bool

    @property
    def ok(self) -> bool:
        return self.safety.ok and not self.last_reading_urgent


class TipService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, catalog: Catalog | None = None):
        self._sessions = sessions
        self._clock = clock
        self._catalog = catalog

    @property
    def catalog(self) -> Catalog:
        return self._catalog or default_catalog()

    async def context_for(self, user_id: int) -> TipContext:
        async with self._sessions() as session:
            user = await session.get(User, user_id)
            if user is None:
                return TipContext()
            return await self._context(session, user)

    async def next_for(self, user_id: int) -> ShownTip | None:
        """The next tip for this user in their language, recorded as seen; None if nothing fits."""
        async with self._sessions.begin() as session:
            user = await session.get(User, user_id)
            if user is None:
                return None
            ctx = await self._context(session, user)
            current = int(await session.scalar(
                select(func.max(TipView.round)).where(TipView.user_id == user_id)) or 1)
            seen = set(await session.scalars(
                select(TipView.tip_id).where(TipView.user_id == user_id, TipView.round == current)))
            tip = self.catalog.next_tip(ctx, seen, user.language)
            if tip is None:
                return None
            restarted = tip.id in seen
            view = TipView(user_id=user_id, tip_id=tip.id, round=current + 1 if restarted else current,
                           shown_at=self._clock.now())
            session.add(view)
            await session.flush()
            return ShownTip(view.id, tip, restarted)

    async def feedback(self, user_id: int, view_id: int, helpful: bool) -> bool:
        """Store 👍/👎 on a view; False for a view that is not this user's (forged or stale button)."""
        async with self._sessions.begin() as session:
            view = await session.get(TipView, view_id)
            if view is None or view.user_id != user_id:
                return False
            view.feedback = "helpful" if helpful else "not_helpful"
            return True

    async def views(self, user_id: int) -> list[TipView]:
        async with self._sessions() as session:
            rows = await session.scalars(select(TipView).where(TipView.user_id == user_id).order_by(TipView.id))
            return list(rows)

    async def exercise_check(self, user_id: int) -> ExerciseCheck:
        """Is moderate exercise safe to start, judged on the user's OWN last readings."""
        async with self._sessions() as session:
            profile = await session.get(PatientProfile, user_id)
            last_bp, last_glucose, last = await self._last_readings(session, user_id)
        pair = (last_bp.systolic, last_bp.diastolic) if last_bp and last_bp.systolic and last_bp.diastolic else None
        mmol = last_glucose.mmol if last_glucose else None
        return ExerciseCheck(
            safety=clinical.exercise_safety(pair, mmol),
            age=age_of(profile, self._clock.now()),
            last_bp=pair,
            last_glucose_mmol=mmol,
            last_reading_urgent=bool(last and last.urgent),
        )

    # ------------------------------------------------------------------------------------ helpers
    async def _context(self, session: AsyncSession, user: User) -> TipContext:
        """What the selector should know. A caregiver without conditions of their own reads tips
        about the person they look after (the catalogue's TipContext contract)."""
        now = self._clock.now()
        subject_id = user.id
        profile = await session.get(PatientProfile, user.id)
        is_caregiver = user.has_role("caregiver")
        if is_caregiver and (profile is None or not profile.condition_set & CONDITIONS):
            cared_for = await session.scalar(select(CaregiverLink.patient_id).where(
                CaregiverLink.caregiver_id == user.id).order_by(CaregiverLink.created_at).limit(1))
            if cared_for is not None:
                subject_id = cared_for
                profile = await session.get(PatientProfile, cared_for)
        age = age_of(profile, now)
        targets = targets_for(profile, age)
        window = list(await session.scalars(select(Reading).where(
            Reading.patient_id == subject_id, Reading.kind.in_(("bp", "glucose")),
            Reading.measured_at >= now - timedelta(days=HYPO_DAYS), Reading.measured_at <= now)))
        week = [r for r in window if r.measured_at >= now - timedelta(days=AVERAGE_DAYS)]
        bp = clinical.summarize_bp([r for r in week if r.kind == "bp"], targets)
        glu = clinical.summarize_glucose([r for r in week if r.kind == "glucose"], targets)
        hypo = clinical.summarize_glucose([r for r in window if r.kind == "glucose"], targets).hypo_count > 0
        last_bp, last_glucose, last = await self._last_readings(session, subject_id)
        kg = await session.scalar(select(Reading.kg).where(
            Reading.patient_id == subject_id, Reading.kind == "weight").order_by(
            Reading.measured_at.desc(), Reading.id.desc()).limit(1))
        height = profile.height_cm if profile else None
        bmi = clinical.bmi(kg, height) if kg and height else None
        focus = await plan_focus(session, subject_id, bmi=bmi, kg=kg)
        return TipContext(
            conditions=(profile.condition_set & CONDITIONS) if profile else frozenset(),
            age=age,
            bmi=bmi,
            bp_avg7_above_target=_bp_above(bp, targets),
            glucose_avg7_above_target=_glucose_above(glu, targets),
            recent_hypo=hypo,
            last_bp=(last_bp.systolic, last_bp.diastolic) if last_bp and last_bp.systolic and last_bp.diastolic
            else None,
            last_glucose_mmol=last_glucose.mmol if last_glucose else None,
            last_reading_urgent=bool(last and last.urgent),
            month=now.astimezone(ZoneInfo(user.timezone)).month,
            is_caregiver=is_caregiver,
            smoker=focus.smoker,
            plan_topics=focus.topics,
        )

    @staticmethod
    async def _last_readings(session: AsyncSession, patient_id: int
                             ) -> tuple[Reading | None, Reading | None, Reading | None]:
        """Last BP, last glucose, and whichever of the two is newest."""
        def last_of(kind: str):  # type: ignore[no-untyped-def]
            return select(Reading).where(Reading.patient_id == patient_id, Reading.kind == kind).order_by(
                Reading.measured_at.desc(), Reading.id.desc()).limit(1)

        last_bp = await session.scalar(last_of("bp"))
        last_glucose = await session.scalar(last_of("glucose"))
        both = [r for r in (last_bp, last_glucose) if r is not None]
        last = max(both, key=lambda r: (r.measured_at, r.id)) if both else None
        return last_bp, last_glucose, last


def _bp_above(summary: clinical.BpSummary, targets: clinical.Targets) -> bool:
    """7-day mean at or above the person's own target (BP-TARGET: in target means below it)."""
    if summary.count < MIN_READINGS_FOR_AVERAGE or summary.mean_systolic is None or summary.mean_diastolic is None:
        return False
    return summary.mean_systolic >= targets.bp_systolic or summary.mean_diastolic >= targets.bp_diastolic


def _glucose_above(summary: clinical.GlucoseSummary, targets: clinical.Targets) -> bool:
    """Fasting mean above the fasting target; without fasting readings, the mean above the after-meal
    target (GLU-TARGET)."""
    if summary.count < MIN_READINGS_FOR_AVERAGE:
        return False
    if summary.mean_fasting_mmol is not None:
        return summary.mean_fasting_mmol > targets.fasting_high
    return summary.mean_mmol is not None and summary.mean_mmol >= targets.postmeal_high
