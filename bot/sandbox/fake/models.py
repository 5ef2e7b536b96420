"""Data kept by the fake: messages, chats, statistics, and the snapshots tests look at."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

ChatType = Literal["private", "group", "supergroup"]


@dataclass
class StoredMessage:
    """One message in a chat, in its current state (edits applied, deletion flagged).

    ``data`` is exactly the Bot API ``Message`` object the fake answers with, so what the bot gets back
    and what tests inspect cannot drift apart.
    """

    data: dict[str, Any]
    from_bot: bool
    parse_mode: str | None = None
    reply_keyboard: list[list[str]] = field(default_factory=list)
    photo_bytes: bytes | None = None
    document_bytes: bytes | None = None
    deleted: bool = False
    edited: bool = False

    @property
    def message_id(self) -> int:
        return int(self.data["message_id"])

    @property
    def chat_id(self) -> int:
        return int(self.data["chat"]["id"])

    @property
    def text(self) -> str | None:
        return self.data.get("text", self.data.get("caption"))

    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        markup = self.data.get("reply_markup") or {}
        return markup.get("inline_keyboard") or []


@dataclass
class BotMessage:
    """What a simulated user sees of one bot message (a snapshot; ``u.messages`` gives current state)."""

    message_id: int
    chat_id: int
    text: str | None
    photo: bool = False
    photo_bytes: bytes | None = None
    document: bool = False
    buttons: list[str] = field(default_factory=list)
    inline: list[list[tuple[str, str]]] = field(default_factory=list)
    reply_keyboard: list[list[str]] = field(default_factory=list)
    parse_mode: str | None = None
    reply_to_message_id: int | None = None
    date: int = 0
    entities: list[dict[str, Any]] = field(default_factory=list)
    document_name: str | None = None
    document_bytes: bytes | None = None
    edited: bool = False
    deleted: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_stored(cls, stored: StoredMessage) -> BotMessage:
        data = stored.data
        inline: list[list[tuple[str, str]]] = []
        for row in stored.inline_keyboard():
            inline.append([(b.get("text", ""), b.get("callback_data") or b.get("url") or "") for b in row])
        buttons = [label for row in inline for label, _ in row] or [
            label for row in stored.reply_keyboard for label in row
        ]
        reply_to = data.get("reply_to_message")
        document = data.get("document")
        return cls(
            message_id=stored.message_id,
            chat_id=stored.chat_id,
            text=stored.text,
            photo="photo" in data,
            photo_bytes=stored.photo_bytes,
            document=document is not None,
            buttons=buttons,
            inline=inline,
            reply_keyboard=[list(row) for row in stored.reply_keyboard],
            parse_mode=stored.parse_mode,
            reply_to_message_id=reply_to["message_id"] if reply_to else None,
            date=int(data.get("date", 0)),
            entities=list(data.get("entities", data.get("caption_entities", []))),
            document_name=document.get("file_name") if document else None,
            document_bytes=stored.document_bytes,
            edited=stored.edited,
            deleted=stored.deleted,
            raw=copy.deepcopy(data),
        )


@dataclass
class ChatState:
    """Server-side state of one chat."""

    id: int
    type: ChatType
    title: str | None = None
    user_id: int | None = None  # the simulated user of a private chat
    next_message_id: int = 1
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    last_update_at: float | None = None  # when the chat last produced an update (bulk rule)
    migrated_to: int | None = None
    bot_kicked: bool = False
    reply_keyboard: list[list[str]] = field(default_factory=list)  # keyboard currently shown
    member_ids: list[int] = field(default_factory=list)

    @property
    def is_group(self) -> bool:
        return self.type != "private"

    def allocate_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


@dataclass
class CallbackRecord:
    """A callback query the fake issued; answerCallbackQuery checks age and double answers here."""

    id: str
    user_id: int
    chat_id: int
    created_at: float
    answered: bool = False


@dataclass
class CallbackAnswer:
    """What answerCallbackQuery said to a user."""

    query_id: str
    text: str | None
    show_alert: bool = False
    url: str | None = None


@dataclass
class RateLimitEvent:
    """One 429 the fake answered; ``injected`` tells a ``fail_next`` 429 from a real limit hit."""

    method: str
    chat_id: int | str | None
    retry_after: int
    injected: bool
    at: float


@dataclass
class ChatEvent:
    """Notification for ``tg.subscribe`` listeners (the sandbox web chat).

    ``kind`` is ``"message"`` (bot sent), ``"edit"``, ``"delete"``, ``"user_message"`` (a simulated user
    wrote), ``"callback_answer"`` or ``"action"`` (sendChatAction).
    """

    kind: str
    chat_id: int
    message: BotMessage | None = None
    user_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stats:
    """Counters tests and benchmarks assert on.  ``reset()`` zeroes them all."""

    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[int] = field(default_factory=Counter)
    too_many_requests: int = 0
    too_many_requests_injected: int = 0
    rate_limit_events: list[RateLimitEvent] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)  # by status ("429", "timeout", ...)
    sent_messages: int = 0
    sent_by_chat: Counter[int] = field(default_factory=Counter)
    webhook_deliveries: int = 0
    webhook_failures: int = 0

    def reset(self) -> None:
        fresh = Stats()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    @property
    def too_many_requests_real(self) -> int:
        """429s caused by the fake's rate limits (not injected)."""
        return self.too_many_requests - self.too_many_requests_injected


@dataclass
class Injection:
    """A pending ``fail_next`` entry."""

    method: str  # canonical method name or "*"
    status: int | str
    remaining: int
    retry_after: int | None = None
    description: str | None = None
    chat_id: int | str | None = None
