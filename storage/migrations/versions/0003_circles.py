"""peer-support circles: members, relayed messages, deliveries, sessions, polls, challenges

Revision ID: 0003_circles
Revises: 0002
Create Date: 2026-11-23 11:20:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003_circles"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _user(name: str, nullable: bool = False, ondelete: str = "CASCADE") -> list[Any]:
    return [sa.Column(name, PK, nullable=nullable),
            sa.ForeignKeyConstraint([name], ["users.id"], ondelete=ondelete)]


def upgrade() -> None:
    op.create_table(
        "circles",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("team_id", PK, nullable=True),
        *_user("created_by", True, "SET NULL"),
        *_user("leader_id", True, "SET NULL"),
        *_user("adviser_id", True, "SET NULL"),
        sa.Column("max_members", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("session_weekday", sa.Integer(), nullable=True),
        sa.Column("session_time", sa.String(5), nullable=True),
        sa.Column("session_minutes", sa.Integer(), nullable=False),
        sa.Column("group_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_circles_team_id", "circles", ["team_id"])
    op.create_table(
        "circle_members",
        sa.Column("circle_id", PK, nullable=False),
        *_user("user_id"),
        sa.Column("alias", sa.String(32), nullable=False),
        sa.Column("role", sa.String(12), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("talking", sa.Boolean(), nullable=False),
        sa.Column("muted_until", sa.DateTime(), nullable=True),
        sa.Column("agreed_at", sa.DateTime(), nullable=True),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("circle_id", "user_id"),
        sa.UniqueConstraint("circle_id", "alias", name="uq_circle_alias"),
    )
    op.create_index("ix_circle_members_user_id", "circle_members", ["user_id"])
    op.create_table(
        "circle_messages",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("circle_id", PK, nullable=False),
        *_user("sender_id", True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("text", sa.String(4096), nullable=False),
        sa.Column("reply_to_id", PK, nullable=True),
        sa.Column("source_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("source_message_id", sa.BigInteger(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reply_to_id"], ["circle_messages.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_circle_messages_circle_time", "circle_messages", ["circle_id", "created_at"])
    op.create_table(
        "circle_deliveries",
        sa.Column("message_id", PK, nullable=False),
        *_user("recipient_id"),
        sa.Column("outbox_id", PK, nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["circle_messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("message_id", "recipient_id"),
    )
    op.create_index("ix_circle_deliveries_outbox", "circle_deliveries", ["outbox_id"])
    op.create_table(
        "circle_reports",
        sa.Column("message_id", PK, nullable=False),
        *_user("reporter_id"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["circle_messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id", "reporter_id"),
    )
    op.create_table(
        "circle_sessions",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("circle_id", PK, nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("reminded", sa.String(16), nullable=False),
        sa.Column("lesson_id", sa.String(64), nullable=False),
        sa.Column("topic_index", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("circle_id", "starts_at", name="uq_circle_session_start"),
    )
    op.create_index("ix_circle_sessions_circle_id", "circle_sessions", ["circle_id"])
    op.create_table(
        "circle_attendance",
        sa.Column("session_id", PK, nullable=False),
        *_user("user_id"),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["circle_sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", "user_id"),
    )
    op.create_table(
        "circle_polls",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("circle_id", PK, nullable=False),
        sa.Column("question", sa.String(256), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_circle_polls_circle_id", "circle_polls", ["circle_id"])
    op.create_table(
        "circle_poll_votes",
        sa.Column("poll_id", PK, nullable=False),
        *_user("user_id"),
        sa.Column("option", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["poll_id"], ["circle_polls.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("poll_id", "user_id"),
    )
    op.create_table(
        "circle_challenges",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("circle_id", PK, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("target_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_circle_challenges_circle_id", "circle_challenges", ["circle_id"])
    op.create_table(
        "circle_checkins",
        sa.Column("challenge_id", PK, nullable=False),
        *_user("user_id"),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["challenge_id"], ["circle_challenges.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("challenge_id", "user_id", "day"),
    )


def downgrade() -> None:
    for table in ("circle_checkins", "circle_challenges", "circle_poll_votes", "circle_polls", "circle_attendance",
                  "circle_sessions", "circle_reports", "circle_deliveries", "circle_messages", "circle_members",
                  "circles"):
        op.drop_table(table)
