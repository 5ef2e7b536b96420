"""Flood limits (429 + retry_after) and failure injection with ``fail_next``."""

from __future__ import annotations

import aiohttp
import pytest
import telegram
from telegram.error import Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from bot.sandbox import FakeTelegram

# PTB warns about the future type of RetryAfter.retry_after whenever it builds one.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _send(session: aiohttp.ClientSession, tg: FakeTelegram, chat_id: int, text: str = "hi",
                method: str = "sendMessage", **extra: object) -> tuple[int, dict]:
    async with session.post(f"{tg.base_url}{tg.token}/{method}",
                            json={"chat_id": chat_id, "text": text, **extra}) as resp:
        return resp.status, await resp.json()


async def test_private_chat_bucket() -> None:
    clock = Clock()
    async with FakeTelegram(private_chat_burst=3, private_chat_rate=1.0, clock=clock) as tg, \
            aiohttp.ClientSession() as session:
        user = tg.user("Ann")
        await user.send("hi")  # a reply, not bulk
        for _ in range(3):
            assert (await _send(session, tg, user.chat_id))[0] == 200
        status, body = await _send(session, tg, user.chat_id)
        assert status == 429
        assert body == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                        "parameters": {"retry_after": 1}}
        # edits and callback answers do not count
        status, _ = await _send(session, tg, user.chat_id, "edited", method="editMessageText", message_id=2)
        assert status == 200
        clock.now += 1.0
        assert (await _send(session, tg, user.chat_id))[0] == 200
        assert (await _send(session, tg, user.chat_id))[0] == 429
        assert len(user.messages) == 4
        assert tg.stats.too_many_requests == 2 and tg.stats.too_many_requests_injected == 0
        assert [e.retry_after for e in tg.stats.rate_limit_events] == [1, 1]
        async with telegram.Bot(tg.token, base_url=tg.base_url) as bot:
            with pytest.raises(RetryAfter):
                await bot.send_message(user.chat_id, "too fast")


async def test_group_window() -> None:
    clock = Clock()
    async with FakeTelegram(group_limit=3, group_window=60, clock=clock) as tg, aiohttp.ClientSession() as session:
        group = tg.group("Circle")
        for _ in range(3):
            assert (await _send(session, tg, group.id))[0] == 200
            clock.now += 10
        status, body = await _send(session, tg, group.id)
        assert (status, body["parameters"]["retry_after"]) == (429, 30)
        assert body["description"] == "Too Many Requests: retry after 30"
        clock.now += 30
        assert (await _send(session, tg, group.id))[0] == 200


async def test_bulk_counts_only_idle_chats() -> None:
    clock = Clock()
    async with FakeTelegram(bulk_limit=2, bulk_window=1.0, clock=clock) as tg, aiohttp.ClientSession() as session:
        idle = [tg.user(f"Idle {i}", started=True) for i in range(3)]
        active = tg.user("Active")
        await active.send("I just wrote")
        assert (await _send(session, tg, idle[0].chat_id))[0] == 200
        assert (await _send(session, tg, idle[1].chat_id))[0] == 200
        status, body = await _send(session, tg, idle[2].chat_id)
        assert (status, body["parameters"]["retry_after"]) == (429, 1)
        assert (await _send(session, tg, active.chat_id))[0] == 200  # replies are not bulk
        clock.now += 61  # the active chat is idle again: now it counts as bulk
        assert (await _send(session, tg, idle[2].chat_id))[0] == 200
        assert (await _send(session, tg, active.chat_id))[0] == 200
        assert (await _send(session, tg, idle[0].chat_id))[0] == 429


async def test_rate_limits_can_be_disabled() -> None:
    async with FakeTelegram(enforce_rate_limits=False) as tg, aiohttp.ClientSession() as session:
        user = tg.user("Ann", started=True)
        for _ in range(40):
            assert (await _send(session, tg, user.chat_id))[0] == 200
        assert tg.stats.sent_messages == 40


async def test_fail_next_statuses(tg: FakeTelegram, bot: telegram.Bot, api) -> None:
    user = tg.user("Ann", started=True)
    tg.fail_next("sendMessage", 403)
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(user.chat_id, "lost")
    assert user.messages == []  # an injected failure performs nothing
    tg.fail_next("sendmessage", 429, retry_after=7)
    status, body = await api("sendMessage", chat_id=user.chat_id, text="lost")
    assert (status, body["description"], body["parameters"]) == (
        429, "Too Many Requests: retry after 7", {"retry_after": 7})
    tg.fail_next("sendMessage", 500, count=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(user.chat_id, "lost")
    tg.fail_next("sendMessage", 502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(user.chat_id, "lost")
    tg.fail_next("sendMessage", 400, description="Bad Request: custom")
    assert await api.error("sendMessage", chat_id=user.chat_id, text="lost") == (400, "Bad Request: custom")
    await bot.send_message(user.chat_id, "delivered")
    assert [m.text for m in user.messages] == ["delivered"]
    assert tg.stats.too_many_requests == 1 and tg.stats.too_many_requests_injected == 1
    assert tg.stats.rate_limit_events[0].injected
    assert tg.stats.errors == {403: 1, 429: 1, 500: 2, 502: 1, 400: 1}
    assert tg.stats.calls["sendMessage"] == 7
    tg.reset_stats()
    assert tg.stats.calls["sendMessage"] == 0 and tg.stats.errors == {}


async def test_fail_next_for_one_chat_and_any_method(tg: FakeTelegram, bot: telegram.Bot) -> None:
    ann, bob = tg.user("Ann", started=True), tg.user("Bob", started=True)
    tg.fail_next("sendMessage", 403, chat_id=bob.chat_id)
    await bot.send_message(ann.chat_id, "to ann")
    with pytest.raises(Forbidden):
        await bot.send_message(bob.chat_id, "to bob")
    await bot.send_message(bob.chat_id, "to bob again")
    tg.fail_next("*", 500)
    with pytest.raises(NetworkError):
        await bot.get_me()
    assert [m.text for m in bob.messages] == ["to bob again"]
    with pytest.raises(ValueError, match="unknown Bot API method"):
        tg.fail_next("sendPigeon", 500)


async def test_fail_next_timeout_and_reset() -> None:
    async with FakeTelegram(timeout_hold=5) as tg:
        user = tg.user("Ann", started=True)
        request = HTTPXRequest(read_timeout=0.3, connect_timeout=1)
        async with telegram.Bot(tg.token, base_url=tg.base_url, request=request) as bot:
            tg.fail_next("sendMessage", "timeout")
            with pytest.raises(TimedOut):
                await bot.send_message(user.chat_id, "held")
            tg.fail_next("sendMessage", "reset")
            with pytest.raises(NetworkError) as reset:
                await bot.send_message(user.chat_id, "dropped")
            assert not isinstance(reset.value, TimedOut)
            await bot.send_message(user.chat_id, "fine")
        async with aiohttp.ClientSession() as session:
            tg.fail_next("getMe", "reset")
            with pytest.raises(aiohttp.ClientConnectionError):
                await session.post(f"{tg.base_url}{tg.token}/getMe")
        assert [m.text for m in user.messages] == ["fine"]
        assert tg.stats.injected == {"timeout": 1, "reset": 2}
