"""Small database helpers shared by services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)
T = TypeVar("T")


def being_cancelled() -> bool:
    """Is the current task being cancelled? A background loop that logs and carries on after an
    exception must re-raise instead when this is true: a database call cancelled mid-flight can
    surface as another exception (a driver or pool error), and swallowing it would keep a loop alive
    that shutdown or a leader change is trying to stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def with_retry(operation: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """Retry a whole transaction on transient errors ("database is locked", a dropped
    PostgreSQL connection). The operation must be a fresh transaction each call."""
    delay = 0.05
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except (OperationalError, DBAPIError) as exc:
            transient = isinstance(exc, OperationalError) or exc.connection_invalidated
            if not transient or attempt == attempts:
                raise
            log.warning("transient database error (attempt %d): %s", attempt, exc.__class__.__name__)
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def insert_for(session: AsyncSession, model: Any) -> Any:
    """A dialect INSERT (SQLite or PostgreSQL) so hot paths can use ON CONFLICT DO NOTHING
    and RETURNING: one round trip instead of "SELECT, then INSERT"."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model)
