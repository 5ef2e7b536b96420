"""The update ledger: which update_ids were already handled (idempotency across redelivery)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.clock import Clock
from storage.models import UpdateLog


class UpdateLedgerService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock):
        self._sessions = sessions
        self._clock = clock

    async def seen(self, update_id: int) -> bool:
        async with self._sessions() as session:
            return (await session.scalar(select(UpdateLog.update_id).where(UpdateLog.update_id == update_id))) is not None

    async def mark(self, update_id: int) -> None:
        try:
            async with self._sessions.begin() as session:
                session.add(UpdateLog(update_id=update_id, processed_at=self._clock.now()))
        except IntegrityError:
            pass  # another worker finished the same redelivered update first

    async def prune(self, keep: timedelta = timedelta(hours=48)) -> int:
        """Telegram keeps undelivered updates 24 h, so two days of ledger is enough."""
        async with self._sessions.begin() as session:
            result = await session.execute(delete(UpdateLog).where(UpdateLog.processed_at < self._clock.now() - keep))
            return result.rowcount or 0
