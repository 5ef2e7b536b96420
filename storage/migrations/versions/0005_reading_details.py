"""reading details: when a reading was corrected (/edit)

Arm and posture already have columns (0001); a correction keeps the row and stamps
`edited_at`, so history and export can show that the value was changed after it was sent.

Revision ID: 0005_reading_details
Revises: 0004
Create Date: 2026-11-23 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_reading_details"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("readings") as batch:
        batch.add_column(sa.Column("edited_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("readings") as batch:
        batch.drop_column("edited_at")
