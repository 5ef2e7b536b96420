"""Every error text of telegram-facts.md that FakeTelegram implements, checked over real HTTP."""

from __future__ import annotations

import json

import aiohttp
import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken

from bot.sandbox import FakeTelegram
from bot.sandbox.fake import errors

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


async def test_wrong_token_and_unknown_method(tg: FakeTelegram, api) -> None:
    assert await api.error("getMe", token="999:WRONG") == (401, "Unauthorized")
    assert await api.error("noSuchMethod") == (404, "Not Found")
    with pytest.raises(InvalidToken):
        async with telegram.Bot("999:WRONG", base_url=tg.base_url):
            pass


async def test_method_names_case_insensitive_and_all_encodings(tg: FakeTelegram, api) -> None:
    user = tg.user("Ann", started=True)
    for encoding in ("json", "form", "query"):
        status, body = await api("SENDmessage", encoding=encoding, chat_id=user.chat_id, text=f"via {encoding}")
        assert status == 200 and body["ok"], body
        assert body["result"]["text"] == f"via {encoding}"
    assert [m.text for m in user.messages] == ["via json", "via form", "via query"]
    assert [m.message_id for m in user.messages] == [1, 2, 3]
    assert tg.stats.calls["sendMessage"] == 3


async def test_text_validation(tg: FakeTelegram, api) -> None:
    user = tg.user("Ann", started=True)
    chat = user.chat_id
    assert await api.error("sendMessage", chat_id=chat, text="") == (400, "Bad Request: message text is empty")
    assert await api.error("sendMessage", chat_id=chat, text=" \n\t") == (400, "Bad Request: message text is empty")
    assert await api.error("sendMessage", chat_id=chat) == (400, "Bad Request: message text is empty")
    assert await api.error("sendMessage", chat_id=chat, text="<b> </b>", parse_mode="HTML") == (
        400, "Bad Request: message text is empty")
    assert await api.error("sendMessage", chat_id=chat, text="x" * 4097) == (400, "Bad Request: message is too long")
    # 4096 visible characters are fine even when the HTML source is longer ...
    status, _ = await api("sendMessage", chat_id=chat, text="<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    assert status == 200
    status, _ = await api("sendMessage", chat_id=chat, text="&lt;" * 4096, parse_mode="HTML")
    assert status == 200
    # ... and characters are UTF-16 code units: 2049 emoji are 4098 units.
    assert await api.error("sendMessage", chat_id=chat, text="😀" * 2049) == (400, "Bad Request: message is too long")
    status, _ = await api("sendMessage", chat_id=chat, text="😀" * 2048)
    assert status == 200
    assert await api.error("sendMessage", chat_id=999, text="hi") == (400, "Bad Request: chat not found")
    assert tg.stats.sent_messages == 3


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("BP < 140", 'Unsupported start tag "" at byte offset 3'),
        ("a <b", "Unclosed start tag at byte offset 2"),
        ("Tom & Jerry", "Character '&' at byte offset 4 is not a part of an HTML entity; escape it as &amp;"),
        ('<span class="x">s</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
async def test_broken_html(tg: FakeTelegram, api, text: str, detail: str) -> None:
    user = tg.user("Ann", started=True)
    status, description = await api.error("sendMessage", chat_id=user.chat_id, text=text, parse_mode="HTML")
    assert status == 400
    assert description == "Bad Request: can't parse entities: " + detail
    assert user.messages == []


async def test_valid_html_and_markdown(tg: FakeTelegram, bot: telegram.Bot) -> None:
    user = tg.user("Ann", started=True)
    html = ('<b>B</b> <strong>S</strong> <i>i</i> <em>e</em> <u>u</u> <ins>n</ins> <s>s</s> <strike>k</strike> '
            '<del>d</del> <a href="https://example.org/?a=1&amp;b=2">link</a> <code>c</code> '
            '<pre><code class="language-python">p</code></pre> <span class="tg-spoiler">sp</span> '
            '<tg-spoiler>t</tg-spoiler> <blockquote expandable>q</blockquote> '
            '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> &lt;&gt;&amp;&quot;&#33;')
    message = await bot.send_message(user.chat_id, html, parse_mode="HTML")
    assert message.text.endswith("<>&\"!")
    assert {e.type for e in message.entities} >= {"bold", "italic", "underline", "strikethrough", "text_link",
                                                   "code", "pre", "spoiler", "expandable_blockquote",
                                                   "custom_emoji"}
    md = await bot.send_message(user.chat_id, "*bold* _it_ __u__ ~s~ ||sp|| `c` [l](https://x.org) 120\\/80\\.",
                                parse_mode="MarkdownV2")
    assert md.text == "bold it u s sp c l 120/80."
    with pytest.raises(BadRequest, match="reserved"):
        await bot.send_message(user.chat_id, "BP 120/80.", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match=r"(?i)find end of bold entity"):
        await bot.send_message(user.chat_id, "*bold", parse_mode="MarkdownV2")
    seen = await user.next_message()
    assert seen.parse_mode == "HTML" and seen.text == message.text


async def test_caption_and_button_data(tg: FakeTelegram, api) -> None:
    user = tg.user("Ann", started=True)
    png = _png(2, 2)
    async with aiohttp.ClientSession() as session:
        form = aiohttp.FormData()
        form.add_field("chat_id", str(user.chat_id))
        form.add_field("caption", "c" * 1025)
        form.add_field("photo", png, filename="p.png", content_type="image/png")
        async with session.post(f"{tg.base_url}{tg.token}/sendPhoto", data=form) as resp:
            body = await resp.json()
    assert (resp.status, body["description"]) == (400, "Bad Request: message caption is too long")

    def keyboard(data: str) -> dict:
        return {"inline_keyboard": [[{"text": "Go", "callback_data": data}]]}

    for data in ("", "é" * 33):  # 66 bytes although only 33 characters
        assert await api.error("sendMessage", chat_id=user.chat_id, text="t", reply_markup=keyboard(data)) == (
            400, "Bad Request: BUTTON_DATA_INVALID")
    status, _ = await api("sendMessage", chat_id=user.chat_id, text="t", reply_markup=keyboard("é" * 32))
    assert status == 200
    # form bodies carry reply_markup as a JSON string
    assert await api.error("sendMessage", encoding="form", chat_id=user.chat_id, text="t",
                           reply_markup=json.dumps(keyboard("x" * 65))) == (400, "Bad Request: BUTTON_DATA_INVALID")
    assert user.messages[-1].inline == [[("Go", "é" * 32)]]
    assert len(user.messages) == 1


async def test_edit_errors(tg: FakeTelegram, bot: telegram.Bot, api) -> None:
    user = tg.user("Ann", started=True)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    sent = await bot.send_message(user.chat_id, "<b>one</b>", parse_mode="HTML", reply_markup=markup)
    assert await api.error("editMessageText", chat_id=user.chat_id, message_id=999, text="x") == (
        400, "Bad Request: message to edit not found")
    status, description = await api.error(
        "editMessageText", chat_id=user.chat_id, message_id=sent.message_id, text="<b>one</b>", parse_mode="HTML",
        reply_markup=markup.to_dict())
    assert (status, description) == (400, NOT_MODIFIED)
    # different entities or markup is a modification
    edited = await bot.edit_message_text("one", user.chat_id, sent.message_id, reply_markup=markup)
    assert edited.text == "one" and edited.edit_date is not None
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_reply_markup(user.chat_id, sent.message_id, reply_markup=markup)
    await bot.edit_message_reply_markup(user.chat_id, sent.message_id, reply_markup=None)
    change = await user.next_edit(timeout=1)
    assert change.text == "one" and change.edited
    assert user.messages[0].buttons == []
    assert await bot.delete_message(user.chat_id, sent.message_id)
    assert user.messages[0].deleted
    assert await api.error("deleteMessage", chat_id=user.chat_id, message_id=sent.message_id) == (
        400, "Bad Request: message to delete not found")
    assert await api.error("editMessageText", chat_id=user.chat_id, message_id=sent.message_id, text="y") == (
        400, "Bad Request: message to edit not found")


async def test_answer_callback_query_errors() -> None:
    now = [1000.0]
    async with FakeTelegram(clock=lambda: now[0], callback_answer_timeout=15) as tg:
        async with aiohttp.ClientSession() as session:
            url = f"{tg.base_url}{tg.token}/answerCallbackQuery"

            async def answer(query_id: str, text: str | None = None) -> tuple[int, str | None]:
                payload = {"callback_query_id": query_id} | ({"text": text} if text is not None else {})
                async with session.post(url, json=payload) as resp:
                    body = await resp.json()
                return resp.status, body.get("description")

            user = tg.user("Ann", started=True)
            await tg.api_send_message({"chat_id": user.chat_id, "text": "pick",
                                       "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}})
            first = await user.press("A")
            assert await answer(first, "x" * 201) == (400, "Bad Request: MESSAGE_TOO_LONG")
            assert await answer(first, "ok") == (200, None)
            assert await answer(first, "again") == (400, errors.QUERY_TOO_OLD)
            late = await user.press("A")
            now[0] += 15.5
            assert await answer(late) == (400, errors.QUERY_TOO_OLD)
            assert await answer("never-issued") == (400, errors.QUERY_TOO_OLD)
            assert user.callback_answers == ["ok"]


async def test_forbidden_and_migrated(tg: FakeTelegram, bot: telegram.Bot, api) -> None:
    stranger = tg.user("Doctor Who")  # never pressed Start
    assert await api.error("sendMessage", chat_id=stranger.chat_id, text="hi") == (
        403, "Forbidden: bot can't initiate conversation with a user")
    await stranger.send("/start")
    assert (await api("sendMessage", chat_id=stranger.chat_id, text="hi"))[0] == 200

    blocker = tg.user("Bo", started=True)
    blocker.block()
    assert await api.error("sendMessage", chat_id=blocker.chat_id, text="hi") == (
        403, "Forbidden: bot was blocked by the user")
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(blocker.chat_id, "hi")
    blocker.unblock()
    assert (await api("sendMessage", chat_id=blocker.chat_id, text="back"))[0] == 200
    kinds = [(u["my_chat_member"]["new_chat_member"]["status"]) for u in tg.pending_updates if "my_chat_member" in u]
    assert kinds == ["kicked", "member"]

    gone = tg.user("Gone", started=True)
    gone.deactivate()
    assert await api.error("sendMessage", chat_id=gone.chat_id, text="hi") == (403, "Forbidden: user is deactivated")

    group = tg.group("Circle", [blocker])
    assert (await api("sendMessage", chat_id=group.id, text="hello group"))[0] == 200
    old_id = group.id
    new_id = group.migrate()
    status, body = await api("sendMessage", chat_id=old_id, text="hi")
    assert (status, body["description"], body["parameters"]) == (
        400, "Bad Request: group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": new_id})
    with pytest.raises(ChatMigrated) as migrated:
        await bot.send_message(old_id, "hi")
    assert migrated.value.new_chat_id == new_id == group.id
    await bot.send_message(new_id, "in the supergroup")
    assert [m.text for m in group.messages] == ["hello group", "in the supergroup"]
    group.kick_bot()
    assert await api.error("sendMessage", chat_id=new_id, text="hi") == (
        403, "Forbidden: bot was kicked from the supergroup chat")
    basic = tg.group("Basic")
    basic.kick_bot()
    assert await api.error("sendMessage", chat_id=basic.id, text="hi") == (
        403, "Forbidden: bot was kicked from the group chat")
    assert tg.stats.errors[403] == 6


async def test_setwebhook_secret_validation(tg: FakeTelegram, api) -> None:
    for secret in ("", "x" * 257, "has space", "bot:token"):
        if secret == "":
            continue
        assert await api.error("setWebhook", url="http://127.0.0.1:1/hook", secret_token=secret) == (
            400, "Bad Request: secret token contains unallowed characters")
    status, _ = await api("setWebhook", url="http://127.0.0.1:1/hook", secret_token="A-z_09" * 42)
    assert status == 200
    await api("deleteWebhook")


def _png(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


async def test_other_methods_parse_in_ptb(tg: FakeTelegram, bot: telegram.Bot, api) -> None:
    from telegram import BotCommand, MenuButtonCommands, ReplyParameters

    events = []
    tg.subscribe(events.append)
    user = tg.user("Ann", username="ann_w", started=True)
    first = await bot.send_message(user.chat_id, "first")
    reply = await bot.send_message(user.chat_id, "second", reply_parameters=ReplyParameters(first.message_id))
    assert reply.reply_to_message.message_id == first.message_id
    assert (await user.next_message()).reply_to_message_id is None
    assert (await user.next_message()).reply_to_message_id == first.message_id
    assert await api.error("sendMessage", chat_id=user.chat_id, text="x", reply_to_message_id=999) == (
        400, "Bad Request: message to be replied not found")
    copied = await bot.copy_message(user.chat_id, user.chat_id, first.message_id)
    forwarded = await bot.forward_message(user.chat_id, user.chat_id, first.message_id)
    assert copied.message_id == 3 and forwarded.forward_origin.sender_user.id == bot.id
    assert await bot.send_chat_action(user.chat_id, "typing")
    assert await api.error("sendChatAction", chat_id=user.chat_id, action="dancing") == (
        400, "Bad Request: wrong parameter action in request")
    assert await bot.set_my_commands([BotCommand("bp", "Log blood pressure")], language_code="en")
    assert await bot.get_my_commands(language_code="en") == (BotCommand("bp", "Log blood pressure"),)
    assert await bot.delete_my_commands(language_code="en")
    assert await bot.get_my_commands(language_code="en") == ()
    assert await api.error("setMyCommands", commands=[{"command": "Bad-Cmd", "description": "x"}]) == (
        400, "Bad Request: BOT_COMMAND_INVALID")
    assert await bot.set_chat_menu_button(user.chat_id, MenuButtonCommands())
    chat = await bot.get_chat("@ann_w")
    assert chat.id == user.chat_id and chat.username == "ann_w"
    assert await bot.close() and await bot.log_out()
    assert (await bot.get_me()).username == "carecircle_test_bot"
    assert [e.kind for e in events] == ["message", "message", "message", "message", "action"]
    assert tg.stats.sent_messages == 4


def test_escaped_text_round_trips_through_the_parsers() -> None:
    import html as html_lib

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from bot.sandbox.fake.markup import parse_text, utf16_len

    md_reserved = "_*[]()~`>#+-=|{}.!\\"

    @settings(max_examples=200, deadline=None)
    @given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
    def check(text: str) -> None:
        assert parse_text(html_lib.escape(text, quote=False), "HTML").text == text
        escaped = "".join("\\" + c if c in md_reserved else c for c in text)
        assert parse_text(escaped, "MarkdownV2").text == text
        assert utf16_len(text) == len(text.encode("utf-16-le")) // 2

    check()
