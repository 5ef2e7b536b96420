"""Tables for tips and quizzes: which tip a person saw (and whether it helped), quiz results.

Both hold personal data, so both reference `users.id` with ON DELETE CASCADE: erasing a user
erases their tip history and quiz results too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigIntPK, utcnow


class TipView(Base):
    """One tip shown to one user. `round` restarts the rotation once every fitting tip was seen:
    the tips of the current (highest) round are the "seen" set, older rounds keep the feedback."""

    __tablename__ = "tip_views"
    __table_args__ = (Index("ix_tip_views_user_round", "user_id", "round"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    tip_id: Mapped[str] = mapped_column(String(64))
    round: Mapped[int] = mapped_column(Integer, default=1)
    shown_at: Mapped[datetime] = mapped_column(default=utcnow)
    feedback: Mapped[str | None] = mapped_column(String(16))  # helpful|not_helpful


class QuizAttempt(Base):
    """One finished quiz attempt; the latest attempt per quiz feeds the knowledge score."""

    __tablename__ = "quiz_results"
    __table_args__ = (Index("ix_quiz_results_user_quiz", "user_id", "quiz_id"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    quiz_id: Mapped[str] = mapped_column(String(64))
    correct: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean, default=False)  # >= 80 % (programme target)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)
