"""Follow-up (随访) schedule the family-doctor team tracks.

Why pure functions over dates: the doctor side lists overdue patients every day for panels of
thousands; the rules ("Follow-up (随访) rules", BP-UNCONTROLLED, GLU-UNCONTROLLED) must be the same
in the list, the reminder and the export, and easy to test.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from bot.clinical import thresholds as th

Risk = Literal["standard", "high"]
Outcome = Literal["controlled", "unsatisfactory", "adverse_reaction", "complication"]
FOLLOWUP_OUTCOMES: tuple[str, ...] = ("controlled", "unsatisfactory", "adverse_reaction", "complication")
_RECHECK_OUTCOMES = frozenset({"unsatisfactory", "adverse_reaction", "complication"})


def next_followup_due(
    last_followup_date: date,
    risk: Risk = "standard",
    last_outcome: Outcome | None = None,
    urgent_since_last: bool = False,
    *,
    urgent_on: date | None = None,
    plan_days: int | None = None,
) -> date:
    """Date the next follow-up is due.

    - standard risk: quarterly (90 days; "at least 4 a year");
    - high risk / severe: monthly (30 days);
    - the patient's care plan interval (``plan_days``, issue 10) when there is a plan. The reference
      gives the risk interval as a minimum frequency ("at least 4 a year", "severe monthly"), so the
      plan may only bring the date forward: a plan of 14 days gives 14, a plan of 180 days for a
      standard-risk patient still gives 90 (the risk interval is the upper bound);
    - after an unsatisfactory / adverse-reaction / complication follow-up, or an urgent referral since
      the last follow-up: within 2 weeks (BP-UNCONTROLLED; "after an urgent referral: within 2 weeks").
      When the urgent event's date is known (``urgent_on``) the 2 weeks count from it, otherwise from
      the last follow-up.  The earliest applicable date wins.
    """
    # clinical-reference: Follow-up rules (quarterly standard, monthly severe)
    days = th.FOLLOWUP_HIGH_RISK_DAYS if risk == "high" else th.FOLLOWUP_STANDARD_DAYS
    # clinical-reference: Follow-up rules (at least quarterly / monthly): the plan can only shorten
    if plan_days is not None and plan_days > 0:
        days = min(days, plan_days)
    due = last_followup_date + timedelta(days=days)
    # clinical-reference: BP-UNCONTROLLED (recheck within 2 weeks)
    if last_outcome in _RECHECK_OUTCOMES:
        due = min(due, last_followup_date + timedelta(days=th.FOLLOWUP_RECHECK_DAYS))
    # clinical-reference: Follow-up rules (after an urgent referral: within 2 weeks)
    if urgent_since_last or urgent_on is not None:
        base = urgent_on if urgent_on is not None else last_followup_date
        due = min(due, base + timedelta(days=th.FOLLOWUP_RECHECK_DAYS))
    return due


def needs_referral(consecutive_uncontrolled: int) -> bool:
    """Refer when uncontrolled at 2 consecutive follow-ups (BP-UNCONTROLLED / GLU-UNCONTROLLED)."""
    # clinical-reference: BP-UNCONTROLLED / GLU-UNCONTROLLED
    return consecutive_uncontrolled >= th.REFERRAL_CONSECUTIVE_UNCONTROLLED


def glucose_uncontrolled_at_followup(fasting_mmol: float) -> bool:
    """Fasting >= 7.0 at a follow-up counts as uncontrolled."""
    return fasting_mmol >= th.GLU_UNCONTROLLED_FASTING  # clinical-reference: GLU-UNCONTROLLED


def is_overdue(due: date, today: date) -> bool:
    """Overdue from the day after the due date."""
    return today > due


def is_lost_to_followup(last_contact: date, today: date) -> bool:
    """No contact for 12 months (365 days) = lost to follow-up (失访)."""
    return (today - last_contact).days >= th.LOST_TO_FOLLOWUP_DAYS
