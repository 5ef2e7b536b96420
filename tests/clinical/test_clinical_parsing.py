"""Parser: the table of real-looking messages, multi-reading messages, parse_when, units."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clinical_parser_cases import CASES, MULTI_CASES

from bot.clinical import (
    CONFIRM_PROBLEMS,
    REJECT_PROBLEMS,
    format_glucose,
    mgdl_to_mmol,
    mmol_to_mgdl,
    parse_reading,
    parse_readings,
    parse_when,
)


def _check(reading: Any, expected: dict[str, Any]) -> None:
    assert reading is not None
    for field, value in expected.items():
        got = getattr(reading, field)
        if isinstance(value, float):
            assert got == pytest.approx(value, abs=1e-9), (field, got, value)
        else:
            assert got == value, (field, got, value)


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 160
    assert len({text for text, _ in CASES}) == len(CASES), "duplicate messages in the table"


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[repr(t) for t, _ in CASES])
def test_parse_reading_table(text: str, expected: dict[str, Any] | None) -> None:
    reading = parse_reading(text)
    if expected is None:
        assert reading is None, reading
    else:
        _check(reading, expected)


@pytest.mark.parametrize(("text", "expected"), MULTI_CASES, ids=[t for t, _ in MULTI_CASES])
def test_parse_readings_multi(text: str, expected: list[dict[str, Any]]) -> None:
    readings = parse_readings(text)
    assert len(readings) == len(expected), readings
    for reading, exp in zip(readings, expected, strict=True):
        _check(reading, exp)
    assert parse_reading(text) == readings[0]


def test_problem_sets_are_disjoint_and_complete() -> None:
    assert REJECT_PROBLEMS == {"out_of_range", "systolic_not_above_diastolic"}
    assert CONFIRM_PROBLEMS == {"unit_unclear", "needs_confirmation", "ambiguous"}
    assert not (REJECT_PROBLEMS & CONFIRM_PROBLEMS)
    for text, expected in CASES:
        if expected is not None and expected["problem"] is not None:
            assert expected["problem"] in REJECT_PROBLEMS | CONFIRM_PROBLEMS, text


def test_reading_flags() -> None:
    ok = parse_reading("150/95")
    assert ok is not None and ok.storable and not ok.rejected and not ok.needs_confirmation
    bad = parse_reading("95/150")
    assert bad is not None and bad.rejected and not bad.storable
    ask = parse_reading("160")
    assert ask is not None and ask.needs_confirmation


def test_readings_are_frozen() -> None:
    reading = parse_reading("150/95")
    assert reading is not None
    with pytest.raises(AttributeError):
        reading.systolic = 1  # type: ignore[misc]


# --- parse_when ---------------------------------------------------------------------------------
SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 5, 10, 14, 20, tzinfo=SH)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("150/95", None),
        ("空腹血糖 6.8", None),
        ("yesterday evening 145/90", datetime(2024, 5, 9, 20, 0, tzinfo=SH)),
        ("昨晚 145/90", datetime(2024, 5, 9, 20, 0, tzinfo=SH)),
        ("昨天早上 150/100", datetime(2024, 5, 9, 7, 0, tzinfo=SH)),
        ("今天早上 138/86", datetime(2024, 5, 10, 7, 0, tzinfo=SH)),
        ("this morning 132/84", datetime(2024, 5, 10, 7, 0, tzinfo=SH)),
        ("at 7:30 140/90", datetime(2024, 5, 10, 7, 30, tzinfo=SH)),
        ("8点 血压 140/90", datetime(2024, 5, 10, 8, 0, tzinfo=SH)),
        ("早上7点半 135/85", datetime(2024, 5, 10, 7, 30, tzinfo=SH)),
        ("晚上8点 145/90", datetime(2024, 5, 9, 20, 0, tzinfo=SH)),  # 20:00 today is in the future
        ("昨晚10点 145/90", datetime(2024, 5, 9, 22, 0, tzinfo=SH)),
        ("yesterday 145/90", NOW - timedelta(days=1)),
        ("前天 150/95", NOW - timedelta(days=2)),
        ("下午3点 150/95", datetime(2024, 5, 9, 15, 0, tzinfo=SH)),  # 15:00 today > 14:20 now
        ("at 9pm 150/95", datetime(2024, 5, 9, 21, 0, tzinfo=SH)),
        ("中午 6.8", datetime(2024, 5, 10, 12, 0, tzinfo=SH)),
        ("七点 6.1", datetime(2024, 5, 10, 7, 0, tzinfo=SH)),
    ],
)
def test_parse_when(text: str, expected: datetime | None) -> None:
    assert parse_when(text, NOW) == expected


def test_parse_when_never_in_future_and_keeps_tz() -> None:
    early = datetime(2024, 5, 10, 6, 0, tzinfo=SH)
    got = parse_when("this evening 140/90", early)
    assert got is not None and got <= early and got.tzinfo is SH
    naive = datetime(2024, 5, 10, 6, 0)
    got = parse_when("今天早上 140/90", naive)
    assert got is not None and got <= naive and got.tzinfo is None
    assert parse_when("", NOW) is None


# --- units ------------------------------------------------------------------------------------------
def test_units() -> None:
    assert mgdl_to_mmol(126) == pytest.approx(7.0)
    assert mmol_to_mgdl(7.0) == pytest.approx(126.0)
    assert format_glucose(7.0, "mgdl") == "126"
    assert format_glucose(6.84, "mmol") == "6.8"
    assert format_glucose(6.85, "mmol") == "6.9"
    assert format_glucose(5.55, "mmol", with_unit=True) == "5.6 mmol/L"
    assert format_glucose(5.0, "mgdl", with_unit=True) == "90 mg/dL"
    with pytest.raises(ValueError):
        format_glucose(5.0, "grams")  # type: ignore[arg-type]
