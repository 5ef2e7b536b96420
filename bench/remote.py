"""FakeTelegram and the simulated users in a CHILD process, driven over a pipe.

Why: in one process the fake Bot API server, the simulated users and the bot share one event
loop and one core, so every figure was part fake. A deployment has Telegram elsewhere; here the
child process plays Telegram and the users (sending, timing replies, injecting failures) on the
other core, and the parent runs only the bot under test. Baselines (the echo bots) are measured
the same way, so comparisons stay fair.

Times are `time.perf_counter()` (CLOCK_MONOTONIC on Linux: one clock for both processes).
The parent asks; the child answers with plain data (ids, times, texts, button data).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import defaultdict
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

# What a reply must look like to count: "any" message, a "saved" reading, or an "alert" (a
# message with the Acknowledge button) in one of the given chats.
Match = tuple[str, frozenset[int]]
ANY: Match = ("any", frozenset())
SAVED: Match = ("saved", frozenset())


def alert_in(chats: set[int], saved: bool = False) -> Match:
    """Alerts in `chats` (the doctors'); with saved=True also every "Saved" reply in chats not
    listed (the ordinary readings, to time them too; list the chats whose replies must not count)."""
    return ("alert_or_saved" if saved else "alert", frozenset(chats))


@dataclass(frozen=True)
class RemoteUser:
    """A simulated user living in the child process; the bench only needs its id and name."""

    id: int
    first_name: str


@dataclass
class Paced:
    """An offered-load run: when each message went out, and every matching bot message."""

    sent: list[tuple[int, str, float]]  # (user id, text, time)
    events: list[tuple[float, int, str, list[str]]]  # (time, chat id, text, callback data)
    injected_500: int = 0
    injected_429: int = 0

    def sent_by_chat(self) -> dict[int, list[float]]:
        by_chat: dict[int, list[float]] = defaultdict(list)
        for user_id, _text, at in self.sent:
            by_chat[user_id].append(at)
        return by_chat

    def replies_by_chat(self) -> dict[int, list[float]]:
        by_chat: dict[int, list[float]] = defaultdict(list)
        for at, chat_id, _text, _data in self.events:
            by_chat[chat_id].append(at)
        return by_chat


class RemoteTelegram:
    """The parent's handle: `token`, `base_url`, ... like FakeTelegram, plus async commands."""

    def __init__(self, **fake_options: Any) -> None:
        self._options = fake_options
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._lock = asyncio.Lock()
        self.token = ""
        self.bot_username = ""
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def __aenter__(self) -> RemoteTelegram:
        context = multiprocessing.get_context("spawn")  # no fork of a running event loop
        parent, child = context.Pipe()
        self._process = context.Process(target=_child_main, args=(child, self._options), daemon=True)
        self._process.start()
        self._conn = parent
        info = await asyncio.to_thread(parent.recv)
        self.port, self.token, self.bot_username = info["port"], info["token"], info["bot_username"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await asyncio.wait_for(self.call("stop"), 10)
        except Exception:
            pass
        if self._process is not None:
            await asyncio.to_thread(self._process.join, 10)
            if self._process.is_alive():
                self._process.kill()

    async def call(self, command: str, **args: Any) -> Any:
        assert self._conn is not None
        async with self._lock:
            self._conn.send((command, args))
            status, value = await asyncio.to_thread(self._conn.recv)
        if status != "ok":
            raise RuntimeError(f"remote FakeTelegram failed on {command}: {value}")
        return value

    async def users(self, prefix: str, count: int, *, language_code: str = "en",
                    started: bool = True) -> list[RemoteUser]:
        made = await self.call("users", prefix=prefix, count=count, language_code=language_code, started=started)
        return [RemoteUser(user_id, name) for user_id, name in made]

    async def reset_rate_limits(self) -> None:
        await self.call("reset_rate_limits")

    async def burst(self, users: list[RemoteUser], texts: list[list[str]], match: Match,
                    timeout: float = 120.0) -> dict[str, Any]:
        """Every user sends its texts at once (texts[n][i]: user n's i-th message)."""
        return await self.call("burst", ids=[u.id for u in users], texts=texts, match=match, timeout=timeout)

    async def paced(self, schedule: list[tuple[int, str]], rate: float, match: Match, *, expect: int,
                    drain_timeout: float, inject_failures: bool = False, settle: float = 0.0) -> Paced:
        """Open loop: message k at start + k/rate; then wait for `expect` matching messages."""
        got = await self.call("paced", schedule=schedule, rate=rate, match=match, expect=expect,
                              drain_timeout=drain_timeout, inject_failures=inject_failures, settle=settle)
        return Paced(**got)


# ----------------------------------------------------------------------------------- the child


def _child_main(conn: Connection, options: dict[str, Any]) -> None:
    from bench.common import quiet_logs

    quiet_logs()
    asyncio.run(_serve(conn, options))


async def _serve(conn: Connection, options: dict[str, Any]) -> None:
    from bot.sandbox import FakeTelegram

    async with FakeTelegram(**options) as tg:
        conn.send({"port": tg.port, "token": tg.token, "bot_username": tg.bot_username})
        while True:
            command, args = await asyncio.to_thread(conn.recv)
            if command == "stop":
                conn.send(("ok", None))
                return
            try:
                result = await _COMMANDS[command](tg, **args)
            except Exception as exc:  # report to the parent instead of dying silently
                conn.send(("error", f"{exc.__class__.__name__}: {exc}"))
                continue
            conn.send(("ok", result))


def _matcher(match: Match) -> Any:
    kind, chats = match

    def matches(event: Any) -> bool:
        if event.kind != "message" or event.message is None:
            return False
        if kind == "saved":
            return bool(event.message.text and "Saved" in event.message.text)
        if kind in ("alert", "alert_or_saved"):
            if event.chat_id in chats and any(
                    data.startswith("al:ack:") for row in event.message.inline for _label, data in row):
                return True
            return kind == "alert_or_saved" and event.chat_id not in chats and "Saved" in (event.message.text or "")
        return True

    return matches


class _Recorder:
    """Subscribed to the fake's event stream: times every matching bot message."""

    def __init__(self, match: Match) -> None:
        self.matches = _matcher(match)
        self.events: list[tuple[float, int, str, list[str]]] = []
        self.enough = asyncio.Event()
        self.expect = 0

    def __call__(self, event: Any) -> None:
        if not self.matches(event):
            return
        data = [d for row in event.message.inline for _label, d in row]
        self.events.append((time.perf_counter(), event.chat_id, event.message.text or "", data))
        if self.expect and len(self.events) >= self.expect:
            self.enough.set()

    async def wait(self, expect: int, timeout: float) -> None:
        self.expect = expect
        if len(self.events) >= expect:
            return
        try:
            await asyncio.wait_for(self.enough.wait(), timeout)
        except TimeoutError:
            pass


async def _users(tg: Any, prefix: str, count: int, language_code: str, started: bool) -> list[tuple[int, str]]:
    made = [tg.user(f"{prefix}{n}", language_code=language_code, started=started) for n in range(count)]
    return [(u.id, u.first_name) for u in made]


async def _reset_rate_limits(tg: Any) -> None:
    tg.reset_rate_limits()


async def _burst(tg: Any, ids: list[int], texts: list[list[str]], match: Match, timeout: float) -> dict[str, Any]:
    recorder = _Recorder(match)
    unsubscribe = tg.subscribe(recorder)
    sent: dict[int, list[float]] = defaultdict(list)
    try:
        start = time.perf_counter()
        per_user = max((len(t) for t in texts), default=0)
        for i in range(per_user):
            for n, user_id in enumerate(ids):
                sent[user_id].append(time.perf_counter())
                await tg.users[user_id].send(texts[n][i])
        total = sum(len(t) for t in texts)
        await recorder.wait(total, timeout)
        end = recorder.events[-1][0] if recorder.events else time.perf_counter()
    finally:
        unsubscribe()
    replies: dict[int, list[float]] = defaultdict(list)
    for at, chat_id, _text, _data in recorder.events:
        replies[chat_id].append(at)
    latencies = [r - s for chat_id, times in sent.items() for s, r in zip(times, replies.get(chat_id, []),
                                                                            strict=False)]
    return {"messages": total, "replies": len(recorder.events), "seconds": end - start, "latencies": latencies}


async def _paced(tg: Any, schedule: list[tuple[int, str]], rate: float, match: Match, expect: int,
                 drain_timeout: float, inject_failures: bool, settle: float) -> dict[str, Any]:
    from bench.alerts import FailureInjector

    recorder = _Recorder(match)
    unsubscribe = tg.subscribe(recorder)
    injector = FailureInjector(tg)
    inject_task = asyncio.create_task(injector.run()) if inject_failures else None
    sent: list[tuple[int, str, float]] = []
    try:
        start = time.perf_counter()
        for k, (user_id, text) in enumerate(schedule):
            delay = start + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.append((user_id, text, time.perf_counter()))
            await tg.users[user_id].send(text)
        await recorder.wait(expect, drain_timeout)
        if settle:
            await asyncio.sleep(settle)  # a late duplicate would show up here
    finally:
        if inject_task is not None:
            inject_task.cancel()
        unsubscribe()
    return {"sent": sent, "events": recorder.events, "injected_500": injector.injected_500,
            "injected_429": injector.injected_429}


_COMMANDS = {"users": _users, "reset_rate_limits": _reset_rate_limits, "burst": _burst, "paced": _paced}
