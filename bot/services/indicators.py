"""Panel indicators for a doctor's team or one doctor: gathers per-patient facts in a handful of
set-based queries (never one query per patient), then applies the pure formulas of
bot.clinical.indicators. The same facts feed the team figure, the per-doctor table and the drill-down.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, false, func, select, type_coerce, union
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
        """The scope's patient ids, as a select of patient_profiles.user_id callers can narrow further.

        The team and own-doctor parts are a UNION of two index lookups: written as one OR, SQLite
        scanned every profile in the database (100 000 in the benchmark) in each of the queries."""
        pp = aliased(PatientProfile)  # never correlated with a patient_profiles of the calling query
        parts = [select(pp.user_id).where(pp.team_id.in_(self.team_ids))] if self.team_ids else []
        if self.doctor_id is not None:
            parts.append(select(pp.user_id).where(pp.doctor_id == self.doctor_id))
        if not parts:
            return select(PatientProfile.user_id).where(false())
        members = parts[0] if len(parts) == 1 else union(*parts)
        query = select(PatientProfile.user_id).where(PatientProfile.user_id.in_(members))
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


@dataclass(frozen=True)
class _Bounds:
    """One period's limits: local dates and the UTC instants the queries compare against."""

    end: date
    first_fu: date  # the earliest follow-up that can count (the longer of the two risk windows)
    start_at: datetime
    end_at: datetime
    window_at: datetime  # control rates: readings from here to end_at

    @classmethod
    def of(cls, start: date, end: date, tz: str) -> _Bounds:
        return cls(end=end, first_fu=min(ind.followup_window(r, start, end)[0] for r in ("standard", "high")),
                   start_at=day_start(start, tz), end_at=day_start(end + timedelta(days=1), tz),
                   window_at=day_start(ind.control_window_start(end), tz))


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
        return (await self.facts_by_period(scope, [(start, end)], tz))[0]

    async def facts_by_period(self, scope: Scope, periods: Sequence[tuple[date, date]],
                              tz: str = "Asia/Shanghai") -> list[list[ind.PatientFacts]]:
        """Per-patient facts for several periods in one pass (the monthly chart's six months).

        What does not depend on the period (profiles, targets, quiz scores) is read and worked out once;
        what does (follow-ups, last readings, doses) comes from one statement each, with one column per
        period, so six months cost about as many round trips as one, not six times as many."""
        if not periods:
            return []
        bounds = [_Bounds.of(start, end, tz) for start, end in periods]
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
                        FollowUp.visit_date >= min(b.first_fu for b in bounds),
                        FollowUp.visit_date <= max(b.end for b in bounds)))).all():
                followups.setdefault(pid, []).append(day)
            last_bp = await self._last_in_windows(session, ids, bounds, Reading.kind == "bp",
                                                  Reading.systolic, Reading.diastolic)
            last_fasting = await self._last_in_windows(
                session, ids, bounds, and_(Reading.kind == "glucose", Reading.context == "fasting"), Reading.mmol)
            doses = await self._doses(session, ids, bounds)
            last_reading = await self._last_reading(session, ids, bounds)
            knowledge = await self._knowledge(session, ids)
        zone = ZoneInfo(tz)
        out: list[list[ind.PatientFacts]] = [[] for _ in bounds]
        for pid, created_at, profile in patients:
            registered = (profile.linked_at or created_at).astimezone(zone).date()
            targets = targets_for(cast(PatientProfile, profile), age_of(cast(PatientProfile, profile), now))
            days = followups.get(pid, ())
            conditions = profile.condition_set
            for k, b in enumerate(bounds):
                contacts = [x for x in (profile.last_contact_at, _aware(last_reading[k].get(pid))) if x is not None]
                dose = doses[k].get(pid, {})
                bp = last_bp[k].get(pid)
                fasting = last_fasting[k].get(pid)
                out[k].append(ind.PatientFacts(
                    patient_id=pid, doctor_id=profile.doctor_id, conditions=conditions, risk=profile.risk,
                    registered_on=registered, followup_dates=tuple(d for d in days if b.first_fu <= d <= b.end),
                    last_bp=(bp[0], bp[1]) if bp else None, bp_target=(targets.bp_systolic, targets.bp_diastolic),
                    last_fasting=fasting[0] if fasting else None,
                    fasting_range=(targets.fasting_low, targets.fasting_high),
                    doses_taken=dose.get("taken", 0), doses_missed=dose.get("missed", 0),
                    knowledge_score=knowledge.get(pid), next_followup_due=profile.next_followup_due,
                    last_contact=max(contacts).astimezone(zone).date() if contacts else None,
                ))
        return out

    async def _last_in_windows(self, session: AsyncSession, ids: Any, bounds: Sequence[_Bounds], kind: Any,
                               *columns: Any) -> list[dict[int, tuple[Any, ...]]]:
        """Per period: {patient_id: columns} of each patient's latest matching reading in its control window.

        One correlated "ORDER BY measured_at DESC, id DESC LIMIT 1" per patient and period walks the
        (patient_id, kind, measured_at, id) index backwards from the period end and stops at the first
        match, instead of grouping every reading of the window (two at the same instant: the later id
        wins). All periods are columns of one statement."""
        who = aliased(PatientProfile)  # the outer row; `ids` selects from patient_profiles itself
        picks = [(select(Reading.id).where(Reading.patient_id == who.user_id, kind,
                                           Reading.measured_at >= b.window_at, Reading.measured_at < b.end_at)
                  .order_by(Reading.measured_at.desc(), Reading.id.desc()).limit(1).correlate(who)
                  .scalar_subquery()) for b in bounds]
        chosen = (await session.execute(select(*picks).where(who.user_id.in_(ids)))).all()
        wanted = sorted({rid for row in chosen for rid in row if rid is not None})
        values: dict[int, tuple[Any, ...]] = {}
        for i in range(0, len(wanted), 1000):  # by primary key: never a scan of the readings table
            for rid, pid, *rest in (await session.execute(
                    select(Reading.id, Reading.patient_id, *columns).where(Reading.id.in_(wanted[i:i + 1000])))).all():
                values[rid] = (pid, *rest)
        out: list[dict[int, tuple[Any, ...]]] = [{} for _ in bounds]
        for row in chosen:
            for k, rid in enumerate(row):
                if rid is not None:
                    pid, *rest = values[rid]
                    out[k][pid] = tuple(rest)
        return out

    async def _doses(self, session: AsyncSession, ids: Any,
                     bounds: Sequence[_Bounds]) -> list[dict[int, dict[str, int]]]:
        """Per period: {patient_id: {"taken": n, "missed": n}}, one scan of the whole range."""
        counts = [func.sum(case((and_(MedicationLog.logged_at >= b.start_at, MedicationLog.logged_at < b.end_at), 1),
                                else_=0)) for b in bounds]
        out: list[dict[int, dict[str, int]]] = [{} for _ in bounds]
        for pid, status, *ns in (await session.execute(
                select(MedicationLog.patient_id, MedicationLog.status, *counts)
                .where(MedicationLog.patient_id.in_(ids), MedicationLog.logged_at >= min(b.start_at for b in bounds),
                       MedicationLog.logged_at < max(b.end_at for b in bounds),
                       MedicationLog.status.in_(("taken", "missed")))
                .group_by(MedicationLog.patient_id, MedicationLog.status))).all():
            for k, n in enumerate(ns):
                if n:
                    out[k].setdefault(pid, {})[status] = int(n)
        return out

    async def _last_reading(self, session: AsyncSession, ids: Any,
                            bounds: Sequence[_Bounds]) -> list[dict[int, Any]]:
        """Per period: each patient's latest reading time before the period end (for lost to follow-up).
        One index seek per patient and period (max over the (patient_id, measured_at) index), not a scan."""
        who = aliased(PatientProfile)
        latest = [type_coerce(select(func.max(Reading.measured_at)).where(
            Reading.patient_id == who.user_id, Reading.measured_at < b.end_at).scalar_subquery(), UTCDateTime)
            for b in bounds]
        out: list[dict[int, Any]] = [{} for _ in bounds]
        for pid, *times in (await session.execute(select(who.user_id, *latest).where(who.user_id.in_(ids)))).all():
            for k, value in enumerate(times):
                out[k][pid] = value
        return out

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
        """The indicators of each of the last `months` calendar months, oldest first, from one pass."""
        today = self._clock.now().astimezone(ZoneInfo(tz)).date()
        periods = ind.month_ends(end, months)
        by_period = await self.facts_by_period(scope, periods, tz)
        return [ind.compute(facts, first, last, today) for (first, last), facts in zip(periods, by_period, strict=True)]


def _aware(value: datetime | None) -> datetime | None:
    """func.max() bypasses the UTCDateTime decorator on SQLite: normalise to aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
