"""Abuse: a flooding user is throttled without slowing anyone else; odd names are safe."""

from __future__ import annotations

import asyncio
import time

from bot.app import CareCircle
from bot.sandbox import FakeTelegram
from tests.e2e.helpers import patient


async def test_flooding_user_does_not_slow_others(tg: FakeTelegram, app: CareCircle) -> None:
    flooder = await patient(tg, name="Flood")
    calm = await patient(tg, name="Calm")
    app.application.update_processor.max_queued_per_chat = 5  # type: ignore[attr-defined]  # keep the test short
    await asyncio.gather(*(flooder.send(f"{120 + i % 30}/80") for i in range(50)))  # ~50 messages at once
    started = time.monotonic()
    await calm.send("135/85")
    reply = await calm.next_message(timeout=3)
    assert "135/85" in reply.text
    assert time.monotonic() - started < 2.0
    assert tg.stats.too_many_requests == 0  # the flooder's replies wait in our limiter, not at Telegram
    processor = app.application.update_processor
    assert processor.dropped > 0  # type: ignore[attr-defined]


async def test_html_sql_and_bidi_names_are_shown_as_plain_text(tg: FakeTelegram, app: CareCircle) -> None:
    u = tg.user("<b>Bob</b>'; DROP TABLE users;--\u202e", language_code="en")
    await u.send("/start")
    welcome = await u.next_message()
    assert welcome.parse_mode is None
    user = await app.services.users.by_telegram(u.id)
    assert user is not None and user.first_name.startswith("<b>Bob</b>'; DROP TABLE users;--")
    long_text = "血压 " + "x" * 4090
    await u.send(long_text[:4096])
    answer = await u.next_message()
    assert len(answer.text) < 4096
