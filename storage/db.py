"""Engine and session factory for SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage import write_lock
from storage.sqlite_driver import ONE_HOP

# Pooled connections kept open. A connection beyond the kept ones (overflow) is closed when it comes
# back, so a pool smaller than the usual number of concurrent sessions opens and closes connections
# all the time: with SQLAlchemy's default 5 kept, a 200 x 3 reading burst on SQLite opened 1 137 new
# connections (each a new thread, a connect and four PRAGMAs) for 3 900 checkouts. The processor runs
# up to 24 updates plus 8 urgent ones at once (bot.telegram.processor), beside the poller, the ledger
# and the outbox. SQLite connections cost a thread and a page cache each: keep one per slot.
# PostgreSQL keeps one per ordinary slot, and that is also its ceiling: 24 per process, plus the
# inbox listener and the leader connection, so N workers need N x 26 server connections (README,
# "Sizing"): `run --workers 3` fits the server's default max_connections of 100; 4 need it raised.
SQLITE_POOL = 32
PG_POOL, PG_POOL_MAX = 24, 24


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
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30}, module=ONE_HOP,
                                     pool_size=SQLITE_POOL, max_overflow=8)

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
    engine = create_async_engine(url, echo=echo, pool_size=PG_POOL, max_overflow=PG_POOL_MAX - PG_POOL)
    _ping_when_idle(engine)
    return engine


# A pooled PostgreSQL connection that sat unused for longer than this is pinged before it is handed out.
PING_AFTER_IDLE = 1.0  # seconds


def _ping_when_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's pool_pre_ping, but only for connections idle longer than PING_AFTER_IDLE.

    Why: asyncpg's ping is BEGIN, an empty query and ROLLBACK, three round trips on every checkout,
    and a typed reading checks out once: measured ~10 % of a reading's CPU (issue 4). A connection
    back in the pool a moment ago was alive a moment ago; the ping is for connections the server
    closed while they waited (a restart, an idle timeout). One that dies in between fails its first
    statement instead, which `with_retry` and the update retry (bot/telegram/retry.py) already handle
    as they do for a connection that dies mid-transaction."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _idle_from(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
            return  # new, or used a moment ago
        try:
            dbapi_connection.ping()
        except Exception as exc:  # the pool drops this connection and checks out another
            raise DisconnectionError("the pooled connection died while idle") from exc


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
