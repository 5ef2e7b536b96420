"""One rate limiter for every outgoing call, shaped like Telegram's flood limits.

Telegram: about 1 message/s per private chat (short bursts tolerated), 20/min per group, and
about 30/s for bulk messages the bot starts itself. Replies to a user who just wrote are not
bulk, so only calls made with `rate_limit_args={"bulk": True}` (the outbox worker) take a
token from the global bucket; `{"bulk": True, "urgent": True}` (alerts) go first there. A 429
that slips through is honoured (`retry_after`) and retried.

`rate_limit_args={"before_send": <coroutine function>}` is awaited right before each request goes
out, after every wait here (one can be long under 429s): the outbox checks there that the row it is
about to send is still its own (bot.services.outbox). If it raises, the request is not sent.

A direct call (no `rate_limit_args`: a handler's reply, edit or button answer) that fails with a 5xx
or a connection error is sent again after each of NETWORK_RETRY_DELAYS: Telegram documents 5xx as
transient ("bots must retry"), and without it the patient's reading was stored but they were told
"Sorry, something went wrong", inviting them to send it again (a second reading). One retry was
not enough: with 1 % of sends failing, a 500/s load lost 1-2 answers in 15 000 to a retry that
failed too (bench.alerts, 2026-12-04); three retries over ~4 s ride out a short incident. At worst, when
Telegram did deliver despite the error, the reply arrives twice: the at-least-once the outbox already
accepts for a 5xx. Not after a timeout (the request may well have gone through; the patient's
message is not lost either way), and not for the outbox's calls, which retry with their lease.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import BaseRateLimiter

NETWORK_RETRY_DELAYS = (0.3, 1.0, 3.0)  # seconds before each new try of a direct call that met a 5xx
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


class SendWindow:
    """At most `limit` sends in any `window` seconds, counted the way the server counts them.

    The server sees a message at some instant between our request's start and its response, so a
    send occupies a slot from its start until `window` seconds after its response. Then no 1 s
    window at the server can hold more than `limit` arrivals, whatever the event-loop or HTTP
    jitter, and an idle bot may still send `limit` at once (a token bucket needed burst 1 and
    25/s of 30 to stay clear of 429s, so a circle's 19 copies took 0.76 s even when idle).
    Waiters queue FIFO behind one lock, so thousands of them do not all wake at each slot.

    Urgent sends (`acquire(urgent=True)`: alerts) queue behind a lock of their own, and an
    ordinary waiter steps aside while any urgent one waits, so an alert takes the next free slot
    however many reminders are queued. Both lanes count in the same window: the limit holds for
    the sum (the check and the taking of a slot happen with no await in between)."""

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self._ends: deque[float] = deque()  # when each finished send stops counting (sorted)
        self._inflight = 0
        self._lock = asyncio.Lock()
        self._urgent_lock = asyncio.Lock()
        self._urgent_waiting = 0

    async def acquire(self, urgent: bool = False) -> None:
        if urgent:
            self._urgent_waiting += 1
        try:
            async with self._urgent_lock if urgent else self._lock:
                while True:
                    now = time.monotonic()
                    while self._ends and self._ends[0] <= now:
                        self._ends.popleft()
                    free = self._inflight + len(self._ends) < self.limit
                    if free and (urgent or not self._urgent_waiting):
                        self._inflight += 1
                        return
                    if free:  # an urgent send is about to take it; look again shortly
                        await asyncio.sleep(0.002)
                    else:
                        await asyncio.sleep(self._ends[0] - now if self._ends else 0.005)
        finally:
            if urgent:
                self._urgent_waiting -= 1

    def release(self) -> None:
        self._inflight -= 1
        self._ends.append(time.monotonic() + self.window)


class FloodLimiter(BaseRateLimiter[dict[str, Any]]):
    def __init__(
        self,
        *,
        private_rate: float = 1.0,
        private_burst: float = 4,
        group_per_minute: int = 20,
        bulk_per_second: int = 30,  # Telegram's ~30/s; SendWindow already allows for send-time jitter
        max_retries: int = 3,
    ) -> None:
        self._private = (private_rate, private_burst)
        # Groups: ~1 msg/s like any chat, and at most 20 in any minute. One bucket of 19/min with burst 3
        # made every group message after the third wait 3.2 s even in a quiet minute.
        self._group = (private_rate, 3.0)
        self._group_limit = group_per_minute
        self._group_windows: dict[int | str, SendWindow] = {}
        self._bulk = SendWindow(bulk_per_second, 1.0)
        self._chats: dict[int | str, TokenBucket] = {}
        self._max_retries = max_retries
        self.retries_after_429 = 0
        self.retries_after_5xx = 0

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

    def _group_window(self, chat_id: int | str) -> SendWindow | None:
        if not (isinstance(chat_id, str) or int(chat_id) < 0):
            return None
        window = self._group_windows.get(chat_id)
        if window is None:
            window = self._group_windows[chat_id] = SendWindow(self._group_limit, 60.0)
        return window

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
        network_retries = 0 if rate_limit_args else len(NETWORK_RETRY_DELAYS)  # direct calls only (docstring)
        before_send = rate_limit_args.get("before_send") if rate_limit_args else None
        while True:
            group = None
            if endpoint in SEND_METHODS and "chat_id" in data:
                wait = self._chat_bucket(data["chat_id"]).reserve()
                if wait > 0:
                    await asyncio.sleep(wait)
                group = self._group_window(data["chat_id"])
                if group is not None:
                    await group.acquire()
            # The bulk slot is taken only once the chat allows the send: reserving both at once
            # wasted the global slot whenever the chat wait was longer.
            bulk = endpoint in SEND_METHODS and bool(rate_limit_args and rate_limit_args.get("bulk"))
            if bulk:
                try:
                    await self._bulk.acquire(urgent=bool(rate_limit_args and rate_limit_args.get("urgent")))
                except BaseException:
                    if group is not None:
                        group.release()
                    raise
            try:
                if before_send is not None:  # the outbox's lease check, after every wait above
                    await before_send()
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                attempt += 1
                self.retries_after_429 += 1
                if attempt > self._max_retries:
                    raise
                delay = exc.retry_after
                seconds = delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay)
            except NetworkError as exc:
                if network_retries == 0 or isinstance(exc, TimedOut | BadRequest):  # PTB's BadRequest is one too
                    raise
                seconds = NETWORK_RETRY_DELAYS[len(NETWORK_RETRY_DELAYS) - network_retries]
                network_retries -= 1
                self.retries_after_5xx += 1
            finally:
                if bulk:
                    self._bulk.release()
                if group is not None:
                    group.release()
            await asyncio.sleep(seconds + 0.05)
