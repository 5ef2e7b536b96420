"""Danger-sign detection, exercise safety and the follow-up schedule."""

from __future__ import annotations

from datetime import date

import pytest

from bot.clinical import (
    ALL_SYMPTOMS,
    BP_DANGER_SIGNS,
    GLU_DANGER_SIGNS,
    ExerciseLimits,
    detect_danger_signs,
    exercise_safety,
    glucose_uncontrolled_at_followup,
    is_lost_to_followup,
    is_overdue,
    needs_referral,
    next_followup_due,
)


# --- danger signs -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("chest pain", {"chest_pain"}),
        ("I have chest pain since morning", {"chest_pain"}),
        ("胸痛", {"chest_pain"}),
        ("有点胸闷", {"chest_pain"}),
        ("can't breathe", {"breathlessness"}),
        ("呼吸困难", {"breathlessness"}),
        ("晚上不能平躺", {"breathlessness"}),
        ("头痛得厉害", {"severe_headache"}),
        ("severe headache", {"severe_headache"}),
        ("视力模糊", {"blurred_vision"}),
        ("blurred vision", {"blurred_vision"}),
        ("意识不清", {"altered_consciousness"}),
        ("he is confused", {"confusion"}),
        ("呕吐", {"nausea_vomiting"}),
        ("vomiting since last night", {"nausea_vomiting"}),
        ("心慌", {"palpitations"}),
        ("眼睛痛", {"eye_pain"}),
        ("I'm pregnant", {"pregnancy"}),
        ("呼气有烂苹果味", {"fruity_breath"}),
        ("特别口渴，一直想喝水", {"heavy_thirst_urination"}),
        ("肚子疼", {"abdominal_pain"}),
        ("体温39.5", {"high_fever"}),
        ("发烧 39", set()),  # > 39 C only
        ("fever 40", {"high_fever"}),
        ("心率一直120", {"fast_heart_rate"}),
        ("heart rate 100", set()),
        ("突然看不见了", {"sudden_vision_loss"}),
        ("头晕", {"dizziness"}),
        ("feeling dizzy", {"dizziness"}),
        ("头晕得厉害", {"severe_dizziness", "dizziness"}),
        ("差点晕倒", {"fainting"}),
        ("passed out this morning", {"fainting"}),
        ("血压180/110，胸闷，头痛得厉害", {"chest_pain", "severe_headache"}),
        # negations
        ("no chest pain", set()),
        ("No chest pain, no headache", set()),
        ("I don't have chest pain", set()),
        ("没有胸痛", set()),
        ("不胸闷", set()),
        ("无呼吸困难", set()),
        ("not dizzy", set()),
        ("没有胸痛，但是头痛得厉害", {"severe_headache"}),
        ("no vomiting but chest pain", {"chest_pain"}),
        # nothing
        ("feeling fine today", set()),
        ("", set()),
        ("150/95", set()),
        ("头痛", set()),  # plain headache is not the "severe headache" danger sign
    ],
)
def test_detect_danger_signs(text: str, codes: set[str]) -> None:
    assert detect_danger_signs(text) == codes


def test_symptom_code_sets() -> None:
    assert "chest_pain" in BP_DANGER_SIGNS and "chest_pain" not in GLU_DANGER_SIGNS
    assert "fruity_breath" in GLU_DANGER_SIGNS and "nausea_vomiting" in BP_DANGER_SIGNS & GLU_DANGER_SIGNS
    assert {"dizziness", "fainting"} <= ALL_SYMPTOMS
    assert "dizziness" not in BP_DANGER_SIGNS


# --- exercise --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bp", "glucose", "ok", "reasons"),
    [
        ((179, 109), 6.0, True, ()),
        ((180, 90), 6.0, False, ("bp_too_high",)),
        ((150, 110), 6.0, False, ("bp_too_high",)),
        ((130, 80), 16.7, True, ()),
        ((130, 80), 16.8, False, ("glucose_too_high",)),
        ((130, 80), 5.6, True, ()),
        ((130, 80), 5.5, True, ("eat_carbs_first",)),
        ((130, 80), 4.0, True, ("eat_carbs_first",)),
        ((130, 80), 3.9, False, ("glucose_too_low", "eat_carbs_first")),
        (None, None, True, ()),
        ((185, 115), 18.0, False, ("bp_too_high", "glucose_too_high")),
    ],
)
def test_exercise_safety(
    bp: tuple[int, int] | None, glucose: float | None, ok: bool, reasons: tuple[str, ...]
) -> None:
    result = exercise_safety(bp, glucose)
    assert result.ok is ok
    assert result.reasons == reasons


def test_exercise_limits_configurable_and_reading_objects() -> None:
    from bot.clinical import parse_reading

    reading = parse_reading("170/100")
    assert exercise_safety(reading, None).ok
    assert not exercise_safety(reading, None, ExerciseLimits(max_systolic=160)).ok


# --- follow-up ------------------------------------------------------------------------------------------
D = date(2024, 1, 1)


@pytest.mark.parametrize(
    ("risk", "outcome", "urgent", "days"),
    [
        ("standard", None, False, 90),
        ("standard", "controlled", False, 90),
        ("high", None, False, 30),
        ("high", "controlled", False, 30),
        ("standard", "unsatisfactory", False, 14),
        ("standard", "adverse_reaction", False, 14),
        ("high", "complication", False, 14),
        ("standard", "controlled", True, 14),
        ("high", None, True, 14),
    ],
)
def test_next_followup_due(risk: str, outcome: str | None, urgent: bool, days: int) -> None:
    due = next_followup_due(D, risk, outcome, urgent)  # type: ignore[arg-type]
    assert (due - D).days == days


def test_urgent_referral_counts_from_its_date() -> None:
    assert next_followup_due(D, "standard", "controlled", True, urgent_on=date(2024, 2, 1)) == date(
        2024, 2, 15
    )
    # never later than the regular schedule
    assert next_followup_due(D, "high", None, True, urgent_on=date(2024, 1, 25)) == date(2024, 1, 31)


def test_referral_overdue_lost() -> None:
    assert not needs_referral(0) and not needs_referral(1)
    assert needs_referral(2) and needs_referral(3)
    assert not is_overdue(date(2024, 3, 1), date(2024, 3, 1))
    assert is_overdue(date(2024, 3, 1), date(2024, 3, 2))
    assert not is_lost_to_followup(date(2023, 1, 1), date(2023, 12, 31))
    assert is_lost_to_followup(date(2023, 1, 1), date(2024, 1, 1))
    assert glucose_uncontrolled_at_followup(7.0) and not glucose_uncontrolled_at_followup(6.9)
