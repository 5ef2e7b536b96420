"""Is it safe to start moderate exercise now?

Why: tips and walking challenges push patients to move; the reference ("Exercise and diet") lists
when moderate exercise must not start.  The thresholds are marked *(verify)* and live in
``thresholds.py``; each call may override them (e.g. a doctor's stricter plan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.clinical import thresholds as th

REASON_BP_TOO_HIGH = "bp_too_high"
REASON_GLUCOSE_TOO_HIGH = "glucose_too_high"
REASON_GLUCOSE_TOO_LOW = "glucose_too_low"
REASON_EAT_CARBS_FIRST = "eat_carbs_first"


@dataclass(frozen=True, slots=True)
class ExerciseLimits:
    """Configurable limits; defaults from the reference's "Exercise and diet" section."""

    max_systolic: int = th.EXERCISE_MAX_SBP
    max_diastolic: int = th.EXERCISE_MAX_DBP
    max_glucose: float = th.EXERCISE_MAX_GLUCOSE
    carbs_below_glucose: float = th.EXERCISE_CARBS_BELOW_GLUCOSE
    min_glucose: float = th.EXERCISE_MIN_GLUCOSE


@dataclass(frozen=True, slots=True)
class ExerciseSafety:
    ok: bool
    reasons: tuple[str, ...] = ()


def _bp_pair(last_bp: Any) -> tuple[int, int] | None:
    if last_bp is None:
        return None
    if isinstance(last_bp, tuple):
        return int(last_bp[0]), int(last_bp[1])
    return int(last_bp.systolic), int(last_bp.diastolic)


def exercise_safety(
    last_bp: Any = None,
    last_glucose_mmol: float | None = None,
    limits: ExerciseLimits | None = None,
) -> ExerciseSafety:
    """``last_bp``: a (systolic, diastolic) tuple, a BP reading object, or None (unknown).

    Not OK when resting BP >= 180/110 (either number) or glucose > 16.7.  Glucose < 5.6 -> OK but
    "eat_carbs_first".  Design choice beyond the reference: glucose <= 3.9 (GLU-URGENT low edge) is
    not OK ("glucose_too_low") — treat the low first, exercising lowers glucose further.
    Unknown values do not block exercise (the bot asks the patient to measure instead).
    """
    lim = limits or ExerciseLimits()
    reasons: list[str] = []
    ok = True
    pair = _bp_pair(last_bp)
    # clinical-reference: Exercise and diet (resting BP >= 180/110)
    if pair is not None and (pair[0] >= lim.max_systolic or pair[1] >= lim.max_diastolic):
        ok = False
        reasons.append(REASON_BP_TOO_HIGH)
    if last_glucose_mmol is not None:
        if last_glucose_mmol > lim.max_glucose:  # clinical-reference: Exercise and diet (> 16.7)
            ok = False
            reasons.append(REASON_GLUCOSE_TOO_HIGH)
        elif last_glucose_mmol <= lim.min_glucose:
            ok = False
            reasons.append(REASON_GLUCOSE_TOO_LOW)
            reasons.append(REASON_EAT_CARBS_FIRST)
        elif last_glucose_mmol < lim.carbs_below_glucose:  # clinical-reference: Exercise and diet (< 5.6)
            reasons.append(REASON_EAT_CARBS_FIRST)
    return ExerciseSafety(ok=ok, reasons=tuple(reasons))
