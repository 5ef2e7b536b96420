"""Assessment against every boundary in the clinical reference, both sides."""

from __future__ import annotations

import pytest

from bot.clinical import (
    Targets,
    assess,
    bmi,
    bmi_category,
    default_targets,
    parse_reading,
    summarize_bp,
    summarize_glucose,
)
from bot.clinical.parsing import ParsedReading


def bp(s: int, d: int) -> ParsedReading:
    return ParsedReading(kind="bp", systolic=s, diastolic=d)


def glu(mmol: float, context: str | None = "fasting", meter: str | None = None) -> ParsedReading:
    return ParsedReading(kind="glucose", mmol=mmol, context=context, meter=meter)  # type: ignore[arg-type]


# --- BP-GRADE: SBP edges with a normal DBP, DBP edges with a normal SBP ---------------------------------
@pytest.mark.parametrize(
    ("s", "d", "category"),
    [
        (119, 70, "normal"),
        (120, 70, "high_normal"),
        (139, 70, "high_normal"),
        (140, 70, "grade1"),
        (159, 70, "grade1"),
        (160, 70, "grade2"),
        (179, 70, "grade2"),
        (180, 70, "grade3"),
        (110, 79, "normal"),
        (110, 80, "high_normal"),
        (110, 89, "high_normal"),
        (115, 90, "grade1"),
        (115, 99, "grade1"),
        (115, 100, "grade2"),
        (115, 109, "grade2"),
        (115, 110, "grade3"),
        (90, 60, "normal"),
        (89, 60, "low"),
        # different grades: the higher one wins
        (150, 105, "grade2"),
        (165, 85, "grade2"),
        (125, 95, "grade1"),
    ],
)
def test_bp_grade_boundaries(s: int, d: int, category: str) -> None:
    assert assess(bp(s, d)).category == category


@pytest.mark.parametrize(
    ("s", "d", "urgent"),
    [
        (179, 109, False),
        (180, 80, True),
        (150, 110, True),
        (179, 70, False),
        (120, 109, False),
        (200, 120, True),
    ],
)
def test_bp_urgent(s: int, d: int, urgent: bool) -> None:
    a = assess(bp(s, d))
    assert a.urgent is urgent
    assert (a.alert_rule == "BP-URGENT") is urgent
    assert ("BP-URGENT" in a.rules) is urgent
    if urgent:
        assert a.advice[0] == "remeasure_after_rest"
        assert "call_120_if_danger" in a.advice and "contact_doctor" in a.advice


@pytest.mark.parametrize(
    ("s", "d", "isolated"), [(140, 89, True), (139, 70, False), (140, 90, False), (185, 85, True)]
)
def test_isolated_systolic(s: int, d: int, isolated: bool) -> None:
    assert assess(bp(s, d)).isolated_systolic is isolated


@pytest.mark.parametrize(
    ("s", "d", "in_target"), [(139, 89, True), (140, 80, False), (130, 90, False), (100, 70, True)]
)
def test_bp_target_default(s: int, d: int, in_target: bool) -> None:
    a = assess(bp(s, d))
    assert a.in_target is in_target
    assert ("BP-TARGET" in a.rules) is (not in_target)


def test_bp_low_with_and_without_symptoms() -> None:
    quiet = assess(bp(89, 60))
    assert quiet.category == "low" and not quiet.urgent and quiet.alert_rule is None
    dizzy = assess(bp(89, 60), symptoms=frozenset({"dizziness"}))
    assert dizzy.urgent and dizzy.alert_rule == "BP-LOW" and "BP-LOW" in dizzy.rules
    assert dizzy.advice[0] == "sit_or_lie_down"
    fainted = assess(bp(85, 55), symptoms=frozenset({"fainting"}))
    assert fainted.alert_rule == "BP-LOW"
    not_low = assess(bp(90, 60), symptoms=frozenset({"dizziness"}))
    assert not_low.category == "normal" and not not_low.urgent and not_low.alert_rule is None


def test_bp_danger_signs_make_any_reading_urgent() -> None:
    a = assess(bp(128, 78), symptoms=frozenset({"chest_pain"}))
    assert a.urgent and a.alert_rule == "BP-DANGER" and a.category == "high_normal"
    assert a.advice[0] == "go_to_hospital"
    both = assess(bp(190, 115), symptoms=frozenset({"severe_headache"}))
    assert both.urgent and {"BP-URGENT", "BP-DANGER"} <= set(both.rules)
    # a glucose danger sign alone is not a BP danger sign
    assert not assess(bp(128, 78), symptoms=frozenset({"fruity_breath"})).urgent


def test_pregnancy_counts_only_with_raised_bp() -> None:
    assert not assess(bp(118, 75), symptoms=frozenset({"pregnancy"})).urgent
    assert assess(bp(142, 92), symptoms=frozenset({"pregnancy"})).alert_rule == "BP-DANGER"


def test_age_65_targets() -> None:
    assert default_targets(64) == Targets()
    t65 = default_targets(65)
    assert (t65.bp_systolic, t65.bp_diastolic) == (150, 90)
    assert assess(bp(145, 85), age=65).in_target
    assert not assess(bp(145, 85), age=64).in_target
    assert not assess(bp(150, 85), age=80).in_target
    assert not assess(bp(145, 90), age=70).in_target
    assert default_targets(None) == Targets()
    assert default_targets(70, ["frail"]).hba1c == 8.0


def test_targets_override_changes_in_target_not_urgency() -> None:
    strict = Targets(bp_systolic=130, bp_diastolic=80)
    assert assess(bp(135, 78)).in_target
    assert not assess(bp(135, 78), targets=strict).in_target
    loose = Targets(bp_systolic=200, bp_diastolic=120, fasting_high=20.0, postmeal_high=25.0, fasting_low=1.0)
    crisis = assess(bp(185, 100), targets=loose)
    assert crisis.in_target and crisis.urgent and crisis.alert_rule == "BP-URGENT"
    g = assess(glu(17.0), targets=loose)
    assert g.urgent and g.category == "very_high"
    h = assess(glu(3.5), targets=loose)
    assert h.urgent and h.category == "hypo_level1"
    relaxed = Targets(fasting_high=8.0)
    assert not assess(glu(7.5)).in_target
    assert assess(glu(7.5), targets=relaxed).in_target
    assert not assess(glu(7.5), targets=relaxed).urgent


# --- glucose ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mmol", "context", "category", "urgent"),
    [
        (2.9, "fasting", "hypo_level2", True),
        (3.0, "fasting", "hypo_level1", True),
        (3.8, "fasting", "hypo_level1", True),
        (3.9, "fasting", "below_target", True),  # GLU-URGENT "<= 3.9" as written
        (4.0, "fasting", "below_target", False),
        (4.3, "fasting", "below_target", False),
        (4.4, "fasting", "in_target", False),
        (6.9, "fasting", "in_target", False),
        (7.0, "fasting", "in_target", False),  # GLU-TARGET 4.4-7.0 inclusive
        (7.1, "fasting", "above_target", False),
        (7.0, "before_meal", "in_target", False),
        (7.1, "before_meal", "above_target", False),
        (9.9, "after_meal", "in_target", False),
        (10.0, "after_meal", "above_target", False),
        (9.9, "random", "in_target", False),
        (10.0, "random", "above_target", False),
        (10.0, "bedtime", "above_target", False),
        (10.0, None, "above_target", False),  # no context: treated as random
        (9.9, None, "in_target", False),
        (16.6, "after_meal", "above_target", False),
        (16.7, "after_meal", "very_high", True),
        (16.6, "fasting", "above_target", False),
        (16.7, "fasting", "very_high", True),
        (3.9, "after_meal", "in_target", True),  # reference has no after-meal floor; still urgent
        (2.9, None, "hypo_level2", True),
    ],
)
def test_glucose_boundaries(mmol: float, context: str | None, category: str, urgent: bool) -> None:
    a = assess(glu(mmol, context))
    assert a.category == category
    assert a.urgent is urgent
    assert a.in_target is (category == "in_target")


def test_glucose_alerts_and_advice() -> None:
    l2 = assess(glu(2.5))
    assert l2.alert_rule == "GLU-HYPO" and l2.advice[0] == "rule_15_15" and "call_120_if_danger" in l2.advice
    l1 = assess(glu(3.5))
    assert l1.alert_rule == "GLU-HYPO" and "rule_15_15" in l1.advice and "GLU-HYPO" in l1.rules
    edge = assess(glu(3.9))
    assert edge.alert_rule == "GLU-URGENT" and "GLU-HYPO" not in edge.rules and "rule_15_15" in edge.advice
    high = assess(glu(20.0, "random"))
    assert high.alert_rule == "GLU-URGENT" and "contact_doctor" in high.advice
    fine = assess(glu(6.0))
    assert fine.alert_rule is None and fine.advice == ("keep_going",)
    above = assess(glu(8.0))
    assert above.alert_rule is None and above.advice == ("recheck_later",) and "GLU-TARGET" in above.rules


def test_glucose_meter_screens() -> None:
    hi = assess(glu(33.3, None, meter="HI"))
    assert hi.category == "very_high" and hi.urgent and hi.alert_rule == "GLU-URGENT"
    lo = assess(glu(1.1, None, meter="LO"))
    assert lo.category == "hypo_level2" and lo.urgent and lo.alert_rule == "GLU-HYPO"
    parsed = parse_reading("血糖 HI")
    assert parsed is not None and assess(parsed).category == "very_high"


def test_glucose_danger_signs() -> None:
    a = assess(glu(8.0, "random"), symptoms=frozenset({"fruity_breath"}))
    assert a.urgent and a.alert_rule == "GLU-DANGER" and a.advice[0] == "go_to_hospital"
    assert not assess(glu(8.0, "random"), symptoms=frozenset({"chest_pain"})).urgent


def test_assess_parsed_readings_end_to_end() -> None:
    r = parse_reading("血压185/112 心率90")
    assert r is not None
    a = assess(r)
    assert a.category == "grade3" and a.urgent
    g = parse_reading("餐后2小时血糖11.2")
    assert g is not None and assess(g).category == "above_target"


def test_assess_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError):
        assess(object())


# --- weight / BMI (BMI-CN, WS/T 428-2013) ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "category"),
    [(18.4, "underweight"), (18.5, "normal"), (23.9, "normal"), (24.0, "overweight"), (27.9, "overweight"),
     (28.0, "obese")],
)  # fmt: skip
def test_bmi_category(value: float, category: str) -> None:
    assert bmi_category(value) == category


def test_bmi_and_weight_assessment() -> None:
    assert bmi(65, 170) == 22.5
    w = parse_reading("体重 65kg")
    assert w is not None
    a = assess(w, height_cm=170)
    assert (
        a.category == "normal" and a.bmi == 22.5 and a.in_target and not a.urgent and a.rules == ("BMI-CN",)
    )
    assert assess(w).category == "unknown"
    with pytest.raises(ValueError):
        bmi(65, 0)


# --- summaries ------------------------------------------------------------------------------------------
def test_summaries() -> None:
    s = summarize_bp([(130, 80), (150, 95), bp(140, 88)])
    assert s.count == 3 and s.mean_systolic == 140.0 and s.mean_diastolic == 87.7
    assert s.share_in_target == pytest.approx(1 / 3, abs=1e-3) and s.home_high
    assert summarize_bp([]).count == 0
    assert not summarize_bp([(130, 80)]).home_high
    g = summarize_glucose([glu(6.0), glu(3.5), glu(12.0, "after_meal"), glu(33.3, None, "HI")])
    assert g.count == 4 and g.hypo_count == 1 and g.very_high_count == 1
    assert g.mean_fasting_mmol == 4.8 and g.share_in_target == 0.25
    assert summarize_glucose([]).mean_mmol is None
