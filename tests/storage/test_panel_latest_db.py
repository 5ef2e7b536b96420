"""`panel_latest` (migration 0007_panel_latest) stays equal to a from-scratch computation, on SQLite
and PostgreSQL, whatever writes the readings: the services (record, correct, /undo, with the alerts
they open, fold and withdraw, and alert acknowledgement beside them), plain SQL, a user's erasure, the
migration's backfill, and concurrent writers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, text, update

from bot.config import Settings
from bot.services.container import Services
from bot.services.corrections import CorrectionService
from bot.services.readings import NewReading
from bot.services.users import Onboarding
from storage.migrate import upgrade
from storage.models import Reading, Team, TeamMember, User
from storage.panel_models import PanelLatest

EMPTY = (None, None, None, None)



async def _patient(services: Services, tg_id: int, doctor_id: int | None = None) -> int:
    user = await services.users.ensure(tg_id, tg_id, f"P{tg_id}", "en")
    await services.users.complete_onboarding(user.id, Onboarding("en", "Asia/Shanghai",
                                                                 frozenset({"hypertension", "diabetes"}), 1950))
    if doctor_id is not None:
        async with services.sessions.begin() as session:
            team = Team(name=f"T{tg_id}")
            session.add(team)
            await session.flush()
            session.add(TeamMember(team_id=team.id, user_id=doctor_id, oncall_order=0))
            team_id = team.id
        await services.users.update_profile(user.id, team_id=team_id, doctor_id=doctor_id)
    return user.id


async def from_scratch(services: Services) -> dict[int, tuple[Any, ...]]:
    """Every user's latest bp/glucose reading (id, time, kind, in target), worked out from `readings`."""
    out: dict[int, tuple[Any, ...]] = {}
    async with services.sessions() as session:
        for uid in await session.scalars(select(User.id)):
            r = (await session.execute(
                select(Reading.id, Reading.measured_at, Reading.kind, Reading.in_target)
                .where(Reading.patient_id == uid, Reading.kind.in_(("bp", "glucose")))
                .order_by(Reading.measured_at.desc(), Reading.id.desc()).limit(1))).first()
            out[uid] = tuple(r) if r else EMPTY
    return out


async def kept(services: Services) -> dict[int, tuple[Any, ...]]:
    """The same from `panel_latest`; a missing row means no bp/glucose reading."""
    async with services.sessions() as session:
        users = list(await session.scalars(select(User.id)))
        rows = {r.patient_id: (r.reading_id, r.measured_at, r.kind, r.in_target)
                for r in await session.scalars(select(PanelLatest))}
    assert set(rows) <= set(users)  # no row outlives its user
    return {uid: rows.get(uid, EMPTY) for uid in users}


async def check(services: Services) -> dict[int, tuple[Any, ...]]:
    expected = await from_scratch(services)
    assert await kept(services) == expected
    return expected


async def test_kept_row_follows_readings_corrections_undo_and_alerts(services: Services, clock) -> None:  # type: ignore[no-untyped-def]
    doctor = (await services.users.ensure(9001, 9001, "Dr Li", "en")).id
    pid = await _patient(services, 101, doctor)
    other = await _patient(services, 102, doctor)
    readings, alerts = services.readings, services.alerts
    corrections = CorrectionService(services.sessions, services.clock, services.alerts)
    assert (await check(services))[pid] == EMPTY

    first = await readings.record(pid, NewReading("bp", systolic=128, diastolic=78))
    assert (await check(services))[pid][:4] == (first.reading_id, clock.now(), "bp", True)
    clock.advance(minutes=5)
    # an older reading (typed with an earlier time) and a weight do not replace the latest
    await readings.record(pid, NewReading("glucose", mmol=6.1, context="fasting"),
                          measured_at=clock.now() - timedelta(days=2))
    await readings.record(pid, NewReading("weight", kg=70.5))
    assert (await check(services))[pid][0] == first.reading_id
    # an out-of-target glucose now: it is the latest
    clock.advance(minutes=5)
    high = await readings.record(pid, NewReading("glucose", mmol=9.8, context="fasting"))
    assert (await check(services))[pid][:4] == (high.reading_id, clock.now(), "glucose",
                                                False)
    # correcting the latest into target flips its flag; correcting an older one changes nothing shown
    assert await corrections.correct(pid, high.reading_id, NewReading("glucose", mmol=5.6)) is not None
    assert (await check(services))[pid][3] is True
    assert await corrections.correct(pid, first.reading_id, NewReading("bp", systolic=150, diastolic=95))
    assert (await check(services))[pid][0] == high.reading_id
    # an urgent reading opens an alert; a repeat folds into it (the reading and alert written together)
    clock.advance(minutes=5)
    urgent = await readings.record(pid, NewReading("bp", systolic=186, diastolic=112))
    assert urgent.alert is not None
    clock.advance(minutes=1)
    repeat = await readings.record(pid, NewReading("bp", systolic=190, diastolic=115))
    assert (await check(services))[pid][0] == repeat.reading_id
    # /undo twice: the latest goes back to the urgent reading, then to the corrected glucose
    await readings.delete_last(pid)
    assert (await check(services))[pid][0] == urgent.reading_id
    await readings.delete_last(pid)
    assert (await check(services))[pid][0] == high.reading_id
    # alerts raised and acknowledged beside the readings leave the kept reading alone
    symptom = await alerts.raise_symptom_alert(pid, frozenset({"chest_pain"}))
    assert symptom is not None
    assert (await alerts.act(symptom, doctor, "called")).ok
    assert (await check(services))[pid][0] == high.reading_id
    # the other patient was never touched
    assert (await check(services))[other] == EMPTY


async def test_plain_sql_writes_and_erasure_keep_it_right(services: Services, clock) -> None:  # type: ignore[no-untyped-def]
    pid = await _patient(services, 201)
    other = await _patient(services, 202)
    ids = [(await services.readings.record(pid, NewReading("bp", systolic=120 + i, diastolic=80),
                                           measured_at=clock.now() - timedelta(hours=10 - i))).reading_id
           for i in range(5)]
    await check(services)
    async with services.sessions.begin() as session:
        # moving the latest reading back in time, an old one forward, and one to another patient
        await session.execute(update(Reading).where(Reading.id == ids[4])
                              .values(measured_at=clock.now() - timedelta(days=30)))
        await session.execute(update(Reading).where(Reading.id == ids[0]).values(in_target=False))
    assert (await check(services))[pid][0] == ids[3]
    async with services.sessions.begin() as session:
        await session.execute(update(Reading).where(Reading.id == ids[3]).values(patient_id=other))
        await session.execute(update(Reading).where(Reading.id == ids[1]).values(kind="weight"))
    state = await check(services)
    assert state[pid][0] == ids[2] and state[other][0] == ids[3]
    async with services.sessions.begin() as session:
        await session.execute(update(Reading).where(Reading.id == ids[1]).values(kind="bp"))
    assert (await check(services))[pid][0] == ids[2]
    async with services.sessions.begin() as session:
        await session.execute(delete(Reading).where(Reading.patient_id == pid))
    assert (await check(services))[pid] == EMPTY
    await services.users.erase(other)
    async with services.sessions() as session:
        assert await session.get(PanelLatest, other) is None
    await check(services)


async def test_concurrent_inserts_and_deletes_of_one_patient(services: Services, clock) -> None:  # type: ignore[no-untyped-def]
    """Writers racing on one patient's row (PostgreSQL runs them at once; SQLite one after another)."""
    pid = await _patient(services, 301)
    base = clock.now()
    ids = [(await services.readings.record(pid, NewReading("bp", systolic=120, diastolic=80),
                                           measured_at=base - timedelta(minutes=12 - i))).reading_id
           for i in range(6)]

    async def insert(minutes: int) -> None:
        await services.readings.record(pid, NewReading("glucose", mmol=5.0 + minutes / 10),
                                       measured_at=base - timedelta(minutes=minutes))

    async def remove(reading_id: int) -> None:
        async with services.sessions.begin() as session:
            await session.execute(delete(Reading).where(Reading.id == reading_id))

    for _ in range(3):
        await asyncio.gather(*(insert(m) for m in (40, 20, 10)), remove(ids.pop()), remove(ids.pop()))
        await check(services)


async def test_backfill_matches_the_data_written_before_the_migration(db_url: str, clock) -> None:  # type: ignore[no-untyped-def]
    s = Services.build(Settings(database_url=db_url), clock)
    try:
        await upgrade(s.engine, "0006")
        now = clock.now().replace(tzinfo=None)
        async with s.engine.begin() as conn:
            for uid in (1, 2, 3, 4):
                await conn.execute(text("INSERT INTO users (id, first_name, display_name, language, timezone, "
                                        "created_at) VALUES (:id, 'x', 'x', 'en', 'UTC', :now)"),
                                   {"id": uid, "now": now})
            rows = [(1, "bp", 0, True), (1, "glucose", 2, False), (1, "weight", 1, None), (1, "bp", 2, True),
                    (2, "weight", 0, None), (3, "glucose", 5, True)]
            for pid, kind, hours_ago, in_target in rows:
                await conn.execute(text("INSERT INTO readings (patient_id, kind, in_target, measured_at, created_at, "
                                        "symptoms, category, urgent, seq) VALUES (:p, :k, :t, :at, :at, '', '', "
                                        ":f, 0)"),
                                   {"p": pid, "k": kind, "t": in_target, "at": now - timedelta(hours=hours_ago),
                                    "f": False})
        await upgrade(s.engine)
        state = await check(s)
        assert state[1][2:] == ("bp", True) and state[2] == state[4] == EMPTY and state[3][2] == "glucose"
    finally:
        await s.engine.dispose()
