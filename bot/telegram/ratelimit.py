"""One rate limiter for every outgoing call, shaped like Telegram's flood limits.

Telegram: about 1 message/s per private chat (short bursts tolerated), 20/min per group, and
about 30/s for bulk messages the bot starts itself. Replies to a user who just wrote are not
bulk, so only calls made with `rate_limit_args={"bulk": True}` (the outbox worker) take a
token from the global bucket. A 429 that slips through is honoured (`retry_after`) and retried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

SEND_METHODS = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "copyMessage", "forwardMessage", "sendSticker",
     "sendVoice", "sendMediaGroup", "sendLocation", "sendContact", "sendPoll"}
)


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float = field(init=False)
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def reserve(self) -> float:
        """Take one token; return how long the caller must wait before using it."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class FloodLimiter(BaseRateLimiter[dict[str, Any]]):
    def __init__(
        self,
        *,
        private_rate: float = 1.0,
        private_burst: float = 4,
        group_per_minute: float = 19,
        bulk_per_second: float = 25,  # 30/s minus headroom for send-time jitter (event loop, HTTP)
        max_retries: int = 3,
    ) -> None:
        self._private = (private_rate, private_burst)
        self._group = (group_per_minute / 60.0, 3.0)
        # Burst of 1: a token bucket lets `capacity + rate` through in any 1 s window, and Telegram (and the
        # fake) count a sliding 1 s window of 30: 14 + 28 = 42 gave 429s under circle fan-out (bench.circles).
        self._bulk = TokenBucket(bulk_per_second, 1.0)
        self._chats: dict[int | str, TokenBucket] = {}
        self._max_retries = max_retries
        self.retries_after_429 = 0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def _chat_bucket(self, chat_id: int | str) -> TokenBucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            is_group = isinstance(chat_id, str) or int(chat_id) < 0
            rate, capacity = self._group if is_group else self._private
            bucket = self._chats[chat_id] = TokenBucket(rate, capacity)
            if len(self._chats) > 50_000:  # idle buckets are full anyway; forget the oldest
                for key in list(self._chats)[:10_000]:
                    del self._chats[key]
        return bucket

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        attempt = 0
        while True:
            if endpoint in SEND_METHODS and "chat_id" in data:
                wait = self._chat_bucket(data["chat_id"]).reserve()
                if rate_limit_args and rate_limit_args.get("bulk"):
                    wait = max(wait, self._bulk.reserve())
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                attempt += 1
                self.retries_after_429 += 1
                if attempt > self._max_retries:
                    raise
                delay = exc.retry_after
                seconds = delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay)
                await asyncio.sleep(seconds + 0.05)
