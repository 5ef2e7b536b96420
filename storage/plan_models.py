"""Personal care plans (一人一策): every save is a new version row; the current plan is the latest.

Why versions and not one row updated in place: the doctor and the patient must be able to see what
changed and when ("history of plan versions kept"); the plan itself is one JSON document (see
bot.clinical.plan.CarePlan) because it is always read and written whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigIntPK, utcnow


class CarePlanVersion(Base):
    __tablename__ = "care_plans"
    __table_args__ = (
        UniqueConstraint("patient_id", "version", name="uq_care_plans_version"),
        Index("ix_care_plans_patient", "patient_id", "version"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # CarePlan.to_dict()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the intensive measuring period (after a medicine change) ends and the maintenance
    # rhythm takes over; cleared once PlanService.tick has switched the reminders.
    rhythm_switch_at: Mapped[datetime | None] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(String(16), default="chat")  # chat|dashboard
