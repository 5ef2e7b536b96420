"""A PostgreSQL deadlock rolls one transaction back; `with_retry` runs it again instead of failing.

Why it matters: the sender-revision triggers (migration 0008_sender_revision) make a write of
patient_profiles also write users, so onboarding (users, then patient_profiles) and a doctor's target
change (patient_profiles, then users by the trigger) take the same two row locks in opposite orders."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.services.db import is_transient, with_retry
from storage.db import create_engine


async def test_a_deadlock_victim_is_run_again(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE pair (id int PRIMARY KEY, n int NOT NULL)"))
            await conn.execute(text("INSERT INTO pair VALUES (1, 0), (2, 0)"))
        both_hold_one = asyncio.Barrier(2)
        attempts = {"a": 0, "b": 0}
        errors: list[DBAPIError] = []

        async def writer(name: str, first: int, second: int) -> None:
            attempts[name] += 1
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE pair SET n = n + 1 WHERE id = :id"), {"id": first})
                if attempts[name] == 1:
                    await both_hold_one.wait()  # each holds one row lock and wants the other's
                try:
                    await conn.execute(text("UPDATE pair SET n = n + 1 WHERE id = :id"), {"id": second})
                except DBAPIError as exc:
                    errors.append(exc)
                    raise

        await asyncio.wait_for(asyncio.gather(with_retry(lambda: writer("a", 1, 2)),
                                              with_retry(lambda: writer("b", 2, 1))), 30)
        async with engine.connect() as conn:
            counts = dict((await conn.execute(text("SELECT id, n FROM pair"))).all())
    finally:
        await engine.dispose()
    assert len(errors) == 1 and is_transient(errors[0])  # PostgreSQL chose one victim (SQLSTATE 40P01)
    assert sorted(attempts.values()) == [1, 2]  # ... which ran once more
    assert counts == {1: 2, 2: 2}  # and both transactions' writes are there, once each
