"""merge the feature branches (inbox, tips, reminders, circles, dashboard) into one head

Each feature was developed in parallel as its own revision on top of 0002; they touch
disjoint tables, so the merge has nothing to do but join them.

Revision ID: 0004
Revises: 0003_inbox, 0003_tips, 0003_reminders, 0003_circles, 0003_dashboard
"""

from collections.abc import Sequence

revision: str = "0004"
down_revision: tuple[str, ...] = ("0003_inbox", "0003_tips", "0003_reminders", "0003_circles", "0003_dashboard")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
