"""Update processing: one chat in order, different chats at the same time, each update once.

PTB starts a task per update in arrival order; we take a per-chat lock *before* the first
await, so the FIFO lock keeps a chat's updates in order while other chats run concurrently.
An update is marked processed only after it was handled: a crash in between means it is replayed
from the inbox and handled again, which is safe because recording is idempotent (readings are
unique by source update). Intake skips updates already handled or already waiting.
An update whose database connection died before it committed or sent anything is handled once
more (bot/telegram/retry.py says when that is safe).

Urgent first: at most `max_concurrent_updates` updates run at once (a chat waiting for its own
lock holds no slot), and a chat with an urgent update waiting (bot/telegram/triage.py) is admitted
before every ordinary chat, into `urgent_reserve` extra slots if the ordinary ones are full. So
when the bot is over capacity the backlog of ordinary readings waits, not the alert. An urgent
update promotes its chat: the chat's earlier updates go first (order within a chat is kept), but
they, too, skip the ordinary queue. On SQLite the writes of an urgent chat's updates also go
first in the one-writer queue (storage/write_lock.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.telegram.retry import ATTEMPT, Attempt, Snapshot
from bot.telegram.triage import is_urgent
from storage.write_lock import urgent_writes

log = logging.getLogger(__name__)
# A chat with this many updates waiting is flooding: further updates are dropped (and logged)
# instead of each holding one of the shared concurrency slots while it waits for the chat lock.
MAX_QUEUED_PER_CHAT = 20
RETRY_DELAY = 0.2  # seconds before handling again: the pool replaces the dead connection meanwhile
# Updates running at once. More than the database pool holds (storage/db.py: one connection per
# slot) would queue them inside the pool, where an urgent one cannot go first, and slices the event
# loop so thinly that every update, urgent or not, takes (running x per-update time) to finish.
# Fewer make the group commits of readings and ledger marks smaller: 24 rather than 16 cut the
# transactions per reading from 0.38 to 0.27 on PostgreSQL under a burst (issue 4).
MAX_RUNNING = 24
URGENT_RESERVE = 8  # extra slots only urgent chats may take, so they never wait for an ordinary one


@dataclass(eq=False)
class _Waiter:
    key: object
    future: asyncio.Future[None]
    urgent: bool = False


@dataclass
class PriorityGate:
    """Concurrency slots that urgent chats get first.

    `limit` slots for everyone, `reserve` more for urgent chats only. Waiters are FIFO within
    each lane; `promote` moves a waiting chat into the urgent lane (it keeps its place there by
    promotion time). Only a chat's first update waits here (the others wait for the chat lock),
    so there is at most one waiter per chat.

    While urgent updates run or wait, new ordinary ones are admitted only up to `quiet` running
    updates: the event loop and the database are shared, and an urgent update running beside 16
    ordinary ones got a seventeenth of them (measured: 0.1-2 s from admission to its alert)."""

    limit: int
    reserve: int = 0
    quiet: int = 4
    running: int = 0
    urgent_running: int = 0
    marking: int = 0  # handled updates out of their slot, committing their ledger mark
    _ordinary: deque[_Waiter] = field(default_factory=deque)
    _urgent: deque[_Waiter] = field(default_factory=deque)
    _waiting: dict[object, _Waiter] = field(default_factory=dict)
    _held: dict[object, bool] = field(default_factory=dict)  # slots handed on within a promoted chat

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _urgent_waiting(self) -> bool:
        while self._urgent and self._urgent[0].future.done():
            self._urgent.popleft()
        return bool(self._urgent)

    def _ordinary_room(self) -> bool:
        """Whether an ordinary update may start now. While urgent work runs or waits, updates still
        committing their mark count too: they are out of their slot but not yet off the loop and
        the database."""
        if self.urgent_running or self._urgent_waiting():
            return self.running + self.marking < min(self.quiet, self.limit)
        return self.running < self.limit

    def marked(self) -> None:
        """A mark counted in `marking` committed: room for an ordinary update may have opened."""
        self.marking -= 1
        self._grant()

    async def enter(self, key: object, urgent: bool) -> bool:
        """Wait for a slot; returns whether it was taken as urgent (pass that to `leave`)."""
        held = self._held.pop(key, None)
        if held is not None:  # the chat's previous update handed its slot on
            return held
        if urgent and self.running < self.limit + self.reserve and not self._urgent_waiting():
            self.running += 1
            self.urgent_running += 1
            return True
        if not urgent and self._ordinary_room() and not self._waiting:
            self.running += 1
            return False
        waiter = _Waiter(key, asyncio.get_running_loop().create_future(), urgent)
        (self._urgent if urgent else self._ordinary).append(waiter)
        self._waiting[key] = waiter
        try:
            await waiter.future
        except BaseException:
            if waiter.future.done() and not waiter.future.cancelled():
                self.leave(waiter.urgent)  # granted, then cancelled before we ran: give the slot back
            raise
        finally:
            if self._waiting.get(key) is waiter:
                del self._waiting[key]
        return waiter.urgent

    def leave(self, urgent: bool) -> None:
        self.running -= 1
        if urgent:
            self.urgent_running -= 1
        self._grant()

    def hand_on(self, key: object, urgent: bool) -> None:
        """Keep a finished update's slot for its chat's next update (already waiting for the chat
        lock): without this, a promoted chat would lose the slot between two of its updates."""
        self._held[key] = urgent

    def drop_held(self, key: object) -> None:
        """The chat has nothing left to run: free a slot handed on to it."""
        held = self._held.pop(key, None)
        if held is not None:
            self.leave(held)

    def promote(self, key: object) -> None:
        waiter = self._waiting.get(key)
        if waiter is not None and not waiter.urgent:
            waiter.urgent = True
            self._urgent.append(waiter)  # also still in the ordinary lane; the first grant wins
            self._grant()

    def _grant(self) -> None:
        while True:
            if self._urgent_waiting():
                if self.running >= self.limit + self.reserve:
                    return
                waiter = self._urgent.popleft()
                self.urgent_running += 1
            else:
                while self._ordinary and self._ordinary[0].future.done():
                    self._ordinary.popleft()
                if not self._ordinary or not self._ordinary_room():
                    return
                waiter = self._ordinary.popleft()
            self.running += 1
            waiter.future.set_result(None)
            del self._waiting[waiter.key]


class UpdateLedger(Protocol):
    async def mark(self, update_id: int) -> None: ...


class ChatOrderedProcessor(BaseUpdateProcessor):
    def __init__(self, ledger: UpdateLedger, max_concurrent_updates: int = MAX_RUNNING,
                 max_queued_per_chat: int = MAX_QUEUED_PER_CHAT, *, urgent_reserve: int = URGENT_RESERVE,
                 classify: Callable[[object], bool] = is_urgent):
        super().__init__(max_concurrent_updates)
        self._ledger = ledger
        self.max_queued_per_chat = max_queued_per_chat
        self.dropped = 0
        self.gate = PriorityGate(max_concurrent_updates, urgent_reserve)
        self._classify = classify
        self._urgent_chats: dict[object, int] = {}  # chat -> urgent updates queued or running
        self.urgent_seen = 0
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}
        self._recent: OrderedDict[int, None] = OrderedDict()  # fast path before the database
        self.application: Any = None  # set by bind(); needed to handle an update a second time
        self.retried = 0

    def bind(self, application: Any) -> None:
        self.application = application

    @staticmethod
    def _chat_key(update: object) -> int | None:
        if isinstance(update, Update):
            if update.effective_chat is not None:
                return update.effective_chat.id
            if update.effective_user is not None:
                return update.effective_user.id
        return None

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:  # type: ignore[misc]
        """PTB's version holds a FIFO semaphore slot from arrival on, so an urgent update would
        wait behind every earlier one before even being looked at; our slots (`gate`) are taken
        in do_process_update, once the update is first in its chat, urgent chats first."""
        await self.do_process_update(update, coroutine)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = self._chat_key(update)
        update_id = update.update_id if isinstance(update, Update) else None
        if key is None:
            await self._mark(await self._admitted(object(), update, update_id, coroutine, False))
            return
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        if users >= self.max_queued_per_chat:
            self.dropped += 1
            log.warning("chat is flooding (%d updates queued); dropping update %s", users, update_id)
            coroutine.close()  # type: ignore[attr-defined]
            return
        self._locks[key] = (lock, users + 1)
        urgent = self._classify(update)
        if urgent:  # the chat's earlier updates, and this one, skip the ordinary queue
            self.urgent_seen += 1
            self._urgent_chats[key] = self._urgent_chats.get(key, 0) + 1
            self.gate.promote(key)
        handled = None
        try:
            async with lock:
                handled = await self._admitted(key, update, update_id, coroutine, urgent)
        finally:
            if urgent:
                left = self._urgent_chats[key] - 1
                if left:
                    self._urgent_chats[key] = left
                else:
                    del self._urgent_chats[key]
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
                self.gate.drop_held(key)
            else:
                self._locks[key] = (lock, users - 1)
        await self._mark(handled)

    async def _admitted(self, key: object, update: object, update_id: int | None,
                        coroutine: Awaitable[Any], own_urgent: bool) -> int | None:
        """Run the update in a slot; returns its id if it was handled and still needs its mark."""
        try:
            urgent = await self.gate.enter(key, key in self._urgent_chats)
        except BaseException:
            coroutine.close()  # type: ignore[attr-defined]
            raise
        try:
            with urgent_writes(urgent):  # and its SQLite writes go first (storage/write_lock.py)
                return await self._run_once(update, update_id, coroutine)
        finally:
            if self._urgent_chats.get(key, 0) > (1 if own_urgent else 0):
                self.gate.hand_on(key, urgent)  # an urgent update of this chat is still waiting behind us
            else:
                self.gate.leave(urgent)

    async def _run_once(self, update: object, update_id: int | None, coroutine: Awaitable[Any]) -> int | None:
        # Intake (bot.telegram.polling, the webhook) already enqueues only updates the database has
        # not seen; this in-memory check catches the rest (a replay racing a redelivery).
        if update_id is not None and update_id in self._recent:
            log.info("update %s was already processed; skipping the redelivery", update_id)
            coroutine.close()  # type: ignore[attr-defined]
            return None
        await self._attempt(update, update_id, coroutine)
        if update_id is not None:
            self._recent[update_id] = None
            if len(self._recent) > 10_000:
                self._recent.popitem(last=False)
        return update_id

    async def _mark(self, update_id: int | None) -> None:
        """Record a handled update as processed, after its slot and its chat lock were given back.

        Why not in the slot: on SQLite the mark's group commit queues for the one writer behind
        the readings' transactions (~60 ms at 200 readings/s), so a slot held through it stayed
        busy about twice as long as the handler itself, and 16 slots capped the bot at ~170
        updates/s (issue 4). The mark still follows the handler (a crash in between replays the
        update, as before); the chat's next update may start meanwhile, which changes no order:
        handling is still one at a time per chat, and this mark reaches the ledger (synchronously, in
        `UpdateLedgerService.mark` before its first await) before that next update starts, so the
        ledger's group commit never records a chat's later update without its earlier one. Ordinary
        lane: the reply was sent already. Beside urgent work it still counts toward the gate's
        `quiet` limit (`PriorityGate.marking`)."""
        if update_id is None:
            return
        self.gate.marking += 1
        try:
            with urgent_writes(False):
                await self._ledger.mark(update_id)
        except Exception:
            log.exception("could not record update %s as processed", update_id)
        finally:
            self.gate.marked()

    async def _attempt(self, update: object, update_id: int | None, coroutine: Awaitable[Any]) -> None:
        """Handle the update; once more if the error handler claimed a retry (bot/telegram/retry.py)."""
        snapshot = None
        if self.application is not None and isinstance(update, Update):
            user, chat = update.effective_user, update.effective_chat
            snapshot = Snapshot.take(self.application, user.id if user else None, chat.id if chat else None)
        attempt = Attempt(update_id, first=snapshot is not None)
        token = ATTEMPT.set(attempt)
        try:
            await coroutine
        finally:
            attempt.open = False
            ATTEMPT.reset(token)
        if not attempt.retry or snapshot is None:
            return
        self.retried += 1
        log.warning("update %s lost its database connection before it changed anything; handling it again",
                    update_id)
        snapshot.restore()
        await asyncio.sleep(RETRY_DELAY)
        second = Attempt(update_id, first=False)
        token = ATTEMPT.set(second)
        try:
            await self.application.process_update(update)
        finally:
            second.open = False
            ATTEMPT.reset(token)

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None
