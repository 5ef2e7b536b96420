"""Follow-up records (随访) and the next due date, per the NBPHS-3 schedule in bot.clinical."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import clinical
from bot.services.clock import Clock
from bot.services.panel import PanelService
from storage.models import FollowUp, PatientProfile

WAYS = ("clinic", "home", "phone", "online")
OUTCOMES = ("controlled", "unsatisfactory", "adverse_reaction", "complication")


@dataclass(frozen=True)
class FollowUpResult:
    followup_id: int
    next_due: date
    refer: bool  # uncontrolled at consecutive follow-ups: BP-UNCONTROLLED / GLU-UNCONTROLLED


class FollowUpService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, panel: PanelService):
        self._sessions = sessions
        self._clock = clock
        self._panel = panel

    async def record(self, doctor_id: int, patient_id: int, *, way: str, outcome: str,
                     visit_date: date | None = None, systolic: int | None = None, diastolic: int | None = None,
                     fasting_mmol: float | None = None, weight_kg: float | None = None,
                     medication_change: str = "", details: dict[str, Any] | None = None) -> FollowUpResult | None:
        """None when the patient is not in the doctor's teams (same answer as "no such patient")."""
        if way not in WAYS or outcome not in OUTCOMES:
            raise ValueError("unknown follow-up way or outcome")
        if await self._panel.team_patient(doctor_id, patient_id) is None:
            return None
        when = visit_date or self._clock.now().date()
        async with self._sessions.begin() as session:
            profile = await session.get(PatientProfile, patient_id)
            assert profile is not None
            previous = list(await session.scalars(
                select(FollowUp.outcome).where(FollowUp.patient_id == patient_id, FollowUp.status == "confirmed")
                .order_by(FollowUp.visit_date.desc(), FollowUp.id.desc()).limit(5)))
            streak = 0
            for earlier in [outcome, *previous]:
                if earlier != "unsatisfactory":
                    break
                streak += 1
            next_due = clinical.next_followup_due(when, profile.risk, outcome, False)
            row = FollowUp(patient_id=patient_id, doctor_id=doctor_id, visit_date=when, way=way, outcome=outcome,
                           systolic=systolic, diastolic=diastolic, fasting_mmol=fasting_mmol, weight_kg=weight_kg,
                           medication_change=medication_change[:512], details=details or {}, next_due=next_due,
                           created_at=self._clock.now())
            session.add(row)
            profile.next_followup_due = next_due
            profile.last_contact_at = self._clock.now()
            await session.flush()
            return FollowUpResult(row.id, next_due, clinical.needs_referral(streak))

    async def history(self, patient_id: int, limit: int = 10) -> list[FollowUp]:
        async with self._sessions() as session:
            return list(await session.scalars(select(FollowUp).where(FollowUp.patient_id == patient_id)
                                              .order_by(FollowUp.visit_date.desc(), FollowUp.id.desc()).limit(limit)))
