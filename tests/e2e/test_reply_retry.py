"""A direct reply that meets a 5xx is sent again (bot/telegram/ratelimit.py): the patient who sent
a reading gets "Saved", not "Sorry, something went wrong" (which invites sending it again). At most
three more times, and not for a 400. Real app on SQLite, FakeTelegram over HTTP."""

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


async def test_a_reply_that_met_two_500s_is_still_delivered(app: CareCircle, tg: FakeTelegram) -> None:
    u = await patient(tg, "Wang")
    tg.fail_next("sendMessage", 500, count=2, chat_id=u.chat_id)  # the first retry fails too
    await u.send("131/82")
    assert "Saved: BP 131/82" in (await u.next_message(timeout=5)).text
    await asyncio.sleep(0.5)
    assert u.drain() == []
    assert app.application.bot.rate_limiter.retries_after_5xx == 2  # type: ignore[union-attr]


async def test_three_retries_at_most_and_never_after_a_400(app: CareCircle, tg: FakeTelegram) -> None:
    u = await patient(tg, "Wang")
    tg.fail_next("sendMessage", 500, count=4, chat_id=u.chat_id)  # every retry fails: the apology
    await u.send("131/82")
    assert SORRY in (await u.next_message(timeout=10)).text
    tg.fail_next("sendMessage", 400, description="Bad Request: custom", chat_id=u.chat_id)
    await u.send("132/83")
    assert SORRY in (await u.next_message(timeout=5)).text
    await asyncio.sleep(0.5)
    assert u.drain() == []
    assert app.application.bot.rate_limiter.retries_after_5xx == 3  # type: ignore[union-attr]
    assert await _readings(app) == 2  # stored all the same; only the answer was lost
