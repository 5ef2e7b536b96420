"""PostgreSQL: a pooled connection the server closed while it sat idle is replaced at checkout, not
handed out dead (storage.db pings connections idle longer than PING_AFTER_IDLE)."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text

from storage.db import PING_AFTER_IDLE, create_engine


async def test_a_connection_killed_while_idle_is_replaced_at_checkout(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        async with engine.connect() as conn:
            first_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        admin = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first_pid)
        finally:
            await admin.close()
        await asyncio.sleep(PING_AFTER_IDLE + 0.3)
        async with engine.connect() as conn:  # the only pooled connection is the dead one
            second_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            assert await conn.scalar(text("SELECT 41 + 1")) == 42
    finally:
        await engine.dispose()
    assert second_pid != first_pid
