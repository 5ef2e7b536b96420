"""SQLite's write queue (storage/write_lock.py): writers of this process take turns in arrival order,
urgent ones first, and a transaction's end (commit, rollback, an error, a cancelled task, a dropped
connection) always passes the turn on. Readers never wait. Real SQLite files through the app's
engine; the order tests also drive `WriteLock` directly."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Team
from storage.write_lock import WriteLock, lock_of, urgent_writes, writes
from tests.e2e.helpers import until_true


async def _waiters(lock: WriteLock, order: list[str], *names: tuple[str, bool]) -> list[asyncio.Task[None]]:
    async def take(name: str, urgent: bool) -> None:
        await lock.acquire(name, urgent)
        order.append(name)

    tasks = []
    for name, urgent in names:
        tasks.append(asyncio.create_task(take(name, urgent)))
        await asyncio.sleep(0)  # queued in this order
    return tasks


async def test_fifo_with_the_urgent_lane_first() -> None:
    lock = WriteLock()
    assert lock.try_acquire("first")
    order: list[str] = []
    tasks = await _waiters(lock, order, ("a", False), ("b", False), ("u1", True), ("c", False), ("u2", True))
    assert lock.waiting == 5
    holder = "first"
    while len(order) < 5:
        lock.release("not the holder")  # a no-op: only the holder passes the turn on
        lock.release(holder)
        await asyncio.sleep(0)
        holder = order[-1]
    assert order == ["u1", "u2", "a", "b", "c"]
    await asyncio.gather(*tasks)
    lock.release(holder)
    assert lock.holder is None and lock.try_acquire("next")


async def test_a_cancelled_or_timed_out_waiter_never_keeps_the_turn() -> None:
    lock = WriteLock(timeout=0.05)
    assert lock.try_acquire("holder")
    order: list[str] = []
    a, b, c = await _waiters(lock, order, ("a", False), ("b", False), ("c", False))
    a.cancel()  # still queued: skipped
    lock.release("holder")  # grants b ...
    b.cancel()  # ... which is cancelled before it runs: the turn goes on to c
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert order == ["c"] and lock.holder == "c"
    with pytest.raises(TimeoutError):  # nobody releases c: a waiter gives up after `timeout`
        await lock.acquire("d")
    lock.release("c")
    assert lock.holder is None and lock.waiting == 0
    for task in (a, b, c):
        assert task.done()


def test_what_counts_as_a_write() -> None:
    assert writes("INSERT INTO readings VALUES (1)") and writes("  update outbox SET x = 1")
    assert writes("DELETE FROM update_inbox") and writes("CREATE TABLE t (x)") and writes("SAVEPOINT sa_1")
    assert writes("WITH due AS (SELECT 1) INSERT INTO outbox SELECT * FROM due")
    assert not writes("SELECT * FROM update_log") and not writes("\nselect 1")
    assert not writes("WITH latest AS (SELECT 1) SELECT * FROM latest JOIN update_log USING (x)")
    assert not writes("PRAGMA table_info(readings)")


@pytest.fixture
async def db(sqlite_url: str):  # type: ignore[no-untyped-def]
    engine = create_engine(sqlite_url)
    await upgrade(engine)
    lock = lock_of(engine.sync_engine)
    assert lock is not None, "create_engine installed no write lock"
    lock.timeout = 5.0  # a bug here hangs for seconds, not for the default 30 s
    yield engine, session_factory(engine), lock
    await engine.dispose()


async def _team(sessions, name: str, done: list[str]) -> None:  # type: ignore[no-untyped-def]
    async with sessions.begin() as session:
        session.add(Team(name=name))
    done.append(name)


async def test_writers_take_turns_in_order_urgent_first(db) -> None:  # type: ignore[no-untyped-def]
    _engine, sessions, lock = db
    done: list[str] = []
    async with sessions.begin() as first:
        first.add(Team(name="first"))
        await first.flush()  # the INSERT: this connection writes now
        assert lock.holder is not None
        tasks = []
        for name, urgent in (("a", False), ("b", False), ("alert", True), ("c", False)):
            with urgent_writes(urgent):  # a task keeps the context it was started in
                tasks.append(asyncio.create_task(_team(sessions, name, done)))
            queued = len(tasks)
            await until_true(lambda: lock.waiting == queued)  # noqa: B023 - awaited right here  # queued here, not in SQLite's busy handler
        async with sessions() as reader:  # a reader does not wait for the writer
            assert await asyncio.wait_for(reader.scalar(select(func.count()).select_from(Team)), 2) == 0
        assert lock.waiting == 4 and done == []
    await asyncio.gather(*tasks)
    # The order of the INSERTs (ids) is the order of the turns. `done` is not: the turn passes on when
    # COMMIT is sent, so a later writer may finish before an earlier one's COMMIT has come back.
    async with sessions() as reader:
        names = list(await reader.scalars(select(Team.name).order_by(Team.id)))
    assert names == ["first", "alert", "a", "b", "c"] and sorted(done) == ["a", "alert", "b", "c"]
    assert lock.holder is None and lock.waiting == 0


async def test_every_end_of_a_transaction_passes_the_turn_on(db) -> None:  # type: ignore[no-untyped-def]
    engine, sessions, lock = db

    with pytest.raises(RuntimeError):  # an error in the transaction: rolled back
        async with sessions.begin() as session:
            session.add(Team(name="error"))
            await session.flush()
            assert lock.holder is not None
            raise RuntimeError("boom")
    assert lock.holder is None

    async with sessions() as session:  # an explicit rollback
        session.add(Team(name="rolled back"))
        await session.flush()
        assert lock.holder is not None
        await session.rollback()
        assert lock.holder is None

    held = asyncio.Event()

    async def stuck() -> None:
        async with sessions.begin() as session:
            session.add(Team(name="cancelled"))
            await session.flush()
            held.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stuck())  # a task cancelled mid-transaction
    await held.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lock.holder is None

    async with engine.connect() as conn:  # a connection dropped as broken mid-transaction
        await conn.execute(text("UPDATE teams SET name = 'invalidated'"))
        assert lock.holder is not None
        await conn.invalidate()
    assert lock.holder is None

    done: list[str] = []
    await asyncio.wait_for(_team(sessions, "after", done), 2)
    async with sessions() as session:
        assert list(await session.scalars(select(Team.name))) == ["after"]


async def test_waiting_for_ones_own_writer_fails_instead_of_hanging(db) -> None:  # type: ignore[no-untyped-def]
    """A second session that writes while the first still holds the turn (same task) cannot go on:
    as with SQLite's busy timeout, it fails after `timeout` (the first one can still commit)."""
    _engine, sessions, lock = db
    lock.timeout = 0.2
    async with sessions.begin() as first:
        first.add(Team(name="first"))
        await first.flush()
        with pytest.raises(OperationalError, match="database is locked"):
            async with sessions.begin() as second:
                second.add(Team(name="second"))
                await second.flush()
    assert lock.holder is None
    async with sessions() as session:
        assert list(await session.scalars(select(Team.name))) == ["first"]


def test_postgresql_has_no_write_lock() -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert lock_of(engine.sync_engine) is None
