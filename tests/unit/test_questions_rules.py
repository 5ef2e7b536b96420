"""Pure rules behind questions: working hours (when to expect an answer) and what sounds urgent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.clinical.questions import question_safety
from bot.services.working_hours import WorkingHours


@pytest.mark.parametrize(("utc", "expected"), [
    (datetime(2026, 11, 24, 2, 0, tzinfo=UTC), None),                 # Tue 10:00 Shanghai: working
    (datetime(2026, 11, 24, 9, 30, tzinfo=UTC), "Wed 08:00"),         # Tue 17:30: just closed
    (datetime(2026, 11, 23, 23, 59, tzinfo=UTC), "Tue 08:00"),        # Tue 07:59: opens today
    (datetime(2026, 11, 27, 10, 0, tzinfo=UTC), "Mon 08:00"),         # Fri 18:00: after the weekend
    (datetime(2026, 11, 28, 4, 0, tzinfo=UTC), "Mon 08:00"),          # Saturday noon
])
def test_next_working_hours_default_team(utc: datetime, expected: str | None) -> None:
    opens = WorkingHours().next_open(utc)
    assert (opens.strftime("%a %H:%M") if opens else None) == expected


def test_team_hours_and_zone_are_used_and_bad_values_fall_back() -> None:
    hours = WorkingHours.of("Europe/Berlin", "09:15", "16:00")
    opens = hours.next_open(datetime(2026, 11, 24, 16, 30, tzinfo=UTC))  # Tue 17:30 in Berlin
    assert opens is not None and opens.strftime("%a %H:%M %Z") == "Wed 09:15 CET"
    assert hours.is_open(datetime(2026, 11, 24, 8, 15, tzinfo=UTC))
    assert WorkingHours.of(None, "late", "", "Asia/Shanghai") == WorkingHours()


@pytest.mark.parametrize(("text", "urgent"), [
    ("I have chest pain since this morning", True),
    ("我胸口痛，怎么办", True),
    ("my mother fainted in the kitchen", True),
    ("blood pressure 190/120, should I take another pill?", True),
    ("glucose 3.1 and shaking", True),
    ("I am pregnant, can I keep taking my pills?", False),          # pregnancy counts only with raised BP
    ("pregnant and my bp was 150/95", True),
    ("a little dizzy after the new pill", False),                   # plain dizziness only with a low reading
    ("no chest pain, just asking about salt", False),
    ("Can I eat rice in the evening?", False),
    ("bp 135/85 this morning, is that fine?", False),
])
def test_what_sounds_urgent(text: str, urgent: bool) -> None:
    assert question_safety(text).urgent is urgent
