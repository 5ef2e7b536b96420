"""merge the parallel 0005 revisions (plans, chat follow-ups, questions, reading details, panel
indexes, scale-out inbox routing) into one head

They were written side by side on top of 0004 and touch different tables or add different
nullable columns, so the merge itself has nothing to do.

Revision ID: 0006
Revises: 0005_chat_followups, 0005_panel_perf, 0005_plans, 0005_questions, 0005_reading_details, 0005_scale
"""

from collections.abc import Sequence

revision: str = "0006"
down_revision: tuple[str, ...] = ("0005_chat_followups", "0005_panel_perf", "0005_plans", "0005_questions",
                                  "0005_reading_details", "0005_scale")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
