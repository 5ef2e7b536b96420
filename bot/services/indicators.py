"""Panel indicators for a doctor's team or one doctor: gathers per-patient facts in a handful of
set-based queries (never one query per patient), then applies the pure formulas of
bot.clinical.indicators. The same facts feed the team figure, the per-doctor table and the drill-down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, func, inspect, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clinical import indicators as ind
from bot.services.clock import Clock
from bot.services.readings import age_of, targets_for
from storage.models import FollowUp, MedicationLog, PatientProfile, Reading, TeamMember, User

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scope:
    """Whose patients: those of the given teams plus those whose own doctor is `doctor_id`.
    `only_doctor` narrows to one doctor's own patients (the per-doctor view)."""

    team_ids: tuple[int, ...]
    doctor_id: int | None = None
    only_doctor: int | None = None

    def patient_ids(self) -> Select[tuple[int]]:
        conditions = [PatientProfile.team_id.in_(self.team_ids)] if self.team_ids else []
        if self.doctor_id is not None:
            conditions.append(PatientProfile.doctor_id == self.doctor_id)
        query = select(PatientProfile.user_id).where(or_(*conditions) if conditions else False)
        if self.only_doctor is not None:
            query = query.where(PatientProfile.doctor_id == self.only_doctor)
        return query


def day_start(day: date, tz: str) -> datetime:
    """The UTC instant a local calendar day starts in `tz`."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


class IndicatorService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock):
        self._sessions = sessions
        self._clock = clock

    async def scope_for(self, doctor_id: int, only_doctor: int | None = None) -> Scope:
        async with self._sessions() as session:
            teams = tuple(await session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == doctor_id)))
        return Scope(teams, doctor_id, only_doctor)

    async def team_doctors(self, doctor_id: int) -> list[User]:
        """Everyone in the doctor's teams (for the per-doctor table and the scope filter)."""
        async with self._sessions() as session:
            teams = select(TeamMember.team_id).where(TeamMember.user_id == doctor_id)
            return list(await session.scalars(
                select(User).join(TeamMember, TeamMember.user_id == User.id)
                .where(TeamMember.team_id.in_(teams)).order_by(User.display_name, User.id).distinct()))

    async def names(self, ids: Any) -> list[tuple[int, str]]:
        """(id, name) of the given patients, for the indicator drill-down lists."""
        async with self._sessions() as session:
            rows = (await session.execute(select(User.id, User.display_name, User.first_name)
                                          .where(User.id.in_(list(ids))).order_by(User.id))).all()
        return [(pid, name or first or f"#{pid}") for pid, name, first in rows]

    async def facts(self, scope: Scope, start: date, end: date, tz: str = "Asia/Shanghai") -> list[ind.PatientFacts]:
        """Per-patient facts for the period start..end (local dates in `tz`, inclusive)."""
        end_at = day_start(end + timedelta(days=1), tz)
        start_at = day_start(start, tz)
        window_at = day_start(ind.control_window_start(end), tz)
        first_fu = min(ind.followup_window(r, start, end)[0] for r in ("standard", "high"))
        now = self._clock.now()
        ids = scope.patient_ids()
        async with self._sessions() as session:
            patients = (await session.execute(
                select(User.id, User.created_at, PatientProfile).join(PatientProfile, PatientProfile.user_id == User.id)
                .where(User.id.in_(ids)))).all()
            followups: dict[int, list[date]] = {}
            for pid, day in (await session.execute(
                    select(FollowUp.patient_id, FollowUp.visit_date).where(
                        FollowUp.patient_id.in_(ids), FollowUp.status == "confirmed",
                        FollowUp.visit_date >= first_fu, FollowUp.visit_date <= end))).all():
                followups.setdefault(pid, []).append(day)
            last_bp = {pid: (s, d) for pid, s, d in (await self._last_in_window(
                session, ids, window_at, end_at, Reading.kind == "bp", Reading.systolic, Reading.diastolic))}
            last_fasting = {pid: v for pid, v in (await self._last_in_window(
                session, ids, window_at, end_at, and_(Reading.kind == "glucose", Reading.context == "fasting"),
                Reading.mmol))}
            doses: dict[int, dict[str, int]] = {}
            for pid, status, n in (await session.execute(
                    select(MedicationLog.patient_id, MedicationLog.status, func.count())
                    .where(MedicationLog.patient_id.in_(ids), MedicationLog.logged_at >= start_at,
                           MedicationLog.logged_at < end_at, MedicationLog.status.in_(("taken", "missed")))
                    .group_by(MedicationLog.patient_id, MedicationLog.status))).all():
                doses.setdefault(pid, {})[status] = int(n)
            last_reading = dict((await session.execute(
                select(Reading.patient_id, func.max(Reading.measured_at)).where(
                    Reading.patient_id.in_(ids), Reading.measured_at < end_at).group_by(Reading.patient_id))).all())
            knowledge = await self._knowledge(session, ids)
        out = []
        for pid, created_at, profile in patients:
            registered = (profile.linked_at or created_at).astimezone(ZoneInfo(tz)).date()
            targets = targets_for(profile, age_of(profile, now))
            contacts = [x for x in (profile.last_contact_at, _aware(last_reading.get(pid))) if x is not None]
            dose = doses.get(pid, {})
            out.append(ind.PatientFacts(
                patient_id=pid, doctor_id=profile.doctor_id, conditions=profile.condition_set, risk=profile.risk,
                registered_on=registered, followup_dates=tuple(followups.get(pid, ())),
                last_bp=last_bp.get(pid), bp_target=(targets.bp_systolic, targets.bp_diastolic),
                last_fasting=last_fasting.get(pid), fasting_range=(targets.fasting_low, targets.fasting_high),
                doses_taken=dose.get("taken", 0), doses_missed=dose.get("missed", 0),
                knowledge_score=knowledge.get(pid), next_followup_due=profile.next_followup_due,
                last_contact=max(contacts).astimezone(ZoneInfo(tz)).date() if contacts else None,
            ))
        return out

    async def _last_in_window(self, session: AsyncSession, ids: Any, start: datetime, end: datetime,
                              kind: Any, *columns: Any) -> list[Any]:
        """(patient_id, *columns) of each patient's latest matching reading in [start, end)."""
        latest = (select(Reading.patient_id, func.max(Reading.measured_at).label("at"))
                  .where(Reading.patient_id.in_(ids), kind, Reading.measured_at >= start, Reading.measured_at < end)
                  .group_by(Reading.patient_id).subquery())
        rows = (await session.execute(
            select(Reading.patient_id, Reading.id, *columns)
            .join(latest, and_(Reading.patient_id == latest.c.patient_id, Reading.measured_at == latest.c.at))
            .where(kind).order_by(Reading.patient_id, Reading.id))).all()
        by_patient = {row[0]: (row[0], *row[2:]) for row in rows}  # two at the same instant: the later id wins
        return list(by_patient.values())

    async def _knowledge(self, session: AsyncSession, ids: Any) -> dict[int, float]:
        """Latest quiz score (0..1) per patient from `quiz_results`, when another feature created it.

        The table belongs to the education feature; we only read it, guessing its column names
        defensively, and show "not available" when it is missing or unreadable."""
        try:
            conn = await session.connection()
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("quiz_results")}
                if inspect(c).has_table("quiz_results") else set())
            if not columns:
                return {}
            who = next((c for c in ("user_id", "patient_id") if c in columns), None)
            when = next((c for c in ("taken_at", "finished_at", "created_at", "id") if c in columns), None)
            if who is None or when is None or not {"correct", "total"} <= columns:
                return {}
            quiz = "quiz_id" if "quiz_id" in columns else "''"
            # Latest attempt per quiz (ordered by time, later rows overwrite), then pooled:
            # score = correct answers / questions over each quiz's latest attempt.
            rows = (await session.execute(text(
                f"SELECT {who}, {quiz}, correct, total FROM quiz_results "
                f"WHERE {who} IN (SELECT user_id FROM patient_profiles) ORDER BY {when}, id"))).all()
            allowed = set(await session.scalars(ids))
            latest: dict[tuple[int, str], tuple[int, int]] = {}
            for pid, quiz_id, correct, total in rows:
                if pid in allowed and total:
                    latest[(pid, quiz_id)] = (int(correct or 0), int(total))
            sums: dict[int, list[int]] = {}
            for (pid, _quiz), (correct, total) in latest.items():
                acc = sums.setdefault(pid, [0, 0])
                acc[0] += correct
                acc[1] += total
            return {pid: c / n for pid, (c, n) in sums.items() if n}
        except Exception:
            log.warning("quiz_results unreadable; knowledge rate not shown", exc_info=True)
            return {}

    async def compute(self, scope: Scope, start: date, end: date, tz: str = "Asia/Shanghai") -> ind.IndicatorSet:
        today = self._clock.now().astimezone(ZoneInfo(tz)).date()
        return ind.compute(await self.facts(scope, start, end, tz), start, end, today)

    async def per_doctor(self, scope: Scope, start: date, end: date,
                         tz: str = "Asia/Shanghai") -> tuple[ind.IndicatorSet, dict[int | None, ind.IndicatorSet]]:
        """The team's figures and each doctor's (patients grouped by their own doctor), from one pass."""
        today = self._clock.now().astimezone(ZoneInfo(tz)).date()
        facts = await self.facts(scope, start, end, tz)
        groups: dict[int | None, list[ind.PatientFacts]] = {}
        for f in facts:
            groups.setdefault(f.doctor_id, []).append(f)
        return (ind.compute(facts, start, end, today),
                {doc: ind.compute(group, start, end, today) for doc, group in groups.items()})

    async def monthly(self, scope: Scope, end: date, months: int = 6,
                      tz: str = "Asia/Shanghai") -> list[ind.IndicatorSet]:
        return [await self.compute(scope, first, last, tz) for first, last in ind.month_ends(end, months)]


def _aware(value: datetime | None) -> datetime | None:
    """func.max() bypasses the UTCDateTime decorator on SQLite: normalise to aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
