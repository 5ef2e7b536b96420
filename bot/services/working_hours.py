"""A care team's working hours, and when the next ones start. Pure: no I/O.

Choice (issue 10): the team's own hours from `teams.work_start` / `teams.work_end` (default
08:00-17:30) in the team's time zone (`teams.timezone`, default Asia/Shanghai), Monday to Friday.
A patient without a team gets the same defaults in the bot's default time zone. Public holidays
are not known to the bot: on a holiday the patient is promised "working hours" that may not come,
which is why the answer says "usually".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

WORK_DAYS = (0, 1, 2, 3, 4)  # Monday-Friday (datetime.weekday())
DEFAULT_START = time(8, 0)
DEFAULT_END = time(17, 30)


def _hhmm(value: str | None, default: time) -> time:
    try:
        hours, minutes = (value or "").split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        return default


@dataclass(frozen=True)
class WorkingHours:
    timezone: str = "Asia/Shanghai"
    start: time = DEFAULT_START
    end: time = DEFAULT_END
    days: tuple[int, ...] = WORK_DAYS

    @classmethod
    def of(cls, timezone: str | None, work_start: str | None, work_end: str | None,
           default_timezone: str = "Asia/Shanghai") -> WorkingHours:
        return cls(timezone or default_timezone, _hhmm(work_start, DEFAULT_START), _hhmm(work_end, DEFAULT_END))

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.timezone))
        return local.weekday() in self.days and self.start <= local.time().replace(tzinfo=None) < self.end

    def next_open(self, now: datetime) -> datetime | None:
        """None while the team is working; otherwise when its next working hours start (team's zone)."""
        if self.is_open(now):
            return None
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        for ahead in range(8):
            day = local.date() + timedelta(days=ahead)
            opening = datetime.combine(day, self.start, tzinfo=zone)
            if day.weekday() in self.days and opening > local:
                return opening
        return None  # no working day at all (misconfigured): promise nothing
