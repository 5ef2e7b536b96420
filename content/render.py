"""Words for readings, categories and advice, in the reader's language.

Services use these to compose outbox messages (alerts, notices) and dialogs to answer the
patient, so a reading reads the same everywhere. Category words describe the *reading*, never
the person: "this reading is in the very high range", not "you have grade 3 hypertension".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from content.i18n import Translator

GLUCOSE_CONTEXTS = ("fasting", "before_meal", "after_meal", "bedtime", "random")


def _(msgid: str) -> str:
    """Mark a string for extraction; it is translated later with the reader's translator."""
    return msgid


CONTEXT_LABELS = {
    "fasting": _("fasting"),
    "before_meal": _("before a meal"),
    "after_meal": _("2 h after a meal"),
    "bedtime": _("at bedtime"),
    "random": _("random"),
}

CATEGORY_LABELS = {
    "normal": _("in the normal range"),
    "high_normal": _("in the high-normal range"),
    "grade1": _("in the high range (grade 1)"),
    "grade2": _("in the high range (grade 2)"),
    "grade3": _("in the very high range (grade 3)"),
    "low": _("low"),
    "hypo_level1": _("low (below 3.9 mmol/L)"),
    "hypo_level2": _("very low (below 3.0 mmol/L)"),
    "in_target": _("in your target range"),
    "below_target": _("a little below your target range"),
    "above_target": _("above your target"),
    "very_high": _("very high"),
}

ADVICE_LABELS = {
    "remeasure_after_rest": _("Sit quietly for 5 minutes, then measure again."),
    "rule_15_15": _(
        "Take 15 g of fast sugar now (3-4 glucose tablets, half a glass of juice or 3 sugar cubes), "
        "then check again in 15 minutes. Repeat if it is still below 3.9."
    ),
    "call_120_if_danger": _(
        "If you have chest pain, a severe headache, trouble breathing, blurred vision, confusion "
        "or vomiting, call 120 or go to hospital now."
    ),
    "go_to_hospital": _("Please go to hospital or call 120 now."),
    "contact_doctor": _("Please contact your doctor."),
    "recheck_later": _("Measure again later today and tell your doctor at the next visit if it stays like this."),
    "eat_carbs_first": _("Eat some carbohydrate before exercising."),
    "sit_or_lie_down": _("Sit or lie down now, and get up slowly."),
    "keep_going": _("Well done, keep it up."),
}


def bp_text(systolic: int | None, diastolic: int | None, pulse: int | None = None, t: Translator | None = None) -> str:
    text = f"{systolic}/{diastolic} mmHg"
    if pulse:
        word = t("pulse") if t else "pulse"
        text += f", {word} {pulse}"
    return text


def glucose_value(mmol: float | None, unit: str = "mmol", meter: str | None = None) -> str:
    if meter == "HI":
        return "HI (> 33.3 mmol/L)"
    if meter == "LO":
        return "LO (< 1.1 mmol/L)"
    if mmol is None:
        return "?"
    if unit == "mgdl":
        return f"{round(mmol * 18.0)} mg/dL"
    return f"{mmol:.1f} mmol/L"


def reading_text(reading: Any, t: Translator, unit: str = "mmol") -> str:
    """One line for any stored or parsed reading (duck-typed: kind + values)."""
    if reading.kind == "bp":
        return t("BP {value}", value=bp_text(reading.systolic, reading.diastolic, reading.pulse, t))
    if reading.kind == "glucose":
        context = getattr(reading, "context", None)
        msgid = CONTEXT_LABELS.get(context or "")
        label = t(msgid) if msgid else ""
        value = glucose_value(reading.mmol, unit, getattr(reading, "meter", None))
        return t("glucose {value} {context}", value=value, context=label).strip()
    if reading.kind == "weight":
        return t("weight {kg} kg", kg=f"{reading.kg:.1f}")
    return "?"


def category_text(category: str, t: Translator) -> str:
    return t(CATEGORY_LABELS.get(category, category))


def advice_lines(codes: Iterable[str], t: Translator) -> list[str]:
    return [t(ADVICE_LABELS[c]) for c in codes if c in ADVICE_LABELS]


# Optional /bp details (readings.arm, readings.posture), shown in history and the doctor's view.
ARM_LABELS = {"left": _("left arm"), "right": _("right arm")}
POSTURE_LABELS = {"sitting": _("sitting"), "lying": _("lying down"), "standing": _("standing")}


def details_text(reading: Any, t: Translator) -> str:
    """"left arm, sitting" — or "" when the reading has no details."""
    parts = [t(labels[value]) for labels, value in ((ARM_LABELS, getattr(reading, "arm", None)),
                                                    (POSTURE_LABELS, getattr(reading, "posture", None)))
             if value in labels]
    return ", ".join(parts)
