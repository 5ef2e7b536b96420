"""Through FakeTelegram: a patient corrects (/edit) or deletes (/undo) an urgent reading typed in
error; the doctor's alert message is closed (buttons gone) and the doctor gets a short notice, so
nobody rushes for a typo. A correction that is still urgent keeps the alert open."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import CareCircle
from bot.sandbox import FakeTelegram, SimUser
from storage.models import Alert, AlertEvent, User
from tests.e2e.helpers import doctor, linked_patient, until, until_text


async def _alerts(app: CareCircle, u: SimUser) -> list[Alert]:
    async with app.services.sessions() as session:
        patient_id = await session.scalar(select(User.id).where(User.telegram_id == u.id))
        return list(await session.scalars(select(Alert).where(Alert.patient_id == patient_id).order_by(Alert.id)))


async def _urgent(u: SimUser, doc: SimUser, value: str = "185/115") -> int:
    """Send an urgent reading; returns the id of the doctor's alert message."""
    await u.send(value)
    await until(u, "Saved")
    alert = await until(doc, "BP-URGENT")
    assert value in alert.text and "Acknowledge" in alert.buttons
    await until(u, lambda m: "None of these" in m.buttons)  # the symptom check that follows
    await u.press("None of these")
    u.drain()
    return alert.message_id


async def test_edit_to_a_normal_value_closes_the_doctors_alert(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    alert_message = await _urgent(u, doc)
    await u.send("/edit")
    assert "185/115" in await until_text(u, "Your last reading")
    await u.send("150/95")
    assert "Corrected." in await until_text(u, "Corrected.")
    edited = await doc.next_edit()
    assert edited.text.startswith("✅ Closed: Reading corrected by the patient: BP 150/95 mmHg, no longer urgent.")
    assert edited.message_id == alert_message and edited.buttons == []  # nothing left to acknowledge
    notice = await until(doc, "Reading corrected by the patient")
    assert "150/95" in notice.text and "Wang" in notice.text and "stays open" not in notice.text
    assert notice.reply_to_message_id == alert_message
    [alert] = await _alerts(app, u)
    assert alert.status == "closed"
    async with app.services.sessions() as session:
        closed = await session.scalar(select(AlertEvent).where(AlertEvent.alert_id == alert.id,
                                                               AlertEvent.event == "closed"))
    assert closed is not None and closed.detail.startswith("corrected by patient: entered in error")


async def test_undo_of_an_acknowledged_urgent_reading_tells_the_doctor(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    await _urgent(u, doc)
    await doc.press("Acknowledge")
    await doc.next_edit()
    doc.drain()
    await u.send("/undo")
    assert "185/115" in await until_text(u, "Deleted your last reading")
    notice = await until(doc, "Reading deleted by the patient")
    assert "185/115" in notice.text and "entered in error" in notice.text
    [alert] = await _alerts(app, u)
    assert alert.status == "acknowledged"  # the doctor already acts on it: their record stays


async def test_edit_that_is_still_urgent_keeps_the_alert_open(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    await _urgent(u, doc)
    doc.drain()
    await u.send("/edit")
    await until(u, "Your last reading")
    await u.send("182/112")
    assert "attention" in await until_text(u, "Corrected.")
    edited = await doc.next_edit()  # the open alert's message now shows the corrected value
    assert "182/112" in edited.text and "Acknowledge" in edited.buttons
    assert not [m for m in doc.messages if "Reading corrected" in (m.text or "")]
    [alert] = await _alerts(app, u)
    assert alert.status == "open"
