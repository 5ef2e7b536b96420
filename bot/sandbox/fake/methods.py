"""The Bot API methods of :class:`FakeTelegram`, one ``async def`` per method.

Each method validates its parameters the way Telegram does (texts from ``telegram-facts.md``), checks
that the bot may write to the chat, applies the flood limits to sending methods, and only then changes
state.  A refused request therefore never delivers anything, as on the real server.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.sandbox.fake import errors
from bot.sandbox.fake.errors import ApiError, bad_request
from bot.sandbox.fake.markup import ParsedText, parse_text, utf16_len
from bot.sandbox.fake.models import CallbackAnswer, ChatEvent, ChatState, StoredMessage

if TYPE_CHECKING:
    from bot.sandbox.fake.server import FakeTelegram

Method = Callable[[dict[str, Any]], Awaitable[Any]]

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes
CALLBACK_ANSWER_LIMIT = 200
SENDING_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument", "copyMessage", "forwardMessage"})
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_INLINE_ACTIONS = ("callback_data", "url", "login_url", "switch_inline_query", "switch_inline_query_current_chat",
                   "switch_inline_query_chosen_chat", "callback_game", "pay", "web_app", "copy_text")


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class FileRecord:
    file_id: str
    file_unique_id: str
    path: str
    data: bytes


# ---------------------------------------------------------------------------------- param helpers

def _get_int(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"Bad Request: invalid {name} specified") from None


def _require_int(params: dict[str, Any], name: str) -> int:
    value = _get_int(params, name)
    if value is None:
        raise bad_request(f"Bad Request: {name} is empty")
    return value


def _get_json(params: dict[str, Any], name: str, error: str | None = None) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        if not value:
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise bad_request(error or f"Bad Request: can't parse {name} JSON object") from None
    return value


def _get_bool(params: dict[str, Any], name: str) -> bool:
    value = params.get(name)
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def _image_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG/JPEG/GIF, so PhotoSize objects look real; 320x240 when unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return 320, 240


class BotApiMethods:
    """Mixin holding the Bot API method implementations; state lives on :class:`FakeTelegram`."""

    _methods: dict[str, Method]
    _methods_lower: dict[str, str]

    def _init_methods(self: FakeTelegram) -> None:
        self._files: dict[str, FileRecord] = {}
        self._files_by_path: dict[str, FileRecord] = {}
        self._file_counter = itertools.count(1)
        self._commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._menu_buttons: dict[int | None, dict[str, Any]] = {}
        self._methods = {
            "getMe": self.api_get_me,
            "logOut": self.api_true,
            "close": self.api_true,
            "getUpdates": self.api_get_updates,
            "setWebhook": self.api_set_webhook,
            "deleteWebhook": self.api_delete_webhook,
            "getWebhookInfo": self.api_get_webhook_info,
            "sendMessage": self.api_send_message,
            "sendPhoto": self.api_send_photo,
            "sendDocument": self.api_send_document,
            "sendChatAction": self.api_send_chat_action,
            "copyMessage": self.api_copy_message,
            "forwardMessage": self.api_forward_message,
            "editMessageText": self.api_edit_message_text,
            "editMessageCaption": self.api_edit_message_caption,
            "editMessageReplyMarkup": self.api_edit_message_reply_markup,
            "deleteMessage": self.api_delete_message,
            "answerCallbackQuery": self.api_answer_callback_query,
            "setMyCommands": self.api_set_my_commands,
            "getMyCommands": self.api_get_my_commands,
            "deleteMyCommands": self.api_delete_my_commands,
            "setChatMenuButton": self.api_set_chat_menu_button,
            "getChatMenuButton": self.api_get_chat_menu_button,
            "getChat": self.api_get_chat,
            "getFile": self.api_get_file,
        }
        self._methods_lower = {name.lower(): name for name in self._methods}

    def _canonical_method(self, name: str) -> str | None:
        """Method names are case-insensitive, like on the real server."""
        return self._methods_lower.get(name.lower())

    # ------------------------------------------------------------------------------ chats & access

    def _lookup_chat(self: FakeTelegram, raw: Any, *, required: bool = True) -> ChatState:
        if raw is None or raw == "":
            raise bad_request("Bad Request: chat_id is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            wanted = raw[1:].lower()
            for user in self.users.values():
                if user.username and user.username.lower() == wanted:
                    return self._chats[user.id]
            raise bad_request(errors.CHAT_NOT_FOUND)
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            raise bad_request(errors.CHAT_NOT_FOUND) from None
        chat = self._chats.get(chat_id)
        if chat is None:
            raise bad_request(errors.CHAT_NOT_FOUND)
        return chat

    def _check_access(self: FakeTelegram, chat: ChatState) -> None:
        """The 400/403 answers for chats the bot can no longer (or not yet) write to."""
        if chat.migrated_to is not None:
            raise ApiError(400, errors.GROUP_MIGRATED, {"migrate_to_chat_id": chat.migrated_to})
        if chat.type == "private":
            user = self.users[chat.user_id or 0]
            if user.deactivated:
                raise ApiError(403, errors.DEACTIVATED)
            if user.blocked:
                raise ApiError(403, errors.BLOCKED)
            if not user.started:
                raise ApiError(403, errors.NOT_STARTED)
        elif chat.bot_kicked:
            raise ApiError(403, errors.KICKED if chat.type == "group" else errors.KICKED_SUPERGROUP)

    def _check_rate(self: FakeTelegram, chat: ChatState) -> None:
        now = self._clock()
        idle = chat.last_update_at is None or now - chat.last_update_at > self.limits.bulk_idle_after
        retry_after = self._limiter.check(chat.id, is_group=chat.is_group, is_bulk=idle, now=now)
        if retry_after is not None:
            raise ApiError(429, errors.too_many_requests(retry_after), {"retry_after": retry_after})

    # ------------------------------------------------------------------------------ content helpers

    def _parse_body_text(self, params: dict[str, Any]) -> ParsedText:
        raw = params.get("text")
        if not isinstance(raw, str) or not raw.strip():
            raise bad_request(errors.TEXT_EMPTY)
        parsed = parse_text(raw, params.get("parse_mode") or None, _get_json(params, "entities"))
        if not parsed.text.strip():
            raise bad_request(errors.TEXT_EMPTY)
        if utf16_len(parsed.text) > TEXT_LIMIT:
            raise bad_request(errors.TEXT_TOO_LONG)
        return parsed

    def _parse_caption(self, params: dict[str, Any]) -> ParsedText | None:
        raw = params.get("caption")
        if not isinstance(raw, str) or raw == "":
            return None
        parsed = parse_text(raw, params.get("parse_mode") or None, _get_json(params, "caption_entities"))
        if utf16_len(parsed.text) > CAPTION_LIMIT:
            raise bad_request(errors.CAPTION_TOO_LONG)
        return parsed if parsed.text else None

    def _parse_reply_markup(self, params: dict[str, Any]) -> tuple[dict[str, Any] | None, list[list[str]] | None]:
        """Validate ``reply_markup``; return (inline markup to echo, reply keyboard labels or [] to remove).

        The second value is None when the chat's reply keyboard stays as it is.
        """
        markup = _get_json(params, "reply_markup", errors.KEYBOARD_INVALID)
        if markup is None:
            return None, None
        if not isinstance(markup, dict):
            raise bad_request(errors.KEYBOARD_INVALID)
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request(errors.KEYBOARD_INVALID)
            clean_rows: list[list[dict[str, Any]]] = []
            for row in rows:
                clean_row = []
                for button in row:
                    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                        raise bad_request(errors.KEYBOARD_INVALID)
                    if "callback_data" in button:
                        data = button["callback_data"]
                        if not isinstance(data, str) or not data or len(data.encode("utf-8")) > CALLBACK_DATA_LIMIT:
                            raise bad_request(errors.BUTTON_DATA_INVALID)
                    elif not any(action in button for action in _INLINE_ACTIONS):
                        raise bad_request(errors.TEXT_BUTTONS_UNALLOWED)
                    clean_row.append(dict(button))
                clean_rows.append(clean_row)
            return ({"inline_keyboard": clean_rows} if any(clean_rows) else None), None
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list):
                raise bad_request(errors.KEYBOARD_INVALID)
            labels: list[list[str]] = []
            for row in rows:
                if not isinstance(row, list):
                    raise bad_request(errors.KEYBOARD_INVALID)
                labels.append([b if isinstance(b, str) else str(b.get("text", "")) for b in row])
            return None, labels
        if markup.get("remove_keyboard"):
            return None, []
        if markup.get("force_reply"):
            return None, None
        raise bad_request(errors.KEYBOARD_INVALID)

    def _reply_target(self, chat: ChatState, params: dict[str, Any]) -> StoredMessage | None:
        reply = _get_json(params, "reply_parameters")
        message_id: int | None = None
        allow_without = _get_bool(params, "allow_sending_without_reply")
        if isinstance(reply, dict):
            message_id = int(reply["message_id"]) if reply.get("message_id") is not None else None
            allow_without = bool(reply.get("allow_sending_without_reply", allow_without))
        if message_id is None:
            message_id = _get_int(params, "reply_to_message_id")
        if message_id is None:
            return None
        target = chat.messages.get(message_id)
        if target is None or target.deleted:
            if allow_without:
                return None
            raise bad_request(errors.REPLY_NOT_FOUND)
        return target

    def _store_file(self, data: bytes, path: str) -> tuple[str, str]:
        n = next(self._file_counter)
        file_id = f"FAKE{n:06d}-{abs(hash(data)) % 10**10:010d}"
        unique = f"U{n:06d}"
        stem, dot, ext = path.rpartition(".")
        record = FileRecord(file_id, unique, f"{stem}_{n}{dot}{ext}" if dot else f"{path}_{n}", data)
        self._files[file_id] = record
        self._files_by_path[record.path] = record
        return file_id, unique

    def _store_photo(self, data: bytes) -> list[dict[str, Any]]:
        """PhotoSize list for ``data``: a thumbnail (<= 90 px) and the full size, like Telegram's smallest/largest."""
        width, height = _image_size(data)
        ext = "png" if data.startswith(b"\x89PNG") else "jpg"
        sizes = []
        scale = 90 / max(width, height, 1)
        if scale < 1:
            file_id, unique = self._store_file(data, f"photos/thumb.{ext}")
            sizes.append({"file_id": file_id, "file_unique_id": unique, "width": max(1, int(width * scale)),
                          "height": max(1, int(height * scale)), "file_size": max(1, len(data) // 10)})
        file_id, unique = self._store_file(data, f"photos/photo.{ext}")
        sizes.append({"file_id": file_id, "file_unique_id": unique, "width": width, "height": height,
                      "file_size": len(data)})
        return sizes

    def _store_document(self, data: bytes, file_name: str | None, mime_type: str | None) -> dict[str, Any]:
        file_id, unique = self._store_file(data, f"documents/{file_name or 'file'}")
        document: dict[str, Any] = {"file_id": file_id, "file_unique_id": unique, "file_size": len(data)}
        if file_name:
            document["file_name"] = file_name
        document["mime_type"] = mime_type or "application/octet-stream"
        return document

    def _input_file(self, params: dict[str, Any], name: str) -> UploadedFile | FileRecord | str | None:
        """An uploaded file, a known file_id, a URL string, or None when absent."""
        value = params.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value[len("attach://") :])
        if value is None or value == "":
            return None
        if isinstance(value, UploadedFile):
            return value
        if isinstance(value, str):
            if value in self._files:
                return self._files[value]
            if value.startswith(("http://", "https://")):
                return value
        raise bad_request(errors.WRONG_FILE_ID)

    def _fake_sticker(self, emoji: str) -> dict[str, Any]:
        file_id, unique = self._store_file(b"RIFF fake webp", "stickers/sticker.webp")
        return {"file_id": file_id, "file_unique_id": unique, "type": "regular", "width": 512, "height": 512,
                "is_animated": False, "is_video": False, "emoji": emoji, "file_size": 14}

    def _text_content(self: FakeTelegram, text: str) -> dict[str, Any]:
        """Message content for a user's text; a leading /command gets the bot_command entity PTB needs."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/") and len(text) > 1 and not text[1].isspace():
            command = text.split(maxsplit=1)[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
        return content

    def _finish_send(self: FakeTelegram, chat: ChatState,
                     content: dict[str, Any] | Callable[[], dict[str, Any]], *, params: dict[str, Any],
                     inline: dict[str, Any] | None, keyboard: list[list[str]] | None,
                     reply_to: StoredMessage | None, photo_bytes: bytes | None = None,
                     document_bytes: bytes | None = None) -> StoredMessage:
        """Access check, flood limit, then store and deliver: the common tail of every sending method."""
        self._check_access(chat)
        self._check_rate(chat)
        data = self._new_message_data(chat, self._bot_user_json(), content() if callable(content) else content)
        if reply_to is not None:
            data["reply_to_message"] = copy.deepcopy(reply_to.data)
            data["reply_to_message"].pop("reply_to_message", None)
        if inline is not None:
            data["reply_markup"] = inline
        if keyboard is not None:
            chat.reply_keyboard = keyboard
        stored = StoredMessage(data, from_bot=True, parse_mode=params.get("parse_mode") or None,
                               reply_keyboard=keyboard or [], photo_bytes=photo_bytes,
                               document_bytes=document_bytes)
        self._deliver_bot_message(chat, stored)
        return stored

    @staticmethod
    def _text_fields(parsed: ParsedText, key: str = "text") -> dict[str, Any]:
        content: dict[str, Any] = {key: parsed.text}
        if parsed.entities:
            content["entities" if key == "text" else "caption_entities"] = parsed.entities
        return content

    # ------------------------------------------------------------------------------------ methods

    async def api_true(self, params: dict[str, Any]) -> bool:
        return True

    async def api_get_me(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        return {**self._bot_user_json(), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False}

    async def api_get_updates(self: FakeTelegram, params: dict[str, Any]) -> list[dict[str, Any]]:
        limit = min(100, max(1, _get_int(params, "limit", 100) or 100))  # Telegram clamps to 1-100
        timeout = float(params.get("timeout") or 0)
        allowed = _get_json(params, "allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = allowed or None
        return await self._get_updates(_get_int(params, "offset"), limit, timeout)

    async def api_set_webhook(self: FakeTelegram, params: dict[str, Any]) -> bool:
        url = params.get("url") or ""
        secret = params.get("secret_token")
        if secret is not None and secret != "" and not _SECRET_RE.match(str(secret)):
            raise bad_request(errors.SECRET_TOKEN_INVALID)
        if _get_bool(params, "drop_pending_updates"):
            self._updates.clear()
        allowed = _get_json(params, "allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = allowed or None
        if not url:
            await self._stop_webhook()
            return True
        if not url.startswith(("http://", "https://")):
            raise bad_request("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        max_connections = _get_int(params, "max_connections") or 40  # Telegram's default
        await self._start_webhook(url, secret or None, max_connections)
        return True

    async def api_delete_webhook(self: FakeTelegram, params: dict[str, Any]) -> bool:
        if _get_bool(params, "drop_pending_updates"):
            self._updates.clear()
        await self._stop_webhook()
        return True

    async def api_get_webhook_info(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        hook = self._webhook
        info: dict[str, Any] = {"url": hook.url if hook else "", "has_custom_certificate": False,
                                "pending_update_count": len(self._updates)}
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        if self._allowed_updates:
            info["allowed_updates"] = list(self._allowed_updates)
        return info

    async def api_send_message(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._lookup_chat(params.get("chat_id"))
        parsed = self._parse_body_text(params)
        inline, keyboard = self._parse_reply_markup(params)
        reply_to = self._reply_target(chat, params)
        stored = self._finish_send(chat, self._text_fields(parsed), params=params, inline=inline,
                                   keyboard=keyboard, reply_to=reply_to)
        return stored.data

    async def api_send_photo(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._lookup_chat(params.get("chat_id"))
        source = self._input_file(params, "photo")
        if source is None:
            raise bad_request(errors.PHOTO_MISSING)
        caption = self._parse_caption(params)
        inline, keyboard = self._parse_reply_markup(params)
        reply_to = self._reply_target(chat, params)
        data = source.data if isinstance(source, UploadedFile | FileRecord) else b""

        def content() -> dict[str, Any]:  # built only once the send is allowed: a refused send stores nothing
            built: dict[str, Any] = {"photo": self._store_photo(data)}
            if caption is not None:
                built.update(self._text_fields(caption, "caption"))
            return built

        stored = self._finish_send(chat, content, params=params, inline=inline, keyboard=keyboard,
                                   reply_to=reply_to, photo_bytes=data or None)
        return stored.data

    async def api_send_document(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._lookup_chat(params.get("chat_id"))
        source = self._input_file(params, "document")
        if source is None:
            raise bad_request(errors.DOCUMENT_MISSING)
        caption = self._parse_caption(params)
        inline, keyboard = self._parse_reply_markup(params)
        reply_to = self._reply_target(chat, params)
        data = source.data if isinstance(source, UploadedFile | FileRecord) else b""

        def content() -> dict[str, Any]:
            if isinstance(source, UploadedFile):
                document = self._store_document(source.data, source.filename, source.content_type)
            elif isinstance(source, FileRecord):
                document = {"file_id": source.file_id, "file_unique_id": source.file_unique_id,
                            "file_name": source.path.rsplit("/", 1)[-1], "file_size": len(source.data)}
            else:
                document = self._store_document(b"", source.rsplit("/", 1)[-1] or "file", None)
            built: dict[str, Any] = {"document": document}
            if caption is not None:
                built.update(self._text_fields(caption, "caption"))
            return built

        stored = self._finish_send(chat, content, params=params, inline=inline, keyboard=keyboard,
                                   reply_to=reply_to, document_bytes=data or None)
        return stored.data

    async def api_send_chat_action(self: FakeTelegram, params: dict[str, Any]) -> bool:
        chat = self._lookup_chat(params.get("chat_id"))
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise bad_request(errors.WRONG_ACTION)
        self._check_access(chat)
        self._notify(ChatEvent("action", chat.id, data={"action": action}))
        return True

    def _source_message(self: FakeTelegram, params: dict[str, Any], not_found: str) -> StoredMessage:
        source_chat = self._lookup_chat(params.get("from_chat_id"))
        message_id = _require_int(params, "message_id")
        source = source_chat.messages.get(message_id)
        if source is None or source.deleted:
            raise bad_request(not_found)
        return source

    async def api_copy_message(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._lookup_chat(params.get("chat_id"))
        source = self._source_message(params, errors.MESSAGE_TO_COPY_NOT_FOUND)
        content = {k: copy.deepcopy(v) for k, v in source.data.items() if k not in _NOT_COPIED}
        if "caption" in params:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            caption = self._parse_caption(params)
            if caption is not None:
                content.update(self._text_fields(caption, "caption"))
        inline, keyboard = self._parse_reply_markup(params)
        reply_to = self._reply_target(chat, params)
        stored = self._finish_send(chat, content, params=params, inline=inline, keyboard=keyboard,
                                   reply_to=reply_to, photo_bytes=source.photo_bytes,
                                   document_bytes=source.document_bytes)
        return {"message_id": stored.message_id}

    async def api_forward_message(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._lookup_chat(params.get("chat_id"))
        source = self._source_message(params, errors.MESSAGE_TO_FORWARD_NOT_FOUND)
        content = {k: copy.deepcopy(v) for k, v in source.data.items() if k not in _NOT_COPIED}
        content["forward_origin"] = {"type": "user", "sender_user": copy.deepcopy(source.data["from"]),
                                     "date": source.data["date"]}
        stored = self._finish_send(chat, content, params=params, inline=None, keyboard=None, reply_to=None,
                                   photo_bytes=source.photo_bytes, document_bytes=source.document_bytes)
        return stored.data

    def _message_to_edit(self: FakeTelegram, params: dict[str, Any]) -> tuple[ChatState, StoredMessage]:
        if params.get("inline_message_id"):
            raise bad_request(errors.EDIT_NOT_FOUND)  # the fake sends no inline-mode messages
        chat = self._lookup_chat(params.get("chat_id"))
        message_id = _require_int(params, "message_id")
        stored = chat.messages.get(message_id)
        if stored is None or stored.deleted:
            raise bad_request(errors.EDIT_NOT_FOUND)
        if not stored.from_bot:
            raise bad_request(errors.CANT_EDIT)
        return chat, stored

    def _inline_only(self, params: dict[str, Any]) -> dict[str, Any] | None:
        inline, keyboard = self._parse_reply_markup(params)
        if keyboard:
            raise bad_request(errors.KEYBOARD_INVALID)  # edits accept inline keyboards only
        return inline

    async def api_edit_message_text(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        chat, stored = self._message_to_edit(params)
        parsed = self._parse_body_text(params)
        inline = self._inline_only(params)
        if "text" not in stored.data:
            raise bad_request(errors.NO_TEXT_TO_EDIT)
        self._check_access(chat)
        if (parsed.text == stored.data["text"] and parsed.entities == stored.data.get("entities", [])
                and inline == stored.data.get("reply_markup")):
            raise bad_request(errors.NOT_MODIFIED)
        stored.data["text"] = parsed.text
        stored.data.pop("entities", None)
        if parsed.entities:
            stored.data["entities"] = parsed.entities
        self._set_markup(stored, inline)
        stored.parse_mode = params.get("parse_mode") or None
        stored.data["edit_date"] = int(time.time())
        self._deliver_edit(chat, stored)
        return stored.data

    async def api_edit_message_caption(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        chat, stored = self._message_to_edit(params)
        caption = self._parse_caption(params)
        inline = self._inline_only(params)
        if "text" in stored.data:
            raise bad_request(errors.NO_CAPTION_TO_EDIT)
        self._check_access(chat)
        new_text = caption.text if caption else None
        new_entities = caption.entities if caption else []
        if (new_text == stored.data.get("caption") and new_entities == stored.data.get("caption_entities", [])
                and inline == stored.data.get("reply_markup")):
            raise bad_request(errors.NOT_MODIFIED)
        for key in ("caption", "caption_entities"):
            stored.data.pop(key, None)
        if caption is not None:
            stored.data.update(self._text_fields(caption, "caption"))
        self._set_markup(stored, inline)
        stored.data["edit_date"] = int(time.time())
        self._deliver_edit(chat, stored)
        return stored.data

    async def api_edit_message_reply_markup(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        chat, stored = self._message_to_edit(params)
        inline = self._inline_only(params)
        self._check_access(chat)
        if inline == stored.data.get("reply_markup"):
            raise bad_request(errors.NOT_MODIFIED)
        self._set_markup(stored, inline)
        stored.data["edit_date"] = int(time.time())
        self._deliver_edit(chat, stored)
        return stored.data

    @staticmethod
    def _set_markup(stored: StoredMessage, inline: dict[str, Any] | None) -> None:
        if inline is None:
            stored.data.pop("reply_markup", None)
        else:
            stored.data["reply_markup"] = inline

    async def api_delete_message(self: FakeTelegram, params: dict[str, Any]) -> bool:
        chat = self._lookup_chat(params.get("chat_id"))
        message_id = _require_int(params, "message_id")
        stored = chat.messages.get(message_id)
        if stored is None or stored.deleted:
            raise bad_request(errors.DELETE_NOT_FOUND)
        stored.deleted = True
        self._notify(ChatEvent("delete", chat.id, data={"message_id": message_id}))
        return True

    async def api_answer_callback_query(self: FakeTelegram, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        record = self._callbacks.get(query_id)
        if record is None or record.answered or self._clock() - record.created_at > self.callback_answer_timeout:
            raise bad_request(errors.QUERY_TOO_OLD)
        text = params.get("text")
        if text is not None and utf16_len(str(text)) > CALLBACK_ANSWER_LIMIT:
            raise bad_request(errors.CALLBACK_ANSWER_TOO_LONG)
        record.answered = True
        answer = CallbackAnswer(query_id, text, _get_bool(params, "show_alert"), params.get("url"))
        user = self.users.get(record.user_id)
        if user is not None:
            user.callback_answers.append(text or "")
            user.callback_answer_details.append(answer)
        self._notify(ChatEvent("callback_answer", record.chat_id, user_id=record.user_id,
                               data={"query_id": query_id, "text": text, "show_alert": answer.show_alert}))
        return True

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = _get_json(params, "scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def api_set_my_commands(self: FakeTelegram, params: dict[str, Any]) -> bool:
        commands = _get_json(params, "commands")
        if not isinstance(commands, list):
            raise bad_request("Bad Request: commands is empty")
        clean = []
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            description = str(command.get("description", "")) if isinstance(command, dict) else ""
            if not _COMMAND_RE.match(name):
                raise bad_request(errors.BOT_COMMAND_INVALID)
            if not 1 <= len(description) <= 256:
                raise bad_request(errors.BOT_COMMAND_DESCRIPTION_INVALID)
            clean.append({"command": name, "description": description})
        self._commands[self._commands_key(params)] = clean
        return True

    async def api_get_my_commands(self: FakeTelegram, params: dict[str, Any]) -> list[dict[str, str]]:
        return list(self._commands.get(self._commands_key(params), []))

    async def api_delete_my_commands(self: FakeTelegram, params: dict[str, Any]) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    async def api_set_chat_menu_button(self: FakeTelegram, params: dict[str, Any]) -> bool:
        chat_id = _get_int(params, "chat_id")
        if chat_id is not None:
            self._lookup_chat(chat_id)
        self._menu_buttons[chat_id] = _get_json(params, "menu_button") or {"type": "default"}
        return True

    async def api_get_chat_menu_button(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _get_int(params, "chat_id")
        return self._menu_buttons.get(chat_id) or self._menu_buttons.get(None) or {"type": "commands"}

    async def api_get_chat(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._lookup_chat(params.get("chat_id"))
        info = self._chat_json(chat)
        info.update({
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                                    "premium_subscription": False, "gifts_from_channels": False},
        })
        return info

    async def api_get_file(self: FakeTelegram, params: dict[str, Any]) -> dict[str, Any]:
        record = self._files.get(str(params.get("file_id") or ""))
        if record is None:
            raise bad_request(errors.INVALID_FILE_ID)
        return {"file_id": record.file_id, "file_unique_id": record.file_unique_id,
                "file_size": len(record.data), "file_path": record.path}


_NOT_COPIED = frozenset({"message_id", "from", "chat", "date", "edit_date", "reply_to_message", "forward_origin",
                         "reply_markup", "sender_chat"})
