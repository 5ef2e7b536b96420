"""Chat follow-up invitations: one row per due follow-up the bot asks a patient about in the chat.

Why a row per cycle (patient, due date) and not a reminder: the row carries the answers while the
patient is still pressing buttons (a restart loses nothing), counts the invitations (after 2
unanswered ones the patient is listed for a phone call or home visit), and links the draft
follow-up record the answers became. Times in UTC; the patient's data cascades from `users.id`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigIntPK, utcnow

# invited: asked (or due to be asked); answered: a draft went to the doctor; to_call: 2 invitations
# went unanswered, listed for a phone call or home visit; confirmed: the doctor confirmed the draft;
# closed: a follow-up was recorded another way.
CYCLE_STATUSES = ("invited", "answered", "to_call", "confirmed", "closed")
OPEN_STATUSES = ("invited", "to_call")


class ChatFollowUp(Base):
    __tablename__ = "chat_followups"
    __table_args__ = (
        UniqueConstraint("patient_id", "due_date", name="uq_chat_followups_patient_due"),
        Index("ix_chat_followups_status_next", "status", "next_invite_at"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="invited")
    invitations: Mapped[int] = mapped_column(Integer, default=0)
    last_invited_at: Mapped[datetime | None]
    next_invite_at: Mapped[datetime | None]  # next invitation, or when to list for a call
    listed_at: Mapped[datetime | None]  # put on the to-call list
    answered_at: Mapped[datetime | None]
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)  # question key -> value (or list)
    followup_id: Mapped[int | None] = mapped_column(ForeignKey("followups.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
