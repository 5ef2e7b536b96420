"""Sensible starting plans per condition and risk level, from the clinical reference.

Why a function and not a fixture: a doctor starts every new plan from here and then edits; the
numbers must be the reference's (targets from :func:`default_targets`, follow-up intervals and
activity minutes from :mod:`thresholds`), so they change in one place when the reference does.
Numbers that are not yet in thresholds.py are defined here once, each naming its row.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.clinical import thresholds as th
from bot.clinical.assessment import default_targets
from bot.clinical.plan import CarePlan, Lifestyle, PlanTargets, Rhythm

# clinical-reference: Exercise and diet (CDG-2022)  salt < 5 g/day
SALT_G_PER_DAY = 5.0
# Design choice (NBPHS-3 follow-up form asks cigarettes/day and alcohol liang/day "now and target";
# the guideline advice is to stop smoking and avoid alcohol): target 0 for both.
CIGARETTES_TARGET = 0
ALCOHOL_LIANG_TARGET = 0.0
# Design choice, NOT in the reference yet (CDG-2022 text: cereals and tubers 200-300 g a day, verify):
# staple food target for type 2 diabetes.
STAPLE_G_PER_DAY_DIABETES = 250
# Design choice (issue 10: "BP twice a day for 7 days after a medicine change, then 3 times a week";
# CHN-HTN-2018 home monitoring: morning and evening for 7 days when treatment changes, verify).
INTENSIVE_DAYS = 7
BP_INTENSIVE_TIMES = ("07:00", "19:00")
BP_MAINTENANCE_TIMES = ("08:00",)
BP_MAINTENANCE_WEEKDAYS = (0, 2, 4)  # Mon, Wed, Fri
# Design choice (CDS-2020 text: patients on oral drugs check fasting glucose a few times a week, verify).
GLUCOSE_TIMES = ("07:00",)
GLUCOSE_WEEKDAYS = (1, 4)  # Tue, Fri: fasting
GLUCOSE_INTENSIVE_TIMES = ("07:00",)
# Lesson sets (content catalog ids) that fit each condition.
LESSONS = {"hypertension": ("home-bp", "low-salt", "medicines"),
           "diabetes": ("diabetes-diet", "hypo-safety", "foot-care")}


def default_plan(conditions: Iterable[str], risk: str = "standard", age: int | None = None) -> CarePlan:
    """A plan to start from for a patient with these conditions ("hypertension", "diabetes")."""
    conds = {c.lower() for c in conditions}
    targets = default_targets(age, conds)  # clinical-reference: BP-TARGET / GLU-TARGET
    diabetes = "diabetes" in conds
    hypertension = "hypertension" in conds or not diabetes
    rhythm: list[Rhythm] = []
    if hypertension:
        rhythm.append(Rhythm("bp", BP_MAINTENANCE_TIMES, BP_MAINTENANCE_WEEKDAYS, BP_INTENSIVE_TIMES, INTENSIVE_DAYS))
    if diabetes:
        rhythm.append(Rhythm("glucose", GLUCOSE_TIMES, GLUCOSE_WEEKDAYS, GLUCOSE_INTENSIVE_TIMES, INTENSIVE_DAYS))
    lessons: list[str] = []
    for cond in ("hypertension", "diabetes"):
        if cond in conds or (cond == "hypertension" and hypertension):
            lessons.extend(x for x in LESSONS[cond] if x not in lessons)
    return CarePlan(
        targets=PlanTargets(
            bp_systolic=targets.bp_systolic, bp_diastolic=targets.bp_diastolic,
            fasting_low=targets.fasting_low if diabetes else None,
            fasting_high=targets.fasting_high if diabetes else None,
            postmeal_high=targets.postmeal_high if diabetes else None,
            # clinical-reference: BMI-CN (WS/T 428-2013)  aim below the overweight edge
            bmi=th.BMI_OVERWEIGHT_FROM,
        ),
        rhythm=tuple(rhythm),
        lifestyle=Lifestyle(
            salt_g_per_day=SALT_G_PER_DAY,
            cigarettes_per_day=CIGARETTES_TARGET,
            alcohol_liang_per_day=ALCOHOL_LIANG_TARGET,
            exercise_min_per_week=th.ACTIVITY_WEEKLY_MINUTES,  # clinical-reference: Exercise and diet
            staple_g_per_day=STAPLE_G_PER_DAY_DIABETES if diabetes else None,
        ),
        # clinical-reference: Follow-up rules (quarterly standard, monthly high risk)
        followup_days=th.FOLLOWUP_HIGH_RISK_DAYS if risk == "high" else th.FOLLOWUP_STANDARD_DAYS,
        lessons=tuple(lessons),
    )
