"""Caregiver proxy: when a family member logs a reading for a patient, the patient is told.

Why: the patient owns their record; a value appearing in it that they did not send must be
visible to them ("Your family member Li logged BP 150/95 for you"). The reading row itself
records who entered it (`readings.entered_by`). The notice goes through the outbox, deduped
per reading, so a redelivered update does not tell the patient twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from content.i18n import translator
from content.render import reading_text
from storage.models import Outbox, PatientProfile, User


async def tell_patient(services: Any, patient: User | None, caregiver: User, reading_id: int, reading: Any) -> bool:
    """Queue "X logged ... for you" to the patient; False when there is nobody to tell."""
    if patient is None or patient.id == caregiver.id or not patient.chat_id:
        return False
    now = services.clock.now()
    key = f"proxy:{reading_id}"
    async with services.sessions.begin() as session:
        if await session.scalar(select(Outbox.id).where(Outbox.dedupe_key == key)) is not None:
            return False
        profile = await session.get(PatientProfile, patient.id)
        t = translator(patient.language)
        text = t("{name} logged a reading for you: {reading}. If it is wrong, tell them, or send /undo.",
                 name=caregiver.display_name or caregiver.first_name,
                 reading=reading_text(reading, t, profile.glucose_unit if profile else "mmol"))
        session.add(Outbox(kind="notice", recipient_id=patient.id, chat_id=patient.chat_id, payload={"text": text},
                           dedupe_key=key, next_attempt_at=now, created_at=now))
    return True
