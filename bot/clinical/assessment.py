"""Assess one reading against the clinical reference: category, urgency, advice, alert rule.

Why it is separate from parsing: readings also arrive from buttons, caregivers and imports; every
path must be judged by exactly the same rules.  Why per-patient :class:`Targets`: the reference lets
the doctor set a patient's BP and glucose targets (e.g. 150/90 for the elderly, HbA1c 8 % for the
frail).  Targets change whether a reading is "in target" — never whether it is *urgent*: urgency
thresholds (BP-URGENT, GLU-URGENT) are safety rules and stay fixed.

A single home reading is not a diagnosis: categories feed wording like "please contact your doctor",
never "you have grade 2 hypertension".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.clinical import thresholds as th
from bot.clinical.danger import BP_DANGER_SIGNS, BP_LOW_SYMPTOMS, GLU_DANGER_SIGNS, PREGNANCY

# --- categories ----------------------------------------------------------------------------------
# clinical-reference: BP-GRADE (+ BP-LOW for "low")
BP_CATEGORIES = ("low", "normal", "high_normal", "grade1", "grade2", "grade3")
# clinical-reference: GLU-TARGET / GLU-HYPO / GLU-URGENT.  "below_target" = fasting/before-meal value
# between the hypo edge and the target's lower bound (3.9 .. < 4.4 by default).
GLUCOSE_CATEGORIES = ("hypo_level2", "hypo_level1", "below_target", "in_target", "above_target", "very_high")
# clinical-reference: BMI-CN (WS/T 428-2013, not in the reference file yet)
WEIGHT_CATEGORIES = ("underweight", "normal", "overweight", "obese", "unknown")

# --- advice codes (the UI turns them into words) ---------------------------------------------------
ADVICE_KEEP_GOING = "keep_going"
ADVICE_REMEASURE = "remeasure_after_rest"  # BP-URGENT: rest 5 min and measure again
ADVICE_RULE_15_15 = "rule_15_15"  # GLU-HYPO: 15 g fast sugar, re-check in 15 min
ADVICE_CALL_120 = "call_120_if_danger"
ADVICE_CONTACT_DOCTOR = "contact_doctor"
ADVICE_GO_TO_HOSPITAL = "go_to_hospital"
ADVICE_RECHECK_LATER = "recheck_later"
ADVICE_SIT_OR_LIE_DOWN = "sit_or_lie_down"  # BP-LOW with symptoms
ADVICE_CODES = (
    ADVICE_KEEP_GOING,
    ADVICE_REMEASURE,
    ADVICE_RULE_15_15,
    ADVICE_CALL_120,
    ADVICE_CONTACT_DOCTOR,
    ADVICE_GO_TO_HOSPITAL,
    ADVICE_RECHECK_LATER,
    ADVICE_SIT_OR_LIE_DOWN,
)

# --- alert rules (row ids the outbox raises) -------------------------------------------------------
ALERT_RULES = ("BP-URGENT", "BP-DANGER", "BP-LOW", "GLU-URGENT", "GLU-HYPO", "GLU-DANGER")

_FASTING_CONTEXTS = frozenset({"fasting", "before_meal"})


@dataclass(frozen=True, slots=True)
class Targets:
    """Per-patient targets; a doctor may edit them.  Defaults: :func:`default_targets`.

    BP is in target when SBP < ``bp_systolic`` and DBP < ``bp_diastolic`` (the reference writes
    "< 140/90").  Fasting / before-meal glucose is in target within ``fasting_low``..``fasting_high``
    inclusive ("4.4-7.0"); after-meal / random / bedtime glucose when < ``postmeal_high``.
    """

    bp_systolic: int = th.BP_TARGET_SBP  # clinical-reference: BP-TARGET
    bp_diastolic: int = th.BP_TARGET_DBP  # clinical-reference: BP-TARGET
    fasting_low: float = th.GLU_FASTING_LOW  # clinical-reference: GLU-TARGET
    fasting_high: float = th.GLU_FASTING_HIGH  # clinical-reference: GLU-TARGET
    postmeal_high: float = th.GLU_POSTMEAL_HIGH  # clinical-reference: GLU-TARGET
    hba1c: float = th.HBA1C_TARGET  # clinical-reference: GLU-TARGET


def default_targets(age: int | None = None, conditions: Iterable[str] = ()) -> Targets:
    """Reference defaults for a patient.

    - age >= 65: BP < 150/90 (BP-TARGET says "acceptable"; the doctor may tighten it to 140/90).
    - "frail" in ``conditions``: HbA1c 8.0 % (GLU-TARGET "relaxed 7-8 % for elderly/frail, set by
      doctor" — the frail flag itself is the doctor's call).
    Other conditions ("hypertension", "diabetes") do not change the defaults in the reference.
    """
    conds = {c.lower() for c in conditions}
    elderly = age is not None and age >= th.ELDERLY_AGE
    return Targets(
        bp_systolic=th.BP_TARGET_SBP_ELDERLY if elderly else th.BP_TARGET_SBP,
        bp_diastolic=th.BP_TARGET_DBP_ELDERLY if elderly else th.BP_TARGET_DBP,
        hba1c=th.HBA1C_TARGET_RELAXED if "frail" in conds else th.HBA1C_TARGET,
    )


@dataclass(frozen=True, slots=True)
class Assessment:
    """What one reading means.

    ``rules``: the reference rows whose condition held (for the audit trail).  ``alert_rule``: the
    rule the outbox should raise to the care team, or None.  ``advice``: stable codes, most important
    first.  ``isolated_systolic`` only for BP.  ``bmi`` only for weight with a known height.
    """

    kind: str
    category: str
    urgent: bool
    in_target: bool
    rules: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    alert_rule: str | None = None
    isolated_systolic: bool = False
    bmi: float | None = None


# ----------------------------------------------------------------------------------------------
# Blood pressure
# ----------------------------------------------------------------------------------------------
_BP_GRADE_NAMES = ("normal", "high_normal", "grade1", "grade2", "grade3")


def _grade_index(value: int, edges: tuple[int, ...]) -> int:
    index = 0
    for edge in edges:
        if value >= edge:
            index += 1
    return index


def bp_category(systolic: int, diastolic: int) -> str:
    """BP-GRADE category; the higher of the SBP and DBP grades wins; "low" when SBP < 90."""
    if systolic < th.BP_LOW_SBP:  # clinical-reference: BP-LOW
        return "low"
    # clinical-reference: BP-GRADE
    index = max(_grade_index(systolic, th.SBP_GRADE_EDGES), _grade_index(diastolic, th.DBP_GRADE_EDGES))
    return _BP_GRADE_NAMES[index]


def assess_bp(
    systolic: int,
    diastolic: int,
    targets: Targets | None = None,
    symptoms: frozenset[str] = frozenset(),
) -> Assessment:
    t = targets or Targets()
    category = bp_category(systolic, diastolic)
    rules: list[str] = ["BP-GRADE"]
    # clinical-reference: BP-GRADE (isolated systolic)
    isolated = systolic >= th.ISOLATED_SYSTOLIC_SBP and diastolic < th.ISOLATED_SYSTOLIC_DBP
    # clinical-reference: BP-TARGET
    in_target = systolic < t.bp_systolic and diastolic < t.bp_diastolic
    if not in_target:
        rules.append("BP-TARGET")
    # clinical-reference: BP-URGENT
    crisis = systolic >= th.BP_URGENT_SBP or diastolic >= th.BP_URGENT_DBP
    # clinical-reference: BP-DANGER  (pregnancy / breast-feeding counts only "with raised BP")
    raised = systolic >= th.BP_TARGET_SBP or diastolic >= th.BP_TARGET_DBP
    danger = symptoms & BP_DANGER_SIGNS
    if not raised:
        danger = danger - {PREGNANCY}
    # clinical-reference: BP-LOW
    low_alert = category == "low" and bool(symptoms & BP_LOW_SYMPTOMS)

    alert: str | None = None
    if crisis:
        rules.append("BP-URGENT")
        alert = "BP-URGENT"
    if danger:
        rules.append("BP-DANGER")
        alert = "BP-DANGER"  # danger signs: seek care now, whatever the numbers
    if low_alert:
        rules.append("BP-LOW")
        alert = alert or "BP-LOW"
    urgent = crisis or bool(danger) or low_alert

    if danger:
        advice: tuple[str, ...] = (ADVICE_GO_TO_HOSPITAL, ADVICE_CALL_120, ADVICE_CONTACT_DOCTOR)
    elif crisis:
        advice = (ADVICE_REMEASURE, ADVICE_CALL_120, ADVICE_CONTACT_DOCTOR)
    elif low_alert:
        advice = (ADVICE_SIT_OR_LIE_DOWN, ADVICE_CONTACT_DOCTOR, ADVICE_CALL_120)
    elif category == "low":
        advice = (ADVICE_RECHECK_LATER,)
    elif category == "grade2":
        advice = (ADVICE_REMEASURE, ADVICE_CONTACT_DOCTOR)
    elif not in_target:
        advice = (ADVICE_REMEASURE, ADVICE_RECHECK_LATER)
    else:
        advice = (ADVICE_KEEP_GOING,)
    return Assessment(
        kind="bp",
        category=category,
        urgent=urgent,
        in_target=in_target,
        rules=tuple(rules),
        advice=advice,
        alert_rule=alert,
        isolated_systolic=isolated,
    )


# ----------------------------------------------------------------------------------------------
# Glucose
# ----------------------------------------------------------------------------------------------
def glucose_category(mmol: float, context: str | None, targets: Targets | None = None) -> str:
    """GLU-HYPO / GLU-TARGET / GLU-URGENT category; context None is treated as random."""
    t = targets or Targets()
    if mmol < th.GLU_HYPO_L2:  # clinical-reference: GLU-HYPO level 2
        return "hypo_level2"
    if mmol < th.GLU_HYPO_L1:  # clinical-reference: GLU-HYPO level 1
        return "hypo_level1"
    if mmol >= th.GLU_URGENT_HIGH:  # clinical-reference: GLU-URGENT
        return "very_high"
    # clinical-reference: GLU-TARGET
    if context in _FASTING_CONTEXTS:
        if mmol < t.fasting_low:
            return "below_target"
        return "in_target" if mmol <= t.fasting_high else "above_target"
    return "in_target" if mmol < t.postmeal_high else "above_target"


def assess_glucose(
    mmol: float,
    context: str | None = None,
    targets: Targets | None = None,
    symptoms: frozenset[str] = frozenset(),
    meter: str | None = None,
) -> Assessment:
    rules: list[str] = []
    if meter == "HI":  # clinical-reference: GLU-RANGE (meter above its range, > 33.3)
        category = "very_high"
        rules.append("GLU-RANGE")
    elif meter == "LO":  # clinical-reference: GLU-RANGE (meter below its range, < 1.1)
        category = "hypo_level2"
        rules.append("GLU-RANGE")
    else:
        category = glucose_category(mmol, context, targets)
    in_target = category == "in_target"
    if category in ("below_target", "above_target"):
        rules.append("GLU-TARGET")
    hypo = category in ("hypo_level1", "hypo_level2")
    if hypo:
        rules.append("GLU-HYPO")
    # clinical-reference: GLU-URGENT  ">= 16.7 or <= 3.9" — written "<= 3.9" while GLU-HYPO level 1 is
    # "< 3.9"; implemented as written, so exactly 3.9 is urgent (GLU-URGENT) but not hypoglycaemia.
    crisis = meter is not None or mmol >= th.GLU_URGENT_HIGH or mmol <= th.GLU_URGENT_LOW
    if crisis:
        rules.append("GLU-URGENT")
    danger = symptoms & GLU_DANGER_SIGNS  # clinical-reference: GLU-DANGER
    if danger:
        rules.append("GLU-DANGER")
    urgent = crisis or bool(danger)

    alert: str | None = None
    if danger:
        alert = "GLU-DANGER"
    elif hypo:
        alert = "GLU-HYPO"
    elif crisis:
        alert = "GLU-URGENT"

    low_side = hypo or (crisis and category != "very_high")  # includes exactly 3.9
    advice: list[str] = []
    if danger:
        advice += [ADVICE_GO_TO_HOSPITAL, ADVICE_CALL_120]
    if low_side:
        advice.append(ADVICE_RULE_15_15)
        if category == "hypo_level2":
            advice.append(ADVICE_CALL_120)
        advice.append(ADVICE_CONTACT_DOCTOR)
    elif category == "very_high":
        advice += [ADVICE_CONTACT_DOCTOR, ADVICE_CALL_120, ADVICE_RECHECK_LATER]
    elif category in ("above_target", "below_target"):
        advice.append(ADVICE_RECHECK_LATER)
    elif not danger:
        advice.append(ADVICE_KEEP_GOING)
    return Assessment(
        kind="glucose",
        category=category,
        urgent=urgent,
        in_target=in_target,
        rules=tuple(rules),
        advice=tuple(dict.fromkeys(advice)),
        alert_rule=alert,
    )


# ----------------------------------------------------------------------------------------------
# Weight / BMI
# ----------------------------------------------------------------------------------------------
def bmi(kg: float, height_cm: float) -> float:
    """Body-mass index kg/m², rounded to 1 decimal."""
    if height_cm <= 0:
        raise ValueError("height_cm must be positive")
    metres = height_cm / 100.0
    return round(kg / (metres * metres), 1)


def bmi_category(value: float) -> str:
    """Chinese adult cut-offs (WS/T 428-2013).  # clinical-reference: BMI-CN (not in the file yet)"""
    if value < th.BMI_UNDERWEIGHT_BELOW:
        return "underweight"
    if value < th.BMI_OVERWEIGHT_FROM:
        return "normal"
    if value < th.BMI_OBESE_FROM:
        return "overweight"
    return "obese"


def assess_weight(kg: float, height_cm: float | None = None) -> Assessment:
    if not height_cm:
        return Assessment(kind="weight", category="unknown", urgent=False, in_target=False)
    value = bmi(kg, height_cm)
    category = bmi_category(value)
    return Assessment(
        kind="weight",
        category=category,
        urgent=False,
        in_target=category == "normal",
        rules=("BMI-CN",),
        advice=(ADVICE_KEEP_GOING,) if category == "normal" else (ADVICE_RECHECK_LATER,),
        bmi=value,
    )


# ----------------------------------------------------------------------------------------------
# Dispatcher
# ----------------------------------------------------------------------------------------------
def assess(
    reading: Any,
    targets: Targets | None = None,
    age: int | None = None,
    symptoms: frozenset[str] = frozenset(),
    *,
    height_cm: float | None = None,
) -> Assessment:
    """Assess a reading (a :class:`ParsedReading` or any object with the same attributes).

    ``targets`` None -> :func:`default_targets` for ``age``.  ``symptoms``: codes from
    :mod:`bot.clinical.danger` (e.g. ``detect_danger_signs(message_text)``).  The reading's
    ``problem`` is not looked at: the caller must not store rejected readings, and confirmed ones are
    assessed on their values.
    """
    if targets is None:
        targets = default_targets(age)
    symptoms = frozenset(symptoms)
    kind = getattr(reading, "kind", None)
    if kind == "bp":
        return assess_bp(int(reading.systolic), int(reading.diastolic), targets, symptoms)
    if kind == "glucose":
        return assess_glucose(
            float(reading.mmol),
            getattr(reading, "context", None),
            targets,
            symptoms,
            getattr(reading, "meter", None),
        )
    if kind == "weight":
        return assess_weight(float(reading.kg), height_cm)
    raise ValueError(f"cannot assess a reading of kind {kind!r}")


# ----------------------------------------------------------------------------------------------
# Summaries (the caller picks the 7- or 30-day window)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BpSummary:
    count: int
    mean_systolic: float | None
    mean_diastolic: float | None
    share_in_target: float | None  # 0..1
    home_high: bool  # clinical-reference: BP-HOME (mean >= 135/85; meant for 5-7 days of readings)


@dataclass(frozen=True, slots=True)
class GlucoseSummary:
    count: int
    mean_mmol: float | None
    mean_fasting_mmol: float | None
    share_in_target: float | None  # 0..1
    hypo_count: int  # readings < 3.9 (GLU-HYPO) incl. meter LO
    very_high_count: int  # readings >= 16.7 incl. meter HI


def _pair(reading: Any) -> tuple[int, int]:
    if isinstance(reading, tuple):
        return int(reading[0]), int(reading[1])
    return int(reading.systolic), int(reading.diastolic)


def summarize_bp(readings: Iterable[Any], targets: Targets | None = None) -> BpSummary:
    """Averages over the given BP readings (objects with systolic/diastolic, or (sys, dia) tuples)."""
    t = targets or Targets()
    pairs = [_pair(r) for r in readings]
    if not pairs:
        return BpSummary(0, None, None, None, False)
    n = len(pairs)
    mean_s = round(sum(p[0] for p in pairs) / n, 1)
    mean_d = round(sum(p[1] for p in pairs) / n, 1)
    in_target = sum(1 for s, d in pairs if s < t.bp_systolic and d < t.bp_diastolic)
    # clinical-reference: BP-HOME (verify)
    home_high = mean_s >= th.HOME_BP_HIGH_SBP or mean_d >= th.HOME_BP_HIGH_DBP
    return BpSummary(n, mean_s, mean_d, round(in_target / n, 3), home_high)


def summarize_glucose(readings: Iterable[Any], targets: Targets | None = None) -> GlucoseSummary:
    """Averages over glucose readings (objects with mmol, context and optionally meter)."""
    items = list(readings)
    if not items:
        return GlucoseSummary(0, None, None, None, 0, 0)
    cats = [
        assess_glucose(
            float(r.mmol), getattr(r, "context", None), targets, frozenset(), getattr(r, "meter", None)
        )
        for r in items
    ]
    n = len(items)
    fasting = [float(r.mmol) for r in items if getattr(r, "context", None) in _FASTING_CONTEXTS]
    return GlucoseSummary(
        count=n,
        mean_mmol=round(sum(float(r.mmol) for r in items) / n, 1),
        mean_fasting_mmol=round(sum(fasting) / len(fasting), 1) if fasting else None,
        share_in_target=round(sum(1 for a in cats if a.in_target) / n, 3),
        hypo_count=sum(1 for a in cats if a.category in ("hypo_level1", "hypo_level2")),
        very_high_count=sum(1 for a in cats if a.category == "very_high"),
    )
