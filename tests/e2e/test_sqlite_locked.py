"""SQLite "database is locked": another process holds the write lock longer than our busy timeout.
Writes are retried as whole transactions (bot.services.db.with_retry), the poller stores its batch
again instead of dying, and nothing is lost or stored twice.

The engine's busy_timeout (30 s) normally hides such a lock; here it is cut to 10 ms so the error
really reaches the code, as it does when a lock outlasts the timeout."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build
from bot.config import Settings
from bot.sandbox import FakeTelegram
from bot.services.container import Services
from bot.services.readings import NewReading
from bot.services.users import Onboarding
from storage.migrate import upgrade
from storage.models import Reading, Team
from tests.conftest import app_settings
from tests.e2e.helpers import patient


def _short_busy_timeout(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _ten_ms(dbapi_connection, _record):  # type: ignore[no-untyped-def]  # runs after the 30 s default
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=10")
        cursor.close()


def _lock(path: str) -> sqlite3.Connection:
    """Another process's write transaction: nobody else may write until it commits. Taken in a thread
    while the app runs (`asyncio.to_thread`): waiting here on the event loop would stop the app from
    finishing a write transaction it is in, and the wait would time out."""
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    return blocker


async def test_locked_write_fails_without_retry_and_succeeds_with_it(sqlite_url: str) -> None:
    path = sqlite_url.split("///", 1)[1]
    services = Services.build(Settings(database_url=sqlite_url))
    await upgrade(services.engine)
    user = await services.users.ensure(42, 42, "Wang", "en")
    await services.users.complete_onboarding(user.id, Onboarding("en", "Asia/Shanghai", frozenset({"hypertension"}),
                                                                 1950))
    await services.engine.dispose()  # new connections get the short timeout
    _short_busy_timeout(services.engine)

    blocker = _lock(path)
    with pytest.raises(OperationalError, match="database is locked"):  # the fault is real
        async with services.sessions.begin() as session:
            session.add(Team(name="never"))
    asyncio.get_running_loop().call_later(0.3, blocker.commit)  # released while we retry
    result = await services.readings.record(user.id, NewReading("bp", systolic=128, diastolic=79),
                                            source_update_id=7)
    blocker.close()
    assert not result.duplicate
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Reading)) == 1
        assert await session.scalar(select(func.count()).select_from(Team)) == 0
    await services.engine.dispose()


async def test_poller_survives_a_locked_database_and_loses_nothing(tg: FakeTelegram, sqlite_url: str) -> None:
    path = sqlite_url.split("///", 1)[1]
    care = build(app_settings(tg, sqlite_url))
    _short_busy_timeout(care.services.engine)
    await care.start()
    try:
        u = await patient(tg, "Wang")
        blocker = await asyncio.to_thread(_lock, path)
        await u.send("131/82")
        await asyncio.sleep(1.5)  # the poller fetched it and could not store it: it must not give up
        blocker.commit()
        blocker.close()
        reply = await u.next_message(timeout=10)
        assert "Saved: BP 131/82" in reply.text, reply.text
        await u.send("132/83")
        assert "Saved: BP 132/83" in (await u.next_message(timeout=10)).text
        async with care.services.sessions() as session:
            stored = sorted(f"{r.systolic}/{r.diastolic}" for r in await session.scalars(select(Reading)))
        assert stored == ["131/82", "132/83"]
    finally:
        await care.stop()
