"""`panel_latest`: each patient's latest bp/glucose reading (issue 8).

Kept by database triggers on `readings` (migration 0007_panel_latest, which also says why open alerts
are not kept here), never written by the application, so it is right whichever code path writes
readings. The doctor's panel reads it by primary key instead of seeking the 10-million-row readings
index twice per patient. No row, or a row of NULLs: no bp/glucose reading."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigIntPK


class PanelLatest(Base):
    __tablename__ = "panel_latest"
    patient_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("users.id", ondelete="CASCADE"),
                                            primary_key=True)
    reading_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    measured_at: Mapped[datetime | None]
    kind: Mapped[str | None] = mapped_column(String(8))
    in_target: Mapped[bool | None]
