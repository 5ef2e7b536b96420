"""Pure helpers for the practical tools: waist check and a simple weekly exercise plan.

Why here: the numbers are clinical (WS/T 428-2013 waist cut-offs, CDG-2022 / CPAG-2021 activity
amounts) and must live once in :mod:`bot.clinical.thresholds`; the dialogs only ask and show.
The plan never decides whether exercise is safe now — that is :func:`bot.clinical.exercise_safety`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.clinical import thresholds as th

EXERCISE_KINDS = ("walk", "taichi", "cycle_swim", "strength")


def central_obesity(waist_cm: float, sex: str) -> bool:
    """Waist at or above the Chinese adult cut-off for this sex ("m" or "f").

    # clinical-reference: WAIST-CN (not in the reference file yet; WS/T 428-2013)
    """
    limit = th.WAIST_CENTRAL_OBESITY_MEN_CM if sex == "m" else th.WAIST_CENTRAL_OBESITY_WOMEN_CM
    return waist_cm >= limit


def waist_limit(sex: str) -> float:
    return th.WAIST_CENTRAL_OBESITY_MEN_CM if sex == "m" else th.WAIST_CENTRAL_OBESITY_WOMEN_CM


@dataclass(frozen=True)
class ExercisePlan:
    """A week that reaches the guideline amount with the person's chosen session length."""

    kind: str
    minutes: int  # per session
    sessions_per_week: int
    weekly_minutes: int
    heart_rate_low: int | None  # beats/min for moderate intensity, None when age is unknown
    heart_rate_high: int | None
    daily_steps: int
    resistance_days: tuple[int, int]
    older_adult: bool  # >= 65: add balance exercise, start gently
    short_sessions: bool  # fewer than 10 minutes: build up first

    @property
    def aerobic(self) -> bool:
        """Strength work counts towards the 2-3 days of resistance, not the 150 aerobic minutes."""
        return self.kind != "strength"

    @property
    def reaches_weekly_goal(self) -> bool:
        return self.weekly_minutes >= th.ACTIVITY_WEEKLY_MINUTES


def exercise_plan(kind: str, minutes: int, age: int | None) -> ExercisePlan:
    """Sessions needed for >= 150 min a week (CDG-2022 / CPAG-2021), capped at one a day; strength
    exercise: the upper end of 2-3 days a week.

    Intensity by age: 60-70 % of (220 - age) beats per minute (CHN-HTN-2018, verify).
    """
    if kind not in EXERCISE_KINDS:
        raise ValueError(f"unknown exercise kind {kind!r}")
    if minutes < 1:
        raise ValueError("minutes must be at least 1")
    if kind == "strength":
        sessions = th.RESISTANCE_DAYS_MAX
    else:
        sessions = min(7, max(1, math.ceil(th.ACTIVITY_WEEKLY_MINUTES / minutes)))
    low = high = None
    if age is not None and 0 < age < th.HEART_RATE_MAX_BASE:
        maximum = th.HEART_RATE_MAX_BASE - age
        low = round(maximum * th.MODERATE_HR_LOW_SHARE)
        high = round(maximum * th.MODERATE_HR_HIGH_SHARE)
    return ExercisePlan(
        kind=kind,
        minutes=minutes,
        sessions_per_week=sessions,
        weekly_minutes=sessions * minutes,
        heart_rate_low=low,
        heart_rate_high=high,
        daily_steps=th.ACTIVITY_DAILY_STEPS,
        resistance_days=(th.RESISTANCE_DAYS_MIN, th.RESISTANCE_DAYS_MAX),
        older_adult=age is not None and age >= th.ELDERLY_AGE,
        short_sessions=minutes < 10,
    )
