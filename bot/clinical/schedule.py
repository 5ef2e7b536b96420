"""When is a reminder next due? Pure functions: local times + weekdays + IANA zone -> UTC instant.

Why here and pure: reminders are stored as one row with `next_due_at` (UTC) so the tick is one
indexed query; everything about local clocks (DST gaps and overlaps, weekdays, quiet hours)
is decided by these functions, which are unit-tested across time zones without a database.

Rules:
- Times are local wall-clock "HH:MM"; weekdays use Python's numbering (Mon=0 .. Sun=6), an
  empty set means every day.
- A local time that does not exist (spring-forward gap, e.g. 02:30 in New York on the DST day)
  fires at the same offset after the gap (03:30 local): the person still gets it that day.
- A local time that happens twice (fall-back overlap) fires once, at its first occurrence.
- Quiet hours are a local window [start, end), wrapping midnight when start > end
  (default 22:00-07:00). Equal start and end means "no quiet hours".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_QUIET_START = time(22, 0)
DEFAULT_QUIET_END = time(7, 0)
MAX_LATE = timedelta(hours=2)  # a reminder later than this is dropped, never sent (design choice)
# Missed-reading rhythm: a design choice of issue 6 (not in the clinical reference); stored per
# patient, these are only the defaults.
DEFAULT_RHYTHM_DAYS = {"hypertension": 3, "diabetes": 3}
EVERY_DAY: frozenset[int] = frozenset(range(7))
WEEKDAYS_MON_FRI: frozenset[int] = frozenset(range(5))

_TIME_RE = re.compile(r"^\s*(\d{1,2})\s*[:：.]\s*(\d{2})\s*$|^\s*(\d{1,2})\s*$")


def parse_times(text: str) -> tuple[time, ...] | None:
    """"08:00, 20:00" (also "8", "8:00 20:00", full-width colon) -> sorted unique times, or None."""
    text = text.translate(str.maketrans("０１２３４５６７８９，、", "0123456789,,"))
    parts = [p for p in re.split(r"[,;\s]+", text.strip()) if p]
    if not parts or len(parts) > 6:
        return None
    found: set[time] = set()
    for part in parts:
        m = _TIME_RE.match(part)
        if not m:
            return None
        hour = int(m.group(1) or m.group(3))
        minute = int(m.group(2) or 0)
        if hour > 23 or minute > 59:
            return None
        found.add(time(hour, minute))
    return tuple(sorted(found))


def format_times(times: Iterable[time]) -> str:
    return ",".join(t.strftime("%H:%M") for t in times)


def times_from_str(stored: str) -> tuple[time, ...]:
    """The stored "08:00,20:00" form back to times (stored values were validated on the way in)."""
    return tuple(sorted(time.fromisoformat(p) for p in stored.split(",") if p))


def weekdays_from_str(stored: str) -> frozenset[int]:
    """Stored "01234" -> {0..4}; "" -> every day."""
    days = frozenset(int(c) for c in stored if c.isdigit() and int(c) < 7)
    return days or EVERY_DAY


def weekdays_to_str(days: Iterable[int]) -> str:
    days = frozenset(days)
    return "" if not days or days == EVERY_DAY else "".join(str(d) for d in sorted(days))


def zone(name: str) -> ZoneInfo:
    """The IANA zone, falling back to Asia/Shanghai for a name this system does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock `at` on `day` in `tz` (gap: shifted forward; overlap: first)."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=tz, fold=0)
    # In a gap, fold=0 uses the offset before the transition, which lands after the gap by the
    # gap's length (02:30 -> 03:30 EDT); in an overlap fold=0 is the first (earlier) instant.
    return first.astimezone(UTC)


def next_occurrence(times: Iterable[time], weekdays: Iterable[int] | None, tz: str | ZoneInfo,
                    after: datetime) -> datetime | None:
    """The first instant strictly after `after` (aware) when one of `times` falls on an allowed
    local weekday in `tz`; None when no times are given."""
    ordered = sorted(set(times))
    if not ordered:
        return None
    zone_ = tz if isinstance(tz, ZoneInfo) else zone(tz)
    days = frozenset(weekdays or ()) or EVERY_DAY
    start = after.astimezone(zone_).date() - timedelta(days=1)
    for offset in range(0, 10):
        day = start + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        candidates = sorted(local_instant(day, t, zone_) for t in ordered)
        for candidate in candidates:
            if candidate > after:
                return candidate
    return None  # unreachable with a non-empty weekday set


def in_quiet_hours(instant: datetime, tz: str | ZoneInfo, start: time = DEFAULT_QUIET_START,
                   end: time = DEFAULT_QUIET_END) -> bool:
    """Does `instant` fall inside the person's local quiet window [start, end)?"""
    if start == end:
        return False
    zone_ = tz if isinstance(tz, ZoneInfo) else zone(tz)
    local = instant.astimezone(zone_).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_hours_end(instant: datetime, tz: str | ZoneInfo, end: time = DEFAULT_QUIET_END) -> datetime:
    """The next local `end` time after `instant`: where a postponed message goes."""
    result = next_occurrence((end,), None, tz, instant)
    assert result is not None
    return result


def is_too_late(due: datetime, now: datetime, max_late: timedelta = MAX_LATE) -> bool:
    """A reminder this late is dropped: "measure your BP" at the wrong time does more harm than good."""
    return now - due > max_late


def rhythm_days(conditions: Iterable[str]) -> int:
    """Default days without a reading before a gentle nudge, for the person's conditions."""
    values = [DEFAULT_RHYTHM_DAYS[c] for c in conditions if c in DEFAULT_RHYTHM_DAYS]
    return min(values) if values else 3
