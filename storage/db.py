"""Engine and session factory for SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage import write_lock
from storage.sqlite_driver import ONE_HOP


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Build the async engine; for SQLite also make sure the folder exists and set the pragmas.

    WAL lets the web dashboard read while the bot writes; foreign keys are off by default in
    SQLite and we rely on them for cascading erase; busy_timeout turns "database is locked" into
    a short wait instead of an error when two writers meet (another process's); this process's
    writers queue in order, urgent ones first, on one write lock (storage/write_lock.py).
    """
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # module=ONE_HOP: the aiosqlite adapter with one thread trip per statement, not four (issue 4).
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30}, module=ONE_HOP)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        write_lock.install(engine.sync_engine)
        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
