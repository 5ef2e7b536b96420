"""Questions to the care team ("Ask my doctor") and "Trouble with my care" flags.

Both hold a patient's data, so both reference `users.id` with ON DELETE CASCADE: erasing a
patient erases their questions and flags. Who may read them is decided in
`bot.services.questions` (the patient's own team only), never by these tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigIntPK, utcnow


class Question(Base):
    """One question from a patient (or their caregiver) and, once given, the team's answer.

    `source_update_id` makes asking idempotent when Telegram redelivers the update."""

    __tablename__ = "questions"
    __table_args__ = (
        UniqueConstraint("source_update_id", name="uq_questions_source"),
        Index("ix_questions_patient_created", "patient_id", "created_at"),
        Index("ix_questions_team_answered", "team_id", "answered_at"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    asker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    asker_role: Mapped[str] = mapped_column(String(16), default="patient")  # patient|caregiver
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(String(2000))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    signs: Mapped[str] = mapped_column(String(256), default="")  # danger-sign codes, comma-separated
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    answered_at: Mapped[datetime | None]
    answer: Mapped[str | None] = mapped_column(String(3500))
    source_update_id: Mapped[int | None] = mapped_column(BigInteger)


class CareTrouble(Base):
    """A "trouble with my care" flag: raised by the patient, cleared by them later (kept as history)."""

    __tablename__ = "care_troubles"
    __table_args__ = (Index("ix_care_troubles_patient_cleared", "patient_id", "cleared_at"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # medicines|travel|support
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    raised_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cleared_at: Mapped[datetime | None]
