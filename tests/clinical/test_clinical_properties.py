"""Property tests (hypothesis): the parser never crashes and never lets an implausible value through."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.clinical import (
    CONFIRM_PROBLEMS,
    REJECT_PROBLEMS,
    format_glucose,
    mgdl_to_mmol,
    mmol_to_mgdl,
    parse_reading,
    parse_readings,
)
from bot.clinical import thresholds as th

# Text that looks like readings: digits, separators and the keywords the parser reacts to.
_FRAGMENTS = st.sampled_from(
    ["血压", "血糖", "空腹", "餐后", "心率", "体重", "kg", "斤", "mg/dl", "mmol", "/", " ", ",", "，", ".",
     "over", "pulse", "bp", "HI", "LO", "高压", "低压", "-", ":", "点", "分钟", "％", "１", "／"]
)  # fmt: skip
_READINGISH = st.lists(
    st.one_of(_FRAGMENTS, st.integers(0, 9999).map(str), st.floats(0, 100).map(lambda f: f"{f:.1f}")),
    max_size=12,
).map("".join)


def _check_invariants(text: str) -> None:
    for r in parse_readings(text):
        assert r.kind in ("bp", "glucose", "weight")
        assert r.problem is None or r.problem in REJECT_PROBLEMS | CONFIRM_PROBLEMS
        if r.kind == "bp":
            assert r.systolic is not None and r.diastolic is not None
            if r.problem is None:
                # clinical-reference: BP-RANGE
                assert th.SBP_MIN <= r.systolic <= th.SBP_MAX
                assert th.DBP_MIN <= r.diastolic <= th.DBP_MAX
                assert r.systolic > r.diastolic
                assert r.systolic < th.SBP_CONFIRM_FROM
                if r.pulse is not None:
                    assert th.PULSE_CONFIRM_BELOW <= r.pulse <= th.PULSE_CONFIRM_ABOVE
        elif r.kind == "glucose":
            assert r.mmol is not None
            if r.problem is None:
                assert th.GLU_MIN <= r.mmol <= th.GLU_MAX  # clinical-reference: GLU-RANGE
        else:
            assert r.kg is not None
            if r.problem is None:
                assert th.WEIGHT_MIN_KG <= r.kg <= th.WEIGHT_MAX_KG


@settings(max_examples=400)
@given(st.text())
@example("\x00")
@example("１" * 500)
@example("150/" * 200)
@example(" " * 1000 + "bp" + " " * 1000 + "150")
def test_never_raises_on_any_text(text: str) -> None:
    parse_reading(text)
    _check_invariants(text)


@settings(max_examples=400)
@given(_READINGISH)
def test_readingish_text_respects_ranges(text: str) -> None:
    _check_invariants(text)


@given(st.integers(th.SBP_MIN, th.SBP_MAX), st.integers(th.DBP_MIN, th.DBP_MAX))
def test_formatted_bp_round_trips(sys_: int, dia: int) -> None:
    if sys_ <= dia:
        sys_, dia = dia + 1, sys_
        if sys_ > th.SBP_MAX:
            return
    for text in (f"{sys_}/{dia}", f"血压{sys_}/{dia}", f"BP {sys_}/{dia} today"):
        r = parse_reading(text)
        assert r is not None and r.kind == "bp"
        assert (r.systolic, r.diastolic) == (sys_, dia)
        assert r.problem in (None, "needs_confirmation")


@given(st.floats(min_value=0.5, max_value=50, allow_nan=False))
def test_mmol_mgdl_round_trip(mmol: float) -> None:
    assert mgdl_to_mmol(mmol_to_mgdl(mmol)) == __import__("pytest").approx(mmol, rel=1e-12)
    # through the display: integer mg/dL loses at most 0.5 mg/dL = 0.028 mmol/L
    shown = int(format_glucose(mmol, "mgdl"))
    assert abs(mgdl_to_mmol(shown) - mmol) <= 0.5 / th.MGDL_PER_MMOL + 1e-9
    assert abs(float(format_glucose(mmol, "mmol")) - mmol) <= 0.05 + 1e-9


@given(st.integers(int(th.GLU_MIN * 18) + 1, int(th.GLU_MAX * 18)))
def test_typed_mgdl_is_converted(mgdl: int) -> None:
    r = parse_reading(f"glucose {mgdl} mg/dL")
    assert r is not None and r.kind == "glucose" and r.unit_typed == "mgdl"
    assert r.mmol == round(mgdl / 18.0, 1)


@given(st.decimals(min_value="1.0", max_value="40.0", places=1))
def test_glucose_with_keyword_round_trips(value: object) -> None:
    r = parse_reading(f"空腹血糖 {value}")
    assert r is not None and r.kind == "glucose" and r.context == "fasting"
    assert r.mmol == float(str(value)) and r.problem is None
