"""Pure rules behind the tools: waist cut-offs (WAIST-CN) and the weekly exercise plan."""

from __future__ import annotations

import pytest

from bot.clinical.activity import central_obesity, exercise_plan
from content.catalog import TipContext, _exercise_allowed


@pytest.mark.parametrize(("waist", "sex", "central"), [
    (89.9, "m", False), (90, "m", True), (84.9, "f", False), (85, "f", True), (88, "f", True), (88, "m", False),
])
def test_waist_cut_offs(waist: float, sex: str, central: bool) -> None:
    assert central_obesity(waist, sex) is central


def test_plan_reaches_150_minutes_and_intensity_by_age() -> None:
    plan = exercise_plan("walk", 30, 70)
    assert (plan.sessions_per_week, plan.weekly_minutes, plan.reaches_weekly_goal) == (5, 150, True)
    assert (plan.heart_rate_low, plan.heart_rate_high) == (90, 105) and plan.older_adult
    assert exercise_plan("walk", 40, 50).sessions_per_week == 4
    short = exercise_plan("taichi", 5, None)
    assert short.sessions_per_week == 7 and not short.reaches_weekly_goal and short.short_sessions
    assert short.heart_rate_low is None
    strength = exercise_plan("strength", 20, 60)
    assert strength.sessions_per_week == 3 and not strength.aerobic
    with pytest.raises(ValueError):
        exercise_plan("bungee", 30, 60)


@pytest.mark.parametrize(("ctx", "allowed"), [
    (TipContext(last_bp=(186, 112)), False),
    (TipContext(last_glucose_mmol=3.5), False),  # exercise_safety: treat the low first
    (TipContext(last_bp=(130, 80), last_reading_urgent=True), False),
    (TipContext(last_bp=(130, 80), last_glucose_mmol=5.0), True),
])
def test_tip_exercise_gate_follows_clinical_exercise_safety(ctx: TipContext, allowed: bool) -> None:
    assert _exercise_allowed(ctx) is allowed
