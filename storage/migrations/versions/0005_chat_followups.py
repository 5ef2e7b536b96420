"""chat follow-ups: every field of the NBPHS-3 follow-up form, the "away" flag, invitation cycles

Additive only: nullable columns on followups and patient_profiles, one new table.

Revision ID: 0005_chat_followups
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_chat_followups"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FOLLOWUP_COLUMNS = (
    ("heart_rate", sa.Integer()),
    ("bmi", sa.Float()),
    ("hba1c", sa.Float()),
    ("med_adherence", sa.String(length=16)),
    ("hypo_reactions", sa.String(length=12)),
    ("referral", sa.String(length=256)),
    ("source", sa.String(length=12)),
    ("confirmed_at", sa.DateTime()),
)


def upgrade() -> None:
    with op.batch_alter_table("followups") as batch:
        for name, kind in FOLLOWUP_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table("patient_profiles") as batch:
        batch.add_column(sa.Column("away_since", sa.DateTime(), nullable=True))
    op.create_table(
        "chat_followups",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("patient_id", PK, nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("invitations", sa.Integer(), nullable=False),
        sa.Column("last_invited_at", sa.DateTime(), nullable=True),
        sa.Column("next_invite_at", sa.DateTime(), nullable=True),
        sa.Column("listed_at", sa.DateTime(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("followup_id", PK, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["followup_id"], ["followups.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "due_date", name="uq_chat_followups_patient_due"),
    )
    op.create_index("ix_chat_followups_patient_id", "chat_followups", ["patient_id"])
    op.create_index("ix_chat_followups_status_next", "chat_followups", ["status", "next_invite_at"])


def downgrade() -> None:
    op.drop_index("ix_chat_followups_status_next", table_name="chat_followups")
    op.drop_index("ix_chat_followups_patient_id", table_name="chat_followups")
    op.drop_table("chat_followups")
    with op.batch_alter_table("patient_profiles") as batch:
        batch.drop_column("away_since")
    with op.batch_alter_table("followups") as batch:
        for name, _kind in reversed(FOLLOWUP_COLUMNS):
            batch.drop_column(name)
