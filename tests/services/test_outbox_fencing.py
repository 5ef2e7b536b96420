"""Outbox lease fencing (issue 9): a message goes out once even when its lease runs out while the
first sender still holds it, when the sender stops being the leader mid-request, and when the
connection dies as the sender marks it sent.

Two OutboxWorkers on one database play two processes (each with its own engine, bot and limiter).
A test harness limiter (the real FloodLimiter with gates) holds a request before it goes out (a long
limiter wait) or holds Telegram's answer on its way back (Telegram has the message, the sender does
not know yet). Time is a shared ManualClock, so "the lease ran out" is exact, not a 30 s sleep."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, select
from sqlalchemy.util import await_only
from telegram.ext import ExtBot

from bot.app import build
from bot.config import Settings
from bot.sandbox import FakeTelegram, SimUser
from bot.services.clock import ManualClock
from bot.services.container import Services
from bot.services.outbox import LEASE, SEND_BUDGET, OutboxWorker
from bot.telegram.ratelimit import FloodLimiter
from bot.telegram.request import AiohttpRequest
from bot.telegram.scaleout import LEADER_LOCK, ScaleOut, WorkerSlot
from storage.db import is_sqlite
from storage.migrate import upgrade
from storage.models import Outbox
from tests.conftest import app_settings

PAST_LEASE = LEASE.total_seconds() + 1


class HeldLimiter(FloodLimiter):
    """The real limiter with two gates on sendMessage: `before` holds a request before the limiter
    takes it (a long limiter wait), `after` holds Telegram's answer (or error) on its way back."""

    def __init__(self) -> None:
        super().__init__()
        self.before, self.after = asyncio.Event(), asyncio.Event()
        self.before.set()
        self.after.set()
        self.held_before, self.held_after = asyncio.Event(), asyncio.Event()

    async def process_request(self, callback: Any, args: Any, kwargs: dict[str, Any], endpoint: str,
                              data: dict[str, Any], rate_limit_args: dict[str, Any] | None) -> Any:
        if endpoint == "sendMessage" and not self.before.is_set():
            self.held_before.set()
            await self.before.wait()

        async def answered(*a: Any, **k: Any) -> Any:
            try:
                return await callback(*a, **k)
            finally:  # an answer or an error (a 400) alike
                if endpoint == "sendMessage" and not self.after.is_set():
                    self.held_after.set()
                    await self.after.wait()

        return await super().process_request(answered, args, kwargs, endpoint, data, rate_limit_args)


@dataclass
class Sender:
    """One sending process: its own engine, outbox worker, bot and limiter."""

    services: Services
    bot: ExtBot[Any]
    limiter: HeldLimiter

    @property
    def outbox(self) -> OutboxWorker:
        return self.services.outbox


@contextlib.asynccontextmanager
async def sender(tg: FakeTelegram, url: str, clock: ManualClock) -> AsyncIterator[Sender]:
    services = Services.build(Settings(database_url=url), clock)
    limiter = HeldLimiter()
    bot: ExtBot[Any] = ExtBot(tg.token, base_url=tg.base_url, request=AiohttpRequest(connection_pool_size=8),
                              rate_limiter=limiter)
    await bot.initialize()
    try:
        yield Sender(services, bot, limiter)
    finally:
        await bot.shutdown()
        await services.engine.dispose()


@pytest.fixture
async def two(tg: FakeTelegram, db_url: str, clock: ManualClock) -> AsyncIterator[tuple[Sender, Sender]]:
    async with sender(tg, db_url, clock) as a, sender(tg, db_url, clock) as b:
        await upgrade(a.services.engine)
        yield a, b


async def queue(s: Sender, user: SimUser, *texts: str) -> list[int]:
    async with s.services.sessions.begin() as session:
        rows = [Outbox(kind="notice", chat_id=user.id, payload={"text": text}, dedupe_key=f"{user.id}:{text}",
                       next_attempt_at=s.services.clock.now()) for text in texts]
        session.add_all(rows)
    return [r.id for r in rows]


async def statuses(s: Sender) -> list[str]:
    async with s.services.sessions() as session:
        return list(await session.scalars(select(Outbox.status).order_by(Outbox.id)))


def received(tg: FakeTelegram, user: SimUser) -> list[str]:
    return [m.text or "" for m in tg.chat_messages(user.id)]


def count_updates(s: Sender) -> Callable[[], list[str]]:
    """Every UPDATE this sender's engine runs on the outbox table, from now on."""
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE OUTBOX"):
            seen.append(statement)

    event.listen(s.services.engine.sync_engine, "before_cursor_execute", listener)
    return lambda: seen


async def test_fresh_claim_sends_without_an_extra_statement(tg: FakeTelegram, two: tuple[Sender, Sender]) -> None:
    a, _b = two
    user = tg.user("Fresh", started=True)
    await queue(a, user, "hello")
    updates = count_updates(a)
    assert await a.outbox.run_once(a.bot) == 1
    assert received(tg, user) == ["hello"]
    assert await statuses(a) == ["sent"]
    assert len(updates()) == 2, updates()  # the claim and "sent": no lease renewal on the fast path


async def test_expired_lease_while_waiting_in_the_limiter_sends_once(
        tg: FakeTelegram, two: tuple[Sender, Sender], clock: ManualClock) -> None:
    a, b = two
    user = tg.user("Waiting", started=True)
    await queue(a, user, "only once")
    a.limiter.before.clear()  # A claims the row, then its request waits in the limiter ...
    first = asyncio.create_task(a.outbox.run_once(a.bot))
    await asyncio.wait_for(a.limiter.held_before.wait(), 10)
    clock.advance(seconds=PAST_LEASE)  # ... past its lease: B claims the row again and sends it
    assert await b.outbox.run_once(b.bot) == 1
    assert received(tg, user) == ["only once"]
    a.limiter.before.set()  # A's request reaches the front: the lease check finds B's token
    await asyncio.wait_for(first, 10)

    assert received(tg, user) == ["only once"]
    assert tg.stats.calls["sendMessage"] == 1  # A's request never went out
    assert (a.outbox.stats.lease_lost, a.outbox.stats.sent, b.outbox.stats.sent) == (1, 0, 1)
    assert await statuses(a) == ["sent"]


async def test_old_claim_is_renewed_before_sending_and_not_claimed_again(
        tg: FakeTelegram, two: tuple[Sender, Sender], clock: ManualClock) -> None:
    a, b = two
    user = tg.user("Renewed", started=True)
    await queue(a, user, "renewed")
    a.limiter.before.clear()
    first = asyncio.create_task(a.outbox.run_once(a.bot))
    await asyncio.wait_for(a.limiter.held_before.wait(), 10)
    clock.advance(seconds=(LEASE - SEND_BUDGET).total_seconds() + 1)  # less than a send's budget is left
    updates = count_updates(a)
    a.limiter.before.set()
    await asyncio.wait_for(first, 10)
    assert len(updates()) == 2, updates()  # the renewal, then "sent"
    clock.advance(seconds=SEND_BUDGET.total_seconds())  # the first lease is over, the renewed one is not
    assert await b.outbox.run_once(b.bot) == 0

    assert received(tg, user) == ["renewed"]
    assert (a.outbox.stats.sent, a.outbox.stats.lease_lost) == (1, 0)
    assert await statuses(a) == ["sent"]


async def test_step_down_mid_request_finishes_the_send_and_hands_back_the_rest(
        tg: FakeTelegram, two: tuple[Sender, Sender], clock: ManualClock) -> None:
    """ScaleOut._step_down cancels the leader's sender task while a request is on the wire: the request
    completes and is marked sent, the chat's next row is handed back at once, and nothing is sent twice
    by the next leader, even after every lease has run out."""
    a, b = two
    user = tg.user("StepDown", started=True)
    await queue(a, user, "on the wire", "not started")
    a.limiter.after.clear()  # Telegram accepts the first message; its answer is on the way back ...
    leader = asyncio.create_task(a.outbox.run_forever(a.bot, 0.05))
    await asyncio.wait_for(a.limiter.held_after.wait(), 10)
    assert received(tg, user) == ["on the wire"]
    leader.cancel()  # ... when the leader steps down
    await asyncio.sleep(0.2)
    assert not leader.done()  # still finishing what it has on the wire
    a.limiter.after.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(leader, 10)
    assert await statuses(a) == ["sent", "pending"]
    assert a.outbox.stats.released == 1

    assert await b.outbox.run_once(b.bot) == 1  # the next leader, at once: the handed-back row
    clock.advance(seconds=PAST_LEASE)
    assert await b.outbox.run_once(b.bot) == 0
    assert received(tg, user) == ["on the wire", "not started"]
    assert await statuses(a) == ["sent", "sent"]


async def test_chat_migrated_after_the_lease_ran_out_writes_nothing(
        tg: FakeTelegram, two: tuple[Sender, Sender], clock: ManualClock) -> None:
    """A's request meets "group chat was upgraded to a supergroup" but its answer comes back after A's
    lease ran out and B claimed the row again: A must not move or re-pend B's row (every write of a
    sender matches its lease token); B meets the same answer, moves it, and it goes out once."""
    a, b = two
    group = tg.group("Migrating", [tg.user("Member", started=True)])
    old_id = group.id
    async with a.services.sessions.begin() as session:
        session.add(Outbox(kind="notice", chat_id=old_id, payload={"text": "to the circle"}, dedupe_key="mig",
                           next_attempt_at=clock.now()))
    new_id = group.migrate()
    a.limiter.after.clear()  # A's request is answered 400 (migrated); the answer is held on its way back
    first = asyncio.create_task(a.outbox.run_once(a.bot))
    await asyncio.wait_for(a.limiter.held_after.wait(), 10)
    clock.advance(seconds=PAST_LEASE)
    b.limiter.before.clear()  # B claims the row again; its request waits in B's limiter
    second = asyncio.create_task(b.outbox.run_once(b.bot))
    await asyncio.wait_for(b.limiter.held_before.wait(), 10)
    a.limiter.after.set()  # A handles the 400 while B holds the row
    await asyncio.wait_for(first, 10)
    async with a.services.sessions() as session:
        row = (await session.execute(select(Outbox.status, Outbox.attempts, Outbox.chat_id))).one()
    assert tuple(row) == ("sending", 2, old_id)  # B's lease, untouched
    assert a.outbox.stats.lease_lost == 1

    b.limiter.before.set()  # B meets the same 400 and moves the row itself
    await asyncio.wait_for(second, 10)
    clock.advance(seconds=1)
    assert await b.outbox.run_once(b.bot) == 1
    assert [m.text for m in group.messages] == ["to the circle"]
    assert await statuses(a) == ["sent"]
    assert new_id == group.id


class Terminator:
    """Terminates the connection about to mark a row sent, `times` times (what a PostgreSQL restart or
    a network cut does to it), through pg_terminate_backend of that very connection."""

    def __init__(self, s: Sender, url: str, times: int) -> None:
        self.left, self.done = times, 0
        self.dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        event.listen(s.services.engine.sync_engine, "before_cursor_execute", self)

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.left and statement.lstrip().upper().startswith("UPDATE OUTBOX") and "telegram_message_id" in statement:
            self.left -= 1
            pid = conn.connection.dbapi_connection._connection.get_server_pid()
            await_only(self._terminate(pid))  # inside SQLAlchemy's greenlet: run the coroutine
            self.done += 1

    async def _terminate(self, pid: int) -> None:
        admin = await asyncpg.connect(self.dsn)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await asyncio.sleep(0.05)  # let the client read the server's goodbye


async def test_dropped_connections_at_mark_sent_do_not_send_twice(
        tg: FakeTelegram, pg_url: str, clock: ManualClock) -> None:
    async with sender(tg, pg_url, clock) as a, sender(tg, pg_url, clock) as b:
        await upgrade(a.services.engine)
        assert not is_sqlite(pg_url)
        user = tg.user("Dropped", started=True)
        await queue(a, user, "marked late")
        cut = Terminator(a, pg_url, times=6)  # more than a fixed 5 tries: the database is away for a while
        assert await a.outbox.run_once(a.bot) == 1
        assert cut.done == 6
        assert await statuses(a) == ["sent"]
        clock.advance(seconds=PAST_LEASE)
        assert await b.outbox.run_once(b.bot) == 0
        assert received(tg, user) == ["marked late"]


async def _wait_for(condition: Callable[[], Any], seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await condition() if asyncio.iscoroutinefunction(condition) else condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {condition}")


async def test_leader_losing_its_lock_mid_request_sends_once(tg: FakeTelegram, pg_url: str, clock: ManualClock) -> None:
    """The real ScaleOut: the leader's lock connection is cut (pg_terminate_backend) while Telegram's
    answer to an alert-like send is on its way back. The worker steps down and becomes the leader again;
    the message arrives once and is marked sent, so no later leader sends it again."""
    care = build(app_settings(tg, pg_url), clock=clock)
    care.scale = ScaleOut(care, WorkerSlot(0, 1))
    limiter = HeldLimiter()
    care.application.bot._rate_limiter = limiter  # the harness gates on the app's own bot
    await care.start(serve_http=False, poll=True)
    try:
        await _wait_for(lambda: care.scale.is_leader)
        user = tg.user("Failover", started=True)
        s = Sender(care.services, care.application.bot, limiter)
        limiter.after.clear()
        await queue(s, user, "across the failover")
        care.services.outbox.wake()
        await asyncio.wait_for(limiter.held_after.wait(), 15)
        admin = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            assert await admin.fetchval(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 "
                "AND objid = $2 AND objsubid = 2", *LEADER_LOCK)
        finally:
            await admin.close()
        await _wait_for(lambda: not care.scale.is_leader)
        await asyncio.sleep(0.3)
        limiter.after.set()

        async def marked() -> bool:
            return await statuses(s) == ["sent"]

        await _wait_for(marked)
        await _wait_for(lambda: care.scale.is_leader)  # elected again, the same process
        clock.advance(seconds=PAST_LEASE)  # every lease of the first term is over
        care.services.outbox.wake()
        await asyncio.sleep(1.0)  # the new term's sender polls every 0.05 s
        assert received(tg, user) == ["across the failover"]
        assert care.scale.stats.leader_terms == 2
    finally:
        await care.stop()
