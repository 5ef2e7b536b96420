"""The connection pool keeps as many connections open as the bot runs sessions at once (storage.db):
a second wave of that many concurrent sessions reuses the first wave's connections instead of
opening new ones. With SQLAlchemy's default (5 kept) a 200 x 3 reading burst on SQLite opened a new
connection (a thread, a connect, four PRAGMAs) for more than a quarter of its checkouts."""

from __future__ import annotations

import asyncio

from sqlalchemy import event, text

from bot.telegram.processor import MAX_RUNNING, URGENT_RESERVE
from storage.db import PG_POOL, SQLITE_POOL, create_engine, is_sqlite


async def test_a_second_wave_of_concurrent_sessions_opens_no_connection(db_url: str) -> None:
    engine = create_engine(db_url)
    opened = 0

    def count(_dbapi: object, _record: object) -> None:
        nonlocal opened
        opened += 1

    event.listen(engine.sync_engine, "connect", count)
    kept = SQLITE_POOL if is_sqlite(db_url) else PG_POOL
    both_holding = asyncio.Barrier(kept)

    async def session() -> None:
        async with engine.connect() as conn:
            await both_holding.wait()  # every connection is checked out at once
            assert await conn.scalar(text("SELECT 1")) == 1

    try:
        await asyncio.gather(*(session() for _ in range(kept)))
        first_wave = opened
        both_holding = asyncio.Barrier(kept)
        await asyncio.gather(*(session() for _ in range(kept)))
    finally:
        await engine.dispose()
    assert first_wave == kept
    assert opened == first_wave  # nothing closed on return, nothing opened again
    # One per processor slot on SQLite (ordinary and urgent); on PostgreSQL at least the ordinary ones.
    assert kept >= (MAX_RUNNING + URGENT_RESERVE if is_sqlite(db_url) else MAX_RUNNING)
