"""sender_revision: users.revision, changed by triggers whenever what UserService.sender reads changes (issue 4)

`UserService.sender` reads, per update, the user, their roles, their patient profile, "may log for
someone" (caregiver_links) and "in circle mode" (circle_members). A per-process cache of that answer
is only safe if every writer, in every process (the bot, its scale-out workers, the web dashboard,
plain SQL, a cascade from an erased user), tells it something changed. Triggers do, inside the
writing statement and its transaction: any INSERT/UPDATE/DELETE of users, patient_profiles,
user_roles, caregiver_links (both people: the caregiver's "logs for others" flag depends on it) or
circle_members sets the user's `revision` to a new value. The reading path checks, in the statement
that stores the reading, that `revision` is still the one its cached sender was read at
(bot/services/readings.py, `_INSERT_IF_CURRENT`).

The new value comes from ONE counter for the whole database (a sequence on PostgreSQL, a one-row
table on SQLite; SQLite single-writes anyway), not `revision + 1`: SQLite reuses the highest user id
after a delete, and a re-created user counting up from 0 could reach the cached user's old revision
(A-B-A) and pass the check with the erased user's profile. A counter value is never handed out twice.

Additive: a column with a constant default (no table rewrite on PostgreSQL >= 11) and triggers; old
code keeps running and never reads the column.

Revision ID: 0008_sender_revision
Revises: 0007_panel_latest
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_sender_revision"
down_revision: str | None = "0007_panel_latest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Table -> the column(s) naming the user(s) whose sender answer a change of the row can change.
CHILDREN = {
    "patient_profiles": ("user_id",),
    "user_roles": ("user_id",),
    "caregiver_links": ("patient_id", "caregiver_id"),
    "circle_members": ("user_id",),
}

# SQLite: the counter is the single row of `sender_revision`.
_NEXT = "UPDATE sender_revision SET n = n + 1"
_BUMP = "UPDATE users SET revision = (SELECT n FROM sender_revision) WHERE id IN ({ids})"


def _sqlite() -> list[str]:
    statements = [
        "CREATE TABLE sender_revision (n BIGINT NOT NULL)",
        "INSERT INTO sender_revision (n) VALUES (0)",
        # The WHEN guard: the trigger's own UPDATE (and a child table's) sets a new revision and so does
        # not fire it again, even with PRAGMA recursive_triggers on.
        f"""CREATE TRIGGER sender_revision_users_insert AFTER INSERT ON users
        BEGIN {_NEXT}; {_BUMP.format(ids='NEW.id')}; END""",
        f"""CREATE TRIGGER sender_revision_users_update AFTER UPDATE ON users WHEN NEW.revision = OLD.revision
        BEGIN {_NEXT}; {_BUMP.format(ids='NEW.id')}; END""",
    ]
    for table, columns in CHILDREN.items():
        new = ", ".join(f"NEW.{c}" for c in columns)
        old = ", ".join(f"OLD.{c}" for c in columns)
        statements += [
            f"""CREATE TRIGGER sender_revision_{table}_insert AFTER INSERT ON {table}
            BEGIN {_NEXT}; {_BUMP.format(ids=new)}; END""",
            f"""CREATE TRIGGER sender_revision_{table}_update AFTER UPDATE ON {table}
            BEGIN {_NEXT}; {_BUMP.format(ids=new + ', ' + old)}; END""",
            f"""CREATE TRIGGER sender_revision_{table}_delete AFTER DELETE ON {table}
            BEGIN {_NEXT}; {_BUMP.format(ids=old)}; END""",
        ]
    return statements


POSTGRES = [
    "CREATE SEQUENCE sender_revision",
    # users itself: BEFORE, so the row is written once with its new revision; the guard leaves alone an
    # UPDATE that sets revision (a child table's trigger below).
    """CREATE FUNCTION sender_revision_user() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' OR NEW.revision = OLD.revision THEN
            NEW.revision := nextval('sender_revision');
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER sender_revision_user BEFORE INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION sender_revision_user()""",
    # A child table: the trigger's arguments name the user id columns of the row (old and new).
    """CREATE FUNCTION sender_revision_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        col text;
        ids bigint[] := '{}';
    BEGIN
        FOREACH col IN ARRAY TG_ARGV LOOP
            IF TG_OP <> 'DELETE' THEN ids := ids || (to_jsonb(NEW) ->> col)::bigint; END IF;
            IF TG_OP <> 'INSERT' THEN ids := ids || (to_jsonb(OLD) ->> col)::bigint; END IF;
        END LOOP;
        UPDATE users SET revision = nextval('sender_revision') WHERE id = ANY (ids);
        RETURN NULL;
    END $$""",
    *(f"""CREATE TRIGGER sender_revision_bump AFTER INSERT OR UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION sender_revision_bump({', '.join(repr(c) for c in columns)})"""
      for table, columns in CHILDREN.items()),
]


def upgrade() -> None:
    op.add_column("users", sa.Column("revision", sa.BigInteger(), nullable=False, server_default="0"))
    statements = POSTGRES if op.get_bind().dialect.name == "postgresql" else _sqlite()
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in CHILDREN:
            op.execute(f"DROP TRIGGER IF EXISTS sender_revision_bump ON {table}")
        op.execute("DROP TRIGGER IF EXISTS sender_revision_user ON users")
        op.execute("DROP FUNCTION IF EXISTS sender_revision_bump()")
        op.execute("DROP FUNCTION IF EXISTS sender_revision_user()")
        op.execute("DROP SEQUENCE IF EXISTS sender_revision")
    else:
        for table in ("users", *CHILDREN):
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS sender_revision_{table}_{event}")
        op.execute("DROP TABLE IF EXISTS sender_revision")
    # Not batch mode: on SQLite that copies users and drops the old table, and with foreign keys on the
    # drop would cascade into every table of patient data. SQLite >= 3.35 drops a column in place.
    op.execute("ALTER TABLE users DROP COLUMN revision")
