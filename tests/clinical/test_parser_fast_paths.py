"""The parser's fast paths (issue 4: >= 50 000 messages/s) must not change any result.

* the early exits (no digit, ASCII text, no full-width character) must not swallow meter screens,
  full-width digits or readings split over lines;
* the whole-message keyword shortcuts must give exactly what the clause parser gives;
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.clinical import parsing
from bot.clinical.parsing import parse_readings


def _bp(s: int, d: int, p: int | None = None, problem: str | None = None) -> dict[str, Any]:
    return {"kind": "bp", "systolic": s, "diastolic": d, "pulse": p, "problem": problem}


def _glu(mmol: float, context: str | None = None, problem: str | None = None, unit: str | None = None,
         meter: str | None = None) -> dict[str, Any]:
    return {"kind": "glucose", "mmol": mmol, "context": context, "problem": problem, "unit_typed": unit,
            "meter": meter}


# What the parser gave for these before the fast paths were added (checked against that version).
GUARD_CASES: list[tuple[str, list[dict[str, Any]]]] = [
    ("HI", [_glu(33.3, problem="needs_confirmation", meter="HI")]),
    ("LO", [_glu(1.1, problem="needs_confirmation", meter="LO")]),
    ("ＨＩ", [_glu(33.3, problem="needs_confirmation", meter="HI")]),  # full-width, no digit
    ("hi", []),  # a greeting
    ("lo", []),
    ("血糖 lo", [_glu(1.1, meter="LO")]),
    ("空腹血糖 HI", [_glu(33.3, context="fasting", meter="HI")]),
    ("glucose lo", [_glu(1.1, meter="LO")]),
    ("１３５／８５", [_bp(135, 85)]),
    ("血压１５０／９５", [_bp(150, 95)]),
    ("ＢＰ\u3000１４２／９１ 心率７２", [_bp(142, 91, 72)]),
    ("空腹血糖６．８", [_glu(6.8, context="fasting")]),
    ("空腹血糖6。8", [_glu(6.8, context="fasting")]),
    ("血糖 6,8", [_glu(6.8)]),
    ("血压\n150/95", [_bp(150, 95)]),  # two clauses
    ("空腹血糖\n6.8", [_glu(6.8, context="fasting")]),  # the context carried to the next clause
    ("血压150/95，心率72", [_bp(150, 95, 72)]),
    ("早上好 135/85", [_bp(135, 85)]),
    ("night 6.8", [_glu(6.8)]),
    ("血压一百五十", []),  # Chinese number words are not understood (the dialog's buttons are)
    ("血糖七点二", []),
    ("I walked 30 min", []),
    ("我今天走了3000步", []),
    ("call me at 138-1234-5678", []),
    ("血压 12/25", []),  # a date
    ("thank you doctor", []),
    # the clause parser's skips: a keyword pair needs digits, a context word alone means glucose
    ("血糖，血压150 95", [_bp(150, 95)]),
    ("glucose, bp 150 95", [_bp(150, 95)]),
    ("fasting blood 6.8", [_glu(6.8, context="fasting")]),
    ("after dinner blood 8.2", [_glu(8.2, context="after_meal")]),
]


@pytest.mark.parametrize(("text", "expected"), GUARD_CASES, ids=[repr(t) for t, _ in GUARD_CASES])
def test_fast_paths_do_not_swallow(text: str, expected: list[dict[str, Any]]) -> None:
    got = parse_readings(text)
    assert len(got) == len(expected), got
    for reading, want in zip(got, expected, strict=True):
        assert {field: getattr(reading, field) for field in want} == want


# --- keyword shortcuts ------------------------------------------------------------------------------
_WHEN = st.sampled_from(["", "", "早上", "今天 ", "morning ", "tonight ", "早上好 ", "night ", "todays "])
_SPACE = st.sampled_from(["", " ", "  "])
_BP_NUMBER = st.integers(0, 400).map(str)
_GLU_NUMBER = st.one_of(
    st.integers(0, 700).map(str),
    st.sampled_from(["33.3", "33.4", "39", "40", "41", "600", "601", "0.5", "06.8", "6.85", "6.855"]),
    st.decimals(min_value="0", max_value="60", places=1).map(str),
)
_TAIL = st.sampled_from(["", "", "", "!", "次", "%", "/72", " 72", "bpm", "mmhg", ",", "号"])
_BP_TEXT = st.tuples(
    _WHEN, st.sampled_from(["", "血压", "bp", "blood pressure", "bpx", "血压是"]), _SPACE, _BP_NUMBER, _SPACE,
    _BP_NUMBER, st.sampled_from(["", " 心率", "pulse", " 脉搏 ", " hr ", " pulses "]), _SPACE, _BP_NUMBER, _TAIL,
).map(lambda p: f"{p[0]}{p[1]}{p[2]}{p[3]}/{p[4]}{p[5]}" + (f"{p[6]}{p[7]}{p[8]}" if p[6] else "") + p[9])
_LABEL_TEXT = st.tuples(
    _WHEN, st.sampled_from(["高压", "收缩压", "低压", "上压"]), _SPACE, _BP_NUMBER, st.sampled_from(["", " ", "，"]),
    st.sampled_from(["低压", "舒张压", "高压", ""]), _BP_NUMBER, st.sampled_from(["", " 心率", "pulse"]), _BP_NUMBER,
    _TAIL,
).map(lambda p: "".join(p[:7]) + (p[7] + p[8] if p[7] else "") + p[9])
_GLU_TEXT = st.tuples(
    _WHEN, st.sampled_from(["", "空腹", "饭后", "餐前", "睡前", "fasting ", "random ", "晨起空腹", "after lunch ",
                            "餐后2小时"]),
    st.sampled_from(["", "血糖", "glucose ", "sugar ", "blood sugar ", "bs "]), _SPACE, _GLU_NUMBER, _SPACE,
    st.sampled_from(["", "", "mmol", "mmol/l", "mg/dl", "mg / dl", "mg", "毫摩尔"]), _TAIL,
).map("".join)  # fmt: skip


def _shortcut_agrees(text: str) -> bool:
    """Whether the shortcut answered; fails when its answer is not the clause parser's."""
    s = parsing._normalise(text).lower()  # what parse_readings hands both (every text has a digit)
    if "," in s:
        s = parsing._DEC_COMMA_RE.sub(r"\1.\2", s)
    quick = parsing._keyword_shortcut(s)
    if quick is None:
        return False
    assert [quick] == parsing._parse_clauses(s, True), text
    assert parse_readings(text) == [quick]
    return True


SHORTCUT_MESSAGES = ["血压150/95 心率72", "bp 142/91 pulse 80", "早上 128/80 心率 66", "高压150低压95",
                     "空腹血糖 6.8", "饭后血糖 9.2", "血糖7.2", "glucose 126 mg/dl", "fasting 6.1 mmol",
                     "血糖 40", "血糖 33.4", "bp 40/30", "血压 150/150", "高压95低压150", "sugar 601"]  # fmt: skip


@pytest.mark.parametrize("text", SHORTCUT_MESSAGES)
def test_common_keyword_messages_take_the_shortcut(text: str) -> None:
    assert _shortcut_agrees(text)


@settings(max_examples=300)
@given(st.one_of(_BP_TEXT, _LABEL_TEXT, _GLU_TEXT))
@example("bp 39/30")
@example("血压 12/25")
@example("早上好 135/85")
@example("餐后2小时血糖 8.5")
def test_shortcuts_agree_with_clause_parser(text: str) -> None:
    _shortcut_agrees(text)


def test_shortcut_filler_words_trigger_nothing() -> None:
    for word in parsing._QUICK_WHEN_WORDS:
        assert parsing._FILLER_RE.fullmatch(word), word
        assert not parsing._triggered(word), word
