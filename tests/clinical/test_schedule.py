"""Next-occurrence, weekdays, DST and quiet hours: pure functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from bot.clinical.schedule import (
    WEEKDAYS_MON_FRI,
    in_quiet_hours,
    is_too_late,
    next_occurrence,
    parse_times,
    quiet_hours_end,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_parse_times() -> None:
    assert parse_times("08:00, 20:00") == (time(8), time(20))
    assert parse_times("20:00 8") == (time(8), time(20))
    assert parse_times("７：３０") == (time(7, 30),)
    assert parse_times("25:00") is None and parse_times("soon") is None and parse_times("") is None


def test_shanghai_next_and_same_day() -> None:
    # 23:30 UTC = 07:30 Shanghai next day
    assert next_occurrence([time(8)], None, "Asia/Shanghai", utc(2026, 3, 1, 23, 30)) == utc(2026, 3, 2, 0, 0)
    # exactly at the due instant: strictly after -> the next slot
    assert next_occurrence([time(8), time(20)], None, "Asia/Shanghai", utc(2026, 3, 2, 0, 0)) == utc(2026, 3, 2, 12)


def test_urumqi_is_utc_plus_6() -> None:
    assert next_occurrence([time(8)], None, "Asia/Urumqi", utc(2026, 3, 1, 0, 0)) == utc(2026, 3, 1, 2, 0)


def test_weekdays_mon_fri_skips_weekend() -> None:
    friday_evening = utc(2026, 3, 6, 13, 0)  # Fri 21:00 Shanghai
    nxt = next_occurrence([time(8)], WEEKDAYS_MON_FRI, "Asia/Shanghai", friday_evening)
    assert nxt == utc(2026, 3, 9, 0, 0)  # Monday 08:00 local
    sunday_only = next_occurrence([time(19)], {6}, "Asia/Shanghai", friday_evening)
    assert sunday_only == utc(2026, 3, 8, 11, 0)


def test_new_york_spring_forward_gap_fires_after_the_gap() -> None:
    # 2026-03-08: 02:00 EST -> 03:00 EDT. 02:30 does not exist: fires at 03:30 EDT = 07:30 UTC.
    nxt = next_occurrence([time(2, 30)], None, "America/New_York", utc(2026, 3, 8, 5, 0))
    assert nxt == utc(2026, 3, 8, 7, 30)
    # 08:00 that day is EDT (UTC-4)
    assert next_occurrence([time(8)], None, "America/New_York", utc(2026, 3, 8, 5, 0)) == utc(2026, 3, 8, 12, 0)


def test_new_york_fall_back_overlap_fires_once() -> None:
    # 2026-11-01: 02:00 EDT -> 01:00 EST; 01:30 happens twice (05:30 and 06:30 UTC).
    first = next_occurrence([time(1, 30)], None, "America/New_York", utc(2026, 11, 1, 4, 0))
    assert first == utc(2026, 11, 1, 5, 30)
    second = next_occurrence([time(1, 30)], None, "America/New_York", first)
    assert second == utc(2026, 11, 2, 6, 30)  # next day (EST), not the repeated 01:30
    # daily 08:00 across the change keeps local 08:00
    assert next_occurrence([time(8)], None, "America/New_York", utc(2026, 10, 31, 13)) == utc(2026, 11, 1, 13)


def test_quiet_hours_wrap_midnight() -> None:
    tz = "Asia/Shanghai"
    assert in_quiet_hours(utc(2026, 3, 1, 15, 0), tz)  # 23:00
    assert in_quiet_hours(utc(2026, 3, 1, 22, 59), tz)  # 06:59
    assert not in_quiet_hours(utc(2026, 3, 1, 23, 0), tz)  # 07:00
    assert not in_quiet_hours(utc(2026, 3, 1, 13, 59), tz)  # 21:59
    assert in_quiet_hours(utc(2026, 3, 1, 5, 0), tz, time(13), time(14))  # 13:00 in a daytime window
    assert not in_quiet_hours(utc(2026, 3, 1, 5, 0), tz, time(7), time(7))  # equal: none
    assert quiet_hours_end(utc(2026, 3, 1, 15, 0), tz) == utc(2026, 3, 1, 23, 0)


def test_too_late() -> None:
    due = utc(2026, 3, 1, 0, 0)
    assert not is_too_late(due, due + timedelta(hours=2))
    assert is_too_late(due, due + timedelta(hours=2, seconds=1))
