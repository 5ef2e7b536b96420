"""Simulated Telegram users and groups: the test-side half of :class:`FakeTelegram`.

A ``SimUser`` does what a person does in a Telegram client (writes, presses buttons, edits, blocks the
bot) and sees what the bot sent to their chat.  Everything goes through the fake server, so the bot gets
real updates and the user only sees what the bot really managed to send.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from bot.sandbox.fake.models import BotMessage, CallbackAnswer, StoredMessage

if TYPE_CHECKING:
    from bot.sandbox.fake.server import FakeTelegram

__all__ = ["NoMessageError", "SimGroup", "SimUser"]


class NoMessageError(AssertionError, TimeoutError):
    """The bot sent nothing in time.  Both an AssertionError (readable in pytest) and a TimeoutError."""


# A 1x1 transparent PNG: what a simulated user "photographs" unless the test passes its own bytes.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


class _Conversation:
    """Inbox of bot messages for one chat (private or group)."""

    def __init__(self, tg: FakeTelegram) -> None:
        self._tg = tg
        self._inbox: asyncio.Queue[BotMessage] = asyncio.Queue()
        self._edits: asyncio.Queue[BotMessage] = asyncio.Queue()

    @property
    def chat_id(self) -> int:
        raise NotImplementedError

    def _chat_ids(self) -> list[int]:
        return [self.chat_id]

    @property
    def messages(self) -> list[BotMessage]:
        """Every bot message in this chat, oldest first, in its CURRENT state (edited, deleted flags)."""
        result: list[BotMessage] = []
        for chat_id in self._chat_ids():
            chat = self._tg._chats.get(chat_id)
            if chat is not None:
                result.extend(BotMessage.from_stored(m) for m in chat.messages.values() if m.from_bot)
        return result

    @property
    def reply_keyboard(self) -> list[list[str]]:
        """The reply keyboard this chat currently shows ([] when none or removed)."""
        return self._tg.reply_keyboard(self.chat_id)

    def drain(self) -> list[BotMessage]:
        """Forget queued, not yet read bot messages and edits; return the messages dropped."""
        dropped: list[BotMessage] = []
        while not self._inbox.empty():
            dropped.append(self._inbox.get_nowait())
        while not self._edits.empty():
            self._edits.get_nowait()
        return dropped

    async def next_message(self, timeout: float = 5.0) -> BotMessage:
        """The next NEW message the bot sent to this chat (FIFO)."""
        return await self._wait(self._inbox, timeout, "message")

    async def next_edit(self, timeout: float = 5.0) -> BotMessage:
        """The next edit (text, caption or buttons) of a bot message in this chat, in its edited state."""
        return await self._wait(self._edits, timeout, "edit")

    async def _wait(self, queue: asyncio.Queue[BotMessage], timeout: float, what: str) -> BotMessage:
        try:
            return await asyncio.wait_for(queue.get(), timeout)
        except TimeoutError:
            recent = [m.text for m in self.messages[-3:]]
            raise NoMessageError(
                f"{self!r}: no new bot {what} within {timeout:.1f}s. Last bot messages in the chat: {recent!r}. "
                f"Errors answered so far: {dict(self._tg.stats.errors)}"
            ) from None

    def _newest_with_inline(self, label: str) -> StoredMessage | None:
        for chat_id in reversed(self._chat_ids()):
            chat = self._tg._chats.get(chat_id)
            if chat is None:
                continue
            for stored in reversed(list(chat.messages.values())):
                if stored.from_bot and not stored.deleted:
                    for row in stored.inline_keyboard():
                        if any(b.get("text") == label for b in row):
                            return stored
        return None

    def _available_buttons(self) -> str:
        parts: list[str] = []
        for chat_id in self._chat_ids():
            chat = self._tg._chats.get(chat_id)
            if chat is None:
                continue
            for stored in chat.messages.values():
                if stored.from_bot and not stored.deleted and stored.inline_keyboard():
                    labels = [b.get("text") for row in stored.inline_keyboard() for b in row]
                    parts.append(f"message {stored.message_id}: {labels}")
            if chat.reply_keyboard:
                parts.append(f"reply keyboard: {[label for row in chat.reply_keyboard for label in row]}")
        return "; ".join(parts) or "no buttons at all"


class SimUser(_Conversation):
    """A person talking to the bot in a private chat."""

    def __init__(
        self,
        tg: FakeTelegram,
        user_id: int,
        first_name: str,
        *,
        language_code: str | None = "en",
        username: str | None = None,
        last_name: str | None = None,
        started: bool = False,
    ) -> None:
        super().__init__(tg)
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.started = started
        self.blocked = False
        self.deactivated = False
        self.callback_answers: list[str] = []
        self.callback_answer_details: list[CallbackAnswer] = []

    def __repr__(self) -> str:
        return f"SimUser(id={self.id}, first_name={self.first_name!r})"

    @property
    def chat_id(self) -> int:
        return self.id

    def to_json(self) -> dict[str, Any]:
        """Bot API ``User`` object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data

    def _check_can_act(self) -> None:
        if self.deactivated:
            raise AssertionError(f"{self!r} is deactivated and cannot write to the bot")
        if self.blocked:
            raise AssertionError(f"{self!r} blocked the bot; call unblock() before writing")

    async def _post(self, content: dict[str, Any], reply_to: StoredMessage | None = None) -> int:
        self._check_can_act()
        stored = self._tg._user_message(self, self.chat_id, content, reply_to=reply_to)
        await asyncio.sleep(0)
        return stored.message_id

    async def send(self, text: str) -> int:
        """Write ``text``; a leading ``/command`` (also ``/start payload`` and ``/cmd@bot``) gets a bot_command entity."""
        return await self._post(self._tg._text_content(text))

    async def send_sticker(self, emoji: str = "👍") -> int:
        return await self._post({"sticker": self._tg._fake_sticker(emoji)})

    async def send_photo(self, caption: str | None = None, data: bytes | None = None) -> int:
        content: dict[str, Any] = {"photo": self._tg._store_photo(data or TINY_PNG)}
        if caption:
            content["caption"] = caption
        return await self._post(content)

    async def send_document(self, file_name: str = "report.pdf", data: bytes = b"%PDF-1.4 fake") -> int:
        return await self._post({"document": self._tg._store_document(data, file_name, None)})

    async def send_voice(self, duration: int = 3) -> int:
        file_id, unique = self._tg._store_file(b"OggS fake voice", "voice/voice.ogg")
        voice = {"file_id": file_id, "file_unique_id": unique, "duration": duration, "mime_type": "audio/ogg",
                 "file_size": 15}
        return await self._post({"voice": voice})

    async def send_location(self, latitude: float, longitude: float) -> int:
        return await self._post({"location": {"latitude": latitude, "longitude": longitude}})

    async def send_contact(self, phone_number: str, first_name: str | None = None) -> int:
        contact = {"phone_number": phone_number, "first_name": first_name or self.first_name, "user_id": self.id}
        return await self._post({"contact": contact})

    async def reply(self, to_bot_message_id: int, text: str) -> int:
        """Reply to one of the bot's messages (the update carries ``reply_to_message``)."""
        chat = self._tg._chats[self.chat_id]
        target = chat.messages.get(to_bot_message_id)
        if target is None:
            raise AssertionError(f"no message {to_bot_message_id} in the chat of {self!r}")
        self._check_can_act()
        stored = self._tg._user_message(self, self.chat_id, self._tg._text_content(text), reply_to=target)
        await asyncio.sleep(0)
        return stored.message_id

    async def edit(self, message_id: int, new_text: str) -> None:
        """Edit one of the user's own messages: the bot gets an ``edited_message`` update."""
        self._check_can_act()
        self._tg._user_edit(self, self.chat_id, message_id, new_text)
        await asyncio.sleep(0)

    async def press(self, label: str, message_id: int | None = None) -> str | None:
        """Press a button by its label.

        Inline button: sends a callback_query for the newest bot message having it (or ``message_id``) and
        returns the query id.  Reply-keyboard button: sends the label as text and returns None.
        """
        self._check_can_act()
        chat = self._tg._chats[self.chat_id]
        target: StoredMessage | None
        if message_id is not None:
            target = chat.messages.get(message_id)
            if target is None or target.deleted or not target.from_bot:
                raise AssertionError(f"{self!r}: no bot message {message_id} to press {label!r} on")
        else:
            target = self._newest_with_inline(label)
        if target is not None:
            for row in target.inline_keyboard():
                for button in row:
                    if button.get("text") == label:
                        if "callback_data" not in button:
                            raise AssertionError(f"button {label!r} is not a callback button: {button}")
                        query_id = self._tg._callback_query(self, target, chat.id, button["callback_data"])
                        await asyncio.sleep(0)
                        return query_id
        keyboard = target.reply_keyboard if target is not None and message_id is not None else chat.reply_keyboard
        if any(label in row for row in keyboard):
            await self.send(label)
            return None
        raise AssertionError(f"{self!r}: no button {label!r}. Available: {self._available_buttons()}")

    async def answer_to(self, query_id: str | None, timeout: float = 5.0) -> str:
        """The text the bot answered to one button press, waiting for it (under load the answer
        comes late, so reading the newest answer after a fixed sleep would read an older one)."""
        assert query_id is not None, "a reply-keyboard press has no callback answer"
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for answer in self.callback_answer_details:
                if answer.query_id == query_id:
                    return answer.text or ""
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self!r}: no answer to button press {query_id} within {timeout} s")
            await asyncio.sleep(0.02)

    async def press_data(self, message_id: int, data: str) -> str:
        """Send a callback query with arbitrary (even forged) ``data`` for ``message_id``; returns its id."""
        self._check_can_act()
        chat = self._tg._chats[self.chat_id]
        query_id = self._tg._callback_query(self, chat.messages.get(message_id), chat.id, data,
                                            message_id=message_id)
        await asyncio.sleep(0)
        return query_id

    def block(self) -> None:
        """Block the bot: sends fail with 403 and the bot gets ``my_chat_member`` (member -> kicked)."""
        if not self.blocked:
            self.blocked = True
            self._tg._my_chat_member(self, self.chat_id, "member", "kicked")

    def unblock(self) -> None:
        """Unblock the bot (my_chat_member kicked -> member)."""
        if self.blocked:
            self.blocked = False
            self._tg._my_chat_member(self, self.chat_id, "kicked", "member")

    def deactivate(self) -> None:
        """Delete the account: sends fail with ``Forbidden: user is deactivated``."""
        self.deactivated = True


class SimGroup(_Conversation):
    """A group the bot is a member of.  Its id is negative; after ``migrate()`` it is a supergroup."""

    def __init__(self, tg: FakeTelegram, chat_id: int, title: str, members: list[SimUser]) -> None:
        super().__init__(tg)
        self.id = chat_id
        self.title = title
        self.members = list(members)
        self.old_ids: list[int] = []

    def __repr__(self) -> str:
        return f"SimGroup(id={self.id}, title={self.title!r})"

    @property
    def chat_id(self) -> int:
        return self.id

    def _chat_ids(self) -> list[int]:
        return [*self.old_ids, self.id]

    def _actor(self) -> SimUser:
        if not self.members:
            self.members.append(self._tg.user("Group admin", started=True))
        return self.members[0]

    async def send(self, user: SimUser, text: str) -> int:
        """``user`` writes ``text`` in the group (joining it if needed)."""
        if user not in self.members:
            self.members.append(user)
        stored = self._tg._user_message(user, self.id, self._tg._text_content(text))
        await asyncio.sleep(0)
        return stored.message_id

    async def press(self, user: SimUser, label: str, message_id: int | None = None) -> str:
        """``user`` presses an inline button under a bot message in the group."""
        target = self._tg._chats[self.id].messages.get(message_id) if message_id else self._newest_with_inline(label)
        for row in target.inline_keyboard() if target else []:
            for button in row:
                if button.get("text") == label and "callback_data" in button:
                    query_id = self._tg._callback_query(user, target, target.chat_id, button["callback_data"])
                    await asyncio.sleep(0)
                    return query_id
        raise AssertionError(f"{self!r}: no inline button {label!r}. Available: {self._available_buttons()}")

    def migrate(self) -> int:
        """Upgrade to a supergroup: the old id answers 400 with ``migrate_to_chat_id``; returns the new id."""
        return self._tg._migrate_group(self)

    def kick_bot(self) -> None:
        """Remove the bot: sends fail with 403 and the bot gets ``my_chat_member``."""
        self._tg._kick_bot(self)
