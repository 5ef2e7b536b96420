"""A direct reply that meets a 5xx is sent once more (bot/telegram/ratelimit.py): the patient who sent
a reading gets "Saved", not "Sorry, something went wrong" (which invites sending it again). Only
once, and not for a 400. Real app on SQLite, FakeTelegram over HTTP."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.app import CareCircle
from bot.sandbox import FakeTelegram
from storage.models import Reading
from tests.e2e.helpers import patient

SORRY = "something went wrong"


async def _readings(app: CareCircle) -> int:
    async with app.services.sessions() as session:
        return int(await session.scalar(select(func.count(Reading.id))) or 0)


async def test_a_reply_that_met_a_500_is_sent_once_more(app: CareCircle, tg: FakeTelegram) -> None:
    u = await patient(tg, "Wang")
    tg.fail_next("sendMessage", 500, chat_id=u.chat_id)
    await u.send("131/82")
    assert "Saved: BP 131/82" in (await u.next_message(timeout=5)).text
    await asyncio.sleep(0.5)
    assert u.drain() == []  # no apology, no second copy
    assert app.application.bot.rate_limiter.retries_after_5xx == 1  # type: ignore[union-attr]
    assert await _readings(app) == 1


async def test_only_once_and_never_after_a_400(app: CareCircle, tg: FakeTelegram) -> None:
    u = await patient(tg, "Wang")
    tg.fail_next("sendMessage", 500, count=2, chat_id=u.chat_id)  # the retry fails too: the apology
    await u.send("131/82")
    assert SORRY in (await u.next_message(timeout=5)).text
    tg.fail_next("sendMessage", 400, description="Bad Request: custom", chat_id=u.chat_id)
    await u.send("132/83")
    assert SORRY in (await u.next_message(timeout=5)).text
    await asyncio.sleep(0.5)
    assert u.drain() == []
    assert app.application.bot.rate_limiter.retries_after_5xx == 1  # type: ignore[union-attr]
    assert await _readings(app) == 2  # stored all the same; only the answer was lost
