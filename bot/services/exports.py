"""Exports of a team's data: CSV (streamed) and FHIR R4 JSON bundles.

CSV rows come from a server-side cursor (`stream` + `yield_per`) and leave as they are read, so
exporting ten million readings keeps memory flat. Readings come patient by patient, each patient's in
time order (the order of their index: no sort before the first byte); the other tables in time order.
FHIR uses the codes of the reference's "Interoperability codes" section; one bundle per patient or per
panel (built in memory, so use the CSV for bulk).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, String, case, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.util import await_only

from bot.services.clock import Clock
from bot.services.indicators import Scope
from storage.models import Alert, FollowUp, PatientProfile, Reading, Team, TeamMember, User

WHAT = ("patients", "readings", "followups", "alerts")
BATCH = 5000
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ENCOUNTER_CLASS = {"clinic": ("AMB", "ambulatory"), "home": ("HH", "home health"),
                   "phone": ("VR", "virtual"), "online": ("VR", "virtual")}


FREE_TEXT = frozenset({"display_name", "referral"})  # typed by people: may start like a spreadsheet formula


class IsoUtc(FunctionElement[str]):
    """A naive-UTC datetime column as ISO 8601 text with "+00:00", formatted by the database.

    The export's hot path: formatting ten million timestamps in Python (or converting them to aware
    datetimes first) costs more than the rest of a row. The text is what `datetime.isoformat()`
    writes: microseconds only when there are some."""

    type = String()
    inherit_cache = True
    name = "iso_utc"


@compiles(IsoUtc, "sqlite")
def _iso_utc_sqlite(element: IsoUtc, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy stores SQLite datetimes as "YYYY-MM-DD HH:MM:SS.ffffff" text
    column = compiler.process(element.clauses, **kw)
    return f"(replace(replace({column}, ' ', 'T'), '.000000', '') || '+00:00')"


@compiles(IsoUtc, "postgresql")
def _iso_utc_postgresql(element: IsoUtc, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"""(replace(to_char({column}, 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '') || '+00:00')"""


def _bool_text(column: Any) -> Any:
    """A boolean column as "True"/"False" text (as Python writes it) on every database."""
    return case((column == true(), "True"), (column == false(), "False")).label(column.key)


def _raw_time(column: Any) -> Any:
    """A UTC datetime column, already as export text (see `IsoUtc`), under its own name."""
    return IsoUtc(column).label(column.key)


def _safe_text(value: Any) -> Any:
    """Text a spreadsheet would run as a formula is quoted with '."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class ExportService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock):
        self._sessions = sessions
        self._clock = clock

    async def team_scope(self, team_name: str) -> Scope | None:
        """For the CLI: every patient of the team(s) with this name."""
        async with self._sessions() as session:
            teams = tuple(await session.scalars(select(Team.id).where(Team.name == team_name)))
        return Scope(teams) if teams else None

    def _query(self, what: str, scope: Scope, since: datetime | None, until: datetime | None) -> Any:
        ids = scope.patient_ids()
        if what == "patients":
            return (select(User.id, User.display_name, PatientProfile.conditions, PatientProfile.risk,
                           PatientProfile.birth_year, PatientProfile.team_id, PatientProfile.doctor_id,
                           _raw_time(PatientProfile.linked_at), PatientProfile.next_followup_due,
                           _raw_time(PatientProfile.last_contact_at))
                    .join(PatientProfile, PatientProfile.user_id == User.id).where(User.id.in_(ids))
                    .order_by(User.id))
        if what == "readings":
            q = select(Reading.id, Reading.patient_id, _raw_time(Reading.measured_at), Reading.kind, Reading.systolic,
                       Reading.diastolic, Reading.pulse, Reading.mmol, Reading.context, Reading.kg,
                       Reading.category, _bool_text(Reading.urgent), _bool_text(Reading.in_target)
                       ).where(Reading.patient_id.in_(ids))
            column: Any = Reading.measured_at
        elif what == "followups":
            q = select(FollowUp.id, FollowUp.patient_id, FollowUp.doctor_id, FollowUp.visit_date, FollowUp.way,
                       FollowUp.status, FollowUp.outcome, FollowUp.systolic, FollowUp.diastolic,
                       FollowUp.fasting_mmol, FollowUp.weight_kg, FollowUp.next_due,
                       # the rest of the NBPHS-3 form's columns (issue 10); the free-form parts stay in the record
                       FollowUp.heart_rate, FollowUp.bmi, FollowUp.hba1c, FollowUp.med_adherence,
                       FollowUp.hypo_reactions, FollowUp.referral, FollowUp.source).where(FollowUp.patient_id.in_(ids))
            column = FollowUp.visit_date
            since = since.date() if since else None  # type: ignore[assignment]
            until = until.date() if until else None  # type: ignore[assignment]
        elif what == "alerts":
            q = select(Alert.id, Alert.patient_id, Alert.rule, Alert.status, _raw_time(Alert.created_at),
                       _raw_time(Alert.acked_at),
                       Alert.acked_by, Alert.action, Alert.repeat_count, Alert.escalation_level
                       ).where(Alert.patient_id.in_(ids))
            column = Alert.created_at
        else:
            raise ValueError(f"unknown export {what!r}")
        if since is not None:
            q = q.where(column >= since)
        if until is not None:
            q = q.where(column < until)
        if what == "readings":
            # Patient by patient, each patient's readings in time order (as the FHIR bundle): the order of
            # the (patient_id, measured_at) index, so neither database sorts ten million rows first (SQLite
            # spent ~45 s in a temporary B-tree before the first byte in time order); ties by id.
            return q.order_by(Reading.patient_id, column, Reading.id)
        return q.order_by(column, q.selected_columns[0])

    async def csv_rows(self, what: str, scope: Scope, since: datetime | None = None,
                       until: datetime | None = None) -> AsyncIterator[bytes]:
        """CSV (UTF-8 with BOM so spreadsheet programs read Chinese names), in chunks of BATCH rows.

        The rows are read from the driver's server-side cursor as plain tuples (the query already
        turns times and booleans into their text, see `IsoUtc` and `_bool_text`), written to CSV in
        the database connection's greenlet and handed over through a two-chunk queue: no Row objects
        on the hot path, fetching overlaps sending, and memory stays flat whatever the size."""
        query = self._query(what, scope, since, until).execution_options(stream_results=True)
        names = [c.name for c in query.selected_columns]
        convert = [i for i, name in enumerate(names) if name in FREE_TEXT]
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=2)

        def produce(connection: Connection) -> None:
            try:
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                writer.writerow(names)
                await_only(chunks.put(("\ufeff" + buffer.getvalue()).encode()))
                result = connection.execute(query)
                # Opening a server-side cursor, SQLAlchemy already read its first row: take that one
                # through the result, the rest straight from the DB-API cursor.
                cursor = result.cursor
                rows: list[Any] = [tuple(row) for row in result.fetchmany(1)] + cursor.fetchmany(BATCH - 1)
                while rows:
                    buffer.seek(0)
                    buffer.truncate()
                    if convert:
                        rows = [list(row) for row in rows]
                        for values in rows:
                            for i in convert:
                                values[i] = _safe_text(values[i])
                    writer.writerows(rows)
                    await_only(chunks.put(buffer.getvalue().encode()))
                    rows = cursor.fetchmany(BATCH)
                result.close()
            finally:
                if not abandoned.is_set():
                    await_only(chunks.put(None))  # the end (or an error, re-raised by `await task`)

        abandoned = asyncio.Event()
        async with self._sessions() as session:
            connection = await session.connection()
            task = asyncio.ensure_future(connection.run_sync(produce))
            try:
                while (chunk := await chunks.get()) is not None:
                    yield chunk
                await task
            finally:
                if not task.done():  # the client went away mid-export
                    abandoned.set()
                    task.cancel()
                    await asyncio.wait([task])

    async def fhir_bundle(self, scope: Scope, patient_id: int | None = None, since: datetime | None = None,
                          until: datetime | None = None) -> dict[str, Any]:
        """A FHIR R4 `collection` Bundle: Patient, Practitioner, Observation, Encounter resources."""
        ids: Any = scope.patient_ids()
        if patient_id is not None:
            ids = ids.where(PatientProfile.user_id == patient_id)
        entries: list[dict[str, Any]] = []
        async with self._sessions() as session:
            patients = (await session.execute(
                select(User, PatientProfile).join(PatientProfile, PatientProfile.user_id == User.id)
                .where(User.id.in_(ids)).order_by(User.id))).all()
            doctor_ids = {p.doctor_id for _u, p in patients if p.doctor_id} | set(await session.scalars(
                select(TeamMember.user_id).where(TeamMember.team_id.in_(
                    {p.team_id for _u, p in patients if p.team_id}))))
            doctors = list(await session.scalars(select(User).where(User.id.in_(doctor_ids)).order_by(User.id)))
            readings = select(Reading).where(Reading.patient_id.in_(ids)).order_by(Reading.patient_id,
                                                                                     Reading.measured_at)
            if since is not None:
                readings = readings.where(Reading.measured_at >= since)
            if until is not None:
                readings = readings.where(Reading.measured_at < until)
            followups = select(FollowUp).where(FollowUp.patient_id.in_(ids)).order_by(FollowUp.visit_date)
            if since is not None:
                followups = followups.where(FollowUp.visit_date >= since.date())
            reading_rows = list(await session.scalars(readings))
            followup_rows = list(await session.scalars(followups))
        for user, profile in patients:
            entries.append(_patient(user, profile))
        for doc in doctors:
            entries.append(_practitioner(doc))
        for r in reading_rows:
            entries.extend(_observations(r))
        for f in followup_rows:
            entries.append(_encounter(f))
        return {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": self._clock.now().astimezone(UTC).isoformat(),
            "entry": [{"fullUrl": f"urn:carecircle:{e['resourceType']}/{e['id']}", "resource": e} for e in entries],
        }


def _patient(user: User, profile: PatientProfile) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": f"p{user.id}",
        "identifier": [{"system": "urn:carecircle:user", "value": str(user.id)}],
        "name": [{"text": user.display_name or user.first_name or f"#{user.id}"}],
    }
    if profile.birth_year:
        resource["birthDate"] = f"{profile.birth_year:04d}"
    if profile.doctor_id:
        resource["generalPractitioner"] = [{"reference": f"Practitioner/d{profile.doctor_id}"}]
    return resource


def _practitioner(user: User) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "id": f"d{user.id}",
            "identifier": [{"system": "urn:carecircle:user", "value": str(user.id)}],
            "name": [{"text": user.display_name or user.first_name or f"#{user.id}"}]}


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _concept(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


def _observations(r: Reading) -> list[dict[str, Any]]:
    """One reading as FHIR Observations (clinical-reference: Interoperability codes)."""
    base = {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/p{r.patient_id}"},
            "effectiveDateTime": r.measured_at.astimezone(UTC).isoformat()}
    vital = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                          "code": "vital-signs", "display": "Vital Signs"}]}]
    lab = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory", "display": "Laboratory"}]}]
    out: list[dict[str, Any]] = []
    if r.kind == "bp" and r.systolic is not None and r.diastolic is not None:
        out.append({**base, "id": f"r{r.id}-bp", "category": vital,
                    "code": _concept("85354-9", "Blood pressure panel with all children optional"),
                    "component": [
                        {"code": _concept("8480-6", "Systolic blood pressure"),
                         "valueQuantity": _quantity(r.systolic, "mm[Hg]")},
                        {"code": _concept("8462-4", "Diastolic blood pressure"),
                         "valueQuantity": _quantity(r.diastolic, "mm[Hg]")}]})
        if r.pulse is not None:
            out.append({**base, "id": f"r{r.id}-hr", "category": vital, "code": _concept("8867-4", "Heart rate"),
                        "valueQuantity": _quantity(r.pulse, "/min")})
    elif r.kind == "glucose" and r.mmol is not None:
        obs = {**base, "id": f"r{r.id}-glu", "category": lab,
               "code": _concept("14743-9", "Glucose [Moles/volume] in Capillary blood by Glucometer"),
               "valueQuantity": _quantity(round(r.mmol, 1), "mmol/L")}
        if r.context:
            obs["note"] = [{"text": r.context}]
        out.append(obs)
    elif r.kind == "weight" and r.kg is not None:
        out.append({**base, "id": f"r{r.id}-wt", "category": vital, "code": _concept("29463-7", "Body weight"),
                    "valueQuantity": _quantity(round(r.kg, 1), "kg")})
    return out


def _encounter(f: FollowUp) -> dict[str, Any]:
    code, display = ENCOUNTER_CLASS.get(f.way, ("AMB", "ambulatory"))
    resource: dict[str, Any] = {
        "resourceType": "Encounter", "id": f"f{f.id}",
        "status": "finished" if f.status == "confirmed" else "planned",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code, "display": display},
        "type": [{"text": "Follow-up (随访)"}],
        "subject": {"reference": f"Patient/p{f.patient_id}"},
        "period": {"start": f.visit_date.isoformat(), "end": f.visit_date.isoformat()},
    }
    if f.doctor_id:
        resource["participant"] = [{"individual": {"reference": f"Practitioner/d{f.doctor_id}"}}]
    if f.outcome:
        resource["reasonCode"] = [{"text": f.outcome}]
    return resource


def parse_day(text: str | None) -> date | None:
    """YYYY-MM-DD or None; raises ValueError on anything else."""
    return date.fromisoformat(text) if text else None
