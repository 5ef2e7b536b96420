"""Several bot processes behind one webhook port, sharing PostgreSQL (`carecircle run --workers N`).

Chat affinity, not a lock per chat. PTB keeps conversation states and user_data in memory (loaded
from SqlPersistence at start-up), so every update of a chat must be handled by the same process:
worker i of N owns the chats with abs(chat) % N == i. Inside that process the usual
ChatOrderedProcessor keeps each chat in order and marks each update handled once.

Intake. The kernel spreads webhook connections over the workers (SO_REUSEPORT). Whoever receives
an update commits it to the inbox with its chat key and, in the same transaction, NOTIFYs the
owner; only then does it answer 200. The owner fetches its inbox rows in update_id order and
queues the ones it has not queued yet. Telegram sends a chat's next update only after our 200
for the previous one, so a chat's rows commit in update_id order, and a fetch that sees an
update also sees every earlier one of that chat. A notification missed while the listener
reconnects costs at most FALLBACK_POLL seconds: the owner also polls.

One leader. The outbox sender and the periodic ticks (escalation, reminders, circles) run in one
worker only, the one holding a session advisory lock on its own connection. The global bulk
limit (about 30 msg/s) thus stays the in-process token bucket of bot.telegram.ratelimit, and no
periodic job runs twice. We chose this over a token-bucket row in PostgreSQL because it is
correct by construction and costs nothing per message (a shared row costs an UPDATE per send,
every worker queueing on one row lock), while one process sends 25 msg/s with ease. If the leader
dies its connection closes, PostgreSQL frees the lock, and another worker takes over within
LEADER_RETRY seconds; outbox rows it had leased are sent again when the lease ends. A leader that
loses its lock but lives (its connection was cut) stops claiming at once, yet lets the sends already
on the wire finish and be marked: cancelling them mid-request made the next leader send those
messages again. Lease tokens keep the two apart meanwhile (bot.services.outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url
from telegram import Update

from bot.services.db import being_cancelled, with_retry
from bot.telegram.processor import ChatOrderedProcessor
from storage.models import UpdateInbox, UpdateLog

if TYPE_CHECKING:
    from bot.app import CareCircle

log = logging.getLogger(__name__)
LEADER_LOCK = (72077, 2)  # pg_advisory_lock(int, int); storage.migrate uses (72077, 1)
SLOT_LOCK = 72078  # (SLOT_LOCK, index): one live process per worker index, whoever started it
LEADER_RETRY = 1.0  # seconds between attempts to become the leader
HEARTBEAT = 1.0  # seconds between liveness checks of the listener and leader connections
FALLBACK_POLL = 2.0  # the owner looks at its inbox at least this often, notification or not
FETCH_LIMIT = 1000
STOP_DRAIN = 10.0  # seconds a stopping worker gives its outbox sends on the wire (the supervisor kills at 20)


@dataclass(frozen=True)
class WorkerSlot:
    """This process's place among the workers: index 0..count-1."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> WorkerSlot:
        index, count = (int(part) for part in text.split("/", 1))
        if not 0 <= index < count:
            raise ValueError(f"worker {text!r}: index must be in 0..count-1")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def owner(chat_key: int | None, count: int) -> int:
    """The worker that handles this chat; updates without a chat go to worker 0."""
    return 0 if chat_key is None else abs(chat_key) % count


def channel(index: int) -> str:
    return f"carecircle_inbox_{index}"


def asyncpg_dsn(database_url: str) -> str:
    """The plain libpq URL asyncpg wants, from the SQLAlchemy one."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class SlotTaken(Exception):
    """Another live process holds this worker index (two supervisors on one database?)."""


@dataclass
class ScaleStats:
    received: int = 0  # webhook calls that stored a new update
    for_others: int = 0  # ... of which another worker owns the chat
    queued: int = 0  # updates this worker fetched from the inbox and handled
    leader_terms: int = 0


class ScaleOut:
    def __init__(self, care: CareCircle, slot: WorkerSlot):
        self.care = care
        self.slot = slot
        self.stats = ScaleStats()
        self.is_leader = False
        self._dsn = asyncpg_dsn(care.settings.database_url)
        self._wake = asyncio.Event()
        self._queued: set[int] = set()
        self._own_slot = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._leader_tasks: list[asyncio.Task[Any]] = []
        self._retiring: set[asyncio.Task[Any]] = set()  # a past term's outbox sender, finishing its sends

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Called by CareCircle.start instead of the single-process replay and background loops."""
        self._tasks = [asyncio.create_task(self._loop("inbox listener", self._listen)),
                       asyncio.create_task(self._fetch_forever()),
                       asyncio.create_task(self._loop("leader election", self._lead))]

    async def stop(self) -> None:
        self._step_down()
        for task in self._tasks + self._leader_tasks:
            task.cancel()
        for task in self._tasks + self._leader_tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._retiring:  # the outbox finishing what it has on the wire, then cancelled for good
            _done, pending = await asyncio.wait(self._retiring, timeout=STOP_DRAIN)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        log.info("worker %s: %d updates received (%d for other workers), %d handled here, leader %d times",
                 self.slot, self.stats.received, self.stats.for_others, self.stats.queued, self.stats.leader_terms)

    # --- intake (the webhook handler) ---------------------------------------------------------
    async def receive(self, data: dict[str, Any], update: Update) -> None:
        """Store the update for its owner; must return only once committed (then we answer 200)."""
        key = ChatOrderedProcessor._chat_key(update)
        target = owner(key, self.slot.count)
        if not await with_retry(lambda: self._store(data, key, target)):
            return  # a redelivery: already handled, or already waiting in the inbox
        self.stats.received += 1
        if target == self.slot.index:
            self._wake.set()
        else:
            self.stats.for_others += 1

    async def _store(self, data: dict[str, Any], key: int | None, target: int) -> bool:
        update_id = int(data["update_id"])
        async with self.care.services.sessions.begin() as session:
            if await session.scalar(select(UpdateLog.update_id).where(UpdateLog.update_id == update_id)):
                return False
            inserted = await session.scalar(
                pg_insert(UpdateInbox)
                .values(update_id=update_id, payload=data, received_at=self.care.services.clock.now(), chat_key=key)
                .on_conflict_do_nothing(index_elements=["update_id"])
                .returning(UpdateInbox.update_id))
            if inserted is None:
                return False
            if target != self.slot.index:  # delivered to the owner's listener when we commit
                await session.execute(select(func.pg_notify(channel(target), "")))
            return True

    # --- the owner's side ---------------------------------------------------------------------
    async def _fetch_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FALLBACK_POLL)
            self._wake.clear()
            try:
                await self._fetch()
            except Exception as exc:  # the database is away (restart): the next wake or poll retries
                log.warning("worker %s could not read its inbox: %s", self.slot, exc.__class__.__name__)
                await asyncio.sleep(0.5)

    async def _fetch(self) -> None:
        """Queue this worker's inbox rows not queued yet, in update_id order.

        An id leaves `_queued` only once a fetch no longer sees it (it was handled and deleted),
        so a row is never queued twice, however fetches and handling interleave. Only while this
        process holds its slot lock: a second process started with the same index stays idle."""
        if not self._own_slot:
            return
        n, i = self.slot.count, self.slot.index
        mine = func.coalesce(func.abs(UpdateInbox.chat_key) % n, 0) == i
        async with self.care.services.sessions() as session:
            ids = list(await session.scalars(
                select(UpdateInbox.update_id).where(mine).order_by(UpdateInbox.update_id).limit(FETCH_LIMIT)))
            present = set(ids)
            complete = len(ids) < FETCH_LIMIT
            self._queued = {x for x in self._queued if x in present or (not complete and x > ids[-1])}
            new = [x for x in ids if x not in self._queued]
            if not new:
                return
            payloads = dict((await session.execute(
                select(UpdateInbox.update_id, UpdateInbox.payload).where(UpdateInbox.update_id.in_(new)))).all())
        application = self.care.application
        for update_id in new:
            data = payloads.get(update_id)
            if data is None:
                continue
            update = Update.de_json(data, application.bot)
            if i == 0 and await self._route_unkeyed(update_id, update):
                continue
            self._queued.add(update_id)
            self.stats.queued += 1
            await application.update_queue.put(update)

    async def _route_unkeyed(self, update_id: int, update: Update) -> bool:
        """Rows written without a chat key (by a one-process bot still serving while we started) all
        land with worker 0: hand the ones of other workers' chats over. True when handed over."""
        key = ChatOrderedProcessor._chat_key(update)
        target = owner(key, self.slot.count)
        if target == 0:
            return False
        async with self.care.services.sessions.begin() as session:
            await session.execute(sa_update(UpdateInbox).where(UpdateInbox.update_id == update_id,
                                                               UpdateInbox.chat_key.is_(None)).values(chat_key=key))
            await session.execute(select(func.pg_notify(channel(target), "")))
        return True

    async def _listen(self, conn: asyncpg.Connection) -> None:
        if not await asyncio.wait_for(conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", SLOT_LOCK,
                                                    self.slot.index), HEARTBEAT * 5):
            raise SlotTaken(f"another process is running as worker {self.slot} on this database")
        try:
            self._own_slot = True
            await conn.add_listener(channel(self.slot.index), lambda *_: self._wake.set())
            self._wake.set()  # what this worker owns and was left in the inbox, or stored while we were away
            while True:
                await asyncio.sleep(HEARTBEAT)
                await asyncio.wait_for(conn.fetchval("SELECT 1"), HEARTBEAT * 5)
        finally:
            self._own_slot = False  # the lock went with the connection

    # --- the leader ---------------------------------------------------------------------------
    async def _lead(self, conn: asyncpg.Connection) -> None:
        try:
            while True:
                if self.is_leader:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), HEARTBEAT * 5)
                elif await asyncio.wait_for(conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *LEADER_LOCK),
                                            HEARTBEAT * 5):
                    self._become_leader()
                await asyncio.sleep(HEARTBEAT if self.is_leader else LEADER_RETRY)
        finally:
            self._step_down()  # the lock went with the connection (or goes with it now)

    def _become_leader(self) -> None:
        care = self.care
        self.is_leader = True
        self.stats.leader_terms += 1
        log.info("worker %s is the leader: outbox sender and periodic jobs", self.slot)
        self._leader_tasks = [  # the outbox sender first: _step_down lets it finish its sends
            asyncio.create_task(care.services.outbox.run_forever(care.application.bot,
                                                                 care.settings.outbox_poll_seconds)),
            asyncio.create_task(self._periodic()),
        ]

    async def _periodic(self) -> None:
        """CareCircle._periodic, but ticking at once: a leader elected after a failover must not
        wait a whole interval (and a leader replaced more often than that would never tick)."""
        while True:
            try:
                await self.care.tick()
            except Exception:
                if being_cancelled():
                    raise  # stop, do not tick on beside the new leader
                log.exception("periodic tick failed")
            await asyncio.sleep(min(30.0, self.care.settings.reminder_tick_seconds))

    def _step_down(self) -> None:
        """Stop the leader's work. Cancelling the outbox sender stops its claiming at once; it then
        lets the requests it has on the wire finish (OutboxWorker.run_forever), so it is kept until it
        ends rather than awaited here."""
        if self.is_leader:
            log.warning("worker %s is no longer the leader", self.slot)
        self.is_leader = False
        for task in self._leader_tasks:
            task.cancel()
        sender = self._leader_tasks[0] if self._leader_tasks else None  # the outbox sender (see _become_leader)
        if sender is not None and not sender.done():
            self._retiring.add(sender)
            sender.add_done_callback(self._retiring.discard)
        self._leader_tasks = []

    async def _loop(self, name: str, body: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
        """Run `body` on a dedicated connection, reconnecting (with back-off) whenever it breaks."""
        backoff = 0.2
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
                backoff = 0.2
                await body(conn)
            except asyncio.CancelledError:
                raise
            except SlotTaken as exc:
                log.error("%s; waiting for it to go", exc)
            except Exception as exc:
                log.warning("worker %s %s lost its database connection (%s); reconnecting", self.slot, name,
                            exc.__class__.__name__)
            finally:
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
