"""The patient's current care plan as read by the rest of the bot, and what it asks the tips to work on.

Why a module of its own with no service imports: follow-ups (the next due date), the tip service, the
daily tip and the weekly summary all read the current plan inside their own transaction; importing
PlanService for that would make import cycles (plans -> education -> summaries).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clinical.plan import CarePlan
from bot.clinical.plan_focus import Reported, goals_not_met
from storage.models import FollowUp
from storage.plan_models import CarePlanVersion

FOLLOWUPS_READ = 5  # recent follow-ups whose lifestyle answers say which plan goals are met
# A care plan goal (bot.clinical.plan_focus.GOALS) -> the tip topic that works on it (content/tips/*.yaml).
GOAL_TOPICS = {"salt": "salt", "cigarettes": "alcohol_smoking", "alcohol": "alcohol_smoking",
               "exercise": "exercise", "staple": "staple_foods", "weight": "weight"}


@dataclass(frozen=True)
class PlanFocus:
    topics: frozenset[str]  # tip topics of the plan's goals not known to be met
    smoker: bool  # the latest follow-up answers report smoking


async def current_plan(session: AsyncSession, patient_id: int) -> CarePlan | None:
    """The patient's latest plan version, read inside the caller's transaction."""
    data = await session.scalar(select(CarePlanVersion.data).where(CarePlanVersion.patient_id == patient_id)
                                .order_by(CarePlanVersion.version.desc()).limit(1))
    return CarePlan.from_dict(data) if data else None


async def reported_lifestyle(session: AsyncSession, patient_id: int) -> Reported:
    """Lifestyle answers of the recent follow-ups, the newest non-empty answer per field: a doctor's
    follow-up without lifestyle answers does not hide the chat answers given before it."""
    merged: dict[str, object] = {}
    rows = list(await session.scalars(select(FollowUp.details).where(FollowUp.patient_id == patient_id)
                                      .order_by(FollowUp.visit_date.desc(), FollowUp.id.desc())
                                      .limit(FOLLOWUPS_READ)))
    for details in reversed(rows):
        merged.update({k: v for k, v in (details or {}).items() if v not in ("", None)})
    return Reported.of(merged)


async def plan_focus(session: AsyncSession, patient_id: int, *, bmi: float | None = None,
                     kg: float | None = None) -> PlanFocus:
    """What the tips should work on for this patient (empty topics without a plan)."""
    reported = await reported_lifestyle(session, patient_id)
    plan = await current_plan(session, patient_id)
    if plan is None:
        return PlanFocus(frozenset(), reported.smokes)
    goals = goals_not_met(plan.lifestyle, reported, bmi=bmi, bmi_target=plan.targets.bmi, kg=kg,
                          kg_target=plan.targets.weight_kg)
    return PlanFocus(frozenset(GOAL_TOPICS[g] for g in goals), reported.smokes)
