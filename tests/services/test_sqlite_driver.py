"""storage.sqlite_driver: the aiosqlite adapter with one thread trip per statement (issue 4) gives
the same results and errors as SQLAlchemy's own adapter (rows, rowcount, lastrowid, executemany,
constraint and syntax errors, transactions), in one trip to the connection's thread instead of four."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.db import create_engine
from storage.sqlite_driver import OneHopCursor


async def _script(engine: AsyncEngine) -> list[Any]:
    """The same statements on any engine; what each returned."""
    seen: list[Any] = []
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER)"))
        inserted = await conn.execute(text("INSERT INTO t (name, n) VALUES ('a', 1)"))
        seen.append(("lastrowid", inserted.lastrowid, inserted.rowcount))
        many = await conn.execute(text("INSERT INTO t (name, n) VALUES (:name, :n)"),
                                  [{"name": f"m{i}", "n": i} for i in range(5)])
        seen.append(("many", many.rowcount))
        updated = await conn.execute(text("UPDATE t SET n = n + 10 WHERE n < 3"))
        seen.append(("updated", updated.rowcount))
        returned = await conn.execute(text("INSERT INTO t (name, n) VALUES ('r', 7) RETURNING id, n"))
        seen.append(("returning", [tuple(r) for r in returned]))
        rows = await conn.execute(text("SELECT name, n FROM t ORDER BY id"))
        seen.append(("rows", list(rows.keys()), [tuple(r) for r in rows]))
        empty = await conn.execute(text("SELECT name FROM t WHERE n > 1000"))
        seen.append(("empty", empty.all()))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (name, n) VALUES ('b', 2)"))
            await conn.execute(text("INSERT INTO t (name, n) VALUES ('a', 3)"))  # duplicate: rolls back both
    with pytest.raises(OperationalError):
        async with engine.connect() as conn:
            await conn.execute(text("SELEKT 1"))
    async with engine.connect() as conn:
        seen.append(("after errors", (await conn.execute(text("SELECT count(*) FROM t"))).scalar()))
    return seen


@pytest.fixture
async def engines(tmp_path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:  # type: ignore[no-untyped-def]
    ours = create_engine(f"sqlite+aiosqlite:///{tmp_path}/ours.sqlite3")
    stock = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/stock.sqlite3")
    yield ours, stock
    await ours.dispose()
    await stock.dispose()


async def test_same_results_and_errors_as_the_stock_adapter(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    ours, stock = engines
    async with ours.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection.cursor(), OneHopCursor)  # the app's engine uses it
    got, expected = await _script(ours), await _script(stock)
    assert got == expected
    assert ("after errors", 7) in got  # the failed transaction left nothing behind


async def test_one_trip_to_the_sqlite_thread_per_statement(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    async def trips(engine: AsyncEngine) -> int:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            aio = raw.driver_connection  # the aiosqlite.Connection: each _execute is one thread trip
            calls = 0
            original = aio._execute

            async def counting(fn: Any, *args: Any, **kwargs: Any) -> Any:
                nonlocal calls
                calls += 1
                return await original(fn, *args, **kwargs)

            aio._execute = counting
            try:
                for _ in range(10):
                    await conn.execute(text("SELECT 1"))
            finally:
                aio._execute = original
            return calls

    ours, stock = engines
    assert await trips(ours) == 10
    assert await trips(stock) == 40  # cursor, execute, fetchall, close
