"""Migrations from empty, on SQLite and PostgreSQL, and back down."""

from sqlalchemy import inspect, text

from storage.db import create_engine
from storage.migrate import downgrade, upgrade
from storage.models import Base


async def _tables(engine) -> set[str]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_upgrade_from_empty_creates_every_model_table(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        tables = await _tables(engine)
        assert set(Base.metadata.tables) <= tables
        assert "alembic_version" in tables
        await upgrade(engine)  # a second run is a no-op
        await downgrade(engine)
        assert await _tables(engine) <= {"alembic_version"}
    finally:
        await engine.dispose()


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()


def test_migrations_have_one_head() -> None:
    """Parallel feature branches must be joined by a merge revision before they land, so every
    deployment (and `carecircle migrate` run while old processes serve) reaches the same schema."""
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config

    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


async def test_readings_index_built_beforehand_by_hand_does_not_break_the_migration(db_url: str) -> None:
    """README: a big deployment creates ix_readings_patient_kind_time CONCURRENTLY before migrating."""
    engine = create_engine(db_url)
    try:
        await upgrade(engine, "0004")
        async with engine.begin() as conn:
            await conn.execute(text("CREATE INDEX ix_readings_patient_kind_time "
                                    "ON readings (patient_id, kind, measured_at, id)"))
        await upgrade(engine)
        async with engine.connect() as conn:
            indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("readings"))
        assert "ix_readings_patient_kind_time" in {i["name"] for i in indexes}
    finally:
        await engine.dispose()
