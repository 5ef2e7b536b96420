"""What every benchmark shares: FakeTelegram, simulated users, reply timing, percentiles, the
echo-bot baselines, fresh databases, and the one-JSON-line output.

Why a shared module: every figure is reported beside a baseline measured in the same run on
the same machine, so the baselines (a PTB echo bot on PTB's defaults, and the same echo
handler on our glue) must be built exactly the same way by every benchmark.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import resource
import socket
import tempfile
import time
import uuid
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.config import Settings
from bot.sandbox import ChatEvent, FakeTelegram, SimUser
from bot.telegram.processor import ChatOrderedProcessor
from bot.telegram.ratelimit import FloodLimiter
from bot.telegram.request import AiohttpRequest

PG_URL = os.environ.get("CARECIRCLE_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


# ------------------------------------------------------------------------------------ output


def emit(bench: str, metric: str, value: float | int | None, *, unit: str, target: str | None = None,
         baseline: float | int | None = None, ok: bool | None = None, **extra: Any) -> dict[str, Any]:
    """Print one result as one JSON line (the `make bench` contract) and return it."""
    record: dict[str, Any] = {"bench": bench, "metric": metric, "value": _round(value), "unit": unit}
    if target is not None:
        record["target"] = target
    if baseline is not None:
        record["baseline"] = _round(baseline)
    if ok is not None:
        record["ok"] = ok
    record.update({k: _round(v) for k, v in extra.items()})
    record["date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    record["machine"] = f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    print(json.dumps(record, ensure_ascii=False), flush=True)
    return record


def _round(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def quiet_logs() -> None:
    """Benchmarks print JSON only; the libraries' INFO chatter (and expected handler errors
    under injected failures) would drown it."""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"telegram|dialogs")
    warnings.filterwarnings("ignore", message=r".*per_message.*")
    logging.basicConfig(level=logging.CRITICAL)
    for name in ("telegram", "httpx", "aiohttp", "bot", "dialogs", "sqlalchemy", "apscheduler"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


# ------------------------------------------------------------------------------- reply timing


@dataclass
class ReplyLog:
    """When each bot message reached each chat, taken from FakeTelegram's event stream (the
    moment the fake stored it, i.e. what the simulated user would see)."""

    match: Callable[[ChatEvent], bool] = lambda event: True
    times: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    events: list[tuple[float, ChatEvent]] = field(default_factory=list)
    count: int = 0
    _waiters: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    def __call__(self, event: ChatEvent) -> None:
        if event.kind != "message" or not self.match(event):
            return
        now = time.perf_counter()
        self.times[event.chat_id].append(now)
        self.events.append((now, event))
        self.count += 1
        for target, waiter in self._waiters:
            if self.count >= target:
                waiter.set()

    async def wait_for(self, total: int, timeout: float) -> bool:
        """Wait until `total` matching messages arrived; False on timeout."""
        if self.count >= total:
            return True
        waiter = asyncio.Event()
        self._waiters.append((total, waiter))
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters.remove((total, waiter))


def latencies(sent: dict[int, list[float]], replies: ReplyLog | dict[int, list[float]]) -> list[float]:
    """Pair the k-th message a chat sent with the k-th matching reply in that chat (every bot
    under test processes one chat in order), in seconds."""
    times = replies.times if isinstance(replies, ReplyLog) else replies
    result: list[float] = []
    for chat_id, sent_times in sent.items():
        for t_sent, t_reply in zip(sent_times, times.get(chat_id, []), strict=False):
            result.append(t_reply - t_sent)
    return result


async def new_users(tg: Any, prefix: str, count: int, *, started: bool = True) -> list[Any]:
    """Simulated users on an in-process FakeTelegram or a RemoteTelegram (bench.remote)."""
    from bench.remote import RemoteTelegram

    if isinstance(tg, RemoteTelegram):
        return await tg.users(prefix, count, started=started)
    return [tg.user(f"{prefix}{n}", language_code="en", started=started) for n in range(count)]


@asynccontextmanager
async def telegram(split: bool) -> AsyncIterator[Any]:
    """The fake Bot API: in a child process (split, the default: the bot gets its own core, as
    in a deployment) or in this process (`--in-process`, the original set-up)."""
    if split:
        from bench.remote import RemoteTelegram

        async with RemoteTelegram() as remote:
            yield remote
    else:
        async with FakeTelegram() as fake:
            yield fake


async def burst(users: list[SimUser], texts: Callable[[int, int], str], per_user: int) -> dict[int, list[float]]:
    """Every user sends `per_user` messages at once; returns the send times per chat."""
    sent: dict[int, list[float]] = defaultdict(list)
    for i in range(per_user):
        for n, user in enumerate(users):
            sent[user.id].append(time.perf_counter())
            await user.send(texts(n, i))
    return sent


async def paced(schedule: list[tuple[SimUser, str]], rate: float,
                on_send: Callable[[int, SimUser, str, float], None] | None = None) -> dict[int, list[float]]:
    """Offered load: message k goes out at start + k/rate (open loop: the sender never waits for
    the bot, so a slow bot shows as growing latency, not as a lower send rate)."""
    sent: dict[int, list[float]] = defaultdict(list)
    start = time.perf_counter()
    for k, (user, text) in enumerate(schedule):
        due = start + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        sent[user.id].append(now)
        if on_send is not None:
            on_send(k, user, text, now)
        await user.send(text)
    return sent


# ------------------------------------------------------------------------------ echo baselines


class MemoryLedger:
    """The UpdateLedger protocol in memory: the baseline measures the glue, not a database."""

    def __init__(self) -> None:
        self._done: set[int] = set()

    async def seen(self, update_id: int) -> bool:
        return update_id in self._done

    async def mark(self, update_id: int) -> None:
        self._done.add(update_id)


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text)


def echo_app(tg: Any, *, glue: bool) -> Application:  # type: ignore[type-arg]
    """The minimal echo bot.

    glue=False: PTB DEFAULTS — HTTPXRequest, no rate limiter, updates processed one at a time.
    glue=True: the same handler on CareCircle's glue — AiohttpRequest, ChatOrderedProcessor
    (with an in-memory ledger) and FloodLimiter, built as bot/app.py builds them.
    """
    builder = ApplicationBuilder().token(tg.token).base_url(tg.base_url).base_file_url(tg.base_file_url)
    if glue:
        builder = (builder.request(AiohttpRequest(connection_pool_size=64))
                   .get_updates_request(AiohttpRequest(connection_pool_size=2, read_timeout=30.0))
                   .rate_limiter(FloodLimiter())
                   .concurrent_updates(ChatOrderedProcessor(MemoryLedger())))
    application = builder.build()
    application.add_handler(MessageHandler(filters.TEXT, _echo))
    return application


@asynccontextmanager
async def polling(application: Application) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """Run a PTB application with long polling (as CareCircle does) for the block's duration."""
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0.0, timeout=10)
    try:
        yield application
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()


def process_cpu() -> float:
    """CPU seconds of this process (user + system, every thread). With FakeTelegram and the users in
    a child process, that is the bot's own cost: a throughput figure only says how busy the machine
    was, CPU per update says what one update costs."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class BurstResult:
    messages: int
    replies: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float | None = None  # the bot process's, when Telegram runs in a child process

    @property
    def per_second(self) -> float:
        return self.replies / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_update(self) -> float | None:
        return round(self.cpu_seconds * 1000 / self.replies, 3) if self.cpu_seconds and self.replies else None

    @property
    def p50_ms(self) -> float | None:
        return ms(percentile(self.latencies, 50))

    @property
    def p99_ms(self) -> float | None:
        return ms(percentile(self.latencies, 99))


async def run_burst(tg: FakeTelegram, users: list[SimUser], per_user: int, texts: Callable[[int, int], str],
                    *, match: Callable[[ChatEvent], bool] = lambda e: True, timeout: float = 120.0) -> BurstResult:
    """Users send their messages at once; wait for one matching reply per message; time it all."""
    log = ReplyLog(match=match)
    unsubscribe = tg.subscribe(log)
    try:
        start = time.perf_counter()
        sent = await burst(users, texts, per_user)
        total = len(users) * per_user
        await log.wait_for(total, timeout)
        end = log.events[-1][0] if log.events else time.perf_counter()
    finally:
        unsubscribe()
    return BurstResult(total, log.count, end - start, latencies(sent, log))


async def echo_burst(users: int, per_user: int, *, glue: bool, prefix: str = "echo",
                     split: bool = False) -> BurstResult:
    """A fresh FakeTelegram + echo bot; `users` x `per_user` messages; the baseline figure."""
    if split:
        from bench.remote import ANY

        async with telegram(True) as remote:
            sims = await remote.users(prefix, users, started=False)
            async with polling(echo_app(remote, glue=glue)):
                await asyncio.sleep(0.05)
                cpu = process_cpu()
                got = await remote.burst(sims, [[f"hello {n} {i}" for i in range(per_user)] for n in range(users)],
                                         ANY)
                return BurstResult(**got, cpu_seconds=process_cpu() - cpu)
    async with FakeTelegram() as tg:
        sims = [tg.user(f"{prefix}{n}", language_code="en") for n in range(users)]
        async with polling(echo_app(tg, glue=glue)):
            await asyncio.sleep(0.05)
            return await run_burst(tg, sims, per_user, lambda n, i: f"hello {n} {i}")


# ----------------------------------------------------------------------------------- databases


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(tg: FakeTelegram, database_url: str, **overrides: Any) -> Settings:
    """The app's settings against FakeTelegram; production defaults unless a bench overrides."""
    return Settings(telegram_token=tg.token, telegram_api_base=tg.base_url, database_url=database_url,
                    http_port=free_port(), bot_username=tg.bot_username).with_(**overrides)


async def pg_available() -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"), timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    """A brand-new database URL for one measurement, removed afterwards.

    kind "sqlite": a file in a temporary folder; kind "postgres": CREATE DATABASE on the local
    server (as tests/conftest.py `pg_url` does), DROP ... WITH (FORCE) afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="cc-bench-") as folder:
            yield f"sqlite+aiosqlite:///{folder}/bench.sqlite3"
        return
    import asyncpg

    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = "cc_bench_" + uuid.uuid4().hex[:10]
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def database_kinds(requested: list[str] | None = None) -> list[str]:
    """sqlite always; postgres when reachable (a skipped PostgreSQL run is reported, not hidden)."""
    kinds = requested or ["sqlite", "postgres"]
    if "postgres" in kinds and not await pg_available():
        print(json.dumps({"bench": "common", "metric": "postgres", "value": None, "unit": "",
                          "skipped": f"PostgreSQL at {PG_URL} is unreachable"}), flush=True)
        kinds = [k for k in kinds if k != "postgres"]
    return kinds
