"""Peer-support circles (issue 7): circles, members under an alias, relayed messages and where
each copy landed, sessions with attendance, polls, weekly challenges and reports.

Everything personal cascades from `users.id`, so erasing a member erases their messages, their
deliveries, check-ins and votes. A circle itself belongs to a team and goes with it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigIntPK, utcnow


class Circle(Base):
    __tablename__ = "circles"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(16))  # hypertension|diabetes|mixed
    language: Mapped[str] = mapped_column(String(8), default="zh_CN")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    adviser_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    max_members: Mapped[int] = mapped_column(Integer, default=30)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    session_weekday: Mapped[int | None] = mapped_column(Integer)  # 0=Monday
    session_time: Mapped[str | None] = mapped_column(String(5))  # "19:30" local
    session_minutes: Mapped[int] = mapped_column(Integer, default=45)
    group_chat_id: Mapped[int | None] = mapped_column(BigInteger)  # optional linked Telegram group (announcements)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CircleMember(Base):
    __tablename__ = "circle_members"
    __table_args__ = (UniqueConstraint("circle_id", "alias", name="uq_circle_alias"),)
    circle_id: Mapped[int] = mapped_column(ForeignKey("circles.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    alias: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(12), default="member")  # member|leader|adviser
    status: Mapped[str] = mapped_column(String(12), default="active")  # active|left|removed
    talking: Mapped[bool] = mapped_column(Boolean, default=False)  # "circle mode": free text goes to the circle
    muted_until: Mapped[datetime | None]
    agreed_at: Mapped[datetime | None]
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)


class CircleMessage(Base):
    __tablename__ = "circle_messages"
    __table_args__ = (Index("ix_circle_messages_circle_time", "circle_id", "created_at"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    circle_id: Mapped[int] = mapped_column(ForeignKey("circles.id", ondelete="CASCADE"))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # None: the bot
    kind: Mapped[str] = mapped_column(String(12), default="text")  # text|media|share|system
    text: Mapped[str] = mapped_column(String(4096), default="")
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("circle_messages.id", ondelete="SET NULL"))
    source_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    source_message_id: Mapped[int | None] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CircleDelivery(Base):
    """(circle message, recipient) -> the Telegram message in the recipient's chat.

    For the sender it is their own message (`telegram_message_id`); for everyone else the outbox
    row that carries the relay (its `telegram_message_id` once sent)."""

    __tablename__ = "circle_deliveries"
    __table_args__ = (Index("ix_circle_deliveries_outbox", "outbox_id"),)
    message_id: Mapped[int] = mapped_column(ForeignKey("circle_messages.id", ondelete="CASCADE"), primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)


class CircleReport(Base):
    __tablename__ = "circle_reports"
    message_id: Mapped[int] = mapped_column(ForeignKey("circle_messages.id", ondelete="CASCADE"), primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CircleSession(Base):
    __tablename__ = "circle_sessions"
    __table_args__ = (UniqueConstraint("circle_id", "starts_at", name="uq_circle_session_start"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    circle_id: Mapped[int] = mapped_column(ForeignKey("circles.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(12), default="scheduled")  # scheduled|open|closed
    reminded: Mapped[str] = mapped_column(String(16), default="")  # "day", "day,soon"
    lesson_id: Mapped[str] = mapped_column(String(64), default="")
    topic_index: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[datetime | None]


class CircleAttendance(Base):
    __tablename__ = "circle_attendance"
    session_id: Mapped[int] = mapped_column(ForeignKey("circle_sessions.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class CirclePoll(Base):
    __tablename__ = "circle_polls"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    circle_id: Mapped[int] = mapped_column(ForeignKey("circles.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(String(256))
    options: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CirclePollVote(Base):
    __tablename__ = "circle_poll_votes"
    poll_id: Mapped[int] = mapped_column(ForeignKey("circle_polls.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    option: Mapped[int] = mapped_column(Integer)


class CircleChallenge(Base):
    __tablename__ = "circle_challenges"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    circle_id: Mapped[int] = mapped_column(ForeignKey("circles.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # measure_bp|walk|no_pickles
    week_start: Mapped[date] = mapped_column(Date)
    target_days: Mapped[int] = mapped_column(Integer, default=5)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CircleCheckin(Base):
    __tablename__ = "circle_checkins"
    challenge_id: Mapped[int] = mapped_column(ForeignKey("circle_challenges.id", ondelete="CASCADE"),
                                              primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
