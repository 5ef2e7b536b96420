"""Correct the last reading (/edit): the row keeps its id and time, gets the new values and a
fresh assessment, and is stamped `edited_at`.

Why a correction re-assesses: a typo can hide or fake an emergency. "158/95" corrected to
"185/115" must alert the doctor exactly as if it had been sent that way, in the same
transaction as the change (AlertService.raise_in, like ReadingService.record).

The other way round, "185/115" corrected to "150/95" withdraws the urgent value: the open alert it
raised is closed ("corrected by patient: entered in error") unless another of its readings is still
urgent, and whoever got the alert is told, so the doctor does not rush; an alert already
acknowledged stays so and its doctor is told (AlertService.reading_withdrawn, same transaction).
A correction that is still urgent goes the normal way and keeps the alert open.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import clinical
from bot.services.alerts import AlertService
from bot.services.clock import Clock
from bot.services.readings import Average, NewReading, RecordResult
from bot.services.targets import age_of, targets_for
from storage.models import PatientProfile, Reading, User


class CorrectionService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, alerts: AlertService):
        self._sessions = sessions
        self._clock = clock
        self._alerts = alerts

    async def last(self, patient_id: int) -> Reading | None:
        """The reading /undo would delete: the one stored most recently."""
        async with self._sessions() as session:
            return await session.scalar(
                select(Reading).where(Reading.patient_id == patient_id)
                .order_by(Reading.created_at.desc(), Reading.id.desc()).limit(1))

    async def correct(self, patient_id: int, reading_id: int, new: NewReading) -> RecordResult | None:
        """Replace the values of the patient's reading; None when it is gone, not theirs, or
        another kind (a BP cannot be corrected into a glucose)."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            row = await session.get(Reading, reading_id, with_for_update=True)
            if row is None or row.patient_id != patient_id or row.kind != new.kind:
                return None
            patient = await session.get(User, patient_id)
            profile = await session.get(PatientProfile, patient_id)
            if patient is None:
                return None
            # Details the correction did not mention stay as they were (arm, posture, glucose context).
            new = replace(new, context=new.context or row.context, arm=new.arm or row.arm,
                          posture=new.posture or row.posture)
            age = age_of(profile, now)
            symptoms = frozenset(s for s in row.symptoms.split(",") if s)
            assessment = clinical.assess(new, targets_for(profile, age), age=age, symptoms=symptoms)
            for name in ("systolic", "diastolic", "pulse", "mmol", "context", "meter", "kg", "arm", "posture"):
                setattr(row, name, getattr(new, name))
            row.category = assessment.category
            row.urgent = assessment.urgent
            row.in_target = assessment.in_target
            row.edited_at = now
            await session.flush()
            average = await _average(session, row)
            alert = None
            if assessment.alert_rule:
                alert = await self._alerts.raise_in(session, patient, profile, row, assessment, age)
            else:  # no longer urgent: an alert this reading raised is closed or its doctor told
                await self._alerts.reading_withdrawn(session, row, patient, deleted=False)
            return RecordResult(row.id, assessment, False, average, alert)


async def _average(session: AsyncSession, row: Reading) -> Average:
    """The 7-day average before this reading, for the feedback text (as ReadingService does)."""
    count, sys_avg, dia_avg, mmol_avg = (await session.execute(
        select(func.count(Reading.id), func.avg(Reading.systolic), func.avg(Reading.diastolic),
               func.avg(Reading.mmol))
        .where(Reading.patient_id == row.patient_id, Reading.kind == row.kind, Reading.id != row.id,
               Reading.measured_at >= row.measured_at - timedelta(days=7), Reading.measured_at <= row.measured_at)
    )).one()

    def f(value: object) -> float | None:
        return None if value is None else float(value)  # type: ignore[arg-type]

    return Average(int(count or 0), f(sys_avg), f(dia_avg), f(mmol_avg))
