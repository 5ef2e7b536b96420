"""Update processing: one chat in order, different chats at the same time, each update once.

PTB starts a task per update in arrival order; we take a per-chat lock *before* the first
await, so the FIFO lock keeps a chat's updates in order while other chats run concurrently.
An update is marked processed only after it was handled: a crash in between means it is replayed
from the inbox and handled again, which is safe because recording is idempotent (readings are
unique by source update). Intake skips updates already handled or already waiting.
An update whose database connection died before it committed or sent anything is handled once
more (bot/telegram/retry.py says when that is safe).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any, Protocol

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.telegram.retry import ATTEMPT, Attempt, Snapshot

log = logging.getLogger(__name__)
# A chat with this many updates waiting is flooding: further updates are dropped (and logged)
# instead of each holding one of the shared concurrency slots while it waits for the chat lock.
MAX_QUEUED_PER_CHAT = 20
RETRY_DELAY = 0.2  # seconds before handling again: the pool pre-pings and reconnects meanwhile


class UpdateLedger(Protocol):
    async def mark(self, update_id: int) -> None: ...


class ChatOrderedProcessor(BaseUpdateProcessor):
    def __init__(self, ledger: UpdateLedger, max_concurrent_updates: int = 256,
                 max_queued_per_chat: int = MAX_QUEUED_PER_CHAT):
        super().__init__(max_concurrent_updates)
        self._ledger = ledger
        self.max_queued_per_chat = max_queued_per_chat
        self.dropped = 0
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

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = self._chat_key(update)
        update_id = update.update_id if isinstance(update, Update) else None
        if key is None:
            await self._run_once(update, update_id, coroutine)
            return
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        if users >= self.max_queued_per_chat:
            self.dropped += 1
            log.warning("chat is flooding (%d updates queued); dropping update %s", users, update_id)
            coroutine.close()  # type: ignore[attr-defined]
            return
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                await self._run_once(update, update_id, coroutine)
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def _run_once(self, update: object, update_id: int | None, coroutine: Awaitable[Any]) -> None:
        # Intake (bot.telegram.polling, the webhook) already enqueues only updates the database has
        # not seen; this in-memory check catches the rest (a replay racing a redelivery).
        if update_id is not None and update_id in self._recent:
            log.info("update %s was already processed; skipping the redelivery", update_id)
            coroutine.close()  # type: ignore[attr-defined]
            return
        await self._attempt(update, update_id, coroutine)
        if update_id is not None:
            self._recent[update_id] = None
            if len(self._recent) > 10_000:
                self._recent.popitem(last=False)
            try:
                await self._ledger.mark(update_id)
            except Exception:
                log.exception("could not record update %s as processed", update_id)

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
