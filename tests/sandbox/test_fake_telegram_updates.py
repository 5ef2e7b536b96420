"""getUpdates (offset, long poll, 409s) and webhook delivery (secret header, retries, order)."""

from __future__ import annotations

import asyncio
import time

import telegram
from aiohttp import web

from bot.sandbox import FakeTelegram
from bot.sandbox.fake import errors


async def test_offset_confirms_and_limit(tg: FakeTelegram, bot: telegram.Bot) -> None:
    user = tg.user("Ann")
    for text in ("one", "two", "three"):
        await user.send(text)
    updates = await bot.get_updates(limit=2)
    assert [u.message.text for u in updates] == ["one", "two"]
    again = await bot.get_updates()
    assert [u.message.text for u in again] == ["one", "two", "three"]  # nothing confirmed yet
    rest = await bot.get_updates(offset=updates[1].update_id + 1)
    assert [u.message.text for u in rest] == ["three"]
    assert len(tg.pending_updates) == 1
    assert await bot.get_updates(offset=rest[0].update_id + 1) == ()
    assert tg.pending_updates == []
    assert (await bot.get_webhook_info()).pending_update_count == 0


async def test_long_poll_wakes_up_on_update(tg: FakeTelegram, bot: telegram.Bot, api) -> None:
    user = tg.user("Ann")
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    await user.send("hello")
    updates = await asyncio.wait_for(poll, 2)
    assert [u.message.text for u in updates] == ["hello"]
    assert time.monotonic() - started < 1.5
    started = time.monotonic()
    status, body = await api("getUpdates", offset=updates[0].update_id + 1, timeout=0.3)
    assert (status, body["result"]) == (200, [])
    assert 0.25 < time.monotonic() - started < 1.5


async def test_two_pollers_conflict_the_earlier_one(tg: FakeTelegram, api) -> None:
    first = asyncio.create_task(api("getUpdates", timeout=5))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(api("getUpdates", timeout=0.2))
    status, body = await asyncio.wait_for(first, 2)
    assert (status, body["description"]) == (409, errors.CONFLICT_POLLING)
    assert body["description"] == (
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")
    assert (await second)[0] == 200


async def test_getupdates_while_webhook_active(tg: FakeTelegram, api) -> None:
    poll = asyncio.create_task(api("getUpdates", timeout=5))
    await asyncio.sleep(0.1)
    assert (await api("setWebhook", url="http://127.0.0.1:9/hook"))[0] == 200
    expected = ("Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
                "the webhook first")
    status, body = await asyncio.wait_for(poll, 2)
    assert (status, body["description"]) == (409, expected)
    assert await api.error("getUpdates") == (409, expected)
    await api("deleteWebhook")
    assert (await api("getUpdates"))[0] == 200


async def test_webhook_delivery_secret_retry_and_order() -> None:
    received: list[tuple[int, str | None, str]] = []
    answers = [500, 200, 200, 200]

    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        received.append((update["update_id"], request.headers.get("X-Telegram-Bot-Api-Secret-Token"),
                         update["message"]["text"]))
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with FakeTelegram(webhook_retry_delay=0.02) as tg:
            user = tg.user("Ann")
            await user.send("before")  # pending before the webhook is set: delivered too
            async with telegram.Bot(tg.token, base_url=tg.base_url) as bot:
                await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cr3t_-X")
                await user.send("after-1")
                await user.send("after-2")
                for _ in range(100):
                    if not tg.pending_updates:
                        break
                    await asyncio.sleep(0.02)
                info = await bot.get_webhook_info()
                assert info.url == f"http://127.0.0.1:{port}/hook"
                assert info.pending_update_count == 0
                assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
            texts = [text for _, _, text in received]
            assert texts == ["before", "before", "after-1", "after-2"]  # retried, still in order
            assert {secret for _, secret, _ in received} == {"s3cr3t_-X"}
            assert tg.stats.webhook_failures == 1 and tg.stats.webhook_deliveries == 3
    finally:
        await runner.cleanup()


async def test_webhook_unreachable_keeps_updates(tg: FakeTelegram, bot: telegram.Bot) -> None:
    user = tg.user("Ann")
    await bot.set_webhook("http://127.0.0.1:9/nothing-listens")
    await user.send("kept")
    await asyncio.sleep(0.2)
    assert [u["message"]["text"] for u in tg.pending_updates] == ["kept"]
    assert tg.stats.webhook_failures >= 1
    await bot.delete_webhook()
    updates = await bot.get_updates()
    assert [u.message.text for u in updates] == ["kept"]
    await bot.set_webhook("http://127.0.0.1:9/x", drop_pending_updates=True)
    assert tg.pending_updates == []
    await bot.delete_webhook()


async def test_webhook_parallel_delivery_keeps_chat_order() -> None:
    seen: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        text = update["message"]["text"]
        await asyncio.sleep(0.05 if text.endswith("1") else 0)
        seen.append(text)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        async with FakeTelegram(webhook_max_connections=4) as tg:
            a, b = tg.user("A"), tg.user("B")
            await a.send("a1")
            await a.send("a2")
            await b.send("b1")
            await b.send("b2")
            async with telegram.Bot(tg.token, base_url=tg.base_url) as bot:
                await bot.set_webhook(f"http://127.0.0.1:{port}/hook")
                for _ in range(100):
                    if len(seen) == 4:
                        break
                    await asyncio.sleep(0.02)
                await bot.delete_webhook()
        assert [t for t in seen if t.startswith("a")] == ["a1", "a2"]
        assert [t for t in seen if t.startswith("b")] == ["b1", "b2"]
    finally:
        await runner.cleanup()
