"""On SQLite and PostgreSQL (migrated schema): when a patient joins by the personal link of a record
their doctor pre-registered, EVERY row pointing at the placeholder moves to the patient's account.

The first test seeds one row in every table that has a foreign key to `users.id`, found from the
metadata, so a table added later is checked without anyone editing this test."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table, insert, select

from bot.services.container import Services
from bot.services.preregister import PreRegistration, PreRegistrationService, user_foreign_keys
from bot.services.users import Onboarding
from storage.models import Base, PatientProfile, Team, TeamMember, User
from storage.plan_models import CarePlanVersion
from storage.reminder_models import ReminderPrefs

SKIPPED = {"users", "patient_profiles"}  # the placeholder itself, and its profile (merged field by field)



async def _doctor(services: Services) -> tuple[User, int]:
    doctor = await services.users.ensure(2001, 2001, "Dr Li", "en")
    async with services.sessions.begin() as session:
        team = Team(name="Qingshan")
        session.add(team)
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=doctor.id, oncall_order=0))
        return doctor, team.id


async def _preregistered(services: Services) -> tuple[int, str, int]:
    """A doctor's pre-registered record: (placeholder id, invite code, team id)."""
    doctor, team_id = await _doctor(services)
    created = await PreRegistrationService(services.sessions, services.clock, services.invites).create(
        doctor.id, PreRegistration("Zhang Wei", "13800138000", 1950, frozenset({"diabetes"})))
    assert created is not None
    return created.patient_id, created.payload.split("-", 1)[1], team_id


async def _joiner(services: Services, tg_id: int = 1005) -> User:
    user = await services.users.ensure(tg_id, tg_id, "Wei", "en")
    await services.users.complete_onboarding(user.id, Onboarding("en", "Asia/Shanghai", frozenset({"hypertension"}),
                                                                 None))
    return user


_counter = itertools.count(1)


def _python_type(column: Any) -> type:
    try:
        return column.type.python_type  # type: ignore[no-any-return]
    except NotImplementedError:  # a TypeDecorator (UTCDateTime): its implementation's type
        return column.type.impl.python_type  # type: ignore[no-any-return]


def _dummy(column: Any) -> Any:
    """A value for a required column with no default."""
    kind = _python_type(column)
    if kind is str:
        return f"x{next(_counter)}"[: getattr(column.type, "length", None) or 64]
    if kind is bool:
        return False
    if kind is int:
        return next(_counter)
    if kind is float:
        return 1.0
    if kind is datetime:
        return datetime(2026, 3, 2, tzinfo=UTC)
    if kind is date:
        return date(2026, 3, 2)
    if kind is dict:
        return {}
    raise AssertionError(f"no dummy value for {column}")


def _row(table: Table, placeholder: int, team_id: int, ids: dict[str, dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in table.columns:
        fks = list(column.foreign_keys)
        target = fks[0].column if fks else None
        if target is not None and target.table.name == "users":
            values[column.name] = placeholder  # every user reference: nullable or not
        elif target is not None and target.table.name == "teams":
            values[column.name] = team_id
        elif target is not None and not column.nullable:
            values[column.name] = ids[target.table.name][target.name]
        elif target is not None:
            continue
        elif column.primary_key and len(table.primary_key.columns) == 1 and _python_type(column) is int:
            continue  # an autoincrement id
        elif column.nullable or column.default is not None or column.server_default is not None:
            continue
        else:
            values[column.name] = _dummy(column)
    return values


async def _seed(services: Services, placeholder: int, team_id: int) -> dict[str, dict[str, Any]]:
    """One row in every table with a user foreign key (and in the parents those need), all pointing
    at the placeholder; returns each seeded row's primary key."""
    seeded: dict[str, dict[str, Any]] = {}
    ids: dict[str, dict[str, Any]] = {}
    async with services.sessions.begin() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in SKIPPED or table.name == "teams" or not table.foreign_keys:
                continue
            values = _row(table, placeholder, team_id, ids)
            result = await session.execute(insert(table).values(values))
            key = dict(zip([c.name for c in table.primary_key.columns], result.inserted_primary_key, strict=True))
            ids[table.name] = {**values, **key}
            seeded[table.name] = key
    return seeded


async def test_every_row_of_the_placeholder_moves_to_the_joining_account(services: Services) -> None:
    placeholder, code, team_id = await _preregistered(services)
    seeded = await _seed(services, placeholder, team_id)
    references = [(t, c) for t, c in user_foreign_keys() if t.name not in SKIPPED]
    assert {t.name for t, _ in references} <= set(seeded)
    for name in ("care_plans", "prescriptions", "lesson_deliveries", "chat_followups", "followups", "questions",
                 "reminders", "readings", "alerts"):  # the list, as a guard that the metadata walk sees them
        assert name in seeded
    joiner = await _joiner(services)
    result = await services.invites.redeem("patient", code, joiner.id)
    assert result.ok
    async with services.sessions() as session:
        assert await session.get(User, placeholder) is None
        for table, column in references:
            left = await session.scalar(select(table.c[column]).where(table.c[column] == placeholder).limit(1))
            assert left is None, f"{table.name}.{column} still points at the placeholder"
        for table_name, key in seeded.items():
            table = Base.metadata.tables[table_name]
            moved = {name: joiner.id if value == placeholder and _is_user_ref(table, name) else value
                     for name, value in key.items()}
            row = (await session.execute(select(table).where(
                *[table.c[name] == value for name, value in moved.items()]))).mappings().one_or_none()
            assert row is not None, f"the placeholder's {table_name} row was dropped"
            for column in table.columns:
                if _is_user_ref(table, column.name):
                    assert row[column.name] == joiner.id, f"{table_name}.{column.name} did not move"
        profile = await session.get(PatientProfile, joiner.id)
    assert profile is not None and profile.condition_set == {"diabetes", "hypertension"}
    assert profile.birth_year == 1950


def _is_user_ref(table: Table, column: str) -> bool:
    return any(fk.column.table.name == "users" for fk in table.c[column].foreign_keys)


async def test_one_per_person_rows_keep_the_accounts_own_and_plan_versions_follow(services: Services) -> None:
    placeholder, code, _team_id = await _preregistered(services)
    joiner = await _joiner(services)
    async with services.sessions.begin() as session:
        for version in (1, 2):  # the doctor's plan for the placeholder: two versions
            session.add(CarePlanVersion(patient_id=placeholder, version=version, data={"by": "doctor", "v": version}))
        session.add(CarePlanVersion(patient_id=joiner.id, version=1, data={"by": "account"}))
        session.add(ReminderPrefs(user_id=placeholder, quiet_start="21:00"))
        if await session.get(ReminderPrefs, joiner.id) is None:
            session.add(ReminderPrefs(user_id=joiner.id, quiet_start="23:00"))
    async with services.sessions() as session:
        own_quiet = (await session.get(ReminderPrefs, joiner.id)).quiet_start  # type: ignore[union-attr]
    assert (await services.invites.redeem("patient", code, joiner.id)).ok
    async with services.sessions() as session:
        plans = list(await session.scalars(select(CarePlanVersion).where(CarePlanVersion.patient_id == joiner.id)
                                           .order_by(CarePlanVersion.version)))
        prefs = list(await session.scalars(select(ReminderPrefs).where(
            ReminderPrefs.user_id.in_((joiner.id, placeholder)))))
    # the history keeps both; the doctor's pre-registration plan is now the current (latest) one
    assert [(p.version, p.data) for p in plans] == [(1, {"by": "account"}), (2, {"by": "doctor", "v": 1}),
                                                   (3, {"by": "doctor", "v": 2})]
    assert [(p.user_id, p.quiet_start) for p in prefs] == [(joiner.id, own_quiet)]
