"""SQLAlchemy's aiosqlite adapter with one thread hop per statement instead of four (issue 4).

aiosqlite runs every sqlite3 call on the connection's own thread, and SQLAlchemy's adapter makes
four such calls per statement (cursor, execute, fetchall, close), each a round trip between the
event loop and that thread: a queue put, a thread wake-up, a `call_soon_threadsafe` back and a
loop wake-up. Here the four sqlite3 calls run as ONE function on that thread, in the same order
and with the same results (description, rows, lastrowid, rowcount), so SQL, transactions and
errors are unchanged; only the number of trips differs. Commit and rollback were one trip each
and stay so.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from threading import Thread
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_only


def _execute(conn: sqlite3.Connection, operation: Any, parameters: Any) -> tuple[Any, list[Any] | None, Any, int]:
    """On the connection's thread: what the adapter did in four trips."""
    cursor = conn.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


def _executemany(conn: sqlite3.Connection, operation: Any, seq_of_parameters: Any) -> tuple[Any, int]:
    cursor = conn.cursor()
    try:
        cursor.executemany(operation, seq_of_parameters)
        return cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            connection = self._connection
            description, rows, lastrowid, rowcount = self.await_(
                connection._execute(_execute, connection._conn, operation, parameters))
            if description:
                self.description = description
                self.lastrowid = self.rowcount = -1
                self._rows = deque(rows or ())
            else:
                self.description = None
                self.lastrowid = lastrowid
                self.rowcount = rowcount
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            connection = self._connection
            self.description = None
            self.lastrowid, self.rowcount = self.await_(
                connection._execute(_executemany, connection._conn, operation, seq_of_parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:  # streaming results: the adapter's own cursor (a trip per fetch, as before)
            return super().cursor(server_side=True)
        return OneHopCursor(self)


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """Pass as `create_async_engine(..., module=ONE_HOP)` for a sqlite+aiosqlite URL."""

    def connect(self, *arg: Any, **kw: Any) -> Any:
        if kw.get("async_fallback") or kw.get("async_creator_fn"):
            return super().connect(*arg, **kw)  # not how we connect: the adapter's own path
        kw.pop("async_fallback", None)
        kw.pop("async_creator_fn", None)
        connection = self.aiosqlite.connect(*arg, **kw)
        # As the adapter does: a daemon thread (before aiosqlite 0.22 the connection was the thread).
        (connection if isinstance(connection, Thread) else connection._thread).daemon = True
        return OneHopConnection(self, await_only(connection))


ONE_HOP = OneHopDBAPI(aiosqlite, sqlite3)
