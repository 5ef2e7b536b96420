"""``FakeTelegram``: an in-process Bot API server on 127.0.0.1 plus simulated users.

Why it exists: the failures that hurt bots in production (blocked users, flood limits, stale buttons,
over-long texts, webhook retries) must happen in tests, benchmarks and the sandbox web chat too.  The bot
under test talks to this server over real HTTP exactly as it talks to api.telegram.org, so its request
layer, retries and error handling are exercised unchanged.

This module holds the plumbing: HTTP routing, parameter decoding, the update queue (long polling and
webhook delivery), failure injection and statistics.  The Bot API methods themselves are in
:mod:`bot.sandbox.fake.methods`; the simulated people in :mod:`bot.sandbox.fake.users`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.sandbox.fake import errors
from bot.sandbox.fake.errors import ApiError
from bot.sandbox.fake.limits import RateLimiter, RateLimits
from bot.sandbox.fake.methods import BotApiMethods, UploadedFile
from bot.sandbox.fake.models import (
    BotMessage,
    CallbackRecord,
    ChatEvent,
    ChatState,
    Injection,
    RateLimitEvent,
    Stats,
    StoredMessage,
)
from bot.sandbox.fake.users import SimGroup, SimUser

__all__ = ["FakeTelegram"]

log = logging.getLogger(__name__)

Subscriber = Callable[[ChatEvent], Awaitable[None] | None]

#: Update types Telegram sends when ``allowed_updates`` was never given.
_DEFAULT_EXCLUDED_UPDATES = {"chat_member", "message_reaction", "message_reaction_count"}


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int  # as requested in setWebhook (reported by getWebhookInfo)
    parallel: int  # deliveries actually in flight at once: min(requested, webhook_max_connections)
    in_flight: set[int] = field(default_factory=set)
    last_error_date: int | None = None
    last_error_message: str | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass
class _Poll:
    superseded: bool = False


class FakeTelegram(BotApiMethods):
    """In-process Bot API server.  Use as ``async with FakeTelegram() as tg:``.

    Constructor arguments (all keyword-only except ``token``):

    * ``bot_username`` / ``bot_first_name`` -- what getMe answers (commands ``/cmd@bot_username`` match).
    * ``enforce_rate_limits`` (True) and the flood-limit numbers ``private_chat_rate`` (1.0 msg/s),
      ``private_chat_burst`` (5), ``group_limit`` (20) per ``group_window`` (60 s), ``bulk_limit`` (30) per
      ``bulk_window`` (1 s) for chats idle longer than ``bulk_idle_after`` (60 s).  See
      :mod:`bot.sandbox.fake.limits`: the private-chat burst and the bulk idle rule are the fake's
      conservative rules, not Telegram's published numbers.
    * ``callback_answer_timeout`` (15 s) -- answerCallbackQuery later than this is "query is too old".
    * ``webhook_retry_delay`` (0.05 s, doubling up to ``webhook_retry_max_delay`` 1 s) -- back-off after a
      failed webhook delivery; Telegram's is much longer, the fake keeps tests fast.
    * ``webhook_max_connections`` (1) -- upper bound on parallel webhook deliveries, whatever setWebhook's
      ``max_connections`` asks (PTB asks 40).  With 1, updates go one at a time in order; with more,
      updates of different chats may be in flight together while one chat's updates stay in order.
    * ``webhook_timeout`` (10 s) -- how long the fake waits for the bot's webhook answer.
    * ``timeout_hold`` (60 s) -- how long a ``fail_next(..., "timeout")`` request is held before the
      connection is dropped; it is released at once when the fake stops.
    * ``clock`` -- monotonic clock used for rate limits and callback ages (tests may pass a fake one).
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        bot_username: str = "carecircle_test_bot",
        bot_first_name: str = "CareCircle Test",
        host: str = "127.0.0.1",
        port: int = 0,
        enforce_rate_limits: bool = True,
        private_chat_rate: float = 1.0,
        private_chat_burst: int = 5,
        group_limit: int = 20,
        group_window: float = 60.0,
        bulk_limit: int = 30,
        bulk_window: float = 1.0,
        bulk_idle_after: float = 60.0,
        callback_answer_timeout: float = 15.0,
        webhook_retry_delay: float = 0.05,
        webhook_retry_max_delay: float = 1.0,
        webhook_max_connections: int = 1,
        webhook_timeout: float = 10.0,
        timeout_hold: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        prefix = token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 123456
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.host = host
        self.port = port
        self.limits = RateLimits(
            enabled=enforce_rate_limits,
            private_chat_rate=private_chat_rate,
            private_chat_burst=private_chat_burst,
            group_limit=group_limit,
            group_window=group_window,
            bulk_limit=bulk_limit,
            bulk_window=bulk_window,
            bulk_idle_after=bulk_idle_after,
        )
        self.callback_answer_timeout = callback_answer_timeout
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_retry_max_delay = webhook_retry_max_delay
        self.webhook_max_connections = webhook_max_connections
        self.webhook_timeout = webhook_timeout
        self.timeout_hold = timeout_hold
        self._clock = clock

        self.stats = Stats()
        self.users: dict[int, SimUser] = {}
        self.groups: dict[int, SimGroup] = {}
        self._chats: dict[int, ChatState] = {}
        self._limiter = RateLimiter(self.limits)
        self._injections: list[Injection] = []
        self._callbacks: dict[str, CallbackRecord] = {}
        self._subscribers: list[Subscriber] = []
        self._background: set[asyncio.Future[Any]] = set()

        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 100_000_001
        self._updates_event = asyncio.Event()
        self._poll: _Poll | None = None
        self._allowed_updates: list[str] | None = None
        self._webhook: _Webhook | None = None

        self._user_ids = itertools.count(700_000_001)
        self._group_ids = itertools.count(400_000_001)
        self._callback_ids = itertools.count(4_200_000_000_000_000_001)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._init_methods()

    # ------------------------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """What PTB's ``base_url`` is set to; PTB appends ``token + "/" + method``."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        self._closing.set()
        self._wake()
        await self._stop_webhook()
        for task in list(self._background):
            task.cancel()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --------------------------------------------------------------------------- public test API

    def user(
        self,
        first_name: str,
        *,
        language_code: str | None = "en",
        username: str | None = None,
        last_name: str | None = None,
        started: bool = False,
    ) -> SimUser:
        """Create a simulated user with a private chat.  ``started=False``: the bot cannot write first."""
        user = SimUser(self, next(self._user_ids), first_name, language_code=language_code, username=username,
                       last_name=last_name, started=started)
        self.users[user.id] = user
        self._chats[user.id] = ChatState(id=user.id, type="private", user_id=user.id)
        return user

    def group(self, title: str, members: list[SimUser] | None = None, *, announce: bool = True) -> SimGroup:
        """Create a basic group containing the bot.  ``announce`` sends the bot its my_chat_member update."""
        chat_id = -next(self._group_ids)
        group = SimGroup(self, chat_id, title, members or [])
        self.groups[chat_id] = group
        self._chats[chat_id] = ChatState(id=chat_id, type="group", title=title,
                                         member_ids=[m.id for m in group.members])
        if announce:
            self._my_chat_member(group._actor(), chat_id, "left", "member")
        return group

    def fail_next(
        self,
        method: str,
        status: int | str,
        count: int = 1,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        chat_id: int | str | None = None,
    ) -> None:
        """Make the next ``count`` calls of ``method`` ("*" = any) fail without performing the action.

        ``status`` is an HTTP status (400, 403, 429, 500, 502, ...) answered with the telegram-facts text
        (or ``description``), or ``"timeout"`` (the request is held past the client's patience, then
        dropped) or ``"reset"`` (the connection is closed without an HTTP answer).  ``chat_id`` limits
        the injection to calls for that chat.
        """
        if isinstance(status, str) and status not in ("timeout", "reset"):
            raise ValueError(f"status must be an int, 'timeout' or 'reset', not {status!r}")
        canonical = "*" if method == "*" else self._canonical_method(method)
        if canonical is None:
            raise ValueError(f"unknown Bot API method {method!r}")
        if status == 429 and retry_after is None:
            retry_after = 1
        self._injections.append(Injection(canonical, status, count, retry_after, description, chat_id))

    def clear_failures(self) -> None:
        """Drop every pending ``fail_next`` injection."""
        self._injections.clear()

    def reset_stats(self) -> None:
        self.stats.reset()

    def reset_rate_limits(self) -> None:
        """Forget what was sent so far (e.g. between phases of a benchmark)."""
        self._limiter.reset()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every bot message, edit, deletion, user message, callback answer.

        ``callback`` may be a plain function or a coroutine function (run as a task).  Returns a function
        that unsubscribes.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by the bot (getUpdates offset or a 2xx webhook answer)."""
        return copy.deepcopy(self._updates)

    @property
    def webhook_url(self) -> str | None:
        return self._webhook.url if self._webhook else None

    def reply_keyboard(self, chat_id: int) -> list[list[str]]:
        """The reply keyboard the chat currently shows ([] when none or removed)."""
        chat = self._chats.get(chat_id)
        return [list(row) for row in chat.reply_keyboard] if chat else []

    def chat_messages(self, chat_id: int) -> list[BotMessage]:
        """Every message (bot's and users') of a chat in its current state."""
        chat = self._chats.get(chat_id)
        return [BotMessage.from_stored(m) for m in chat.messages.values()] if chat else []

    # ------------------------------------------------------------------------------------- HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        if tail.startswith("file/"):
            return await self._serve_file(tail[len("file/") :])
        prefix, _, method = tail.partition("/")
        if not prefix.startswith("bot") or not method or "/" in method:
            return self._error_response(None, None, ApiError(404, errors.NOT_FOUND))
        if prefix[3:] != self.token:
            return self._error_response(None, None, ApiError(401, errors.UNAUTHORIZED))
        canonical = self._canonical_method(method)
        if canonical is None:
            return self._error_response(None, None, ApiError(404, errors.NOT_FOUND))
        try:
            params = await self._read_params(request)
        except ApiError as exc:
            return self._error_response(canonical, None, exc)
        self.stats.calls[canonical] += 1
        injection = self._take_injection(canonical, params)
        if injection is not None:
            return await self._injected(request, canonical, params, injection)
        try:
            result = await self._methods[canonical](params)
        except ApiError as exc:
            return self._error_response(canonical, params.get("chat_id"), exc)
        except (ValueError, TypeError, KeyError) as exc:
            log.debug("bad parameters for %s: %r", canonical, exc)
            return self._error_response(canonical, params.get("chat_id"),
                                        errors.bad_request(f"Bad Request: invalid parameters: {exc}"))
        return web.json_response({"ok": True, "result": result})

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        """Merge query string and body (JSON, urlencoded or multipart); files become :class:`UploadedFile`."""
        params: dict[str, Any] = dict(request.query)
        if not request.can_read_body:
            return params
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                raise errors.bad_request("Bad Request: can't parse JSON body") from None
            if isinstance(body, dict):
                params.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = UploadedFile(value.filename, value.content_type, value.file.read())
                elif isinstance(value, bytes | bytearray):
                    params[key] = UploadedFile(key, "application/octet-stream", bytes(value))
                else:
                    params[key] = value
        return params

    def _error_response(self, method: str | None, chat_id: Any, exc: ApiError, *, injected: bool = False
                        ) -> web.Response:
        self.stats.errors[exc.status] += 1
        if exc.status == 429:
            self.stats.too_many_requests += 1
            if injected:
                self.stats.too_many_requests_injected += 1
            self.stats.rate_limit_events.append(RateLimitEvent(
                method or "", chat_id, int(exc.parameters.get("retry_after", 0)), injected, self._clock()))
        return web.json_response(exc.to_json(), status=exc.status)

    def _take_injection(self, method: str, params: dict[str, Any]) -> Injection | None:
        for injection in self._injections:
            if injection.method not in ("*", method):
                continue
            if injection.chat_id is not None and str(params.get("chat_id")) != str(injection.chat_id):
                continue
            injection.remaining -= 1
            if injection.remaining <= 0:
                self._injections.remove(injection)
            return injection
        return None

    async def _injected(self, request: web.Request, method: str, params: dict[str, Any], injection: Injection
                        ) -> web.StreamResponse:
        self.stats.injected[str(injection.status)] += 1
        if injection.status == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.timeout_hold)
            injection_status: int | str = "reset"
        else:
            injection_status = injection.status
        if injection_status == "reset":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never reaches the client: the connection is gone
        assert isinstance(injection_status, int)
        parameters: dict[str, Any] = {}
        if injection_status == 429:
            parameters["retry_after"] = injection.retry_after or 1
        description = injection.description or errors.default_description(injection_status, injection.retry_after)
        exc = ApiError(injection_status, description, parameters)
        return self._error_response(method, params.get("chat_id"), exc, injected=True)

    async def _serve_file(self, rest: str) -> web.StreamResponse:
        prefix, _, path = rest.partition("/")
        if prefix[3:] != self.token or not prefix.startswith("bot"):
            return web.json_response(ApiError(401, errors.UNAUTHORIZED).to_json(), status=401)
        record = self._files_by_path.get(path)
        if record is None:
            return web.json_response(ApiError(404, errors.NOT_FOUND).to_json(), status=404)
        return web.Response(body=record.data, content_type="application/octet-stream")

    # ---------------------------------------------------------------------------------- updates

    def _wake(self) -> None:
        """Wake every long poll and webhook worker (they re-check their condition)."""
        self._updates_event.set()
        self._updates_event = asyncio.Event()

    def _emit_update(self, kind: str, payload: dict[str, Any], chat: ChatState | None) -> None:
        if chat is not None:
            chat.last_update_at = self._clock()
        allowed = self._allowed_updates
        if allowed and kind not in allowed:
            return
        if not allowed and kind in _DEFAULT_EXCLUDED_UPDATES:
            return
        self._updates.append({"update_id": self._next_update_id, kind: copy.deepcopy(payload)})
        self._next_update_id += 1
        self._wake()

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

    async def _get_updates(self, offset: int | None, limit: int, timeout: float) -> list[dict[str, Any]]:
        """Long polling without busy-waiting; a newer concurrent request makes this one a 409 Conflict."""
        if self._webhook is not None:
            raise ApiError(409, errors.CONFLICT_WEBHOOK)
        if offset is not None:
            self._confirm(offset)
        if self._poll is not None:
            self._poll.superseded = True
            self._wake()
        poll = self._poll = _Poll()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        try:
            while True:
                event = self._updates_event
                if poll.superseded:
                    raise ApiError(409, errors.CONFLICT_POLLING)
                if self._webhook is not None:
                    raise ApiError(409, errors.CONFLICT_WEBHOOK)
                start_id = offset if offset is not None and offset > 0 else 0
                available = [u for u in self._updates if u["update_id"] >= start_id][:limit]
                remaining = deadline - loop.time()
                if available or remaining <= 0 or self._closing.is_set():
                    return copy.deepcopy(available)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            if self._poll is poll:
                self._poll = None

    # ---------------------------------------------------------------------------------- webhook

    async def _start_webhook(self, url: str, secret_token: str | None, max_connections: int) -> None:
        await self._stop_webhook()
        parallel = max(1, min(max_connections, self.webhook_max_connections))
        hook = self._webhook = _Webhook(url, secret_token, max_connections, parallel)
        for _ in range(parallel):
            hook.tasks.append(asyncio.create_task(self._webhook_worker(hook)))
        self._wake()  # a long poll in progress now answers 409

    async def _stop_webhook(self) -> None:
        hook, self._webhook = self._webhook, None
        if hook is None:
            return
        for task in hook.tasks:
            task.cancel()
        for task in hook.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _next_deliverable(self, hook: _Webhook) -> dict[str, Any] | None:
        """The oldest pending update whose chat has nothing older still pending or in flight."""
        blocked: set[Any] = set()
        for update in self._updates:
            key = _update_chat_key(update) if hook.parallel > 1 else "all"
            if key in blocked:
                continue
            if update["update_id"] in hook.in_flight:
                blocked.add(key)
                continue
            return update
        return None

    async def _webhook_worker(self, hook: _Webhook) -> None:
        delay = self.webhook_retry_delay
        while self._webhook is hook and not self._closing.is_set():
            event = self._updates_event
            update = self._next_deliverable(hook)
            if update is None:
                await event.wait()
                continue
            update_id = update["update_id"]
            hook.in_flight.add(update_id)
            try:
                error = await self._post_update(hook, update)
                if error is None:
                    self.stats.webhook_deliveries += 1
                    self._updates = [u for u in self._updates if u["update_id"] != update_id]
                    delay = self.webhook_retry_delay
                else:
                    self.stats.webhook_failures += 1
                    hook.last_error_date = int(time.time())
                    hook.last_error_message = error
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.webhook_retry_max_delay)
            finally:
                hook.in_flight.discard(update_id)
                self._wake()

    async def _post_update(self, hook: _Webhook, update: dict[str, Any]) -> str | None:
        """POST one update; return None on a 2xx answer, else the getWebhookInfo error text."""
        assert self._session is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": hook.secret_token} if hook.secret_token else {}
        try:
            async with self._session.post(hook.url, json=update, headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=self.webhook_timeout)) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return None
                return f"Wrong response from the webhook: {resp.status} {resp.reason}"
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientError as exc:
            return f"Connection error: {exc}"

    # ---------------------------------------------------------------------- notifications & inbox

    def _notify(self, event: ChatEvent) -> None:
        for callback in list(self._subscribers):
            try:
                result = callback(event)
            except Exception:
                log.exception("FakeTelegram subscriber failed")
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    def _owner(self, chat: ChatState) -> SimUser | SimGroup | None:
        if chat.type == "private":
            return self.users.get(chat.user_id or 0)
        return self.groups.get(chat.id)

    def _deliver_bot_message(self, chat: ChatState, stored: StoredMessage) -> None:
        chat.messages[stored.message_id] = stored
        self.stats.sent_messages += 1
        self.stats.sent_by_chat[chat.id] += 1
        snapshot = BotMessage.from_stored(stored)
        owner = self._owner(chat)
        if owner is not None:
            owner._inbox.put_nowait(snapshot)
        self._notify(ChatEvent("message", chat.id, BotMessage.from_stored(stored)))

    def _deliver_edit(self, chat: ChatState, stored: StoredMessage) -> None:
        stored.edited = True
        owner = self._owner(chat)
        if owner is not None:
            owner._edits.put_nowait(BotMessage.from_stored(stored))
        self._notify(ChatEvent("edit", chat.id, BotMessage.from_stored(stored)))

    # ------------------------------------------------------------ simulated users -> the bot

    def _user_message(self, user: SimUser, chat_id: int, content: dict[str, Any],
                      reply_to: StoredMessage | None = None) -> StoredMessage:
        chat = self._chats[chat_id]
        if chat.type == "private":
            user.started = True
        elif user.id not in chat.member_ids:
            chat.member_ids.append(user.id)
        data = self._new_message_data(chat, user.to_json(), content)
        if reply_to is not None:
            data["reply_to_message"] = _without_reply(reply_to.data)
        stored = StoredMessage(data, from_bot=False)
        chat.messages[stored.message_id] = stored
        self._notify(ChatEvent("user_message", chat.id, BotMessage.from_stored(stored), user_id=user.id))
        if not chat.bot_kicked:
            self._emit_update("message", data, chat)
        return stored

    def _user_edit(self, user: SimUser, chat_id: int, message_id: int, new_text: str) -> None:
        chat = self._chats[chat_id]
        stored = chat.messages.get(message_id)
        if stored is None or stored.from_bot or stored.data["from"]["id"] != user.id:
            raise AssertionError(f"{user!r} has no message {message_id} to edit")
        stored.data.pop("entities", None)
        stored.data.update(self._text_content(new_text))
        stored.data["edit_date"] = int(time.time())
        stored.edited = True
        self._emit_update("edited_message", stored.data, chat)

    def _callback_query(self, user: SimUser, target: StoredMessage | None, chat_id: int, data: str,
                        message_id: int | None = None) -> str:
        chat = self._chats[chat_id]
        query_id = str(next(self._callback_ids))
        payload: dict[str, Any] = {
            "id": query_id,
            "from": user.to_json(),
            "chat_instance": str(abs(hash((self.bot_id, chat.id))) % 10**18),
            "data": data,
        }
        if target is not None and not target.deleted:
            payload["message"] = copy.deepcopy(target.data)
        else:  # an InaccessibleMessage, as Telegram sends for deleted/very old messages
            payload["message"] = {"chat": self._chat_json(chat), "message_id": message_id or 0, "date": 0}
        self._callbacks[query_id] = CallbackRecord(query_id, user.id, chat.id, self._clock())
        self._emit_update("callback_query", payload, chat)
        return query_id

    def _my_chat_member(self, actor: SimUser, chat_id: int, old: str, new: str) -> None:
        chat = self._chats[chat_id]
        payload = {
            "chat": self._chat_json(chat),
            "from": actor.to_json(),
            "date": int(time.time()),
            "old_chat_member": self._member_json(old),
            "new_chat_member": self._member_json(new),
        }
        self._emit_update("my_chat_member", payload, chat)

    def _member_json(self, status: str) -> dict[str, Any]:
        member: dict[str, Any] = {"status": status, "user": self._bot_user_json()}
        if status == "kicked":
            member["until_date"] = 0
        return member

    def _migrate_group(self, group: SimGroup) -> int:
        old = self._chats[group.id]
        new_id = int(f"-100{abs(old.id)}")
        new = ChatState(id=new_id, type="supergroup", title=old.title, member_ids=list(old.member_ids))
        self._chats[new_id] = new
        old.migrated_to = new_id
        actor = group._actor()
        self._emit_update("message", self._new_message_data(old, actor.to_json(), {"migrate_to_chat_id": new_id}), old)
        self._emit_update("message", self._new_message_data(new, actor.to_json(), {"migrate_from_chat_id": old.id}),
                          new)
        group.old_ids.append(old.id)
        group.id = new_id
        self.groups[new_id] = group
        return new_id

    def _kick_bot(self, group: SimGroup) -> None:
        chat = self._chats[group.id]
        if chat.bot_kicked:
            return
        self._my_chat_member(group._actor(), chat.id, "member", "left" if chat.type == "group" else "kicked")
        chat.bot_kicked = True

    def _new_message_data(self, chat: ChatState, sender: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        return {
            "message_id": chat.allocate_message_id(),
            "from": sender,
            "chat": self._chat_json(chat),
            "date": int(time.time()),
            **content,
        }

    def _chat_json(self, chat: ChatState) -> dict[str, Any]:
        if chat.type == "private":
            user = self.users[chat.user_id or 0]
            data: dict[str, Any] = {"id": chat.id, "type": "private", "first_name": user.first_name}
            if user.last_name:
                data["last_name"] = user.last_name
            if user.username:
                data["username"] = user.username
            return data
        return {"id": chat.id, "type": chat.type, "title": chat.title or ""}

    def _bot_user_json(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.bot_first_name, "username": self.bot_username}


def _update_chat_key(update: dict[str, Any]) -> Any:
    """Which chat an update belongs to (for per-chat ordering of parallel webhook delivery)."""
    for kind, payload in update.items():
        if kind == "update_id" or not isinstance(payload, dict):
            continue
        chat = payload.get("chat") or (payload.get("message") or {}).get("chat")
        if chat:
            return chat.get("id")
        sender = payload.get("from")
        return ("user", sender.get("id")) if sender else kind
    return None


def _without_reply(data: dict[str, Any]) -> dict[str, Any]:
    """A message as embedded in ``reply_to_message`` (Telegram does not nest replies further)."""
    copy_ = copy.deepcopy(data)
    copy_.pop("reply_to_message", None)
    return copy_
