"""update_inbox.chat_key: route each stored update to the worker that owns its chat

Additive (a nullable column and an index), so it is safe while older processes still serve:
they keep writing rows without a chat_key, which worker 0 picks up.

Revision ID: 0005_scale
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_scale"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("update_inbox") as batch:
        batch.add_column(sa.Column("chat_key", sa.BigInteger(), nullable=True))
        batch.create_index("ix_update_inbox_chat_key", ["chat_key"])


def downgrade() -> None:
    with op.batch_alter_table("update_inbox") as batch:
        batch.drop_index("ix_update_inbox_chat_key")
        batch.drop_column("chat_key")
