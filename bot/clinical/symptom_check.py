"""Which symptoms to ask about after a high or low glucose reading, and which answers are danger.

Why: a number alone misses the patient who is confused at 3.2 mmol/L or vomiting at 18; the
reference rows GLU-HYPO and GLU-DANGER say what to look for. The check is asked only when the
reading is on the low side (GLU-HYPO / GLU-URGENT low edge) or very high (GLU-URGENT high), so a
patient in range is not questioned every time. Codes are those of bot.clinical.danger where a
code exists; the hypoglycaemia warning signs (sweating, shaking, hunger) are plain symptoms
that call for the 15-15 rule, not for hospital.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.clinical import danger as d
from bot.clinical import thresholds as th

SWEATING = "sweating"
SHAKING = "shaking"
HUNGER = "hunger"

# clinical-reference: GLU-HYPO (typical warning signs; confusion / drowsiness are GLU-DANGER)
HYPO_CHOICES: tuple[str, ...] = (SWEATING, SHAKING, d.PALPITATIONS, HUNGER, d.CONFUSION, d.ALTERED_CONSCIOUSNESS)
# clinical-reference: GLU-DANGER (the high-glucose danger signs)
HYPER_CHOICES: tuple[str, ...] = (
    d.HEAVY_THIRST_URINATION, d.NAUSEA_VOMITING, d.ABDOMINAL_PAIN, d.FRUITY_BREATH, d.DEEP_FAST_BREATHING,
    d.CONFUSION,
)


@dataclass(frozen=True)
class GlucoseCheck:
    side: str  # "low" | "high"
    choices: tuple[str, ...]


def glucose_check(mmol: float | None, meter: str | None = None) -> GlucoseCheck | None:
    """The symptom question for a glucose reading, or None when the value needs none.

    Low side: meter "LO" or <= 3.9 (GLU-HYPO, and the GLU-URGENT low edge "<= 3.9").
    High side: meter "HI" or >= 16.7 (GLU-URGENT)."""
    if meter == "LO" or (meter is None and mmol is not None and mmol <= th.GLU_URGENT_LOW):
        return GlucoseCheck("low", HYPO_CHOICES)
    if meter == "HI" or (meter is None and mmol is not None and mmol >= th.GLU_URGENT_HIGH):
        return GlucoseCheck("high", HYPER_CHOICES)
    return None


def is_glucose_danger(code: str) -> bool:
    """A danger sign per GLU-DANGER: call 120 / hospital, and the doctor is alerted."""
    return code in d.GLU_DANGER_SIGNS
