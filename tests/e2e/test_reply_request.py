"""`dialogs.common.reply` sends a private-chat answer without PTB building a `Message` from
Telegram's reply (issue 4). What goes over the wire must stay exactly what
`Message.reply_text` sends: same URL, same form fields in the same order, same bytes; and the
cases the shortcut does not cover (a group, where PTB quotes; a button press) still go through
`reply_text` unchanged."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import ExtBot

from bot.sandbox import FakeTelegram
from bot.telegram.request import AiohttpRequest
from content.i18n import translator
from dialogs.common import inline, main_menu, reply


class RecordingRequest(AiohttpRequest):
    """The app's request class, noting each call's URL and form fields before sending it."""

    def __init__(self) -> None:
        super().__init__(connection_pool_size=4)
        self.sent: list[tuple[str, list[tuple[str, str]]]] = []

    async def do_request(self, url: str, method: str, request_data: Any = None, *args: Any,
                         **kwargs: Any) -> tuple[int, bytes]:
        if url.endswith("/sendMessage"):
            self.sent.append((url, list(request_data.json_parameters.items())))
        return await super().do_request(url, method, request_data, *args, **kwargs)


async def _updates(bot: ExtBot, offset: int) -> list[Update]:  # type: ignore[type-arg]
    return list(await bot.get_updates(offset=offset, timeout=0))


async def test_reply_sends_the_same_bytes_as_reply_text(tg: FakeTelegram) -> None:
    request = RecordingRequest()
    bot: ExtBot = ExtBot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url,  # type: ignore[type-arg]
                         request=request, get_updates_request=AiohttpRequest(connection_pool_size=2))
    await bot.initialize()
    try:
        sim = tg.user("Wang", language_code="en", started=True)
        group = tg.group("Circle", [sim])
        await sim.send("135/85")
        await group.send(sim, "hello group")
        updates = await _updates(bot, 0)
        updates = [u for u in updates if u.message is not None]
        private = next(u for u in updates if u.effective_chat and u.effective_chat.type == "private")
        in_group = next(u for u in updates if u.effective_chat and u.effective_chat.type != "private")
        t = translator("en")
        cases: list[tuple[Update, str, dict[str, Any]]] = [
            (private, "✅ Saved: 135/85 mmHg\nThis reading is high.", {}),
            (private, "Whose reading is this?", {"reply_markup": inline([[("Mine", "rd:for:ab12:7")]])}),
            (private, "Menu", {"reply_markup": main_menu(t)}),
            (in_group, "Saved in the group", {}),  # not the shortcut: PTB quotes in groups
        ]
        for update, text, kwargs in cases:
            assert update.effective_message is not None
            tg.reset_rate_limits()  # the fake's flood control is not under test here
            await update.effective_message.reply_text(text, **kwargs)
            tg.reset_rate_limits()
            await reply(update, text, **kwargs)
        assert len(request.sent) == 2 * len(cases)
        for n in range(len(cases)):
            by_ptb, ours = request.sent[2 * n], request.sent[2 * n + 1]
            assert ours == by_ptb, (cases[n][1], by_ptb, ours)
        assert request.sent[0][0].endswith("/sendMessage")
        assert "reply_parameters" in dict(request.sent[6][1])  # the group reply quotes, both ways
        assert [m.text for m in tg.chat_messages(sim.id) if m.text and "Saved: 135/85" in m.text] == [cases[0][1]] * 2
    finally:
        await bot.shutdown()
