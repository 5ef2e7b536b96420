"""Education prescriptions: a doctor prescribes a lesson set; its lessons arrive on schedule
(one every `every_days` days at 09:00 local) through a "lesson" reminder row; the patient marks
each one read, and the doctor sees which were read.

Access is checked here (PanelService.team_patient), so a foreign patient is "not found" for
every caller. Exercise lessons are postponed a day when exercise is not safe right now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import clinical
from bot.clinical.schedule import next_occurrence, zone
from bot.services.clock import Clock
from bot.services.panel import PanelService
from bot.services.summaries import last_readings
from content.catalog import Lesson, LessonSet, default_catalog
from content.i18n import translator
from storage.models import User
from storage.reminder_models import LessonDelivery, Prescription, Reminder

DEFAULT_EVERY_DAYS = 3
DEFAULT_AT = time(9, 0)


@dataclass(frozen=True)
class LessonMessage:
    """What the tick queues for one lesson (or nothing, with the instant to try again)."""

    text: str | None
    buttons: list[list[list[str]]]
    retry_at: datetime | None = None
    finished: bool = False


def is_exercise(lesson_set: LessonSet, lesson: Lesson) -> bool:
    return "exercise" in lesson_set.id or "exercise" in lesson.id or lesson.quiz_id == "quiz-exercise"


class EducationService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, panel: PanelService):
        self._sessions = sessions
        self._clock = clock
        self._panel = panel

    @staticmethod
    def sets() -> list[LessonSet]:
        return list(default_catalog().lesson_sets.values())

    async def prescribe(self, doctor_id: int, patient_id: int, set_id: str) -> Prescription | None:
        """None when the patient is not on the doctor's team or the set does not exist."""
        if set_id not in default_catalog().lesson_sets:
            return None
        found = await self._panel.team_patient(doctor_id, patient_id)
        if found is None:
            return None
        patient = found[0]
        now = self._clock.now()
        async with self._sessions.begin() as session:
            rx = Prescription(patient_id=patient_id, doctor_id=doctor_id, set_id=set_id,
                              every_days=DEFAULT_EVERY_DAYS, at_time=DEFAULT_AT.strftime("%H:%M"), created_at=now)
            session.add(rx)
            await session.flush()
            due = next_occurrence((DEFAULT_AT,), None, patient.timezone, now)
            assert due is not None
            session.add(Reminder(user_id=patient_id, kind="lesson", times=rx.at_time, tz=patient.timezone,
                                 next_due_at=due, payload={"prescription_id": rx.id}, created_at=now))
        return rx

    async def mark_read(self, patient_id: int, delivery_id: int) -> LessonDelivery | None:
        """None for a delivery that is not this patient's (a forged or foreign button)."""
        async with self._sessions.begin() as session:
            delivery = await session.get(LessonDelivery, delivery_id)
            if delivery is None or delivery.patient_id != patient_id:
                return None
            if delivery.read_at is None:
                delivery.read_at = self._clock.now()
            return delivery

    async def progress(self, doctor_id: int, patient_id: int) -> list[tuple[Prescription, list[LessonDelivery]]] | None:
        """The patient's prescriptions and what was sent/read; None when not the doctor's patient."""
        if await self._panel.team_patient(doctor_id, patient_id) is None:
            return None
        async with self._sessions() as session:
            rxs = list(await session.scalars(select(Prescription).where(Prescription.patient_id == patient_id)
                                             .order_by(Prescription.id)))
            out = []
            for rx in rxs:
                deliveries = list(await session.scalars(select(LessonDelivery).where(
                    LessonDelivery.prescription_id == rx.id).order_by(LessonDelivery.id)))
                out.append((rx, deliveries))
            return out

    async def compose(self, session: AsyncSession, reminder: Reminder, user: User, now: datetime) -> LessonMessage:
        """The next lesson of the prescription behind `reminder` (inside the tick's transaction)."""
        rx = await session.get(Prescription, (reminder.payload or {}).get("prescription_id"))
        catalog = default_catalog()
        if rx is None or rx.set_id not in catalog.lesson_sets:
            return LessonMessage(None, [], finished=True)
        lesson_set = catalog.lesson_sets[rx.set_id]
        lessons = sorted(lesson_set.lessons, key=lambda x: x.order)
        if rx.next_index >= len(lessons):
            rx.finished_at = rx.finished_at or now
            return LessonMessage(None, [], finished=True)
        lesson = lessons[rx.next_index]
        tz = zone(user.timezone)
        if is_exercise(lesson_set, lesson):
            last_bp, last_glu, _urgent = await last_readings(session, user.id)
            if not clinical.exercise_safety(last_bp, last_glu).ok:
                # Not today: the same lesson tomorrow at the usual time, nothing sent now.
                retry = next_occurrence((time.fromisoformat(rx.at_time),), None, tz, now + timedelta(hours=20))
                return LessonMessage(None, [], retry_at=retry)
        delivery = LessonDelivery(prescription_id=rx.id, patient_id=user.id, lesson_id=lesson.id, sent_at=now)
        session.add(delivery)
        await session.flush()
        rx.next_index += 1
        t = translator(user.language)
        lang = user.language
        text = (f"📘 {lesson.title_for(lang)} ({rx.next_index}/{len(lessons)})\n\n{lesson.body_for(lang)}\n\n"
                + t("Source: {source}", source=lesson.source))
        buttons = [[[t("Read ✓"), f"ed:read:{delivery.id}"]]]
        if lesson.quiz_id:
            buttons.append([[t("Take the quiz"), f"qz:start:{lesson.quiz_id}"]])
        finished = rx.next_index >= len(lessons)
        if finished:
            rx.finished_at = now
        retry = None if finished else next_occurrence(
            (time.fromisoformat(rx.at_time),), None, tz, now + timedelta(days=rx.every_days) - timedelta(hours=4))
        return LessonMessage(text, buttons, retry_at=retry, finished=finished)
