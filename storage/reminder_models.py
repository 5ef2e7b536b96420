"""Reminders, per-person reminder settings, education prescriptions and lesson deliveries.

Why rows and not in-memory jobs: one indexed query on `reminders.next_due_at` per tick serves
100 000 patients, survives restarts, and lets several workers share the work (FOR UPDATE SKIP
LOCKED on PostgreSQL). Everything personal cascades from `users.id`, so erase removes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigIntPK, utcnow

# What each reminder kind is: the user's own ("bp", "glucose", "medicine") or one the bot keeps for
# them ("tip", "nudge", "lesson", "weekly", "digest"). `snooze` rows are one-offs (`one_off`).
USER_KINDS = ("bp", "glucose", "medicine")
SYSTEM_KINDS = ("tip", "nudge", "lesson", "weekly", "digest")


class Reminder(Base):
    __tablename__ = "reminders"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    medicine_id: Mapped[int | None] = mapped_column(ForeignKey("medicines.id", ondelete="CASCADE"))
    times: Mapped[str] = mapped_column(String(64), default="")  # "08:00,20:00" local
    weekdays: Mapped[str] = mapped_column(String(7), default="")  # "01234" (Mon=0); "" every day
    tz: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")  # zone next_due_at was computed in
    next_due_at: Mapped[datetime] = mapped_column(index=True)
    one_off: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # origin id (snooze), prescription id
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReminderPrefs(Base):
    """Per-person settings: quiet hours, daily tip, missed-reading rhythm and nudge state."""

    __tablename__ = "reminder_prefs"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    quiet_start: Mapped[str] = mapped_column(String(5), default="22:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="07:00")
    tip_seen: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"ids": [...]} tips already sent
    rhythm_days: Mapped[int] = mapped_column(Integer, default=3)
    nudge_level: Mapped[int] = mapped_column(Integer, default=0)  # 0 none, 1 nudged, 2 caregiver told
    last_nudge_at: Mapped[datetime | None]
    silent_since: Mapped[datetime | None]  # set at the second miss; the panel shows "silent"


class Prescription(Base):
    """A doctor prescribed a lesson set: one lesson every `every_days` days at `at_time` local."""

    __tablename__ = "prescriptions"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    set_id: Mapped[str] = mapped_column(String(64))
    every_days: Mapped[int] = mapped_column(Integer, default=3)
    at_time: Mapped[str] = mapped_column(String(5), default="09:00")
    next_index: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class LessonDelivery(Base):
    __tablename__ = "lesson_deliveries"
    __table_args__ = (UniqueConstraint("prescription_id", "lesson_id", name="uq_lesson_delivery"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    prescription_id: Mapped[int] = mapped_column(ForeignKey("prescriptions.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    lesson_id: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
