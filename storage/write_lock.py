"""SQLite's one writer, queued in order, urgent work first (issue 5).

SQLite lets one connection write at a time. Without this, writers that meet wait in SQLite's busy
handler: it sleeps (1, 2, 5 ... 100 ms) and tries again, in no order, so under load an unlucky
writer loses round after round — measured (bench/alerts.py, 500 readings/s): an urgent reading's
alert row committed up to 2.3-3.9 s after the message (p99), on PostgreSQL under 0.3-0.5 s. Here the
writers of this process queue in Python instead: a connection takes `WriteLock` right before its
first writing statement (the moment SQLite's deferred transaction asks for the write lock; Python's
sqlite3 sends BEGIN only before INSERT/UPDATE/DELETE, so reads before it are not in a transaction)
and gives it back when that transaction ends (commit, rollback, close, or a dropped connection).
Waiters are served first come, first served, except that work marked urgent (`urgent_writes()`:
an urgent chat's updates, the poller's inbox commit, the outbox's claim and its alert rows) goes
ahead of all ordinary waiters.

Readers never wait for it (WAL: they read a snapshot). Only this process's writers queue here:
another process writing the same file still meets us in the busy handler, as before
(busy_timeout), and "database is locked" is still retried by `bot.services.db.with_retry`.
PostgreSQL engines do not get it.

The lock belongs to the connection, not to a task. A task that holds it (a write transaction open)
and then waits for a *second* connection that wants to write would wait for itself: SQLite's
busy handler turned that into "database is locked" after busy_timeout, and so does `timeout` here.
"""

from __future__ import annotations

import asyncio
import re
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.util import await_only

_URGENT: ContextVar[bool] = ContextVar("urgent_writes", default=False)
# Statements that start a write: anything but a plain read. A WITH .. SELECT reads; a WITH that
# ends in INSERT/UPDATE/DELETE writes. Erring towards "writes" only costs a wait in the queue.
_READ = re.compile(r"\s*(SELECT|PRAGMA|EXPLAIN)\b", re.IGNORECASE)
_WITH = re.compile(r"\s*WITH\b", re.IGNORECASE)
_DML = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_LOCKS: weakref.WeakKeyDictionary[Engine, WriteLock] = weakref.WeakKeyDictionary()


@contextmanager
def urgent_writes(urgent: bool = True) -> Iterator[None]:
    """Writes made inside this block (in this task and tasks it starts) go to the head of the
    SQLite write queue. For work on an alert's path only: an urgent lane full of ordinary work
    is an ordinary lane."""
    token = _URGENT.set(urgent)
    try:
        yield
    finally:
        _URGENT.reset(token)


def urgent_now() -> bool:
    """Are writes made here (this task, now) marked urgent (`urgent_writes`)?"""
    return _URGENT.get()


def writes(statement: str) -> bool:
    if _READ.match(statement):
        return False
    if _WITH.match(statement):
        return bool(_DML.search(statement))
    return True


class WriteLock:
    """A lock held by a database connection: FIFO, with an urgent lane served first.

    `holder` is the driver connection writing now. `acquire` returns at once if nobody holds it and
    nobody waits; otherwise it queues. `release(key)` is a no-op for a key that does not hold it, so
    every end of a transaction can call it unconditionally."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.holder: object | None = None
        self._urgent: deque[tuple[object, asyncio.Future[None]]] = deque()
        self._ordinary: deque[tuple[object, asyncio.Future[None]]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None

    @property
    def waiting(self) -> int:
        return self.queued(True) + self.queued(False)

    def queued(self, urgent: bool) -> int:
        return sum(1 for _key, future in (self._urgent if urgent else self._ordinary) if not future.done())

    def try_acquire(self, key: object) -> bool:
        """Take it if it is free and nobody waits (no await: the common case costs no loop turn)."""
        if self.holder is None and not self.waiting:
            self.holder = key
        return self.holder is key

    async def acquire(self, key: object, urgent: bool = False) -> None:
        if self.try_acquire(key):
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        future = self._loop.create_future()
        (self._urgent if urgent else self._ordinary).append((key, future))
        try:
            async with asyncio.timeout(self.timeout):
                await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(key)  # granted, then cancelled or timed out before we ran: pass it on
            else:
                future.cancel()  # stays in its queue; _grant skips it
            raise

    def release(self, key: object) -> None:
        if self.holder is not key:
            return
        if self._loop is not None and threading.get_ident() != self._thread:
            # A connection garbage-collected in another thread (SQLAlchemy terminates it there).
            self._loop.call_soon_threadsafe(self.release, key)
            return
        self.holder = None
        self._grant()

    def _grant(self) -> None:
        for queue in (self._urgent, self._ordinary):
            while queue:
                key, future = queue.popleft()
                if not future.done():
                    self.holder = key
                    future.set_result(None)
                    return


def _driver(connection: Any) -> object:
    """The aiosqlite connection behind SQLAlchemy's adapter or the pool's proxy: one identity for
    the same connection whichever wrapper an event or a dialect call gets."""
    return getattr(connection, "driver_connection", None) or connection


def install(engine: Engine, lock: WriteLock | None = None) -> WriteLock:
    """Queue `engine`'s (the AsyncEngine's sync_engine) SQLite writers on one `WriteLock`.

    Taken in `before_cursor_execute`, which SQLAlchemy's asyncio layer runs inside its greenlet,
    where `await_only` may wait on the event loop (the documented way to await from a sync hook is
    `AdaptedConnection.run_async`, which does the same). Given back when COMMIT is sent, and in any
    case after the dialect's commit, rollback, close or terminate of that connection: every way a
    transaction ends passes there, including the pool's rollback when a connection is returned and a
    connection dropped as broken."""
    lock = lock or WriteLock()
    _LOCKS[engine] = lock

    @event.listens_for(engine, "before_cursor_execute")
    def _take(conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        key = _driver(conn.connection.dbapi_connection)
        if lock.holder is not key and writes(statement) and not lock.try_acquire(key):
            try:
                await_only(lock.acquire(key, _URGENT.get()))
            except TimeoutError as exc:
                raise OperationalError(statement, parameters,
                                       Exception("database is locked (waited for this process's writer)")) from exc

    @event.listens_for(engine, "commit")
    def _pass_on(conn):  # type: ignore[no-untyped-def]
        # Right before COMMIT is sent: the next writer is woken now, and by the time the event loop
        # has run it and its first statement reaches SQLite, the COMMIT (well under a millisecond
        # in its thread) is done; if not, SQLite's busy handler covers the overlap. Releasing only
        # after the COMMIT's answer came back through the loop costs one more loop turn per write
        # transaction with the one writer idle: under load that is throughput (docs/benchmarks.md).
        lock.release(_driver(conn.connection.dbapi_connection))

    dialect = engine.dialect
    for name in ("do_commit", "do_rollback", "do_close", "do_terminate"):
        setattr(dialect, name, _releasing(getattr(dialect, name), lock))
    return lock


def lock_of(engine: Engine) -> WriteLock | None:
    """The engine's write lock (SQLite), None for PostgreSQL."""
    return _LOCKS.get(engine)


def _releasing(method: Any, lock: WriteLock) -> Any:
    def call(dbapi_connection: Any) -> None:
        try:
            method(dbapi_connection)
        finally:
            lock.release(_driver(dbapi_connection))

    return call
