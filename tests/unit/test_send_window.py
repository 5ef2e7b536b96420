"""bot.telegram.ratelimit: the bulk limit as Telegram counts it (any 1 s window), without wasting the
burst an idle bot is allowed, and the chat wait taken before the global slot."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.telegram.ratelimit import FloodLimiter, SendWindow


async def test_window_lets_the_limit_through_at_once_then_waits_a_window_after_a_finish() -> None:
    window = SendWindow(5, 0.3)
    t0 = time.monotonic()
    for _ in range(5):
        await window.acquire()
    assert time.monotonic() - t0 < 0.05  # no wasted burst
    sixth = asyncio.create_task(window.acquire())
    await asyncio.sleep(0.1)
    assert not sixth.done()  # five in flight: nobody else
    finished = time.monotonic()
    window.release()
    await sixth
    assert time.monotonic() - finished >= 0.29  # a finished send counts for a whole window after it


async def test_bulk_sends_never_exceed_30_in_any_second_at_the_server() -> None:
    limiter = FloodLimiter()
    arrivals: list[float] = []

    async def send(**_kwargs: Any) -> bool:
        await asyncio.sleep(0.005)  # the request travels: the server sees it later than we started it
        arrivals.append(time.monotonic())
        await asyncio.sleep(0.005)
        return True

    t0 = time.monotonic()
    await asyncio.gather(*(limiter.process_request(send, (), {}, "sendMessage", {"chat_id": 1000 + i},
                                                   {"bulk": True}) for i in range(75)))
    arrivals.sort()
    assert sum(1 for a in arrivals if a - t0 < 0.2) == 30  # the first 30 at once, as Telegram allows
    for i, start in enumerate(arrivals):
        assert sum(1 for a in arrivals[i:] if a - start < 1.0) <= 30
    assert time.monotonic() - t0 < 2.5  # 75 messages: 30 + 30 + 15, about one window each


async def test_a_chat_wait_does_not_hold_a_global_slot() -> None:
    limiter = FloodLimiter(private_burst=1)

    async def send(**_kwargs: Any) -> bool:
        return True

    for _ in range(2):  # the same chat twice: the second waits ~1 s for the chat, not for the bulk limit
        await limiter.process_request(send, (), {}, "sendMessage", {"chat_id": 7}, {"bulk": True})
    t0 = time.monotonic()
    await asyncio.gather(*(limiter.process_request(send, (), {}, "sendMessage", {"chat_id": 100 + i},
                                                   {"bulk": True}) for i in range(28)))
    assert time.monotonic() - t0 < 0.5  # 2 + 28 = 30 in the window: nobody waits
