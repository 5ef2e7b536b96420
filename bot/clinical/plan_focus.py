"""Which of a care plan's lifestyle goals are not (known to be) met: what the tips should work on.

Why pure: the plan (issue 10) "drives the reminders, the targets and the tips". The tip service
turns these goal names into tip topics; the rule itself must be testable without a database and
must read the follow-up form's answers the same way whether they came from chat buttons ("1-5",
"11+", "<1") or from a doctor typing a number.

Rules (design choices, documented here once):
- A goal counts when the plan sets it and the latest follow-up answers do not show it met. No answer
  means "not known to be met": the goal counts (the plan asks for it, so the tips support it).
- "At most" goals (cigarettes, alcohol, staple food) are met when the highest value the answer allows
  is at or under the goal ("1-5" cigarettes with a goal of 0 is not met; "0" is).
- Exercise minutes a week are met when times-a-week x minutes-each (their lowest values) reach the goal.
- Salt: the form only asks light / medium / heavy (NBPHS-3 follow-up form); "light" counts as within a
  grams-a-day goal, medium and heavy do not.
- Weight counts only when it is known to be above the plan's BMI or weight target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.clinical.plan import Lifestyle

GOALS = ("salt", "cigarettes", "alcohol", "exercise", "staple", "weight")
_RANGE = re.compile(r"^\s*(<)?\s*(\d+(?:\.\d+)?)\s*(?:[-~到]\s*(\d+(?:\.\d+)?))?\s*(\+)?")


@dataclass(frozen=True)
class Reported:
    """The lifestyle part of the latest follow-up form, as stored (FollowUpForm fields)."""

    cigarettes_per_day: str = ""
    alcohol_liang_per_day: str = ""
    exercise_per_week: str = ""
    exercise_minutes: str = ""
    salt: str = ""
    staple_g_per_day: str = ""

    @classmethod
    def of(cls, details: dict[str, Any] | None) -> Reported:
        d = details or {}
        return cls(*(str(d.get(name, "") or "") for name in (
            "cigarettes_per_day", "alcohol_liang_per_day", "exercise_per_week", "exercise_minutes", "salt",
            "staple_g_per_day")))

    @property
    def smokes(self) -> bool:
        """Reported smoking at least one cigarette a day."""
        low = value_range(self.cigarettes_per_day)
        return low is not None and low[0] > 0


def value_range(text: str) -> tuple[float, float] | None:
    """'1-5' -> (1, 5); '11+' -> (11, inf); '<1' -> (0, 1); '6' -> (6, 6); '' or words -> None."""
    m = _RANGE.match(text or "")
    if m is None:
        return None
    below, first, second, plus = m.groups()
    value = float(first)
    if below:
        return 0.0, value
    if second is not None:
        return value, float(second)
    return (value, float("inf")) if plus else (value, value)


def _at_most_met(answer: str, goal: float) -> bool:
    found = value_range(answer)
    return found is not None and found[1] <= goal


def goals_not_met(lifestyle: Lifestyle, reported: Reported, *, bmi: float | None = None,
                  bmi_target: float | None = None, kg: float | None = None,
                  kg_target: float | None = None) -> frozenset[str]:
    """The names (from GOALS) of the plan's goals the tips should support."""
    out: set[str] = set()
    if lifestyle.salt_g_per_day is not None and reported.salt != "light":
        out.add("salt")
    if lifestyle.cigarettes_per_day is not None and not _at_most_met(reported.cigarettes_per_day,
                                                                     lifestyle.cigarettes_per_day):
        out.add("cigarettes")
    if lifestyle.alcohol_liang_per_day is not None and not _at_most_met(reported.alcohol_liang_per_day,
                                                                        lifestyle.alcohol_liang_per_day):
        out.add("alcohol")
    if lifestyle.exercise_min_per_week is not None:
        times, minutes = value_range(reported.exercise_per_week), value_range(reported.exercise_minutes)
        done = 0.0 if times is not None and times[0] == 0 else (
            times[0] * minutes[0] if times is not None and minutes is not None else None)
        if done is None or done < lifestyle.exercise_min_per_week:
            out.add("exercise")
    if lifestyle.staple_g_per_day is not None and not _at_most_met(reported.staple_g_per_day,
                                                                   lifestyle.staple_g_per_day):
        out.add("staple")
    if (bmi is not None and bmi_target is not None and bmi >= bmi_target) or (
            kg is not None and kg_target is not None and kg > kg_target):
        out.add("weight")
    return frozenset(out)
