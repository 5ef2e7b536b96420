"""tip views (rotation and feedback) and quiz results

Revision ID: 0003_tips
Revises: 0002
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_tips"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tip_views",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("user_id", PK, nullable=False),
        sa.Column("tip_id", sa.String(length=64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("shown_at", sa.DateTime(), nullable=False),
        sa.Column("feedback", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tip_views_user_round", "tip_views", ["user_id", "round"], unique=False)
    op.create_table(
        "quiz_results",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("user_id", PK, nullable=False),
        sa.Column("quiz_id", sa.String(length=64), nullable=False),
        sa.Column("correct", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quiz_results_user_quiz", "quiz_results", ["user_id", "quiz_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_quiz_results_user_quiz", table_name="quiz_results")
    op.drop_table("quiz_results")
    op.drop_index("ix_tip_views_user_round", table_name="tip_views")
    op.drop_table("tip_views")
