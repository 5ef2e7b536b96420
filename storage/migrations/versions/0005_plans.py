"""care_plans: personal care plan versions (一人一策)

Additive: one new table.

Revision ID: 0005_plans
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_plans"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "care_plans",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("patient_id", PK, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("author_id", PK, nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("rhythm_switch_at", sa.DateTime(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "version", name="uq_care_plans_version"),
    )
    op.create_index("ix_care_plans_patient", "care_plans", ["patient_id", "version"])
    op.create_index("ix_care_plans_rhythm_switch_at", "care_plans", ["rhythm_switch_at"])


def downgrade() -> None:
    op.drop_index("ix_care_plans_rhythm_switch_at", table_name="care_plans")
    op.drop_index("ix_care_plans_patient", table_name="care_plans")
    op.drop_table("care_plans")
