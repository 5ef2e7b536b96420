"""Pure rules for peer-support circles: what must never be relayed, and flood control.

Why here: a member in "circle mode" types to the circle, but a message like "胸痛" or "BP 190/120"
is an emergency, not a chat line. Holding it back and answering privately (with the doctor
alerted) must not depend on Telegram or the database, so it is a pure function tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clinical.assessment import assess
from bot.clinical.danger import detect_danger_signs
from bot.clinical.parsing import ParsedReading, parse_readings

# Flood control: a design choice of the circle feature (not a clinical rule): at most 5 messages
# in any 10 seconds per member, then a polite "slow down". Telegram itself allows ~1 msg/s per chat,
# and every member message fans out to up to 29 chats, so a burst from one member costs the circle.
FLOOD_MAX_MESSAGES = 5
FLOOD_WINDOW = timedelta(seconds=10)


@dataclass(frozen=True)
class SafetyCheck:
    """What a member's text holds that must go to their doctor instead of to the circle."""

    urgent_readings: tuple[ParsedReading, ...] = ()
    danger_signs: frozenset[str] = field(default_factory=frozenset)

    @property
    def hold(self) -> bool:
        """True: do not relay; answer privately with safety advice and alert the doctor."""
        return bool(self.urgent_readings or self.danger_signs)


def safety_check(text: str) -> SafetyCheck:
    """Urgent readings (by the reference's urgent categories) and danger-sign phrases in `text`.

    A plausible reading that is not urgent is left alone: members may talk about their numbers.
    A reading that cannot be stored as is (out of range, unclear unit) is not judged here."""
    urgent = tuple(p for p in parse_readings(text) if p.problem is None and assess(p).urgent)
    return SafetyCheck(urgent, detect_danger_signs(text))


def is_flooding(recent: Sequence[datetime], now: datetime, *, max_messages: int = FLOOD_MAX_MESSAGES,
                window: timedelta = FLOOD_WINDOW) -> bool:
    """True when one more message now would exceed `max_messages` inside `window`.

    `recent` are the member's earlier message times (any order)."""
    return sum(1 for at in recent if now - at < window) >= max_messages
