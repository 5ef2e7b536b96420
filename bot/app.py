"""Composition root: the only place that wires settings, storage, services, PTB and aiohttp.

`build(settings)` returns a `CareCircle` you can `start()`/`stop()` (or use with `async with`);
tests point it at FakeTelegram through `settings.telegram_api_base`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from telegram import BotCommand, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes

from bot.config import Settings
from bot.memory import release_freed_memory_forever
from bot.services.clock import Clock
from bot.services.container import Services
from bot.services.db import being_cancelled
from bot.telegram.persistence import SqlPersistence
from bot.telegram.polling import poll_forever, replay_unhandled
from bot.telegram.processor import ChatOrderedProcessor
from bot.telegram.ratelimit import FloodLimiter
from bot.telegram.request import AiohttpRequest
from bot.telegram.retry import claim_retry
from bot.telegram.retry import watch as watch_commits
from content.i18n import normalize_language, translator
from storage.migrate import upgrade

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class StartupError(Exception):
    """A problem an operator must fix, reported as one readable line."""


def api_base_url(settings: Settings) -> tuple[str, str]:
    root = (settings.telegram_api_base or "https://api.telegram.org").rstrip("/")
    if root.endswith("/bot"):
        root = root[: -len("/bot")]
    return f"{root}/bot", f"{root}/file/bot"


def _(msgid: str) -> str:
    return msgid


COMMANDS = [
    ("start", _("Start or restart")),
    ("bp", _("Log blood pressure")),
    ("glucose", _("Log blood glucose")),
    ("meds", _("Medicines taken")),
    ("weight", _("Log weight")),
    ("history", _("My readings and chart")),
    ("plan", _("My care plan and plan card")),
    ("tips", _("A tip for today")),
    ("reminders", _("Reminders, quiet hours, daily tip")),
    ("tools", _("Salt, BMI and exercise tools")),
    ("quiz", _("Test what you know")),
    ("ask", _("Ask your care team a question")),
    ("circle", _("My peer-support circle")),
    ("away", _("Living away from home (follow-up online)")),
    ("settings", _("Language, time zone, units")),
    ("help", _("What I can do")),
]


@dataclass
class CareCircle:
    settings: Settings
    services: Services
    application: Application  # type: ignore[type-arg]
    web_app: web.Application
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    started: bool = False
    scale: Any = None  # bot.telegram.scaleout.ScaleOut when one of `run --workers N`

    @property
    def bot(self):  # type: ignore[no-untyped-def]
        return self.application.bot

    async def start(self, *, serve_http: bool = True, poll: bool | None = None) -> None:
        try:
            await upgrade(self.services.engine)
        except Exception as exc:  # unreachable database, wrong credentials, ...
            raise StartupError(f"cannot open the database ({_safe_url(self.settings.database_url)}): "
                               f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}") from exc
        try:
            await self.application.initialize()
        except InvalidToken as exc:
            raise StartupError("Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized): check the token "
                               "from @BotFather") from exc
        except TelegramError as exc:
            raise StartupError(f"cannot reach the Telegram Bot API: {exc}") from exc
        await self._set_commands()
        await self.application.start()
        if self.scale is not None:  # the worker's own inbox rows, its listener and the leader election
            await self.scale.start()
        else:
            await replay_unhandled(self.application, self.services.ledger)
        use_polling = (not self.settings.webhook) if poll is None else poll
        if use_polling:
            await self.application.bot.delete_webhook()
            self._tasks.append(asyncio.create_task(poll_forever(self.application, self.services.ledger)))
        elif self.scale is None or self.scale.slot.index == 0:
            await self.application.bot.set_webhook(
                self.settings.webhook_url or "", secret_token=self.settings.webhook_secret,
                allowed_updates=Update.ALL_TYPES,
            )
        if serve_http:
            self._runner = web.AppRunner(self.web_app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, self.settings.http_host, self.settings.http_port,
                              reuse_port=True if self.scale is not None else None).start()
        self._tasks.append(asyncio.create_task(release_freed_memory_forever()))  # every process (bot.memory)
        if self.scale is None:  # with workers, only the elected leader runs these
            self._tasks.append(asyncio.create_task(
                self.services.outbox.run_forever(self.application.bot, self.settings.outbox_poll_seconds)))
            self._tasks.append(asyncio.create_task(self._periodic()))
        self.started = True

    async def _periodic(self) -> None:
        """Escalation and housekeeping; reminders join this tick."""
        while True:
            await asyncio.sleep(min(30.0, self.settings.reminder_tick_seconds))
            try:
                await self.tick()
            except Exception:
                if being_cancelled():
                    raise
                log.exception("periodic tick failed")

    async def tick(self) -> None:
        """Periodic work; each step is one indexed query when there is nothing to do."""
        queued = await self.services.alerts.escalate_due()
        queued += await self.services.alerts.silent_high_risk()
        await self.services.plans.tick()  # an intensive measuring period ended: switch rhythm first
        queued += await self.services.reminders.tick()
        queued += await self.services.circles.tick()
        queued += await self.services.chat_followups.tick()
        if queued:
            self.services.outbox.wake()

    async def stop(self) -> None:
        if self.scale is not None:
            await self.scale.stop()
        await cancel_all(self._tasks)
        self._tasks.clear()
        if self.started:
            if self.application.running:
                try:  # PTB waits for handlers still running; a stuck one must not hang the shutdown
                    await asyncio.wait_for(self.application.stop(), timeout=10)
                except TimeoutError:
                    log.warning("handlers still running after 10 s; stopping anyway")
            await self.application.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.services.engine.dispose()
        self.started = False

    async def __aenter__(self) -> CareCircle:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _set_commands(self) -> None:
        for lang, code in (("en", None), ("zh_CN", "zh")):
            t = translator(lang)
            commands = [BotCommand(name, t(desc)) for name, desc in COMMANDS]
            try:
                await self.application.bot.set_my_commands(commands, language_code=code)
            except TelegramError as exc:
                log.warning("setMyCommands failed: %s", exc)


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel background loops and wait for them, briefly.

    A loop that catches a broad exception can swallow the cancellation (a database driver may
    turn it into its own error), so cancel again until the task ends, then give up loudly
    rather than hang the shutdown."""
    for _attempt in range(5):
        pending = [task for task in tasks if not task.done()]
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=2)
    for task in tasks:
        if not task.done():
            log.warning("background task %s did not stop", task.get_name())
        elif not task.cancelled() and task.exception() is not None:
            log.warning("background task %s ended with %r", task.get_name(), task.exception())


def freeze_startup_objects() -> None:
    """Once the app has started: move everything built so far (modules, templates, handlers, the ORM
    registry) out of the garbage collector's reach. They live as long as the process, and a full
    collection walking them paused a dashboard page for ~100 ms every few dozen pages (issue 8)."""
    gc.collect()
    gc.freeze()


def _safe_url(url: str) -> str:
    """The database URL without its password, for messages and logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else f"{scheme}://{creds}@{host}"
    return url


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure (ids only, never message text or health values) and answer kindly."""
    update_id = update.update_id if isinstance(update, Update) else None
    if context.error is not None and claim_retry(context.error):  # handled again (bot/telegram/retry.py)
        log.warning("update %s: %s before it changed anything; it will be handled again", update_id,
                    context.error.__class__.__name__)
        return
    log.error("error while handling update %s: %s", update_id, context.error.__class__.__name__,
              exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        user = update.effective_user
        t = translator(normalize_language(user.language_code if user else None))
        with contextlib.suppress(Exception):
            await context.bot.send_message(
                update.effective_chat.id,
                t("Sorry, something went wrong on our side. Nothing you saved before is lost. "
                  "Please try again in a moment."),
            )


def build_web_app(app_ref: dict[str, CareCircle]) -> web.Application:
    web_app = web.Application()

    async def healthz(request: web.Request) -> web.Response:
        care = app_ref["app"]
        return web.json_response({"ok": True, "running": care.application.running,
                                  "outbox_pending": await care.services.outbox.pending_count()})

    async def webhook(request: web.Request) -> web.Response:
        care = app_ref["app"]
        if request.headers.get(SECRET_HEADER) != care.settings.webhook_secret:
            return web.Response(status=403, text="forbidden")
        try:
            data = json.loads(await request.text())
            update = Update.de_json(data, care.application.bot)
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400, text="bad update")
        if update is None or not isinstance(data.get("update_id"), int):
            return web.Response(status=400, text="bad update")
        if care.scale is not None:  # stored for the worker owning the chat (bot/telegram/scaleout.py)
            await care.scale.receive(data, update)
        elif await care.services.ledger.receive([data]):  # durable before Telegram sees our 200
            await care.application.update_queue.put(update)  # (a redelivery of a known update is not)
        return web.Response(text="ok")

    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_post("/telegram/webhook", webhook)
    from bot.web.dashboard import add_dashboard_routes  # the doctor dashboard (bot/web)

    add_dashboard_routes(web_app, app_ref)
    return web_app


def build(settings: Settings, *, clock: Clock | None = None) -> CareCircle:
    services = Services.build(settings, clock)
    base_url, base_file_url = api_base_url(settings)
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_token or "")
        .base_url(base_url)
        .base_file_url(base_file_url)
        .request(AiohttpRequest(connection_pool_size=64))
        .get_updates_request(AiohttpRequest(connection_pool_size=2, read_timeout=30.0))
        .rate_limiter(FloodLimiter())
        .concurrent_updates(ChatOrderedProcessor(services.ledger))
        .persistence(SqlPersistence(services.sessions))
        .arbitrary_callback_data(False)
    )
    builder = builder.updater(None)  # our own poller (bot.telegram.polling) keeps updates durable
    application = builder.build()
    application.bot_data["services"] = services
    application.update_processor.bind(application)  # type: ignore[attr-defined]
    watch_commits(services.engine)  # lets the processor tell whether a failed update wrote anything

    from dialogs import register  # dialogs depend on services; wired here only

    register(application)
    application.add_error_handler(on_error)
    ref: dict[str, CareCircle] = {}
    care = CareCircle(settings, services, application, build_web_app(ref))
    ref["app"] = care
    return care
