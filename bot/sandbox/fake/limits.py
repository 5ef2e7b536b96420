"""Flood limits of the fake Bot API.

Telegram does not publish exact algorithms; ``telegram-facts.md`` gives the orders of magnitude.  The
fake uses simple, deterministic rules so a test knows exactly when a 429 must come:

* private chat: token bucket, ``private_chat_burst`` messages at once, refilled at ``private_chat_rate``
  per second (defaults 5 and 1.0/s: the fake's conservative rule, not Telegram's published number);
* group: at most ``group_limit`` messages in any ``group_window`` seconds (default 20 per 60 s, the
  number the Bot FAQ gives);
* bulk: at most ``bulk_limit`` messages in any ``bulk_window`` seconds (default 30 per 1 s) over all
  chats, counting only messages to chats that sent no update in the last ``bulk_idle_after`` seconds
  (default 60 s: the fake's rule, not Telegram's published number).

``retry_after`` is always a whole number of seconds, at least 1, computed from when the request would
have succeeded.  A rejected request consumes nothing.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass
class RateLimits:
    """The tunable numbers; see the module docstring for what each one means."""

    enabled: bool = True
    private_chat_rate: float = 1.0
    private_chat_burst: int = 5
    group_limit: int = 20
    group_window: float = 60.0
    bulk_limit: int = 30
    bulk_window: float = 1.0
    bulk_idle_after: float = 60.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """Decides whether one more message to a chat may go out now."""

    limits: RateLimits
    _buckets: dict[int, _Bucket] = field(default_factory=dict)
    _group_sent: dict[int, deque[float]] = field(default_factory=dict)
    _bulk_sent: deque[float] = field(default_factory=deque)

    def reset(self) -> None:
        self._buckets.clear()
        self._group_sent.clear()
        self._bulk_sent.clear()

    def check(self, chat_id: int, *, is_group: bool, is_bulk: bool, now: float) -> int | None:
        """Return ``retry_after`` seconds when the message must be refused, else record it and return None."""
        if not self.limits.enabled:
            return None
        waits: list[float] = []
        bucket: _Bucket | None = None
        window: deque[float] | None = None
        if is_group:
            window = self._group_sent.setdefault(chat_id, deque())
            _expire(window, now - self.limits.group_window)
            if len(window) >= self.limits.group_limit:
                waits.append(window[0] + self.limits.group_window - now)
        else:
            bucket = self._buckets.get(chat_id)
            if bucket is None:
                bucket = self._buckets[chat_id] = _Bucket(float(self.limits.private_chat_burst), now)
            bucket.tokens = min(
                float(self.limits.private_chat_burst),
                bucket.tokens + (now - bucket.updated) * self.limits.private_chat_rate,
            )
            bucket.updated = now
            if bucket.tokens < 1.0:
                waits.append((1.0 - bucket.tokens) / self.limits.private_chat_rate)
        if is_bulk:
            _expire(self._bulk_sent, now - self.limits.bulk_window)
            if len(self._bulk_sent) >= self.limits.bulk_limit:
                waits.append(self._bulk_sent[0] + self.limits.bulk_window - now)
        if waits:
            return max(1, math.ceil(max(waits)))
        if bucket is not None:
            bucket.tokens -= 1.0
        if window is not None:
            window.append(now)
        if is_bulk:
            self._bulk_sent.append(now)
        return None


def _expire(window: deque[float], cutoff: float) -> None:
    while window and window[0] <= cutoff:
        window.popleft()
