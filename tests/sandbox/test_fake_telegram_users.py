"""Simulated users against a real PTB Application running long polling on FakeTelegram."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator

import pytest
import telegram
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.sandbox import BotMessage, ChatEvent, FakeTelegram, NoMessageError


def make_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    payload = " ".join(context.args or [])
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes"),
                                      InlineKeyboardButton("No", callback_data="no")]])
    await update.effective_message.reply_text(f"Welcome {update.effective_user.first_name} payload={payload}",
                                              reply_markup=keyboard)


async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text("Menu", reply_markup=ReplyKeyboardMarkup([["Log BP", "Help"]]))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer(f"Got {query.data}")
    await query.edit_message_text(f"You said {query.data}")


async def on_unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.callback_query.answer("This button is no longer valid")


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    file = await update.message.photo[-1].get_file()
    data = await file.download_as_bytearray()
    await update.message.reply_text(f"photo of {len(data)} bytes, caption={update.message.caption}")


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.message.reply_text(f"echo: {update.message.text}", reply_markup=ReplyKeyboardRemove())


async def other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    kind = next(k for k in ("sticker", "voice", "location", "contact") if getattr(message, k))
    await message.reply_text(f"got {kind}")


@pytest.fixture
async def app(tg: FakeTelegram) -> AsyncIterator[Application]:
    application = (ApplicationBuilder().token(tg.token).base_url(tg.base_url).base_file_url(tg.base_file_url)
                   .build())
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("menu", menu))
    application.add_handler(CallbackQueryHandler(on_button, pattern="^(yes|no)$"))
    application.add_handler(CallbackQueryHandler(on_unknown_button))
    application.add_handler(MessageHandler(filters.PHOTO, on_photo))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & ~filters.UpdateType.EDITED, echo))
    application.add_handler(MessageHandler(filters.Sticker.ALL | filters.VOICE | filters.LOCATION | filters.CONTACT,
                                           other))
    async with application:
        await application.updater.start_polling(poll_interval=0, timeout=1)
        await application.start()
        yield application
        await application.updater.stop()
        await application.stop()


async def test_start_press_and_edit(tg: FakeTelegram, app: Application) -> None:
    user = tg.user("Ann 🌸")
    await user.send("/start care-team_42")
    welcome = await user.next_message()
    assert isinstance(welcome, BotMessage)
    assert welcome.text == "Welcome Ann 🌸 payload=care-team_42"
    assert welcome.buttons == ["Yes", "No"]
    assert welcome.inline == [[("Yes", "yes"), ("No", "no")]]
    query_id = await user.press("Yes")
    assert query_id
    edited = await user.next_edit()
    assert edited.message_id == welcome.message_id and edited.text == "You said yes" and edited.buttons == []
    for _ in range(50):
        if user.callback_answers:
            break
        await asyncio.sleep(0.01)
    assert user.callback_answers == ["Got yes"]
    assert user.messages[0].text == "You said yes" and user.messages[0].edited
    with pytest.raises(AssertionError, match=r"no button 'Yes'\. Available: no buttons at all"):
        await user.press("Yes")


async def test_command_with_botname_and_echo(tg: FakeTelegram, app: Application) -> None:
    user = tg.user("Bob")
    await user.send("/start@carecircle_test_bot")
    assert (await user.next_message()).text == "Welcome Bob payload="
    await user.send("150/95")
    assert (await user.next_message()).text == "echo: 150/95"
    with pytest.raises(NoMessageError, match="no new bot message") as timeout:
        await user.next_message(timeout=0.1)
    assert isinstance(timeout.value, asyncio.TimeoutError)


async def test_reply_keyboard_press_sends_text(tg: FakeTelegram, app: Application) -> None:
    user = tg.user("Cai")
    await user.send("/menu")
    shown = await user.next_message()
    assert shown.reply_keyboard == [["Log BP", "Help"]] and shown.buttons == ["Log BP", "Help"]
    assert user.reply_keyboard == [["Log BP", "Help"]]
    assert await user.press("Log BP") is None
    assert (await user.next_message()).text == "echo: Log BP"
    assert user.reply_keyboard == []
    with pytest.raises(AssertionError, match="Available"):
        await user.press("Log BP")  # the echo removed the keyboard


async def test_stale_and_forged_callbacks(tg: FakeTelegram, app: Application) -> None:
    user = tg.user("Dan")
    await user.send("/start")
    welcome = await user.next_message()
    await user.press_data(welcome.message_id, "delete-everything")  # never issued by the bot
    await user.press_data(9999, "old-button")  # message the bot no longer has
    for _ in range(100):
        if len(user.callback_answers) == 2:
            break
        await asyncio.sleep(0.01)
    assert user.callback_answers == ["This button is no longer valid"] * 2


async def test_photos_both_ways(tg: FakeTelegram, app: Application) -> None:
    user = tg.user("Eve")
    await user.send("hi")
    await user.next_message()
    png = make_png(400, 200)
    sent = await app.bot.send_photo(user.chat_id, photo=png, caption="<i>chart</i>", parse_mode="HTML")
    assert (sent.photo[-1].width, sent.photo[-1].height) == (400, 200)
    assert sent.photo[-1].file_size == len(png) and sent.caption == "chart"
    seen = await user.next_message()
    assert seen.photo and seen.photo_bytes == png and seen.text == "chart"
    again = await app.bot.send_photo(user.chat_id, photo=sent.photo[-1].file_id)  # by file_id
    assert again.photo[-1].file_size == len(png)
    await user.next_message()
    await user.send_photo(caption="my meter", data=png)
    assert (await user.next_message()).text == f"photo of {len(png)} bytes, caption=my meter"
    doc = await app.bot.send_document(user.chat_id, document=b"a,b\n1,2\n", filename="readings.csv")
    assert doc.document.file_name == "readings.csv"
    got = await user.next_message()
    assert got.document and got.document_bytes == b"a,b\n1,2\n"


async def test_non_text_updates_and_edits(tg: FakeTelegram, app: Application) -> None:
    user = tg.user("\u200fمريم\u200b 🌸")  # RTL mark, zero-width space, emoji, no username/last name
    await user.send_sticker()
    await user.send_voice()
    await user.send_location(31.23, 121.47)
    await user.send_contact("+8613800000000")
    texts = [(await user.next_message()).text for _ in range(4)]
    assert texts == ["got sticker", "got voice", "got location", "got contact"]
    tg.reset_rate_limits()  # six replies within a second exceed the default burst of 5 per private chat
    mid = await user.send("120/80")
    assert (await user.next_message()).text == "echo: 120/80"
    await user.edit(mid, "130/85")  # edited_message: the echo handler ignores edits
    with pytest.raises(NoMessageError):
        await user.next_message(timeout=0.2)
    await user.reply(1, "replying")
    assert (await user.next_message()).text == "echo: replying"


async def test_raw_user_updates_parse_in_ptb(tg: FakeTelegram, bot: telegram.Bot) -> None:
    user = tg.user("Fay", username="fay_w", last_name="W", language_code="zh-hans")
    await bot.get_updates()
    await user.send("/start abc")
    mid = await user.send("hi")
    await user.edit(mid, "hi again")
    await user.send_photo()
    user.block()
    user.unblock()
    updates = await bot.get_updates()
    assert updates[0].message.text == "/start abc" and updates[0].message.entities[0].type == "bot_command"
    assert updates[0].effective_user.language_code == "zh-hans"
    assert updates[2].edited_message.text == "hi again"
    assert updates[3].message.photo[-1].width == 1
    assert updates[4].my_chat_member.new_chat_member.status == "kicked"
    assert updates[5].my_chat_member.new_chat_member.status == "member"


async def test_group_conversation_and_subscribe(tg: FakeTelegram, app: Application) -> None:
    events: list[ChatEvent] = []
    unsubscribe = tg.subscribe(events.append)
    ann, bob = tg.user("Ann"), tg.user("Bob")
    group = tg.group("BP circle", [ann])
    assert group.id < 0
    await group.send(bob, "/start")
    reply = await group.next_message()
    assert reply.text == "Welcome Bob payload=" and reply.chat_id == group.id
    await group.press(ann, "No")
    assert (await group.next_edit()).text == "You said no"
    kinds = [e.kind for e in events]
    assert kinds[:3] == ["user_message", "message", "edit"] or "message" in kinds
    unsubscribe()
    await group.send(ann, "quiet")
    await group.next_message()
    assert all(e.chat_id == group.id for e in events)
    assert len([e for e in events if e.kind == "message"]) == 1
    assert set(tg.users) == {ann.id, bob.id}
