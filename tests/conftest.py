"""Shared fixtures: real databases (a SQLite file, a fresh PostgreSQL database per test), the
project's FakeTelegram over HTTP, and the real application wired to both."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from bot.app import CareCircle, build
from bot.config import Settings
from bot.sandbox import FakeTelegram
from bot.services.clock import ManualClock
from bot.services.container import Services
from storage.migrate import upgrade

PG_URL = os.environ.get("CARECIRCLE_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_available() -> bool:
    try:
        conn = await asyncpg.connect(_pg_dsn(PG_URL), timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A brand-new PostgreSQL database for one test, dropped afterwards.

    PostgreSQL tests are required: on CI (CI set) an unreachable server fails the test."""
    if not await _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required on CI but {PG_URL} is unreachable")
        pytest.skip("PostgreSQL is not running (make test starts it)")
    name = "cc_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(_pg_dsn(PG_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin = await asyncpg.connect(_pg_dsn(PG_URL))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite+aiosqlite:///{tmp_path / 'carecircle.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request) -> str:  # type: ignore[no-untyped-def]
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def services(db_url: str, clock: ManualClock) -> AsyncIterator[Services]:
    """The services on a migrated database of each kind (`db_url`), on the test's `clock`. A file that
    needs another set-up defines its own `services` (pytest picks the nearest definition)."""
    s = Services.build(Settings(database_url=db_url), clock)
    await upgrade(s.engine)
    yield s
    await s.engine.dispose()


def app_settings(tg: FakeTelegram, database_url: str, **overrides: object) -> Settings:
    base = Settings(
        telegram_token=tg.token,
        telegram_api_base=tg.base_url,
        database_url=database_url,
        http_port=free_port(),
        outbox_poll_seconds=0.05,
        bot_username=tg.bot_username,
    )
    return base.with_(**overrides)


@pytest.fixture
async def app(tg: FakeTelegram, sqlite_url: str) -> AsyncIterator[CareCircle]:
    """The real application on a SQLite file, polling FakeTelegram, on the real clock."""
    care = build(app_settings(tg, sqlite_url))
    await care.start()
    yield care
    await care.stop()


# --- the same on a ManualClock: a test moves time with `clock.advance(...)` and `await care.tick()`
# instead of sleeping, and results do not depend on the hour the suite runs (quiet hours, working
# hours). A file that needs another moment overrides `mclock` (pytest picks the nearest definition).
# Tuesday 2026-11-24 10:00 in Shanghai: the team is at work, and a "wed 19:30" circle session is next day.
TUESDAY_MORNING = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.fixture
def mclock() -> ManualClock:
    return ManualClock(TUESDAY_MORNING)


@pytest.fixture
async def care(tg: FakeTelegram, sqlite_url: str, mclock: ManualClock) -> AsyncIterator[CareCircle]:
    """The real application polling FakeTelegram, on `mclock`."""
    application = build(app_settings(tg, sqlite_url), clock=mclock)
    await application.start()
    yield application
    await application.stop()


@pytest.fixture
def care_clock(care: CareCircle, mclock: ManualClock) -> tuple[CareCircle, ManualClock]:
    """`care` and its clock together."""
    return care, mclock
