"""panel_latest: each patient's latest bp/glucose reading, kept by triggers (issue 8)

The doctor's panel ranks 2 000 patients by "open alert? overdue? last reading out of target? silent?".
The latest reading's time and in-target flag were two correlated backward seeks of the 10-million-row
readings index per patient; this table holds them, one small row per patient, read by primary key.

Why triggers and not application code: the row must be right whoever writes the readings: the reading
hot path (kept at 8 statements per typed reading, see tests/services/test_hot_path.py), corrections,
/undo, a user's erasure (ON DELETE CASCADE), plain SQL and any path added later. A trigger runs inside
the writing statement, in the same transaction, with no extra round trip.

* INSERT (bp/glucose): upsert, replacing the kept reading only by a newer one ((measured_at, id)
  greater), so concurrent inserts need no lock of their own;
* DELETE / UPDATE of patient_id, kind, measured_at, in_target: lock the patient's row first, then
  recompute it with one backward index seek (a fresh statement, so on PostgreSQL it sees what the
  transactions it waited for committed). A DELETE only updates (never inserts) so a cascade from a
  deleted user cannot re-create the row.

Open alerts are NOT kept here, on purpose: the alert's own transaction (a doctor's "seen" button) locks
the alert and then would lock this row, while a patient's repeat reading locks this row (its insert)
and then the alert (the fold): two writers taking the same two locks in opposite orders deadlock on
PostgreSQL. The panel counts open alerts with an index-only seek instead.

Additive: a new table, triggers and (PostgreSQL) functions; old code keeps running and the triggers
keep the table right for it too. The backfill runs after the triggers are created, in the same
transaction (PostgreSQL's CREATE TRIGGER keeps writers of readings out until it commits: ~17 s at
10 million readings).

Revision ID: 0007_panel_latest
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_panel_latest"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "('bp', 'glucose')"  # the kinds the panel ranks by (bot/services/panel.py)

# The latest bp/glucose reading of patient `{p}`: (id, measured_at, kind, in_target).
LATEST = (f"SELECT id, measured_at, kind, in_target FROM readings WHERE patient_id = {{p}} AND kind IN {KINDS} "
          "ORDER BY measured_at DESC, id DESC LIMIT 1")

UPSERT_NEWER = """
INSERT INTO panel_latest (patient_id, reading_id, measured_at, kind, in_target)
VALUES (NEW.patient_id, NEW.id, NEW.measured_at, NEW.kind, NEW.in_target)
ON CONFLICT (patient_id) DO UPDATE SET reading_id = excluded.reading_id, measured_at = excluded.measured_at,
    kind = excluded.kind, in_target = excluded.in_target
WHERE panel_latest.reading_id IS NULL OR excluded.measured_at > panel_latest.measured_at
    OR (excluded.measured_at = panel_latest.measured_at AND excluded.reading_id > panel_latest.reading_id)
"""


def _recompute(p: str) -> str:
    return (f"UPDATE panel_latest SET (reading_id, measured_at, kind, in_target) = ({LATEST.format(p=p)}) "
            f"WHERE patient_id = {p}")


SQLITE = [
    f"""CREATE TRIGGER panel_latest_reading_insert AFTER INSERT ON readings WHEN NEW.kind IN {KINDS}
    BEGIN {UPSERT_NEWER}; END""",
    # SQLite runs one writer at a time: no lock needed before recomputing.
    f"""CREATE TRIGGER panel_latest_reading_delete AFTER DELETE ON readings WHEN OLD.kind IN {KINDS}
    BEGIN {_recompute('OLD.patient_id')} AND reading_id = OLD.id; END""",
    f"""CREATE TRIGGER panel_latest_reading_update AFTER UPDATE OF patient_id, kind, measured_at, in_target
    ON readings WHEN OLD.kind IN {KINDS} OR NEW.kind IN {KINDS}
    BEGIN
        INSERT INTO panel_latest (patient_id) SELECT NEW.patient_id WHERE NEW.kind IN {KINDS}
            ON CONFLICT (patient_id) DO NOTHING;
        {_recompute('NEW.patient_id')};
        {_recompute('OLD.patient_id')} AND OLD.patient_id <> NEW.patient_id;
    END""",
]

POSTGRES = [
    # Lock the row, then recompute in a new statement: under READ COMMITTED that statement sees what
    # the transactions we waited for committed (a reading inserted or deleted meanwhile).
    f"""CREATE FUNCTION panel_latest_refresh(p bigint, only_if_reading bigint) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE kept bigint;
    BEGIN
        SELECT reading_id INTO kept FROM panel_latest WHERE patient_id = p FOR UPDATE;
        IF NOT FOUND OR (only_if_reading IS NOT NULL AND kept IS DISTINCT FROM only_if_reading) THEN
            RETURN;
        END IF;
        {_recompute('p')};
    END $$""",
    f"""CREATE FUNCTION panel_latest_on_reading() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            IF NEW.kind IN {KINDS} THEN {UPSERT_NEWER}; END IF;
        ELSIF TG_OP = 'DELETE' THEN
            IF OLD.kind IN {KINDS} THEN PERFORM panel_latest_refresh(OLD.patient_id, OLD.id); END IF;
        ELSIF OLD.kind IN {KINDS} OR NEW.kind IN {KINDS} THEN
            IF NEW.kind IN {KINDS} THEN
                INSERT INTO panel_latest (patient_id) VALUES (NEW.patient_id)
                ON CONFLICT (patient_id) DO NOTHING;
            END IF;
            PERFORM panel_latest_refresh(NEW.patient_id, NULL);
            IF OLD.patient_id <> NEW.patient_id THEN PERFORM panel_latest_refresh(OLD.patient_id, NULL); END IF;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER panel_latest_reading AFTER INSERT OR DELETE OR UPDATE OF patient_id, kind, measured_at,
    in_target ON readings FOR EACH ROW EXECUTE FUNCTION panel_latest_on_reading()""",
]

# Every user with a bp/glucose reading: the latest one's id by one backward index seek each, then
# its values by primary key (two plain statements that plan the same on both databases; a join on a
# correlated subquery may not).
BACKFILL = [
    f"""INSERT INTO panel_latest (patient_id, reading_id)
    SELECT u.id, ({LATEST.replace('SELECT id, measured_at, kind, in_target', 'SELECT id').format(p='u.id')})
    FROM users u
    WHERE EXISTS (SELECT 1 FROM readings r WHERE r.patient_id = u.id AND r.kind IN {KINDS})""",
    """UPDATE panel_latest SET (measured_at, kind, in_target) =
        (SELECT r.measured_at, r.kind, r.in_target FROM readings r WHERE r.id = panel_latest.reading_id)""",
]


def upgrade() -> None:
    op.create_table(
        "panel_latest",
        sa.Column("patient_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("reading_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("measured_at", sa.DateTime(), nullable=True),
        sa.Column("kind", sa.String(8), nullable=True),
        sa.Column("in_target", sa.Boolean(), nullable=True),
    )
    statements = POSTGRES if op.get_bind().dialect.name == "postgresql" else SQLITE
    for statement in statements:
        op.execute(statement)
    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS panel_latest_reading ON readings")
        op.execute("DROP FUNCTION IF EXISTS panel_latest_on_reading()")
        op.execute("DROP FUNCTION IF EXISTS panel_latest_refresh(bigint, bigint)")
    else:
        for name in ("reading_insert", "reading_delete", "reading_update"):
            op.execute(f"DROP TRIGGER IF EXISTS panel_latest_{name}")
    op.drop_table("panel_latest")
