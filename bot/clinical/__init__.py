"""Pure clinical domain for CareCircle: parse readings, assess them, danger signs, exercise safety,
follow-up schedule.

No Telegram, no database, no I/O, and no imports from the rest of the project — so every rule can be
unit-tested in isolation and reused by dialogs, services, exports and the dashboard alike.  Every
threshold lives once in :mod:`bot.clinical.thresholds`, citing its row in
``shared/clinical-reference.md``.
"""

from bot.clinical.assessment import (
    ADVICE_CODES,
    ALERT_RULES,
    BP_CATEGORIES,
    GLUCOSE_CATEGORIES,
    WEIGHT_CATEGORIES,
    Assessment,
    BpSummary,
    GlucoseSummary,
    Targets,
    assess,
    assess_bp,
    assess_glucose,
    assess_weight,
    bmi,
    bmi_category,
    bp_category,
    default_targets,
    glucose_category,
    summarize_bp,
    summarize_glucose,
)
from bot.clinical.danger import (
    ALL_SYMPTOMS,
    BP_DANGER_SIGNS,
    BP_LOW_SYMPTOMS,
    GLU_DANGER_SIGNS,
    detect_danger_signs,
)
from bot.clinical.exercise import ExerciseLimits, ExerciseSafety, exercise_safety
from bot.clinical.followup import (
    FOLLOWUP_OUTCOMES,
    glucose_uncontrolled_at_followup,
    is_lost_to_followup,
    is_overdue,
    needs_referral,
    next_followup_due,
)
from bot.clinical.parsing import (
    CONFIRM_PROBLEMS,
    GLUCOSE_CONTEXTS,
    REJECT_PROBLEMS,
    ParsedReading,
    parse_reading,
    parse_readings,
    parse_when,
)
from bot.clinical.units import format_glucose, mgdl_to_mmol, mmol_to_mgdl, round_mmol

__all__ = [
    "ADVICE_CODES",
    "ALERT_RULES",
    "ALL_SYMPTOMS",
    "BP_CATEGORIES",
    "BP_DANGER_SIGNS",
    "BP_LOW_SYMPTOMS",
    "CONFIRM_PROBLEMS",
    "FOLLOWUP_OUTCOMES",
    "GLUCOSE_CATEGORIES",
    "GLUCOSE_CONTEXTS",
    "GLU_DANGER_SIGNS",
    "REJECT_PROBLEMS",
    "WEIGHT_CATEGORIES",
    "Assessment",
    "BpSummary",
    "ExerciseLimits",
    "ExerciseSafety",
    "GlucoseSummary",
    "ParsedReading",
    "Targets",
    "assess",
    "assess_bp",
    "assess_glucose",
    "assess_weight",
    "bmi",
    "bmi_category",
    "bp_category",
    "default_targets",
    "detect_danger_signs",
    "exercise_safety",
    "format_glucose",
    "glucose_category",
    "glucose_uncontrolled_at_followup",
    "is_lost_to_followup",
    "is_overdue",
    "mgdl_to_mmol",
    "mmol_to_mgdl",
    "needs_referral",
    "next_followup_due",
    "parse_reading",
    "parse_readings",
    "parse_when",
    "round_mmol",
    "summarize_bp",
    "summarize_glucose",
]
