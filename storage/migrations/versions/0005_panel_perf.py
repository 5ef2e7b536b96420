"""panel performance and dashboard logout (issue 8)

An index for "each patient's latest reading of a kind", and `dashboard_revocations`: the sessions
logged out before their cookie expired (logout must make the cookie useless, server-side).

The dashboard's indicators ask, per patient, for the latest blood pressure or fasting glucose in a
window. With (patient_id, kind, measured_at, id) each of those is one backward index seek that stops
at the first row, on SQLite and PostgreSQL alike, instead of grouping every reading in the window.
Additive: one index and one new table, no data change.

Revision ID: 0005_panel_perf
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_panel_perf"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # IF NOT EXISTS: a big deployment builds it beforehand with CREATE INDEX CONCURRENTLY (README)
    op.create_index("ix_readings_patient_kind_time", "readings", ["patient_id", "kind", "measured_at", "id"],
                    if_not_exists=True)
    op.create_table(
        "dashboard_revocations",
        sa.Column("nonce", sa.String(32), primary_key=True),
        sa.Column("doctor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_dashboard_revocations_doctor_id", "dashboard_revocations", ["doctor_id"])
    op.create_index("ix_dashboard_revocations_expires_at", "dashboard_revocations", ["expires_at"])


def downgrade() -> None:
    op.drop_table("dashboard_revocations")
    op.drop_index("ix_readings_patient_kind_time", table_name="readings")
