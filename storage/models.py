"""SQLAlchemy 2.0 typed models. Times are stored in UTC; glucose in mmol/L.

Clinical data lives here, never in PTB persistence. Every table that holds a patient's data
references `users.id` with ON DELETE CASCADE so that erasing a user really erases everything.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# SQLite only auto-increments an "INTEGER PRIMARY KEY"; PostgreSQL gets a real BIGINT.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite forgets offsets, so we normalise both ways."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class User(Base):
    """Anyone who talks to the bot (or a patient a doctor pre-registered before they joined)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    first_name: Mapped[str] = mapped_column(String(128), default="")
    display_name: Mapped[str] = mapped_column(String(128), default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8), default="zh_CN")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    consent_at: Mapped[datetime | None]
    onboarded_at: Mapped[datetime | None]
    unreachable_at: Mapped[datetime | None]
    unreachable_reason: Mapped[str | None] = mapped_column(String(64))
    # Owned by database triggers (migration 0008_sender_revision): a new value whenever this user,
    # their roles, profile, caregiver links or circle memberships change. Never written by code; a
    # loaded object holds the value read with it (UserService's sender cache relies on that).
    revision: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    def has_role(self, role: str) -> bool:
        return any(r.role == role for r in self.roles)


class UserRole(Base):
    __tablename__ = "user_roles"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)  # patient|doctor|caregiver|admin
    user: Mapped[User] = relationship(back_populates="roles")


class Team(Base):
    """A family-doctor team (GP, public-health doctor, nurse) serving a village or neighbourhood."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    work_start: Mapped[str] = mapped_column(String(5), default="08:00")
    work_end: Mapped[str] = mapped_column(String(5), default="17:30")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TeamMember(Base):
    __tablename__ = "team_members"
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(24), default="gp")  # gp|public_health|nurse
    oncall_order: Mapped[int] = mapped_column(Integer, default=0)
    is_lead: Mapped[bool] = mapped_column(Boolean, default=False)


class PatientProfile(Base):
    """Clinical profile; only created after consent. Null targets mean the reference default."""

    __tablename__ = "patient_profiles"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    conditions: Mapped[str] = mapped_column(String(64), default="")  # "hypertension,diabetes"
    birth_year: Mapped[int | None] = mapped_column(Integer)
    glucose_unit: Mapped[str] = mapped_column(String(8), default="mmol")
    height_cm: Mapped[float | None] = mapped_column(Float)
    risk: Mapped[str] = mapped_column(String(16), default="standard")  # standard|high
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    linked_at: Mapped[datetime | None]
    target_sys: Mapped[int | None] = mapped_column(Integer)
    target_dia: Mapped[int | None] = mapped_column(Integer)
    target_fasting_low: Mapped[float | None] = mapped_column(Float)
    target_fasting_high: Mapped[float | None] = mapped_column(Float)
    target_postmeal_high: Mapped[float | None] = mapped_column(Float)
    next_followup_due: Mapped[date | None] = mapped_column(Date, index=True)
    last_contact_at: Mapped[datetime | None]
    away_since: Mapped[datetime | None]  # lives away from home (works in a city): follow-up online (0005_chat_followups)

    @property
    def condition_set(self) -> frozenset[str]:
        return frozenset(c for c in self.conditions.split(",") if c)


class Reading(Base):
    """One measurement. `source_update_id`+`seq` make recording idempotent across redelivery."""

    __tablename__ = "readings"
    __table_args__ = (
        UniqueConstraint("source_update_id", "seq", name="uq_readings_source"),
        Index("ix_readings_patient_time", "patient_id", "measured_at"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    entered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(8))  # bp|glucose|weight
    systolic: Mapped[int | None] = mapped_column(Integer)
    diastolic: Mapped[int | None] = mapped_column(Integer)
    pulse: Mapped[int | None] = mapped_column(Integer)
    mmol: Mapped[float | None] = mapped_column(Float)
    context: Mapped[str | None] = mapped_column(String(16))
    meter: Mapped[str | None] = mapped_column(String(2))
    kg: Mapped[float | None] = mapped_column(Float)
    arm: Mapped[str | None] = mapped_column(String(8))
    posture: Mapped[str | None] = mapped_column(String(10))
    symptoms: Mapped[str] = mapped_column(String(256), default="")
    category: Mapped[str] = mapped_column(String(24), default="")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    in_target: Mapped[bool | None] = mapped_column(Boolean)
    measured_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_update_id: Mapped[int | None] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    edited_at: Mapped[datetime | None]  # set by /edit (migration 0005_reading_details)


class Medicine(Base):
    __tablename__ = "medicines"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    dose: Mapped[str] = mapped_column(String(64), default="")
    times: Mapped[str] = mapped_column(String(64), default="")  # "08:00,20:00" local
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MedicationLog(Base):
    __tablename__ = "medication_logs"
    __table_args__ = (UniqueConstraint("source_update_id", "medicine_id", name="uq_medlog_source"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    medicine_id: Mapped[int | None] = mapped_column(ForeignKey("medicines.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # taken|missed|side_effect
    note: Mapped[str] = mapped_column(String(512), default="")
    logged_at: Mapped[datetime] = mapped_column(default=utcnow)
    entered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source_update_id: Mapped[int | None] = mapped_column(BigInteger)


class Invite(Base):
    """One-time or campaign invite behind a deep link: doctor (d-), patient (p-), caregiver (c-)."""

    __tablename__ = "invites"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # doctor|patient|caregiver
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    single_use: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    uses: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaregiverLink(Base):
    """A family member (家庭责任人) and what the patient consented to share with them."""

    __tablename__ = "caregiver_links"
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    caregiver_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    receive_alerts: Mapped[bool] = mapped_column(Boolean, default=True)
    receive_summary: Mapped[bool] = mapped_column(Boolean, default=True)
    can_log: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """An urgent situation for the care team; repeats of the same rule fold into the open one."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_patient_rule_status", "patient_id", "rule", "status"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reading_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id", ondelete="SET NULL"))
    rule: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|acknowledged|closed
    repeat_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str | None] = mapped_column(String(16))  # ack|called|referred
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(index=True)


class AlertEvent(Base):
    __tablename__ = "alert_events"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    event: Mapped[str] = mapped_column(String(24))  # created|queued|delivered|failed|acked|escalated|...
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    detail: Mapped[str] = mapped_column(String(256), default="")


class Outbox(Base):
    """Every message the bot sends on its own initiative. Written in the same transaction as
    the fact that caused it, delivered by the outbox worker (at-least-once, deduped by key)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # alert|reminder|relay|notice
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # text, buttons, parse_mode
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|failed|unreachable
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(256))


class FollowUp(Base):
    """A follow-up (随访) record as on the NBPHS-3 form. `status` is "draft" when the patient
    filled the self-reported part in the chat and the doctor has not confirmed it yet."""

    __tablename__ = "followups"
    __table_args__ = (Index("ix_followups_patient_date", "patient_id", "visit_date"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    doctor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    visit_date: Mapped[date] = mapped_column(Date)
    way: Mapped[str] = mapped_column(String(16))  # clinic|home|phone|online
    status: Mapped[str] = mapped_column(String(12), default="confirmed")  # draft|confirmed
    outcome: Mapped[str | None] = mapped_column(String(24))  # controlled|unsatisfactory|adverse_reaction|complication
    systolic: Mapped[int | None] = mapped_column(Integer)
    diastolic: Mapped[int | None] = mapped_column(Integer)
    fasting_mmol: Mapped[float | None] = mapped_column(Float)
    weight_kg: Mapped[float | None] = mapped_column(Float)
    medication_change: Mapped[str] = mapped_column(String(512), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)  # symptoms, lifestyle, adherence, referral
    next_due: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The rest of the NBPHS-3 form (migration 0005_chat_followups); the form's other fields sit in `details`
    # (see bot.services.followups.FollowUpForm).
    heart_rate: Mapped[int | None] = mapped_column(Integer)
    bmi: Mapped[float | None] = mapped_column(Float)
    hba1c: Mapped[float | None] = mapped_column(Float)
    med_adherence: Mapped[str | None] = mapped_column(String(16))  # regular|intermittent|not_taking
    hypo_reactions: Mapped[str | None] = mapped_column(String(12))  # none|occasional|frequent
    referral: Mapped[str | None] = mapped_column(String(256))  # reason and where to
    source: Mapped[str | None] = mapped_column(String(12))  # chat|dashboard|bot (None: older rows)
    confirmed_at: Mapped[datetime | None]


class UpdateLog(Base):
    """update_ids already handled, so a redelivered update (webhook retry) is ignored."""

    __tablename__ = "update_log"
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class UpdateInbox(Base):
    """Raw updates received but not yet handled. Written before Telegram is told we have them
    (the next getUpdates offset, or our webhook's 200), replayed at start-up: a crash between
    receiving and handling an update loses nothing."""

    __tablename__ = "update_inbox"
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The update's chat (or user) id, so `run --workers N` routes it to the worker owning that chat
    # (bot/telegram/scaleout.py). NULL for rows written by one-process mode: worker 0 takes those.
    chat_key: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)


class ConversationState(Base):
    """PTB conversation states and user_data, so a restart does not lose a half-done flow."""

    __tablename__ = "conversation_state"
    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)  # conversation name or "user_data"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# Feature tables live in their own modules; importing them here registers them on Base.metadata
# (Alembic autogenerate, the migration tests and erase checks see every table).
from storage import (  # noqa: E402
    chat_followup_models,  # noqa: F401
    circle_models,  # noqa: F401
    dashboard_models,  # noqa: F401
    panel_models,  # noqa: F401
    plan_models,  # noqa: F401
    question_models,  # noqa: F401
    reminder_models,  # noqa: F401
    tips_models,  # noqa: F401
)
