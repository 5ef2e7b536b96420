"""reminders, reminder settings, education prescriptions and lesson deliveries

Revision ID: 0003_reminders
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_reminders"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reminders",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("user_id", PK, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("medicine_id", PK, nullable=True),
        sa.Column("times", sa.String(length=64), nullable=False),
        sa.Column("weekdays", sa.String(length=7), nullable=False),
        sa.Column("tz", sa.String(length=64), nullable=False),
        sa.Column("next_due_at", sa.DateTime(), nullable=False),
        sa.Column("one_off", sa.Boolean(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["medicine_id"], ["medicines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reminders_next_due_at", "reminders", ["next_due_at"])
    op.create_index("ix_reminders_user_id", "reminders", ["user_id"])
    op.create_table(
        "reminder_prefs",
        sa.Column("user_id", PK, nullable=False),
        sa.Column("quiet_start", sa.String(length=5), nullable=False),
        sa.Column("quiet_end", sa.String(length=5), nullable=False),
        sa.Column("tip_seen", sa.JSON(), nullable=False),
        sa.Column("rhythm_days", sa.Integer(), nullable=False),
        sa.Column("nudge_level", sa.Integer(), nullable=False),
        sa.Column("last_nudge_at", sa.DateTime(), nullable=True),
        sa.Column("silent_since", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "prescriptions",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("patient_id", PK, nullable=False),
        sa.Column("doctor_id", PK, nullable=True),
        sa.Column("set_id", sa.String(length=64), nullable=False),
        sa.Column("every_days", sa.Integer(), nullable=False),
        sa.Column("at_time", sa.String(length=5), nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["doctor_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_prescriptions_patient_id", "prescriptions", ["patient_id"])
    op.create_table(
        "lesson_deliveries",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("prescription_id", PK, nullable=False),
        sa.Column("patient_id", PK, nullable=False),
        sa.Column("lesson_id", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["prescription_id"], ["prescriptions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["patient_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prescription_id", "lesson_id", name="uq_lesson_delivery"),
    )
    op.create_index("ix_lesson_deliveries_prescription_id", "lesson_deliveries", ["prescription_id"])
    op.create_index("ix_lesson_deliveries_patient_id", "lesson_deliveries", ["patient_id"])


def downgrade() -> None:
    op.drop_table("lesson_deliveries")
    op.drop_table("prescriptions")
    op.drop_table("reminder_prefs")
    op.drop_index("ix_reminders_user_id", table_name="reminders")
    op.drop_index("ix_reminders_next_due_at", table_name="reminders")
    op.drop_table("reminders")
