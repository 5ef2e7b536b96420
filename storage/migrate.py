"""Apply Alembic migrations from code: `carecircle migrate`, on start, and in tests.

The upgrade runs on a connection we hand to Alembic (its documented "connection sharing"
recipe), so it works inside an already running event loop.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


# pg_advisory_xact_lock key; bot.telegram.scaleout elects its leader with (72077, 2).
MIGRATION_LOCK = (72077, 1)


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> None:
    """Upgrade; on PostgreSQL under a transaction-scoped advisory lock, so N workers starting at
    once (`carecircle run --workers N`) or `carecircle migrate` beside running processes apply
    each migration exactly once: the others wait, then find nothing left to do."""
    cfg = alembic_config()

    def run(sync_connection) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = sync_connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"),
                               {"a": MIGRATION_LOCK[0], "b": MIGRATION_LOCK[1]})
        await conn.run_sync(run)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    cfg = alembic_config()

    def run(sync_connection) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = sync_connection
        command.downgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)
