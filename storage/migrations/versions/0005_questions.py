"""questions to the care team and "trouble with my care" flags

Additive: two new tables.

Revision ID: 0005_questions
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_questions"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "questions",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("patient_id", PK, nullable=False),
        sa.Column("asker_id", PK, nullable=True),
        sa.Column("asker_role", sa.String(length=16), nullable=False),
        sa.Column("team_id", PK, nullable=True),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("signs", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("answered_by", PK, nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("answer", sa.String(length=3500), nullable=True),
        sa.Column("source_update_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["asker_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["answered_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_update_id", name="uq_questions_source"),
    )
    op.create_index("ix_questions_patient_created", "questions", ["patient_id", "created_at"], unique=False)
    op.create_index("ix_questions_team_answered", "questions", ["team_id", "answered_at"], unique=False)
    op.create_table(
        "care_troubles",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("patient_id", PK, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("raised_by", PK, nullable=True),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["raised_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_care_troubles_patient_cleared", "care_troubles", ["patient_id", "cleared_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_care_troubles_patient_cleared", table_name="care_troubles")
    op.drop_table("care_troubles")
    op.drop_index("ix_questions_team_answered", table_name="questions")
    op.drop_index("ix_questions_patient_created", table_name="questions")
    op.drop_table("questions")
