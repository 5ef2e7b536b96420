"""The real app against FakeTelegram over HTTP, by long polling and by webhook."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from telegram import Update
from telegram.ext import CommandHandler, ContextTypes

from bot.app import CareCircle, build
from bot.sandbox import FakeTelegram
from tests.conftest import app_settings, free_port
from tests.e2e.helpers import onboard


async def test_start_answers_in_the_users_language(tg: FakeTelegram, app: CareCircle) -> None:
    zh = tg.user("王阿姨", language_code="zh-hans")
    en = tg.user("Mary", language_code="en")
    await zh.send("/start")
    await en.send("/start")
    zh_reply = await zh.next_message()
    en_reply = await en.next_message()
    assert "CareCircle" in en_reply.text and "Which language" in en_reply.text
    assert "欢迎" in zh_reply.text
    assert zh_reply.buttons == ["中文", "English"]


async def test_unknown_command_gets_help(tg: FakeTelegram, app: CareCircle) -> None:
    u = tg.user("Lee")
    await u.send("/frobnicate")
    first = await u.next_message()
    assert "don't know that command" in first.text
    help_text = await u.next_message()
    assert "/bp" in help_text.text and "120" in help_text.text


async def test_sticker_and_voice_get_a_kind_answer(tg: FakeTelegram, app: CareCircle) -> None:
    u = tg.user("Lee")
    await u.send_sticker()
    assert "only read text" in (await u.next_message()).text
    await u.send_voice()
    assert "only read text" in (await u.next_message()).text


async def test_exception_in_handler_is_answered_kindly_and_bot_keeps_working(tg: FakeTelegram,
                                                                              sqlite_url: str) -> None:
    care = build(app_settings(tg, sqlite_url))

    async def boom(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        raise RuntimeError("simulated bug")

    care.application.add_handler(CommandHandler("boom", boom), group=-1)
    await care.start()
    try:
        u = tg.user("Lee")
        await u.send("/boom")
        sorry = await u.next_message()
        assert "went wrong" in sorry.text and "simulated" not in sorry.text
        await asyncio.sleep(0.3)
        u.drain()  # the rest of the handler chain still answered the unknown command
        await u.send("/help")
        assert "/bp" in (await u.next_message()).text
    finally:
        await care.stop()


async def test_per_chat_order_is_kept_while_chats_run_concurrently(tg: FakeTelegram, app: CareCircle) -> None:
    users = [tg.user(f"P{i}") for i in range(4)]
    for u in users:
        await onboard(u, condition="High blood pressure")
    for u in users:
        for sys_ in (131, 132, 133):
            await u.send(f"{sys_}/81")
    for u in users:
        texts = [(await u.next_message()).text for _ in range(3)]
        assert [t.split("BP ")[1][:3] for t in texts] == ["131", "132", "133"]


def _raw_update(update_id: int, user_id: int, text: str) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 900000 + update_id, "date": int(time.time()), "text": text,
            "chat": {"id": user_id, "type": "private", "first_name": "Wang"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Wang", "language_code": "en"},
        },
    }


async def test_webhook_mode_with_secret_and_redelivery_processed_once(tg: FakeTelegram, sqlite_url: str) -> None:
    port = free_port()
    settings = app_settings(tg, sqlite_url, http_port=port, webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
                            webhook_secret="s3cr3t-Token_x")
    care = build(settings)
    await care.start()
    try:
        u = tg.user("Wang", language_code="en")
        await onboard(u, condition="High blood pressure")  # every step travels by webhook
        url = f"http://127.0.0.1:{port}/telegram/webhook"
        update = _raw_update(10_000_001, u.id, "150/95")
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as r:
                assert r.status == 403
            for _ in range(2):  # Telegram redelivers when it did not see our 200 in time
                async with http.post(url, json=update,
                                     headers={"X-Telegram-Bot-Api-Secret-Token": "s3cr3t-Token_x"}) as r:
                    assert r.status == 200
        saved = await u.next_message()
        assert "Saved" in saved.text and "150/95" in saved.text
        with pytest.raises((AssertionError, asyncio.TimeoutError)):
            await u.next_message(timeout=1.0)
        user = await care.services.users.by_telegram(u.id)
        assert user is not None and await care.services.readings.count(user.id) == 1
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as r:
            assert (await r.json())["ok"] is True
    finally:
        await care.stop()


async def test_wrong_token_and_unreachable_database_give_one_readable_line(tg: FakeTelegram,
                                                                           sqlite_url: str) -> None:
    from bot.app import StartupError

    wrong = build(app_settings(tg, sqlite_url, telegram_token="999999:" + "B" * 35))
    with pytest.raises(StartupError) as info:
        await wrong.start()
    await wrong.stop()
    assert "401" in str(info.value) and "\n" not in str(info.value) and "B" * 10 not in str(info.value)
    nodb = build(app_settings(tg, "postgresql+asyncpg://nobody:secret@127.0.0.1:1/none"))
    with pytest.raises(StartupError) as info:
        await nodb.start()
    await nodb.stop()
    message = str(info.value)
    assert message.startswith("cannot open the database") and "\n" not in message and "secret" not in message


async def test_half_done_onboarding_survives_a_restart(tg: FakeTelegram, sqlite_url: str) -> None:
    first = build(app_settings(tg, sqlite_url))
    await first.start()
    u = tg.user("Mary", language_code="en")
    await u.send("/start")
    await u.next_message()
    await u.press("English")
    await u.next_message()  # the consent question: the conversation waits in state CONSENT
    await first.stop()  # persistence is flushed on a graceful stop; the process could also crash
    second = build(app_settings(tg, sqlite_url))
    await second.start()
    try:
        await u.press("I agree")
        assert "Which condition" in (await u.next_message()).text
    finally:
        await second.stop()
