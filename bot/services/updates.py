"""The update ledger: updates received but not yet handled (the inbox) and update_ids already
handled (idempotency across redelivery)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.clock import Clock
from storage.models import UpdateInbox, UpdateLog


class UpdateLedgerService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock):
        self._sessions = sessions
        self._clock = clock

    async def seen(self, update_id: int) -> bool:
        async with self._sessions() as session:
            return (await session.scalar(select(UpdateLog.update_id).where(UpdateLog.update_id == update_id))) is not None

    async def receive(self, updates: list[dict[str, Any]]) -> set[int]:
        """Keep raw updates until handled; must commit before Telegram learns we have them.

        Returns the ids that are new: the caller enqueues only those, so a redelivery of an
        update already handled (or already waiting in the inbox) is not handled twice."""
        if not updates:
            return set()
        ids = [int(u["update_id"]) for u in updates]
        async with self._sessions.begin() as session:
            known = set(await session.scalars(select(UpdateInbox.update_id).where(UpdateInbox.update_id.in_(ids))))
            known |= set(await session.scalars(select(UpdateLog.update_id).where(UpdateLog.update_id.in_(ids))))
            now = self._clock.now()
            fresh = [u for u in updates if int(u["update_id"]) not in known]
            session.add_all(UpdateInbox(update_id=int(u["update_id"]), payload=u, received_at=now) for u in fresh)
            return {int(u["update_id"]) for u in fresh}

    async def unhandled(self) -> list[dict[str, Any]]:
        """Updates received before a crash or restart and never handled, oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(select(UpdateInbox).order_by(UpdateInbox.update_id))
            return [row.payload for row in rows]

    async def mark(self, update_id: int) -> None:
        try:
            async with self._sessions.begin() as session:
                await session.execute(delete(UpdateInbox).where(UpdateInbox.update_id == update_id))
                session.add(UpdateLog(update_id=update_id, processed_at=self._clock.now()))
        except IntegrityError:
            pass  # another worker finished the same redelivered update first

    async def prune(self, keep: timedelta = timedelta(hours=48)) -> int:
        """Telegram keeps undelivered updates 24 h, so two days of ledger is enough."""
        async with self._sessions.begin() as session:
            result = await session.execute(delete(UpdateLog).where(UpdateLog.processed_at < self._clock.now() - keep))
            return result.rowcount or 0
