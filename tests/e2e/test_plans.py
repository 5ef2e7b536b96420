"""Care plans end to end through FakeTelegram: the doctor builds a plan in the chat, the patient
and the consenting family member are told, the patient sees /plan and the card photo, a time
change moves the reminder, and another team's doctor cannot touch the plan."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.app import CareCircle
from bot.sandbox import FakeTelegram, SimUser
from bot.sandbox.fake.models import BotMessage
from storage.models import Medicine, Reading
from storage.plan_models import CarePlanVersion
from storage.reminder_models import Reminder
from tests.e2e.helpers import doctor, linked_patient, patient, until


@pytest.fixture
def app(care: CareCircle) -> CareCircle:
    """The app on the ManualClock (a Tuesday 10:00 in Shanghai) instead of the real clock: a plan
    announcement waits for the end of the person's quiet hours, so on the real clock these tests
    would depend on the hour the suite runs."""
    return care


async def _edit_medicine(doc: SimUser, patient_id: int, line: str, *, targets: str | None = None) -> BotMessage:
    await doc.send(f"/plan {patient_id}")
    await until(doc, "Care plan draft")
    await doc.press("💊 Add or change a medicine")
    await until(doc, "Type one medicine")
    await doc.send(line)
    menu = await until(doc, "Care plan draft")
    if targets:
        await doc.press("🎯 Targets")
        await until(doc, "Type the targets")
        await doc.send(targets)
        menu = await until(doc, "Care plan draft")
    await doc.press("✅ Save and tell the patient")
    await until(doc, "Plan saved")
    return menu


async def test_doctor_sets_plan_patient_and_family_see_it(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    await u.send("/family")
    payload = (await u.next_message()).text.split("start=")[1].split()[0]
    daughter = await patient(tg, name="Mei", condition="High blood pressure")  # onboarded, then she accepts
    await daughter.send(f"/start {payload}")
    await until(daughter, "family contact")
    user = await app.services.users.by_telegram(u.id)
    assert user is not None
    u.drain()
    daughter.drain()

    await u.send("/plan")
    assert "not made a care plan" in (await until(u, "care plan")).text

    menu = await _edit_medicine(doc, user.id, "amlodipine 5mg 08:00,20:00 after food", targets="130/80")
    assert "amlodipine 5 mg at 08:00, 20:00 (with food)" in menu.text
    assert "Blood pressure below 130/80" in menu.text

    told = await until(u, "added a medicine")
    assert "Dr Li added a medicine: amlodipine 5 mg at 08:00, 20:00" in told.text
    family = await until(daughter, "updated the care plan of Wang")
    assert "amlodipine 5 mg" in family.text

    await u.send("/plan")
    shown = await until(u, "Your care plan")
    assert "amlodipine 5 mg at 08:00, 20:00" in shown.text and "130/80" in shown.text
    card = await u.next_message()
    assert card.photo and card.photo_bytes is not None and card.photo_bytes.startswith(b"\x89PNG")
    assert "plan card" in card.text

    # The next reading is judged against the plan's target: 135/85 is above 130/80.
    await u.send("135/85")
    graded = await u.next_message()
    assert "135/85" in graded.text
    async with app.services.sessions() as session:
        stored = await session.scalar(select(Reading).where(Reading.patient_id == user.id))
        assert stored is not None and stored.in_target is False  # under the default 140/90 it would be True

    # The evening dose moves to 21:00: one medicine reminder, at the new time, and the patient is told.
    await _edit_medicine(doc, user.id, "amlodipine 5mg 08:00,21:00 after food")
    moved = await until(u, "changed your evening medicine")
    assert "Dr Li changed your evening medicine: amlodipine 5 mg at 21:00" in moved.text
    async with app.services.sessions() as session:
        times = list(await session.scalars(select(Reminder.times).join(Medicine, Medicine.id == Reminder.medicine_id)
                                           .where(Reminder.user_id == user.id)))
        assert times == ["08:00,21:00"]


async def test_another_teams_doctor_cannot_set_the_plan(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    other = await doctor(tg, app, name="Dr Zhao", team="Elsewhere")
    user = await app.services.users.by_telegram(u.id)
    assert user is not None
    await other.send(f"/plan {user.id}")
    assert (await other.next_message()).text == "Not found."
    await u.send("/plan")
    assert "not made a care plan" in (await until(u, "care plan")).text
    async with app.services.sessions() as session:
        assert await session.scalar(select(func.count(CarePlanVersion.id))) == 0


async def test_doctor_removes_a_medicine_in_the_chat_and_its_reminders_stop(tg: FakeTelegram,
                                                                           app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    user = await app.services.users.by_telegram(u.id)
    assert user is not None
    await _edit_medicine(doc, user.id, "simvastatin 20mg 22:30")
    await doc.send(f"/plan {user.id}")
    draft = await until(doc, "Care plan draft")
    assert "simvastatin 20 mg at 22:30" in draft.text
    await doc.press("💊 Add or change a medicine")
    await until(doc, "Type one medicine")
    await doc.send("simvastatin 20mg 22:30")
    warned = await until(doc, "Care plan draft")
    assert "quiet hours (22:00-07:00)" in warned.text  # the doctor learns no reminder would ring
    await doc.press("✖ Remove a medicine")
    await until(doc, "Which medicine")
    await doc.press("simvastatin 20 mg")
    after = await until(doc, "Care plan draft")
    assert "simvastatin" not in after.text
    await doc.press("✅ Save and tell the patient")
    assert "version 2" in (await until(doc, "Plan saved")).text
    stopped = await until(u, "stopped simvastatin")
    assert "Its reminders are switched off" in stopped.text
    async with app.services.sessions() as session:
        assert await session.scalar(select(func.count(Reminder.id)).where(Reminder.kind == "medicine")) == 0
        med = await session.scalar(select(Medicine).where(Medicine.patient_id == user.id))
        assert med is not None and med.active is False
