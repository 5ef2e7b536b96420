"""Small database helpers shared by services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)
T = TypeVar("T")


def being_cancelled() -> bool:
    """Is the current task being cancelled? A background loop that logs and carries on after an
    exception must re-raise instead when this is true: a database call cancelled mid-flight can
    surface as another exception (a driver or pool error), and swallowing it would keep a loop alive
    that shutdown or a leader change is trying to stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


# PostgreSQL rolled the whole transaction back and says running it again may succeed: a deadlock
# (two writers taking the same row locks in opposite orders, e.g. onboarding writes users then
# patient_profiles while a doctor's target change writes patient_profiles and its trigger then
# users: migration 0008_sender_revision) or a serialization failure.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def is_transient(exc: DBAPIError) -> bool:
    """Worth running the whole transaction again: "database is locked", a dropped connection, a
    deadlock or serialization failure that PostgreSQL resolved by rolling us back."""
    return (isinstance(exc, OperationalError) or exc.connection_invalidated
            or getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES)


async def with_retry(operation: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """Retry a whole transaction on transient errors (`is_transient`). The operation must be a
    fresh transaction each call."""
    delay = 0.05
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except (OperationalError, DBAPIError) as exc:
            transient = is_transient(exc)
            if not transient or attempt == attempts:
                raise
            log.warning("transient database error (attempt %d): %s", attempt, exc.__class__.__name__)
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


@asynccontextmanager
async def read_session(sessions: async_sessionmaker[AsyncSession], session: AsyncSession | None = None
                       ) -> AsyncIterator[AsyncSession]:
    """The caller's session when it hands one in, else a new one closed at the end.

    Why: a page that reads ten small things (the dashboard's patient page) paid for a session each —
    a connection checkout, on PostgreSQL a pre-ping and a BEGIN, and a ROLLBACK: three or four round
    trips per query (the pre-ping is now paid only after a second idle: storage/db.py). Read methods take `session=` so such a page reads everything in one transaction
    (one snapshot, too); called alone they work as before."""
    if session is not None:
        yield session
        return
    async with sessions() as own:
        yield own


def insert_for(session: AsyncSession, model: Any) -> Any:
    """A dialect INSERT (SQLite or PostgreSQL) so hot paths can use ON CONFLICT DO NOTHING
    and RETURNING: one round trip instead of "SELECT, then INSERT"."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model)
