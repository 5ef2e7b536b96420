"""Tip rotation, tip context and the knowledge score on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.services.container import Services
from bot.services.readings import NewReading
from bot.services.users import Onboarding
from storage.models import User
from storage.tips_models import QuizAttempt, TipView


async def _patient(services: Services, tg_id: int = 1001, conditions=("hypertension",)) -> User:  # type: ignore[no-untyped-def]
    user = await services.users.ensure(tg_id, tg_id, "Wang", "en")
    await services.users.complete_onboarding(user.id, Onboarding("en", "Asia/Shanghai", frozenset(conditions), 1950))
    return user


async def test_knowledge_score_uses_the_latest_attempt_per_quiz(services: Services, clock) -> None:  # type: ignore[no-untyped-def]
    a = await _patient(services)
    b = await _patient(services, 1002)
    assert await services.quizzes.knowledge_score(a.id) is None
    await services.quizzes.record(a.id, "quiz-salt", 1, 4)
    clock.advance(days=1)
    await services.quizzes.record(a.id, "quiz-salt", 4, 4)  # retaken: only this one counts
    await services.quizzes.record(a.id, "quiz-oil", 2, 5)
    await services.quizzes.record(b.id, "quiz-salt", 3, 4)
    assert await services.quizzes.knowledge_score(a.id) == pytest.approx(6 / 9)
    assert await services.quizzes.knowledge_scores([a.id, b.id, 999]) == {a.id: pytest.approx(6 / 9),
                                                                           b.id: pytest.approx(0.75)}
    latest = await services.quizzes.latest_by_quiz(a.id)
    assert {k: (v.correct, v.total, v.passed) for k, v in latest.items()} == {"quiz-salt": (4, 4, True),
                                                                             "quiz-oil": (2, 5, False)}
    with pytest.raises(ValueError):
        await services.quizzes.record(a.id, "quiz-salt", 5, 4)


async def test_rotation_has_no_repeats_until_the_pool_is_used_up(services: Services) -> None:
    user = await _patient(services)
    ctx = await services.tips.context_for(user.id)
    pool = services.tips.catalog.tips_for(ctx, (), "en")
    shown = [await services.tips.next_for(user.id) for _ in range(len(pool) + 2)]
    ids = [s.tip.id for s in shown if s is not None]
    assert len(set(ids[: len(pool)])) == len(pool) and not any(s.restarted for s in shown[: len(pool)])
    assert shown[len(pool)].restarted and ids[len(pool)] == ids[0]
    assert ids[len(pool) + 1] == ids[1]
    async with services.sessions() as session:
        rounds = list(await session.scalars(select(TipView.round).order_by(TipView.id)))
    assert rounds == [1] * len(pool) + [2, 2]


async def test_context_reflects_readings_against_own_targets(services: Services, clock) -> None:  # type: ignore[no-untyped-def]
    user = await _patient(services, conditions=("hypertension", "diabetes"))
    ctx = await services.tips.context_for(user.id)
    assert ctx.conditions == {"hypertension", "diabetes"} and ctx.age == clock.now().year - 1950
    assert not ctx.bp_avg7_above_target and ctx.last_bp is None and ctx.bmi is None
    clock.advance(days=-10)
    await services.readings.record(user.id, NewReading("glucose", mmol=3.5, context="fasting"))
    clock.advance(days=10)
    for sys_, dia in ((156, 92), (152, 91)):  # age >= 65: target 150/90, so the average is above it
        await services.readings.record(user.id, NewReading("bp", systolic=sys_, diastolic=dia))
    await services.users.update_profile(user.id, height_cm=160.0)
    await services.readings.record(user.id, NewReading("weight", kg=64.0))
    ctx = await services.tips.context_for(user.id)
    assert ctx.bp_avg7_above_target and ctx.recent_hypo and ctx.last_bp == (152, 91)
    assert ctx.bmi == 25.0 and not ctx.last_reading_urgent and ctx.month is not None
    await services.users.update_profile(user.id, target_sys=160, target_dia=100)  # the doctor's own target
    assert not (await services.tips.context_for(user.id)).bp_avg7_above_target
    clock.advance(days=15)
    ctx = await services.tips.context_for(user.id)
    assert not ctx.recent_hypo and not ctx.bp_avg7_above_target and ctx.last_bp == (152, 91)


async def test_urgent_last_reading_blocks_exercise(services: Services) -> None:
    user = await _patient(services)
    assert (await services.tips.exercise_check(user.id)).ok
    await services.readings.record(user.id, NewReading("bp", systolic=186, diastolic=112))
    check = await services.tips.exercise_check(user.id)
    assert not check.ok and check.last_bp == (186, 112) and "bp_too_high" in check.safety.reasons
    for _ in range(30):
        shown = await services.tips.next_for(user.id)
        assert shown is not None and not shown.tip.is_exercise


async def test_feedback_only_on_own_views_and_erase_removes_everything(services: Services) -> None:
    a = await _patient(services)
    b = await _patient(services, 1002)
    view = await services.tips.next_for(a.id)
    assert view is not None
    assert not await services.tips.feedback(b.id, view.view_id, True)
    assert await services.tips.feedback(a.id, view.view_id, False)
    assert [v.feedback for v in await services.tips.views(a.id)] == ["not_helpful"]
    await services.quizzes.record(a.id, "quiz-salt", 3, 4)
    await services.users.erase(a.id)
    async with services.sessions() as session:
        assert await session.scalar(select(func.count(TipView.id))) == 0
        assert await session.scalar(select(func.count(QuizAttempt.id))) == 0


async def test_caregiver_reads_tips_about_the_person_cared_for(services: Services) -> None:
    patient = await _patient(services, conditions=("diabetes",))
    payload = await services.invites.create("caregiver", patient_id=patient.id, created_by=patient.id, days=7)
    daughter = await services.users.ensure(3001, 3001, "Daughter", "en")
    assert (await services.tips.context_for(daughter.id)).conditions == frozenset()
    assert (await services.invites.redeem("caregiver", payload.split("-", 1)[1], daughter.id)).ok
    ctx = await services.tips.context_for(daughter.id)
    assert ctx.is_caregiver and ctx.conditions == {"diabetes"}
