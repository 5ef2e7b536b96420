"""What the web dashboard reads beyond the panel and the indicators: open alerts of the doctor's
patients, one patient's alerts, quiz results, and the audit log (write and read).

Every query is scoped by the caller's `Scope` (the doctor's teams), so a foreign patient never shows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.clock import Clock
from bot.services.db import read_session
from bot.services.indicators import Scope
from storage.dashboard_models import AuditLog
from storage.models import Alert, Reading, TeamMember, User
from storage.tips_models import QuizAttempt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenAlert:
    alert: Alert
    patient_name: str
    reading: Reading | None


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    actor: str
    action: str
    page: str
    patient_id: int | None
    detail: str


class DashboardService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock):
        self._sessions = sessions
        self._clock = clock

    async def audit(self, actor_id: int, action: str, page: str = "", patient_id: int | None = None,
                    detail: str = "") -> None:
        """One row per page view, patient view, action or export; team = the actor's first team."""
        team_id = (select(TeamMember.team_id).where(TeamMember.user_id == actor_id)
                   .order_by(TeamMember.team_id).limit(1).scalar_subquery())
        async with self._sessions.begin() as session:  # one INSERT, the team looked up inside it
            await session.execute(insert(AuditLog).values(
                at=self._clock.now(), actor_id=actor_id, team_id=team_id, action=action[:32], page=page[:128],
                patient_id=patient_id, detail=detail[:256]))

    async def is_lead(self, doctor_id: int) -> bool:
        async with self._sessions() as session:
            return bool(await session.scalar(select(TeamMember.user_id).where(
                TeamMember.user_id == doctor_id, TeamMember.is_lead.is_(True)).limit(1)))

    async def audit_rows(self, lead_id: int, limit: int = 500) -> list[AuditRow]:
        """The latest audit rows of the teams this doctor leads (nothing for a non-lead)."""
        async with self._sessions() as session:
            teams = select(TeamMember.team_id).where(TeamMember.user_id == lead_id, TeamMember.is_lead.is_(True))
            rows = (await session.execute(
                select(AuditLog, User.display_name, User.first_name).join(User, User.id == AuditLog.actor_id)
                .where(AuditLog.team_id.in_(teams)).order_by(AuditLog.at.desc(), AuditLog.id.desc())
                .limit(limit))).all()
        return [AuditRow(a.at, name or first, a.action, a.page, a.patient_id, a.detail) for a, name, first in rows]

    async def open_alerts(self, scope: Scope, limit: int = 500) -> list[OpenAlert]:
        async with self._sessions() as session:
            rows = (await session.execute(
                select(Alert, User.display_name, User.first_name, Reading)
                .join(User, User.id == Alert.patient_id)
                .outerjoin(Reading, Reading.id == Alert.reading_id)
                .where(Alert.status == "open", Alert.patient_id.in_(scope.patient_ids()))
                .order_by(Alert.created_at, Alert.id).limit(limit))).all()
        return [OpenAlert(a, name or first, r) for a, name, first, r in rows]

    async def patient_alerts(self, patient_id: int, limit: int = 20, *, session: AsyncSession | None = None
                             ) -> list[Alert]:
        async with read_session(self._sessions, session) as session:
            return list(await session.scalars(select(Alert).where(Alert.patient_id == patient_id)
                                              .order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)))

    async def quiz_results(self, patient_id: int, limit: int = 20, *, session: AsyncSession | None = None
                           ) -> list[dict[str, Any]]:
        """The patient's latest quiz attempts (the education feature's `quiz_results`), newest first.

        A typed query: reflecting the table on every patient page cost a catalog round trip or two."""
        async with read_session(self._sessions, session) as session:
            rows = (await session.execute(
                select(QuizAttempt.quiz_id, QuizAttempt.correct, QuizAttempt.total, QuizAttempt.passed,
                       QuizAttempt.taken_at).where(QuizAttempt.user_id == patient_id)
                .order_by(QuizAttempt.taken_at.desc(), QuizAttempt.id.desc()).limit(limit))).mappings().all()
        return [dict(row) for row in rows]
