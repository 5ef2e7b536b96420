"""doctor web dashboard: login links, signing secret, audit log, indexes for indicators

Revision ID: 0003_dashboard
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_dashboard"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dashboard_logins",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("doctor_id", PK, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["doctor_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_dashboard_logins_doctor_id", "dashboard_logins", ["doctor_id"])
    op.create_table(
        "dashboard_secrets",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "dashboard_audit",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor_id", PK, nullable=False),
        sa.Column("team_id", PK, nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("page", sa.String(length=128), nullable=False),
        sa.Column("patient_id", PK, nullable=True),
        sa.Column("detail", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["patient_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dashboard_audit_team_at", "dashboard_audit", ["team_id", "at"])
    op.create_index("ix_dashboard_audit_actor_id", "dashboard_audit", ["actor_id"])
    op.create_index("ix_dashboard_audit_patient_id", "dashboard_audit", ["patient_id"])
    op.create_index("ix_medlog_patient_time", "medication_logs", ["patient_id", "logged_at"])
    op.create_index("ix_alerts_status_created", "alerts", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_status_created", table_name="alerts")
    op.drop_index("ix_medlog_patient_time", table_name="medication_logs")
    op.drop_table("dashboard_audit")
    op.drop_table("dashboard_secrets")
    op.drop_table("dashboard_logins")
