"""ReminderService on SQLite and PostgreSQL: claim, enqueue and advance in one transaction;
concurrent ticks never double; erase removes reminders."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

from sqlalchemy import func, select

from bot.config import Settings
from bot.services.clock import ManualClock
from bot.services.container import Services
from storage.migrate import upgrade
from storage.models import Outbox, User, UserRole
from storage.reminder_models import Reminder

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # Monday 08:00 Shanghai


async def _seed(services: Services, n: int) -> list[int]:
    ids = []
    async with services.sessions.begin() as session:
        for i in range(n):
            user = User(telegram_id=900_000 + i, chat_id=900_000 + i, first_name=f"P{i}", language="en",
                        timezone="Asia/Shanghai", created_at=START, consent_at=START, onboarded_at=START)
            session.add(user)
            await session.flush()
            session.add(UserRole(user_id=user.id, role="patient"))
            ids.append(user.id)
    for uid in ids:
        await services.reminders.add(uid, "bp", (time(9),))
        await services.reminders.add(uid, "glucose", (time(9),))
    return ids


async def test_tick_enqueues_once_and_advances(db_url: str) -> None:
    clock = ManualClock(START)
    services = Services.build(Settings(database_url=db_url), clock)
    try:
        await upgrade(services.engine)
        ids = await _seed(services, 5)
        assert await services.reminders.tick() == 0  # 08:00: nothing due
        clock.advance(hours=1, seconds=1)
        assert await services.reminders.tick() == 10
        assert await services.reminders.tick() == 0  # advanced in the same transaction
        async with services.sessions() as session:
            keys = list(await session.scalars(select(Outbox.dedupe_key).where(Outbox.kind == "reminder")))
            assert len(keys) == len(set(keys)) == 10 and all(k.startswith("rem:") for k in keys)
            due = set(await session.scalars(select(Reminder.next_due_at).where(Reminder.kind == "bp")))
            assert due == {datetime(2026, 3, 3, 1, 0, tzinfo=UTC)}
        await services.users.erase(ids[0])
        async with services.sessions() as session:
            assert await session.scalar(select(func.count(Reminder.id)).where(Reminder.user_id == ids[0])) == 0
    finally:
        await services.engine.dispose()


async def test_two_concurrent_ticks_never_double(db_url: str) -> None:
    clock = ManualClock(START)
    a = Services.build(Settings(database_url=db_url), clock)
    b = Services.build(Settings(database_url=db_url), clock)
    try:
        await upgrade(a.engine)
        await _seed(a, 40)
        clock.advance(hours=1, seconds=1)
        counts = await asyncio.gather(a.reminders.tick(), b.reminders.tick(), a.reminders.tick())
        async with a.sessions() as session:
            total = await session.scalar(select(func.count(Outbox.id)).where(Outbox.kind == "reminder"))
        assert total == 80 and sum(counts) >= 80  # SQLite: the dedupe key drops the doubles
    finally:
        await a.engine.dispose()
        await b.engine.dispose()
