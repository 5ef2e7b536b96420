"""Panel indicators for a doctor's team or one doctor: gathers per-patient facts in a handful of
set-based queries (never one query per patient), then applies the pure formulas of
bot.clinical.indicators. The same facts feed the team figure, the per-doctor table and the drill-down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.clinical import indicators as ind
from bot.services.clock import Clock
from bot.services.readings import age_of, targets_for
from storage.models import FollowUp, MedicationLog, PatientProfile, Reading, TeamMember, User, UTCDateTime
from storage.tips_models import QuizAttempt

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


@dataclass(frozen=True)
class _Profile:
    """The profile columns the indicators read, as plain values: a 2 000-patient panel loads no ORM
    objects. Field names are PatientProfile's, so `targets_for` reads it like one."""

    conditions: str
    birth_year: int | None
    risk: str
    doctor_id: int | None
    linked_at: datetime | None
    target_sys: int | None
    target_dia: int | None
    target_fasting_low: float | None
    target_fasting_high: float | None
    target_postmeal_high: float | None
    next_followup_due: date | None
    last_contact_at: datetime | None

    @property
    def condition_set(self) -> frozenset[str]:
        return frozenset(c for c in self.conditions.split(",") if c)


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
            patients = [(row.id, row.created_at, _Profile(*row[2:])) for row in (await session.execute(
                select(User.id, User.created_at, *(getattr(PatientProfile, f.name) for f in fields(_Profile)))
                .join(PatientProfile, PatientProfile.user_id == User.id).where(User.id.in_(ids)))).all()]
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
            # One index seek per patient (max over the (patient_id, measured_at) index), not a scan.
            who = aliased(PatientProfile)
            latest = (select(func.max(Reading.measured_at)).where(Reading.patient_id == who.user_id,
                                                                  Reading.measured_at < end_at).scalar_subquery())
            last_reading = dict((await session.execute(
                select(who.user_id, type_coerce(latest, UTCDateTime)).where(who.user_id.in_(ids)))).all())
            knowledge = await self._knowledge(session, ids)
        out = []
        for pid, created_at, profile in patients:
            registered = (profile.linked_at or created_at).astimezone(ZoneInfo(tz)).date()
            targets = targets_for(cast(PatientProfile, profile), age_of(cast(PatientProfile, profile), now))
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
        """(patient_id, *columns) of each patient's latest matching reading in [start, end).

        A correlated "ORDER BY measured_at DESC, id DESC LIMIT 1" per patient walks the
        (patient_id, kind, measured_at, id) index backwards from `end` and stops at the first match,
        instead of grouping every reading of the window (two at the same instant: the later id wins)."""
        who = aliased(PatientProfile)  # the outer row; `ids` selects from patient_profiles itself
        pick = (select(Reading.id).where(Reading.patient_id == who.user_id, kind,
                                         Reading.measured_at >= start, Reading.measured_at < end)
                .order_by(Reading.measured_at.desc(), Reading.id.desc()).limit(1).correlate(who).scalar_subquery())
        chosen = [rid for rid in await session.scalars(select(pick).where(who.user_id.in_(ids))) if rid is not None]
        rows: list[Any] = []
        for i in range(0, len(chosen), 1000):  # by primary key: never a scan of the readings table
            rows += (await session.execute(
                select(Reading.patient_id, *columns).where(Reading.id.in_(chosen[i:i + 1000])))).all()
        return [tuple(row) for row in rows]

    async def _knowledge(self, session: AsyncSession, ids: Any) -> dict[int, float]:
        """Latest quiz score (0..1) per patient, pooled over each quiz's latest attempt
        (score = correct answers / questions), from the education feature's `quiz_results`."""
        latest: dict[tuple[int, str], tuple[int, int]] = {}
        for pid, quiz_id, correct, total in (await session.execute(
                select(QuizAttempt.user_id, QuizAttempt.quiz_id, QuizAttempt.correct, QuizAttempt.total)
                .where(QuizAttempt.user_id.in_(ids)).order_by(QuizAttempt.taken_at, QuizAttempt.id))).all():
            if total:  # ordered by time: a later attempt overwrites an earlier one
                latest[(pid, quiz_id)] = (int(correct or 0), int(total))
        sums: dict[int, list[int]] = {}
        for (pid, _quiz), (correct, total) in latest.items():
            acc = sums.setdefault(pid, [0, 0])
            acc[0] += correct
            acc[1] += total
        return {pid: c / n for pid, (c, n) in sums.items() if n}

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
