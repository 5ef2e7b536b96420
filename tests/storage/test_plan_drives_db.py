"""The care plan drives the follow-up date and the tips (issue 10), on SQLite and PostgreSQL.

- The next follow-up date follows the plan's interval, never later than the reference's risk rule
  (quarterly / monthly) and never past the 2-week recheck after an uncontrolled follow-up.
- Tips: the topics of the plan's lifestyle goals that the follow-up answers do not show as met come
  first after the reading-based tips; a reported smoker gets the quitting tips.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.clinical import next_followup_due
from bot.clinical.plan import Lifestyle
from bot.clinical.plan_focus import Reported, goals_not_met, value_range
from bot.config import Settings
from bot.services.clock import ManualClock
from bot.services.container import Services
from bot.services.followups import FollowUpForm
from bot.services.readings import NewReading
from bot.services.users import Onboarding
from storage.migrate import upgrade
from storage.models import Outbox, Team, TeamMember, User

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # Monday 08:00 in Shanghai
TODAY = date(2026, 3, 2)


# --- pure rules --------------------------------------------------------------------------------------
def test_plan_interval_shortens_but_never_lengthens_the_risk_interval() -> None:
    assert next_followup_due(TODAY, "standard", "controlled", plan_days=30) == TODAY + timedelta(days=30)
    assert next_followup_due(TODAY, "standard", "controlled", plan_days=180) == TODAY + timedelta(days=90)
    assert next_followup_due(TODAY, "high", "controlled", plan_days=60) == TODAY + timedelta(days=30)
    assert next_followup_due(TODAY, "standard", "unsatisfactory", plan_days=30) == TODAY + timedelta(days=14)
    assert next_followup_due(TODAY, "standard", "controlled", plan_days=None) == TODAY + timedelta(days=90)


def test_answer_ranges_and_goals_not_met() -> None:
    assert value_range("1-5") == (1, 5) and value_range("11+") == (11, float("inf"))
    assert value_range("<1") == (0, 1) and value_range("6") == (6, 6) and value_range("") is None
    goals = Lifestyle(salt_g_per_day=5, cigarettes_per_day=0, alcohol_liang_per_day=0, exercise_min_per_week=150)
    assert goals_not_met(goals, Reported()) == {"salt", "cigarettes", "alcohol", "exercise"}  # nothing known
    met = Reported(cigarettes_per_day="0", alcohol_liang_per_day="0", exercise_per_week="5+",
                   exercise_minutes="30-60", salt="light")
    assert goals_not_met(goals, met) == frozenset()
    assert goals_not_met(goals, replace(met, exercise_per_week="3-4")) == {"exercise"}  # 3 x 30 < 150
    assert goals_not_met(goals, replace(met, exercise_per_week="0", exercise_minutes="")) == {"exercise"}
    assert goals_not_met(goals, replace(met, cigarettes_per_day="1-5", salt="heavy")) == {"cigarettes", "salt"}
    assert goals_not_met(goals, replace(met, alcohol_liang_per_day="<1")) == {"alcohol"}
    assert goals_not_met(Lifestyle(alcohol_liang_per_day=1), Reported(alcohol_liang_per_day="<1")) == frozenset()
    assert goals_not_met(Lifestyle(), met, bmi=26.0, bmi_target=24.0) == {"weight"}
    assert goals_not_met(Lifestyle(), met, bmi=22.0, bmi_target=24.0) == frozenset()
    assert Reported(cigarettes_per_day="6-10").smokes and not Reported(cigarettes_per_day="0").smokes


# --- on the databases ----------------------------------------------------------------------------------
@pytest.fixture
async def services(db_url: str):  # type: ignore[no-untyped-def]
    s = Services.build(Settings(database_url=db_url), ManualClock(START))
    await upgrade(s.engine)
    yield s
    await s.engine.dispose()


async def _setup(services: Services, risk: str = "standard") -> tuple[User, User]:
    doctor = await services.users.ensure(2001, 2001, "Dr Li", "en")
    async with services.sessions.begin() as session:
        team = Team(name="Qingshan")
        session.add(team)
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=doctor.id, oncall_order=0))
        team_id = team.id
    await services.users.add_role(doctor.id, "doctor")
    patient = await services.users.ensure(1001, 1001, "Wang", "en")
    await services.users.complete_onboarding(patient.id, Onboarding("en", "Asia/Shanghai",
                                                                    frozenset({"hypertension"}), 1970))
    await services.users.update_profile(patient.id, team_id=team_id, doctor_id=doctor.id, risk=risk)
    return doctor, patient


async def _save_plan(services: Services, doctor: User, patient: User, **changes: object) -> None:
    draft = await services.plans.draft(doctor.id, patient.id)
    assert draft is not None
    assert await services.plans.save(doctor.id, patient.id, replace(draft[1], **changes)) is not None  # type: ignore[arg-type]


async def test_recorded_followup_next_date_follows_the_plan_interval(services: Services) -> None:
    doctor, patient = await _setup(services)
    # No plan: the reference's quarterly rule.
    first = await services.followups.record(doctor.id, patient.id, way="clinic", outcome="controlled")
    assert first is not None and first.next_due == TODAY + timedelta(days=90)
    # A monthly plan: the next date follows it, on the profile too.
    await _save_plan(services, doctor, patient, followup_days=30)
    profile = await services.users.profile(patient.id)
    assert profile is not None and profile.next_followup_due == TODAY + timedelta(days=30)
    second = await services.followups.record(doctor.id, patient.id, way="phone", outcome="controlled",
                                             visit_date=TODAY + timedelta(days=3))
    assert second is not None and second.next_due == TODAY + timedelta(days=33)
    profile = await services.users.profile(patient.id)
    assert profile is not None and profile.next_followup_due == TODAY + timedelta(days=33)
    # Uncontrolled: the 2-week recheck still wins over the plan's 30 days.
    third = await services.followups.record(doctor.id, patient.id, way="clinic", outcome="unsatisfactory",
                                            visit_date=TODAY + timedelta(days=5))
    assert third is not None and third.next_due == TODAY + timedelta(days=19)
    # A plan of 180 days cannot push a standard-risk patient past the quarterly rule (the upper bound).
    await _save_plan(services, doctor, patient, followup_days=180)
    profile = await services.users.profile(patient.id)
    assert profile is not None and profile.next_followup_due == TODAY + timedelta(days=19)  # recheck kept
    fourth = await services.followups.record(doctor.id, patient.id, way="clinic", outcome="controlled",
                                             visit_date=TODAY + timedelta(days=20))
    assert fourth is not None and fourth.next_due == TODAY + timedelta(days=110)


async def test_high_risk_plan_cannot_go_past_monthly(services: Services) -> None:
    doctor, patient = await _setup(services, risk="high")
    await _save_plan(services, doctor, patient, followup_days=60)
    profile = await services.users.profile(patient.id)
    assert profile is not None and profile.next_followup_due == TODAY + timedelta(days=30)
    result = await services.followups.record(doctor.id, patient.id, way="clinic", outcome="controlled")
    assert result is not None and result.next_due == TODAY + timedelta(days=30)


async def test_tips_prefer_the_plans_goals_not_met(services: Services) -> None:
    doctor, patient = await _setup(services)
    catalog = services.tips.catalog
    ctx = await services.tips.context_for(patient.id)
    assert ctx.plan_topics == frozenset() and not ctx.smoker  # no plan: the order is the tiers' alone
    await _save_plan(services, doctor, patient)  # the reference defaults: salt, smoking, alcohol, exercise
    ctx = await services.tips.context_for(patient.id)
    assert ctx.plan_topics == {"salt", "alcohol_smoking", "exercise"}
    ranked = catalog.tips_for(ctx, (), "en")
    first_rest = next(i for i, tip in enumerate(ranked) if tip.topic not in ctx.plan_topics)
    assert first_rest > 10 and all(tip.topic not in ctx.plan_topics for tip in ranked[first_rest:])
    shown = await services.tips.next_for(patient.id)
    assert shown is not None and shown.tip.topic in {"salt", "alcohol_smoking", "exercise"}, shown.tip.id

    # The follow-up answers: light salt, enough exercise, no alcohol, but 6-10 cigarettes a day.
    form = FollowUpForm(cigarettes_per_day="6-10", alcohol_liang_per_day="0", exercise_per_week="5+",
                        exercise_minutes="30-60", salt="light")
    assert await services.followups.record(doctor.id, patient.id, way="clinic", outcome="controlled", form=form)
    ctx = await services.tips.context_for(patient.id)
    assert ctx.plan_topics == {"alcohol_smoking"} and ctx.smoker
    shown = await services.tips.next_for(patient.id)
    assert shown is not None and shown.tip.when.get("smoker") is True, shown.tip.id  # quitting tips first
    # A later doctor's follow-up without lifestyle answers does not hide the patient's answers.
    assert await services.followups.record(doctor.id, patient.id, way="phone", outcome="controlled",
                                           visit_date=TODAY + timedelta(days=1))
    assert (await services.tips.context_for(patient.id)).plan_topics == {"alcohol_smoking"}

    # Readings above target still come first: they answer what is happening now.
    for sys_, dia in ((162, 102), (160, 100)):
        await services.readings.record(patient.id, NewReading("bp", systolic=sys_, diastolic=dia))
    ctx = await services.tips.context_for(patient.id)
    assert ctx.bp_avg7_above_target
    assert catalog.tips_for(ctx, (), "en")[0].when.get("bp_avg7_above_target") is True


async def test_the_daily_tip_uses_the_plan_too(services: Services) -> None:
    """The tip the bot sends on its own (reminders) reads the same plan focus as /tips."""
    doctor, patient = await _setup(services)
    await _save_plan(services, doctor, patient)
    form = FollowUpForm(cigarettes_per_day="11+", alcohol_liang_per_day="0", exercise_per_week="5+",
                        exercise_minutes="60+", salt="light")
    assert await services.followups.record(doctor.id, patient.id, way="clinic", outcome="controlled", form=form)
    due = await services.reminders.set_tip(patient.id, True)
    assert due is not None
    await services.reminders.tick(due + timedelta(seconds=1))
    async with services.sessions() as session:
        texts = list(await session.scalars(select(Outbox.payload["text"].as_string()).where(
            Outbox.recipient_id == patient.id, Outbox.kind == "reminder")))
    text = next(x for x in texts if x.startswith("💡"))  # the plan's lessons are due at the same time
    tip = next(t for t in services.tips.catalog.tips.values() if "en" in t.text and t.text_for("en") in text)
    assert tip.topic == "alcohol_smoking" and tip.when.get("smoker") is True, tip.id
