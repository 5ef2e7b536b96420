"""The set-based reminder enqueue (bot.services.reminder_enqueue) on SQLite and PostgreSQL: every
sending rule the old per-row loop applied now runs in SQL, so each one is checked here against the
Python reference (texts, buttons, keys), plus idempotency after a rolled-back batch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select, update

from bot.clinical.schedule import next_occurrence
from bot.config import Settings
from bot.services.clock import ManualClock
from bot.services.container import Services
from bot.services.reminders import REMINDER_TEXT, reminder_buttons
from content.i18n import translator
from storage.migrate import upgrade
from storage.models import Medicine, Outbox, User, UserRole
from storage.reminder_models import Reminder

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # Monday 08:00 Shanghai
NINE = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 Shanghai


class Boom(Exception):
    pass


async def _user(services: Services, name: str, language: str = "en") -> int:
    async with services.sessions.begin() as session:
        user = User(telegram_id=hash(name) % 10**8, chat_id=hash(name) % 10**8, first_name=name, language=language,
                    timezone="Asia/Shanghai", created_at=START, consent_at=START, onboarded_at=START)
        session.add(user)
        await session.flush()
        session.add(UserRole(user_id=user.id, role="patient"))
        return user.id


async def _outbox(services: Services) -> dict[int, list[Outbox]]:
    async with services.sessions() as session:
        rows = list(await session.scalars(select(Outbox).where(Outbox.kind == "reminder").order_by(Outbox.id)))
    by_user: dict[int, list[Outbox]] = {}
    for row in rows:
        by_user.setdefault(row.recipient_id or 0, []).append(row)
    return by_user


@pytest.fixture
async def world(db_url: str):  # type: ignore[no-untyped-def]
    clock = ManualClock(START)
    services = Services.build(Settings(database_url=db_url), clock)
    await upgrade(services.engine)
    await services.reminders.tick()  # creates the bot's own rows now, so they do not mix in below
    yield services, clock
    await services.engine.dispose()


async def test_rules_texts_buttons_and_advance_match_the_python_reference(world) -> None:  # type: ignore[no-untyped-def]
    services, clock = world
    rem = services.reminders
    nine = (time(9),)
    a, b, c, d, e = [await _user(services, n, lang) for n, lang in
                     (("A", "en"), ("B", "zh_CN"), ("C", "en"), ("D", "en"), ("E", "en"))]
    amlo = await services.medicines.add(a, "Amlodipine", "5 mg")
    old = await services.medicines.add(a, "Old pill \"x\"", "")
    odd = await services.medicines.add(b, "Met \"XR\" \\ 500", "mg")  # JSON escaping of the name
    a_bp = await rem.add(a, "bp", nine)
    a_med = await rem.add(a, "medicine", nine, medicine_id=amlo.id)
    a_old = await rem.add(a, "medicine", nine, medicine_id=old.id)
    b_glu = await rem.add(b, "glucose", nine)
    b_med = await rem.add(b, "medicine", nine, medicine_id=odd.id)
    c_bp = await rem.add(c, "bp", nine)
    d_bp = await rem.add(d, "bp", nine)
    e_bp = await rem.add(e, "bp", nine)
    assert None not in (a_bp, a_med, a_old, b_glu, b_med, c_bp, d_bp, e_bp)
    await rem.set_quiet_hours(d, time(8, 30), time(9, 30))  # D is inside quiet hours at 09:00
    async with services.sessions.begin() as session:
        await session.execute(update(Medicine).where(Medicine.id == old.id).values(active=False))
        await session.execute(update(User).where(User.id == c).values(unreachable_at=START))
        await session.execute(update(User).where(User.id == e).values(timezone="Europe/Berlin"))  # not rescheduled
    clock.advance(hours=1, seconds=5)
    assert await rem.tick() == 4
    out = await _outbox(services)
    assert set(out) == {a, b}
    en, zh = translator("en"), translator("zh_CN")
    got_a = {row.dedupe_key: row.payload for row in out[a]}
    assert got_a == {
        f"rem:{a_bp.id}:{int(NINE.timestamp())}": {"text": en(REMINDER_TEXT["bp"]),
                                                   "buttons": reminder_buttons(en, a_bp.id)},
        f"rem:{a_med.id}:{int(NINE.timestamp())}": {"text": en(REMINDER_TEXT["medicine"], name="Amlodipine 5 mg"),
                                                    "buttons": reminder_buttons(en, a_med.id)},
    }
    assert sorted((r.payload for r in out[b]), key=str) == sorted([
        {"text": zh(REMINDER_TEXT["glucose"]), "buttons": reminder_buttons(zh, b_glu.id)},
        {"text": zh(REMINDER_TEXT["medicine"], name="Met \"XR\" \\ 500 mg"), "buttons": reminder_buttons(zh, b_med.id)},
    ], key=str)
    assert all(r.chat_id and r.status == "pending" for r in out[a] + out[b])
    async with services.sessions() as session:
        due = {r.id: (r.next_due_at, r.tz) for r in await session.scalars(select(Reminder))}
    tomorrow = NINE + timedelta(days=1)
    for row in (a_bp, a_med, a_old, b_glu, b_med, c_bp, d_bp):  # sent or skipped: all advanced to tomorrow
        assert due[row.id] == (tomorrow, "Asia/Shanghai")
    berlin = next_occurrence(nine, None, "Europe/Berlin", clock.now())
    assert due[e_bp.id] == (berlin, "Europe/Berlin")  # recomputed in the new zone, not sent
    assert await rem.tick() == 0


async def test_snooze_one_off_is_sent_once_with_the_origin_buttons_then_deleted(world) -> None:  # type: ignore[no-untyped-def]
    services, clock = world
    a = await _user(services, "A")
    bp = await services.reminders.add(a, "bp", (time(9),))
    assert bp is not None
    clock.advance(hours=1, seconds=5)
    assert await services.reminders.tick() == 1
    assert await services.reminders.snooze(a, bp.id) is not None
    clock.advance(minutes=30, seconds=1)
    assert await services.reminders.tick() == 1
    rows = (await _outbox(services))[a]
    assert len(rows) == 2 and rows[1].payload["buttons"] == reminder_buttons(translator("en"), bp.id)
    async with services.sessions() as session:
        assert list(await session.scalars(select(Reminder.id).where(Reminder.one_off.is_(True)))) == []
    assert await services.reminders.tick() == 0


async def test_rolled_back_batch_and_an_existing_key_never_double(world) -> None:  # type: ignore[no-untyped-def]
    services, clock = world
    users = [await _user(services, f"U{i}") for i in range(30)]
    for uid in users:
        assert await services.reminders.add(uid, "bp", (time(9),)) is not None
    clock.advance(hours=1, seconds=5)
    rem = services.reminders
    with pytest.raises(Boom):  # a crash after the INSERT, before the commit
        async with services.sessions.begin() as session:
            claimed = await rem._enqueue.claim(session, clock.now(), 1000)
            assert await rem._enqueue.enqueue(session, claimed, clock.now()) == 30
            raise Boom
    assert await _outbox(services) == {}
    async with services.sessions.begin() as session:  # another worker already queued the first one
        first = await session.scalar(select(Reminder).where(Reminder.user_id == users[0]))
        assert first is not None
        session.add(Outbox(kind="reminder", recipient_id=users[0], chat_id=1, payload={"text": "x"},
                           dedupe_key=f"rem:{first.id}:{int(NINE.timestamp())}", next_attempt_at=clock.now()))
    assert await rem.tick() == 29
    out = await _outbox(services)
    assert sorted(len(v) for v in out.values()) == [1] * 30
    assert await rem.tick() == 0


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # the one-statement shard path is PostgreSQL's
async def test_postgres_shard_statement_rolled_back_then_retried_sends_each_once(world) -> None:  # type: ignore[no-untyped-def]
    """run_shard advances and queues in one statement: a crash before the commit leaves every row due."""
    services, clock = world
    assert services.reminders._postgres
    users = [await _user(services, f"S{i}") for i in range(12)]
    for uid in users:
        assert await services.reminders.add(uid, "glucose", (time(9),)) is not None
    clock.advance(hours=1, seconds=5)
    with pytest.raises(Boom):
        async with services.sessions.begin() as session:
            done = await services.reminders._enqueue.run_shard(session, clock.now(), 0, 1, 1000)
            assert (done.claimed, done.moved, done.queued) == (12, 12, 12)
            raise Boom
    assert await _outbox(services) == {}
    assert await services.reminders.tick() == 12
    assert sorted(len(v) for v in (await _outbox(services)).values()) == [1] * 12
    assert await services.reminders.tick() == 0


async def test_two_tickers_at_once_queue_each_reminder_once(world, db_url: str) -> None:  # type: ignore[no-untyped-def]
    services, clock = world
    other = Services.build(Settings(database_url=db_url), clock)
    try:
        users = [await _user(services, f"T{i}") for i in range(40)]
        for uid in users:
            assert await services.reminders.add(uid, "bp", (time(9),)) is not None
            assert await services.reminders.add(uid, "glucose", (time(9),)) is not None
        clock.advance(hours=1, seconds=5)
        counts = await asyncio.gather(services.reminders.tick(), other.reminders.tick())
        assert sum(counts) == 80
        out = await _outbox(services)
        assert sorted(len(v) for v in out.values()) == [2] * 40
        assert len({r.dedupe_key for rows in out.values() for r in rows}) == 80
        async with services.sessions() as session:
            assert set(await session.scalars(select(Reminder.next_due_at).where(Reminder.kind.in_(("bp", "glucose"))))) \
                == {NINE + timedelta(days=1)}
    finally:
        await other.engine.dispose()
