"""The sandbox web chat: play patient, doctor and caregiver side by side in a browser, no Telegram account.

``add_webchat_routes(app, tg)`` adds to an existing aiohttp app (the bot's own web app):

* ``GET /`` -- the page (``static/webchat.html``, ``.css``, ``.js``: plain HTML + vanilla JS, no CDN);
* ``GET /sandbox/static/{name}`` -- its CSS and JS;
* a JSON API under ``/sandbox/api``:

  ========  ==============================================  ==============================================
  GET       ``/sandbox/api/users``                          ``{"users": [...], "personas": [ids]}``
  POST      ``/sandbox/api/users``                          ``{"first_name", "language"}`` -> 201 user
  POST      ``/sandbox/api/users/{id}/send``                ``{"text"}`` -> ``{"message_id"}``
  POST      ``/sandbox/api/users/{id}/press``               ``{"message_id", "data"}`` -> ``{"query_id"}``
  GET       ``/sandbox/api/users/{id}/events?cursor=N``     long poll, see :meth:`WebChat.events`
  GET       ``/sandbox/api/users/{id}/messages/{mid}/photo``     the image bytes the bot sent
  GET       ``/sandbox/api/users/{id}/messages/{mid}/document``  the document bytes (a download)
  ========  ==============================================  ==============================================

Errors are JSON ``{"ok": false, "error": "..."}`` with 400 (bad input), 404 (unknown user/message) or 409
(the simulated user cannot act, e.g. blocked the bot).  Message texts travel as data; the page inserts
them with ``textContent`` and renders formatting from the message *entities*, never from HTML strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.sandbox.fake import BotMessage, ChatEvent, FakeTelegram, SimUser

__all__ = ["WEBCHAT_KEY", "WebChat", "add_webchat_routes"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
API = "/sandbox/api"
#: Longest a long poll waits before answering "nothing new".
MAX_POLL_SECONDS = 25.0
#: Events kept per chat; a client whose cursor is older gets a full snapshot instead.
LOG_SIZE = 500
MAX_TEXT = 4096
MAX_NAME = 64
_LANGUAGES = {"zh_CN": "zh-hans", "zh-hans": "zh-hans", "zh": "zh-hans", "en": "en"}
_LANGUAGE_CODE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8}){0,2}$")
_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".html": "text/html"}


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


@dataclass
class _ChatLog:
    """Recent events of one chat, and a wake-up for its long polls."""

    events: deque[tuple[int, dict[str, Any]]] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))
    dropped_upto: int = 0  # highest seq no longer in ``events``
    changed: asyncio.Event = field(default_factory=asyncio.Event)


def message_json(message: BotMessage) -> dict[str, Any]:
    """What the page needs to draw one message (bot's or the user's own) in its current state."""
    raw = message.raw
    sender = raw.get("from") or {}
    buttons: list[list[dict[str, Any]]] = []
    for row in (raw.get("reply_markup") or {}).get("inline_keyboard") or []:
        out_row = []
        for button in row:
            item: dict[str, Any] = {"text": str(button.get("text", ""))}
            if "callback_data" in button:
                item["data"] = button["callback_data"]
            elif isinstance(button.get("url"), str):
                item["url"] = button["url"]
            out_row.append(item)
        buttons.append(out_row)
    document = None
    if message.document:
        size = (raw.get("document") or {}).get("file_size")
        document = {"name": message.document_name or "file", "size": size}
    return {
        "message_id": message.message_id,
        "from_bot": bool(sender.get("is_bot", False)),
        "text": message.text,
        "entities": message.entities,
        "parse_mode": message.parse_mode,
        "photo": message.photo,
        "document": document,
        "inline_keyboard": buttons,
        "reply_to_message_id": message.reply_to_message_id,
        "date": message.date,
        "edited": message.edited,
        "deleted": message.deleted,
    }


def user_json(user: SimUser, personas: set[int]) -> dict[str, Any]:
    return {
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "username": user.username,
        "language_code": user.language_code,
        "persona": user.id in personas,
        "blocked": user.blocked,
    }


class WebChat:
    """State behind the routes: one subscription to the fake, an event log per chat, waiting long polls."""

    def __init__(self, tg: FakeTelegram, personas: list[SimUser] | None = None) -> None:
        self.tg = tg
        self.personas = [p.id for p in personas or []]
        # Cursors start at the start time in ms, so a cursor from before a server restart is recognisably
        # out of range and gets a fresh snapshot.
        self._base = int(time.time() * 1000)
        self._seq = itertools.count(self._base + 1)
        self._last_seq = self._base
        self._logs: dict[int, _ChatLog] = {}
        self._closing = False
        self._unsubscribe: Callable[[], None] | None = None

    # ------------------------------------------------------------------------------ lifecycle

    def attach(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.tg.subscribe(self._on_event)

    def close(self) -> None:
        """Stop listening and release every waiting long poll (called when the app shuts down)."""
        self._closing = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for log in self._logs.values():
            log.changed.set()

    # ------------------------------------------------------------------------------ events

    def _log(self, chat_id: int) -> _ChatLog:
        log = self._logs.get(chat_id)
        if log is None:
            log = self._logs[chat_id] = _ChatLog()
        return log

    def _on_event(self, event: ChatEvent) -> None:
        payload: dict[str, Any]
        if event.kind in ("message", "edit", "user_message") and event.message is not None:
            payload = {"type": "message", "message": message_json(event.message)}
        elif event.kind == "delete":
            payload = {"type": "delete", "message_id": event.data.get("message_id")}
        elif event.kind == "callback_answer":
            if not event.data.get("text"):
                return
            payload = {"type": "callback_answer", "text": event.data.get("text"),
                       "show_alert": bool(event.data.get("show_alert"))}
        elif event.kind == "action":
            payload = {"type": "action", "action": event.data.get("action")}
        else:
            return
        chat_id = event.chat_id
        if event.kind == "callback_answer" and event.user_id is not None:
            chat_id = event.user_id
        log = self._log(chat_id)
        seq = next(self._seq)
        self._last_seq = seq
        payload["seq"] = seq
        if len(log.events) == log.events.maxlen:
            log.dropped_upto = log.events[0][0]
        log.events.append((seq, payload))
        log.changed.set()
        log.changed = asyncio.Event()

    def _reply_keyboard(self, chat_id: int) -> list[list[str]]:
        # FakeTelegram has no public accessor for the keyboard a chat currently shows (BotMessage cannot
        # tell "remove keyboard" from "leave it"), so read the chat state.
        chat = getattr(self.tg, "_chats", {}).get(chat_id)
        return [list(row) for row in getattr(chat, "reply_keyboard", None) or []]

    def snapshot(self, user: SimUser) -> dict[str, Any]:
        return {
            "cursor": self._last_seq,
            "reset": True,
            "events": [{"type": "message", "message": message_json(m)} for m in self.tg.chat_messages(user.chat_id)],
            "reply_keyboard": self._reply_keyboard(user.chat_id),
        }

    async def events(self, user: SimUser, cursor: int | None, timeout: float) -> dict[str, Any]:
        """Everything that happened in ``user``'s chat after ``cursor``.

        No cursor (or one the server cannot serve: from before a restart or older than the log) -> the whole
        conversation in its current state with ``reset: true``.  Otherwise the events after ``cursor``,
        waiting up to ``timeout`` seconds for the first one.  Always returns the new ``cursor`` and the reply
        keyboard the chat currently shows.
        """
        log = self._log(user.chat_id)
        if cursor is None or not self._base <= cursor <= self._last_seq or cursor < log.dropped_upto:
            return self.snapshot(user)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            new = [payload for seq, payload in log.events if seq > cursor]
            remaining = deadline - asyncio.get_running_loop().time()
            if new or remaining <= 0 or self._closing:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(log.changed.wait(), remaining)
        return {
            "cursor": max(cursor, new[-1]["seq"]) if new else max(cursor, self._last_seq),
            "reset": False,
            "events": new,
            "reply_keyboard": self._reply_keyboard(user.chat_id),
        }

    # ------------------------------------------------------------------------------ helpers

    def user(self, request: web.Request) -> SimUser:
        raw = request.match_info["user_id"]
        try:
            user_id = int(raw)
        except ValueError:
            raise _HttpError(404, f"unknown user {raw!r}") from None
        user = self.tg.users.get(user_id)
        if user is None:
            raise _HttpError(404, f"unknown user {user_id}")
        return user

    def message(self, request: web.Request, user: SimUser) -> BotMessage:
        try:
            message_id = int(request.match_info["message_id"])
        except ValueError:
            raise _HttpError(404, "unknown message") from None
        for message in self.tg.chat_messages(user.chat_id):
            if message.message_id == message_id:
                return message
        raise _HttpError(404, f"no message {message_id} in the chat of user {user.id}")


#: ``app[WEBCHAT_KEY]`` is the :class:`WebChat` behind the routes.
WEBCHAT_KEY = web.AppKey("carecircle_webchat", WebChat)


async def _body(request: web.Request) -> dict[str, Any]:
    """The JSON object body, or a form; anything else is a 400."""
    try:
        if request.content_type == "application/json":
            body = await request.json()
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            body = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        elif not request.can_read_body:
            body = {}
        else:
            raise _HttpError(400, "send a JSON object (Content-Type: application/json)")
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise _HttpError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _HttpError(400, "the body must be a JSON object")
    return body


def _text_field(body: dict[str, Any], name: str, *, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _HttpError(400, f"missing field {name!r} (a non-empty string)")
    if len(value) > limit:
        raise _HttpError(400, f"{name!r} is longer than {limit} characters")
    return value


def _language(body: dict[str, Any]) -> str:
    value = body.get("language", body.get("language_code", "en"))
    if not isinstance(value, str) or not value:
        raise _HttpError(400, "language must be 'zh_CN' or 'en'")
    if value in _LANGUAGES:
        return _LANGUAGES[value]
    if not _LANGUAGE_CODE.match(value):
        raise _HttpError(400, f"unsupported language {value!r} (use 'zh_CN' or 'en')")
    return value


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _static(name: str) -> web.Response:
    path = STATIC_DIR / name
    return web.Response(
        body=path.read_bytes(),
        content_type=_STATIC_TYPES[path.suffix],
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def add_webchat_routes(app: web.Application, tg: FakeTelegram, *, personas: list[SimUser] | None = None) -> None:
    """Add the sandbox web chat (page at ``/``, JSON under ``/sandbox/api``) to an existing aiohttp ``app``.

    ``personas`` are seeded demo users; the page opens the first three of them.  Call before the app starts.
    """
    chat = WebChat(tg, personas)
    chat.attach()
    app[WEBCHAT_KEY] = chat

    async def on_shutdown(_app: web.Application) -> None:
        chat.close()

    app.on_shutdown.append(on_shutdown)

    def api(handler: Callable[..., Any]) -> Callable[[web.Request], Any]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except _HttpError as exc:
                return _json_error(exc.status, exc.message)
            except web.HTTPException:
                raise
            except Exception as exc:  # a bug or a fake refusing something: answer JSON, keep serving
                log.exception("web chat: %s %s failed", request.method, request.path)
                return _json_error(500, f"internal error: {type(exc).__name__}: {exc}")
        return wrapped

    async def page(_request: web.Request) -> web.Response:
        response = _static("webchat.html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
        )
        return response

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ("webchat.css", "webchat.js"):
            raise web.HTTPNotFound()
        return _static(name)

    async def list_users(_request: web.Request) -> web.Response:
        personas_set = set(chat.personas)
        users = [user_json(u, personas_set) for u in tg.users.values()]
        return web.json_response({"ok": True, "users": users,
                                  "personas": [p for p in chat.personas if p in tg.users]})

    async def create_user(request: web.Request) -> web.Response:
        body = await _body(request)
        first_name = _text_field(body, "first_name", limit=MAX_NAME).strip()
        user = tg.user(first_name, language_code=_language(body))
        return web.json_response({"ok": True, "user": user_json(user, set(chat.personas))}, status=201)

    async def send(request: web.Request) -> web.Response:
        user = chat.user(request)
        text = _text_field(await _body(request), "text", limit=MAX_TEXT)
        try:
            message_id = await user.send(text)
        except AssertionError as exc:
            raise _HttpError(409, str(exc)) from None
        return web.json_response({"ok": True, "message_id": message_id})

    async def press(request: web.Request) -> web.Response:
        user = chat.user(request)
        body = await _body(request)
        message_id = body.get("message_id")
        data = body.get("data")
        if isinstance(message_id, str) and message_id.isdigit():
            message_id = int(message_id)
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            raise _HttpError(400, "missing field 'message_id' (an integer)")
        if not isinstance(data, str) or not data:
            raise _HttpError(400, "missing field 'data' (the button's callback data)")
        target = next((m for m in tg.chat_messages(user.chat_id) if m.message_id == message_id), None)
        if target is None or not target.raw.get("from", {}).get("is_bot"):
            raise _HttpError(404, f"no bot message {message_id} in the chat of user {user.id}")
        if target.deleted:
            raise _HttpError(409, f"message {message_id} was deleted")
        if not any(data == button_data for row in target.inline for _, button_data in row):
            raise _HttpError(400, f"message {message_id} has no button with this callback data")
        try:
            query_id = await user.press_data(message_id, data)
        except AssertionError as exc:
            raise _HttpError(409, str(exc)) from None
        return web.json_response({"ok": True, "query_id": query_id})

    async def events(request: web.Request) -> web.Response:
        user = chat.user(request)
        try:
            raw_cursor = request.query.get("cursor")
            cursor = int(raw_cursor) if raw_cursor not in (None, "") else None
            timeout = float(request.query.get("timeout", MAX_POLL_SECONDS))
        except ValueError:
            raise _HttpError(400, "cursor must be an integer and timeout a number") from None
        if timeout != timeout:  # NaN
            raise _HttpError(400, "timeout must be a number")
        timeout = min(max(timeout, 0.0), MAX_POLL_SECONDS)
        result = await chat.events(user, cursor, timeout)
        return web.json_response({"ok": True, **result}, headers={"Cache-Control": "no-store"})

    async def photo(request: web.Request) -> web.Response:
        user = chat.user(request)
        message = chat.message(request, user)
        if not message.photo or not message.photo_bytes:
            raise _HttpError(404, "this message has no photo the bot uploaded")
        return web.Response(body=message.photo_bytes, content_type=_image_type(message.photo_bytes),
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"})

    async def document(request: web.Request) -> web.Response:
        user = chat.user(request)
        message = chat.message(request, user)
        if not message.document or message.document_bytes is None:
            raise _HttpError(404, "this message has no document the bot uploaded")
        name = message.document_name or "file"
        ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "file"
        return web.Response(
            body=message.document_bytes,
            content_type="application/octet-stream",
            headers={
                "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
                "X-Content-Type-Options": "nosniff",
            },
        )

    router = app.router
    router.add_get("/", page)
    router.add_get("/sandbox/static/{name}", static)
    router.add_get(f"{API}/users", api(list_users))
    router.add_post(f"{API}/users", api(create_user))
    router.add_post(f"{API}/users/{{user_id}}/send", api(send))
    router.add_post(f"{API}/users/{{user_id}}/press", api(press))
    router.add_get(f"{API}/users/{{user_id}}/events", api(events))
    router.add_get(f"{API}/users/{{user_id}}/messages/{{message_id}}/photo", api(photo))
    router.add_get(f"{API}/users/{{user_id}}/messages/{{message_id}}/document", api(document))
