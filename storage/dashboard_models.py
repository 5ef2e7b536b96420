"""Tables of the doctor web dashboard: one-time login links, the install's signing secret and
the audit log of who looked at which patient, page or export."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Alert, Base, BigIntPK, MedicationLog, Reading, utcnow


class DashboardLogin(Base):
    """A one-time login link. Only the SHA-256 of the token is kept, so a database leak opens nothing."""

    __tablename__ = "dashboard_logins"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    doctor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class DashboardSecret(Base):
    """The per-install HMAC secret when DASHBOARD_SECRET is not set: kept so restarts keep sessions."""

    __tablename__ = "dashboard_secrets"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DashboardRevocation(Base):
    """A logged-out session: its cookie still carries a valid signature until it expires, so logout
    records the session's nonce here and every request checks it (one primary-key lookup)."""

    __tablename__ = "dashboard_revocations"
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    doctor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)  # the cookie's own expiry: purge after
    revoked_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    """Who saw what, when: every dashboard page, patient view, action and export."""

    __tablename__ = "dashboard_audit"
    __table_args__ = (Index("ix_dashboard_audit_team_at", "team_id", "at"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))  # page|patient|export|ack|followup|login|logout
    page: Mapped[str] = mapped_column(String(128), default="")
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    detail: Mapped[str] = mapped_column(String(256), default="")


# Indexes the dashboard's queries need on tables owned elsewhere (declared here so the metadata and
# the 0003_dashboard migration agree): adherence per patient and period, open alerts by age.
Index("ix_medlog_patient_time", MedicationLog.patient_id, MedicationLog.logged_at)
Index("ix_alerts_status_created", Alert.status, Alert.created_at)
# Each patient's latest reading of one kind in a window (indicators, issue 8; migration 0005_panel_perf).
Index("ix_readings_patient_kind_time", Reading.patient_id, Reading.kind, Reading.measured_at, Reading.id)
