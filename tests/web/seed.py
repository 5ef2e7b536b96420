"""Direct database seeding for dashboard tests: teams, doctors, patients and their records.

Going through the chat for hundreds of rows would make the tests slow; the chat paths have their own
end-to-end tests. Every row is written exactly as the services would write it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import (
    Alert,
    FollowUp,
    MedicationLog,
    PatientProfile,
    Reading,
    Team,
    TeamMember,
    User,
    UserRole,
)


def at(text: str) -> datetime:
    """'2026-06-20 10:00' in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Seeder:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], now: datetime):
        self.sessions = sessions
        self.now = now

    async def team(self, name: str) -> int:
        async with self.sessions.begin() as s:
            team = Team(name=name, created_at=self.now)
            s.add(team)
            await s.flush()
            return team.id

    async def doctor(self, name: str, team_id: int, *, lead: bool = False, telegram_id: int | None = None,
                     language: str = "en") -> int:
        async with self.sessions.begin() as s:
            user = User(first_name=name, display_name=name, language=language, telegram_id=telegram_id,
                        chat_id=telegram_id, created_at=self.now, consent_at=self.now, onboarded_at=self.now)
            s.add(user)
            await s.flush()
            s.add(UserRole(user_id=user.id, role="doctor"))
            s.add(TeamMember(team_id=team_id, user_id=user.id, is_lead=lead))
            return user.id

    async def patient(self, name: str, team_id: int | None, doctor_id: int | None, *, conditions: str = "hypertension",
                      risk: str = "standard", linked: str = "2025-01-01 00:00", birth_year: int = 1970,
                      next_due: date | None = None, last_contact: str | None = None, **profile: Any) -> int:
        async with self.sessions.begin() as s:
            user = User(first_name=name, display_name=name, language="en", created_at=at(linked),
                        consent_at=at(linked), onboarded_at=at(linked))
            s.add(user)
            await s.flush()
            s.add(UserRole(user_id=user.id, role="patient"))
            s.add(PatientProfile(user_id=user.id, conditions=conditions, risk=risk, team_id=team_id,
                                 doctor_id=doctor_id, linked_at=at(linked), birth_year=birth_year,
                                 next_followup_due=next_due,
                                 last_contact_at=at(last_contact) if last_contact else None, **profile))
            return user.id

    async def bp(self, pid: int, when: str, sys: int, dia: int, pulse: int | None = None) -> int:
        return await self._add(Reading(patient_id=pid, kind="bp", systolic=sys, diastolic=dia, pulse=pulse,
                                       measured_at=at(when), created_at=at(when),
                                       category="grade3" if sys >= 180 else "", urgent=sys >= 180))

    async def glucose(self, pid: int, when: str, mmol: float, context: str = "fasting") -> int:
        return await self._add(Reading(patient_id=pid, kind="glucose", mmol=mmol, context=context,
                                       measured_at=at(when), created_at=at(when)))

    async def weight(self, pid: int, when: str, kg: float) -> int:
        return await self._add(Reading(patient_id=pid, kind="weight", kg=kg, measured_at=at(when), created_at=at(when)))

    async def followup(self, pid: int, doctor_id: int | None, day: str, *, status: str = "confirmed",
                       way: str = "clinic", outcome: str = "controlled") -> int:
        return await self._add(FollowUp(patient_id=pid, doctor_id=doctor_id, visit_date=date.fromisoformat(day),
                                        way=way, status=status, outcome=outcome, created_at=self.now))

    async def doses(self, pid: int, when: str, taken: int, missed: int) -> None:
        async with self.sessions.begin() as s:
            for status, n in (("taken", taken), ("missed", missed)):
                for _ in range(n):
                    s.add(MedicationLog(patient_id=pid, status=status, logged_at=at(when), entered_by=pid))

    async def alert(self, pid: int, reading_id: int | None, rule: str = "bp_urgent") -> int:
        return await self._add(Alert(patient_id=pid, reading_id=reading_id, rule=rule, status="open",
                                     created_at=self.now))

    async def quiz(self, pid: int, quiz_id: str, correct: int, total: int, when: str) -> bool:
        """A quiz attempt in the education feature's table; False when that table does not exist."""
        try:
            from storage.tips_models import QuizAttempt
        except ImportError:
            return False
        await self._add(QuizAttempt(user_id=pid, quiz_id=quiz_id, correct=correct, total=total,
                                    passed=correct / total >= 0.8, taken_at=at(when)))
        return True

    async def _add(self, row: Any) -> int:
        async with self.sessions.begin() as s:
            s.add(row)
            await s.flush()
            return row.id
