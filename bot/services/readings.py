"""Record a reading: one transaction writes the reading, its assessment and any alert rows.

Only after this commits does the patient see "saved". The same Telegram update recorded
twice (a redelivery after a crash) returns the first row instead of storing a second one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, column, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import raiseload

from bot import clinical
from bot.services.alerts import AlertOutcome, AlertService
from bot.services.clock import Clock
from bot.services.db import read_session, with_retry
from bot.services.group_commit import GroupCommit
from bot.services.targets import age_of, targets_for
from bot.services.users import StaleSender
from storage.models import PatientProfile, Reading, User
from storage.write_lock import urgent_now


@dataclass(frozen=True)
class NewReading:
    """A reading ready to store: parsed from text or built by a guided flow."""

    kind: str
    systolic: int | None = None
    diastolic: int | None = None
    pulse: int | None = None
    mmol: float | None = None
    context: str | None = None
    meter: str | None = None
    kg: float | None = None
    arm: str | None = None
    posture: str | None = None

    @classmethod
    def from_parsed(cls, parsed: Any, **overrides: Any) -> NewReading:
        values = {name: getattr(parsed, name, None) for name in cls.__dataclass_fields__}
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class Average:
    count: int
    systolic: float | None = None
    diastolic: float | None = None
    mmol: float | None = None


@dataclass(frozen=True)
class RecordResult:
    reading_id: int
    assessment: Any
    duplicate: bool
    average7: Average
    alert: AlertOutcome | None = None
    advice: tuple[str, ...] = field(default_factory=tuple)


# The hot path's statements, built once (a prebuilt statement keeps its SQLAlchemy cache key).
_PATIENT = (select(User, PatientProfile).outerjoin(PatientProfile, PatientProfile.user_id == User.id)
            .where(User.id == bindparam("patient_id")).options(raiseload(User.roles)))
_AVERAGE = select(
    func.count(Reading.id), func.avg(Reading.systolic), func.avg(Reading.diastolic), func.avg(Reading.mmol)
).where(
    Reading.patient_id == bindparam("patient_id"),
    Reading.kind == bindparam("kind"),
    Reading.measured_at >= bindparam("since"),
    Reading.measured_at <= bindparam("before"),
    Reading.id != bindparam("exclude_id"),
)
_COLUMNS = ("patient_id", "entered_by", "kind", "systolic", "diastolic", "pulse", "mmol", "context", "meter", "kg",
            "arm", "posture", "symptoms", "category", "urgent", "in_target", "measured_at", "created_at",
            "source_update_id", "seq")
# The 7-day figures shown with "Saved": the patient's other readings of this kind in the week up
# to this one; as scalar subqueries of the INSERT's RETURNING, so storing a reading and reading its
# average is one round trip (issue 4). They cannot see the new row on either database (and
# exclude it by id all the same). They compare with the new row's own columns rather than repeat its
# parameters: SQLite's driver takes parameters by position, so each repeat was one more value to
# convert (a datetime to text, twice per subquery) on every reading.
_WEEK = ("FROM readings AS w WHERE w.patient_id = readings.patient_id AND w.kind = readings.kind "
         "AND w.measured_at >= :since AND w.measured_at <= readings.measured_at AND w.id != readings.id")
# INSERT .. ON CONFLICT (source_update_id, seq) DO NOTHING RETURNING id, 7-day average: the same
# text on SQLite (>= 3.35) and PostgreSQL. Written as text() because SQLAlchemy's dialect INSERT
# constructs are never compile-cached; a NULL source update never conflicts, so such readings
# always insert.
_RETURNING = ("ON CONFLICT (source_update_id, seq) DO NOTHING RETURNING id, "
              + ", ".join(f"(SELECT {agg} {_WEEK}) AS {name}" for agg, name in (
                  ("count(w.id)", "n"), ("avg(w.systolic)", "sys_avg"), ("avg(w.diastolic)", "dia_avg"),
                  ("avg(w.mmol)", "mmol_avg"))))
# The same, stored only while the sender's `users.revision` is still the one a cached sender answer was
# read at (UserService.sender(cached=True)): the check is part of the INSERT itself, so no extra
# statement, and there is no moment between the check and the write. (The SELECT has a WHERE, so
# SQLite does not read its ON CONFLICT as a join's ON.)
_IF_CURRENT = "WHERE EXISTS (SELECT 1 FROM users WHERE users.id = :entered_by AND users.revision = :revision)"


def _insert(source: str) -> Any:
    return text(f"INSERT INTO readings ({', '.join(_COLUMNS)}) {source} {_RETURNING}").bindparams(
        *(bindparam(c, type_=Reading.__table__.c[c].type) for c in _COLUMNS),
        bindparam("since", type_=Reading.__table__.c.measured_at.type)).columns(
        Reading.__table__.c.id, column("n"), column("sys_avg"), column("dia_avg"), column("mmol_avg"))


_INSERT = _insert(f"VALUES ({', '.join(':' + c for c in _COLUMNS)})")
_INSERT_IF_CURRENT = _insert(f"SELECT {', '.join(':' + c for c in _COLUMNS)} {_IF_CURRENT}").bindparams(
    bindparam("revision", type_=User.__table__.c.revision.type))
_REVISION = select(User.revision).where(User.id == bindparam("user_id"))


class ReadingService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, alerts: AlertService,
                 batch: GroupCommit | None = None):
        """`batch`: write plain readings of concurrent updates in shared transactions (see `record`);
        None writes each in its own. Public for tests and benchmarks that watch its queue."""
        self._sessions = sessions
        self._clock = clock
        self._alerts = alerts
        self.batch = batch

    async def record(
        self,
        patient_id: int,
        reading: NewReading,
        *,
        entered_by: int | None = None,
        measured_at: datetime | None = None,
        source_update_id: int | None = None,
        seq: int = 0,
        symptoms: frozenset[str] = frozenset(),
        known: tuple[User, PatientProfile | None] | None = None,
        revision: int | None = None,
    ) -> RecordResult:
        """`known`: the patient and profile the caller read moments ago in this update
        (`UserService.sender`); a consenting patient with a profile there saves the patient
        SELECT and its ORM load (issue 4). Anything else is read in the transaction as before.

        `revision`: the caller acted on a CACHED sender answer (Sender.revision) for `entered_by`:
        the INSERT stores the reading only if `users.revision` still is this value, i.e. nothing the
        answer holds (user, roles, profile, caregiver links, circle mode) changed since it was read.
        If it changed, nothing is stored and StaleSender is raised: the caller handles the update
        again with a fresh sender (dialogs.common.with_cached_sender).

        Group commit (issue 4): a plain reading (no alert to raise) of a Telegram update whose
        patient the caller knows is written through `self.batch`, in one transaction with the
        readings of other updates recorded at the same moment: one COMMIT for many. Its result is
        the same as alone; when the batch did not store it (a replay, a stale sender, any failure
        of the batch), it runs here on its own exactly as before. Only readings of a Telegram update
        (`source_update_id`): a row committed for a caller cancelled meanwhile is then found as a
        replay when the update is handled again. Urgent work (an alert to raise, an update marked
        urgent for SQLite's write queue) never joins a batch."""
        if known is not None and not (known[0].id == patient_id and known[0].consent_at is not None
                                      and known[1] is not None):
            known = None
        if self.batch is not None and known is not None and source_update_id is not None and not urgent_now():
            batched = await self._record_batched(self.batch, patient_id, reading, entered_by, measured_at,
                                                 source_update_id, seq, symptoms, known, revision)
            if batched is not None:
                return batched
        return await with_retry(
            lambda: self._record(patient_id, reading, entered_by, measured_at, source_update_id, seq, symptoms,
                                 known, revision)
        )

    async def _record_batched(
        self,
        batch: GroupCommit,
        patient_id: int,
        reading: NewReading,
        entered_by: int | None,
        measured_at: datetime | None,
        source_update_id: int,
        seq: int,
        symptoms: frozenset[str],
        known: tuple[User, PatientProfile | None],
        revision: int | None,
    ) -> RecordResult | None:
        """The reading stored by a group commit, or None: not stored there, record it on its own.
        The same statement as `_record`'s for a known patient without an alert; a replay or a stale
        sender returns no row, and `_record` tells the two apart as before."""
        now = self._clock.now()
        profile = known[1]
        age = age_of(profile, now)
        assessment = clinical.assess(reading, targets_for(profile, age), age=age, symptoms=symptoms)
        if assessment.alert_rule:
            return None
        values = _values(patient_id, reading, assessment, entered_by, measured_at, now, source_update_id, seq,
                         symptoms)
        params = {**values, "since": values["measured_at"] - timedelta(days=7)}
        if revision is None:
            stored = await batch.first_row(_INSERT, params, key=patient_id)
        else:
            stored = await batch.first_row(_INSERT_IF_CURRENT, {**params, "revision": revision}, key=patient_id)
        if stored is None:
            return None
        new_id, count, sys_avg, dia_avg, mmol_avg = stored
        return RecordResult(new_id, assessment, False, Average(int(count or 0), _f(sys_avg), _f(dia_avg), _f(mmol_avg)))

    async def _record(
        self,
        patient_id: int,
        reading: NewReading,
        entered_by: int | None,
        measured_at: datetime | None,
        source_update_id: int | None,
        seq: int,
        symptoms: frozenset[str],
        known: tuple[User, PatientProfile | None] | None = None,
        revision: int | None = None,
    ) -> RecordResult:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            # Hot path (issue 4): patient and profile in one SELECT (none when the caller knows
            # them), the reading in one INSERT .. ON CONFLICT DO NOTHING RETURNING id and the 7-day
            # average (the unique source update makes a redelivery a no-op).
            if known is not None:
                patient, profile = known
            else:
                found = (await session.execute(_PATIENT, {"patient_id": patient_id})).first()
                patient, profile = found if found is not None else (None, None)
            if patient is None or patient.consent_at is None:
                raise PermissionError("no consent: clinical data is not stored for this user")
            age = age_of(profile, now)
            assessment = clinical.assess(reading, targets_for(profile, age), age=age, symptoms=symptoms)
            values = _values(patient_id, reading, assessment, entered_by, measured_at, now, source_update_id, seq,
                             symptoms)
            context = None
            if assessment.alert_rule:  # its reads before the INSERT: on SQLite that takes the write lock
                context = await self._alerts.look_up(session, patient, profile, assessment.alert_rule)
            params = {**values, "since": values["measured_at"] - timedelta(days=7)}
            if revision is None:
                stored = (await session.execute(_INSERT, params)).first()
            else:
                stored = (await session.execute(_INSERT_IF_CURRENT, {**params, "revision": revision})).first()
                if stored is None and await session.scalar(_REVISION, {"user_id": values["entered_by"]}) != revision:
                    raise StaleSender  # nothing was written; the transaction rolls back
            if stored is None:  # this update was recorded before (a replay after a crash)
                existing = await session.scalar(
                    select(Reading).where(Reading.source_update_id == source_update_id, Reading.seq == seq)
                )
                assert existing is not None
                average = await self._average(session, patient_id, reading.kind, existing.measured_at, existing.id)
                return RecordResult(existing.id, assessment, True, average)
            new_id, count, sys_avg, dia_avg, mmol_avg = stored
            row = Reading(id=new_id, **values)  # a plain value for the alert text; already stored
            average = Average(int(count or 0), _f(sys_avg), _f(dia_avg), _f(mmol_avg))
            alert = None
            if assessment.alert_rule:
                alert = await self._alerts.raise_in(session, patient, profile, row, assessment, age, context)
        return RecordResult(row.id, assessment, False, average, alert)

    async def _average(
        self, session: AsyncSession, patient_id: int, kind: str, before: datetime, exclude_id: int
    ) -> Average:
        count, sys_avg, dia_avg, mmol_avg = (await session.execute(_AVERAGE, {
            "patient_id": patient_id, "kind": kind, "since": before - timedelta(days=7), "before": before,
            "exclude_id": exclude_id})).one()
        return Average(int(count or 0), _f(sys_avg), _f(dia_avg), _f(mmol_avg))

    async def add_symptoms(self, patient_id: int, reading_id: int, symptoms: frozenset[str]) -> RecordResult | None:
        """Symptoms reported after the reading: re-assess; danger signs make it urgent and alert."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            row = await session.get(Reading, reading_id)
            if row is None or row.patient_id != patient_id:
                return None
            patient = await session.get(User, patient_id)
            profile = await session.get(PatientProfile, patient_id)
            age = age_of(profile, now)
            known = frozenset(s for s in row.symptoms.split(",") if s) | symptoms
            row.symptoms = ",".join(sorted(known))
            assessment = clinical.assess(row, targets_for(profile, age), age=age, symptoms=known)
            row.urgent = row.urgent or assessment.urgent
            alert = None
            if assessment.alert_rule and patient is not None:
                alert = await self._alerts.raise_in(session, patient, profile, row, assessment, age)
            average = Average(0)
        return RecordResult(row.id, assessment, False, average, alert)

    async def recent(self, patient_id: int, limit: int = 20, kind: str | None = None, *,
                     session: AsyncSession | None = None) -> list[Reading]:
        async with read_session(self._sessions, session) as session:
            query = select(Reading).where(Reading.patient_id == patient_id)
            if kind:
                query = query.where(Reading.kind == kind)
            rows = await session.scalars(query.order_by(Reading.measured_at.desc(), Reading.id.desc()).limit(limit))
            return list(rows)

    async def since(self, patient_id: int, since: datetime) -> list[Reading]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Reading)
                .where(Reading.patient_id == patient_id, Reading.measured_at >= since)
                .order_by(Reading.measured_at)
            )
            return list(rows)

    async def delete_last(self, patient_id: int) -> Reading | None:
        """/undo. Deleting an urgent reading withdraws it: the open alert it raised is closed and
        whoever got the alert is told, in the same transaction (AlertService.reading_withdrawn)."""
        async with self._sessions.begin() as session:
            row = await session.scalar(
                select(Reading).where(Reading.patient_id == patient_id).order_by(Reading.created_at.desc(),
                                                                                   Reading.id.desc()).limit(1)
            )
            if row is not None:
                patient = await session.get(User, patient_id)
                await self._alerts.reading_withdrawn(session, row, patient, deleted=True)
                await session.delete(row)
            return row

    async def count(self, patient_id: int) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count(Reading.id)).where(Reading.patient_id == patient_id)) or 0)


def _values(patient_id: int, reading: NewReading, assessment: Any, entered_by: int | None,
            measured_at: datetime | None, now: datetime, source_update_id: int | None, seq: int,
            symptoms: frozenset[str]) -> dict[str, Any]:
    """The reading's row, as the INSERT's parameters (`_COLUMNS`)."""
    return {
        "patient_id": patient_id,
        "entered_by": entered_by or patient_id,
        "kind": reading.kind,
        "systolic": reading.systolic,
        "diastolic": reading.diastolic,
        "pulse": reading.pulse,
        "mmol": reading.mmol,
        "context": reading.context,
        "meter": reading.meter,
        "kg": reading.kg,
        "arm": reading.arm,
        "posture": reading.posture,
        "symptoms": ",".join(sorted(symptoms)),
        "category": assessment.category,
        "urgent": assessment.urgent,
        "in_target": assessment.in_target,
        "measured_at": measured_at or now,
        "created_at": now,
        "source_update_id": source_update_id,
        "seq": seq,
    }


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


__all__ = ["Average", "IntegrityError", "NewReading", "ReadingService", "RecordResult", "age_of", "targets_for"]
