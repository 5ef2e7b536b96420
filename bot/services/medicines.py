"""Medicines a patient listed and the doses they report taken, missed or with side effects."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.clock import Clock
from bot.services.db import read_session
from storage.models import MedicationLog, Medicine

STATUSES = ("taken", "missed", "side_effect")


class MedicineService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock):
        self._sessions = sessions
        self._clock = clock

    async def list(self, patient_id: int, *, session: AsyncSession | None = None) -> list[Medicine]:
        async with read_session(self._sessions, session) as session:
            return list(await session.scalars(
                select(Medicine).where(Medicine.patient_id == patient_id, Medicine.active.is_(True)).order_by(Medicine.id)))

    async def add(self, patient_id: int, name: str, dose: str = "", times: str = "") -> Medicine:
        async with self._sessions.begin() as session:
            medicine = Medicine(patient_id=patient_id, name=name.strip()[:128], dose=dose.strip()[:64],
                                times=times, created_at=self._clock.now())
            session.add(medicine)
        return medicine

    async def log(self, patient_id: int, medicine_id: int | None, status: str, *, note: str = "",
                  entered_by: int | None = None, source_update_id: int | None = None) -> bool:
        """Record a dose; False when the medicine is not this patient's (a forged button)."""
        if status not in STATUSES:
            return False
        async with self._sessions.begin() as session:
            if medicine_id is not None:
                medicine = await session.get(Medicine, medicine_id)
                if medicine is None or medicine.patient_id != patient_id:
                    return False
            if source_update_id is not None and await session.scalar(select(MedicationLog.id).where(
                    MedicationLog.source_update_id == source_update_id, MedicationLog.medicine_id == medicine_id)):
                return True
            session.add(MedicationLog(patient_id=patient_id, medicine_id=medicine_id, status=status, note=note[:512],
                                      logged_at=self._clock.now(), entered_by=entered_by or patient_id,
                                      source_update_id=source_update_id))
        return True

    async def adherence(self, patient_id: int, days: int = 30, *, session: AsyncSession | None = None
                        ) -> tuple[int, int]:
        """(taken, taken + missed) over the last `days` days."""
        since = self._clock.now() - timedelta(days=days)
        async with read_session(self._sessions, session) as session:
            rows = dict((await session.execute(
                select(MedicationLog.status, func.count()).where(
                    MedicationLog.patient_id == patient_id, MedicationLog.logged_at >= since)
                .group_by(MedicationLog.status))).all())
        taken = int(rows.get("taken", 0))
        return taken, taken + int(rows.get("missed", 0))
