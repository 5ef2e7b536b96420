"""Shared by the web chat tests (conftest.py re-exports the fixtures).

FakeTelegram, a tiny PTB echo bot long-polling it, and the web chat on a free port.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.sandbox import FakeTelegram, SimUser
from bot.sandbox.webchat import add_webchat_routes

# A 2x1 red PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000020000000108020000007b40e85d0000000f4944415478da63f8cf"
    "c0f01f0003fe01feb38a0e640000000049454e44ae426082"
)


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    text = message.text
    if text == "/kb":
        await message.reply_text("pick one", reply_markup=ReplyKeyboardMarkup([["Yes", "No"], ["Later"]]))
    elif text == "/html":
        await message.reply_text("<b>bold</b> &amp; <i>it</i>", parse_mode=ParseMode.HTML)
    elif text == "/photo":
        await message.reply_photo(PNG, caption="chart")
    elif text == "/doc":
        await message.reply_document(b"date,sys\n2024-01-01,150\n", filename="readings.csv")
    elif text == "/edit":
        sent = await message.reply_text("draft")
        await sent.edit_text("final")
    elif text == "/del":
        sent = await message.reply_text("soon gone")
        await sent.delete()
    elif text == "/twins":  # identical labels, different callback data
        await message.reply_text("twins", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Same", callback_data="left"), InlineKeyboardButton("Same", callback_data="right")]]))
    else:
        await message.reply_text(f"echo: {text}",
                                 reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again")]]))


async def _again(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and update.effective_chat is not None
    await query.answer(f"pressed {query.data}")
    await context.bot.send_message(update.effective_chat.id, "again!" if query.data == "again" else f"got {query.data}")


@dataclass
class EchoBot:
    tg: FakeTelegram
    application: Application  # type: ignore[type-arg]


@pytest.fixture
async def echo_bot() -> AsyncIterator[EchoBot]:
    """FakeTelegram plus a PTB application that long-polls it and echoes."""
    async with FakeTelegram(enforce_rate_limits=False) as tg:  # flood limits are tested elsewhere
        application = (ApplicationBuilder().token(tg.token).base_url(tg.base_url)
                       .base_file_url(tg.base_file_url).build())
        application.add_handler(MessageHandler(filters.TEXT, _echo))
        application.add_handler(CallbackQueryHandler(_again))
        await application.initialize()
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            yield EchoBot(tg, application)
        finally:
            await application.updater.stop()
            await application.stop()
            await application.shutdown()


@dataclass
class WebChatServer:
    tg: FakeTelegram
    url: str
    personas: list[SimUser]


@pytest.fixture
async def webchat(echo_bot: EchoBot) -> AsyncIterator[WebChatServer]:
    """The web chat on a random free port of 127.0.0.1, with one demo persona."""
    tg = echo_bot.tg
    persona = tg.user("Demo patient", language_code="en")
    app = web.Application()
    add_webchat_routes(app, tg, personas=[persona])
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield WebChatServer(tg, f"http://127.0.0.1:{port}", [persona])
    finally:
        await asyncio.wait_for(runner.cleanup(), 10)
