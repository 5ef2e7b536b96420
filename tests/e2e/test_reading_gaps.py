"""Issue 4 gaps through FakeTelegram: /bp arm and posture, the symptom check after high or low
glucose (guided and free text), /edit of the last reading, a caregiver logging for the patient,
and /export of the patient's own readings."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from sqlalchemy import select

from bot.app import CareCircle
from bot.sandbox import FakeTelegram
from storage.models import Alert, Outbox, Reading
from tests.e2e.helpers import doctor, linked_patient, patient
from tests.e2e.helpers import until_text as _until


async def _user_id(app: CareCircle, tg_id: int) -> int:
    user = await app.services.users.by_telegram(tg_id)
    assert user is not None
    return user.id


async def _readings(app: CareCircle, patient_id: int) -> list[Reading]:
    async with app.services.sessions() as session:
        return list(await session.scalars(select(Reading).where(Reading.patient_id == patient_id)
                                          .order_by(Reading.id)))


async def _alerts(app: CareCircle, patient_id: int) -> list[Alert]:
    async with app.services.sessions() as session:
        return list(await session.scalars(select(Alert).where(Alert.patient_id == patient_id).order_by(Alert.id)))


async def test_guided_bp_stores_arm_and_posture_and_shows_them(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg, condition="High blood pressure")
    await u.send("/bp")
    await u.next_message()
    await u.send("138/86 72")  # pulse typed with the values: no pulse question
    arm = await u.next_message()
    assert "arm" in arm.text and arm.buttons == ["Left arm", "Right arm", "Skip"]
    await u.press("Left arm")
    posture = await u.next_message()
    assert posture.buttons == ["Sitting", "Lying down", "Standing", "Skip"]
    await u.press("Sitting")
    saved = await u.next_message()
    assert "138/86" in saved.text and "pulse 72" in saved.text
    await u.send("/bp")
    await u.next_message()
    await u.send("132/84")
    await u.next_message()
    await u.press("Skip")  # pulse
    await u.next_message()
    await u.press("Right arm")
    await u.next_message()
    await u.press("Skip")  # posture
    assert "132/84" in (await u.next_message()).text
    rows = await _readings(app, await _user_id(app, u.id))
    assert [(r.systolic, r.pulse, r.arm, r.posture) for r in rows] == [(138, 72, "left", "sitting"),
                                                                       (132, None, "right", None)]
    u.drain()
    await u.send("/history")
    summary = await u.next_message()
    assert "left arm, sitting" in summary.text and "right arm" in summary.text
    await u.next_message(timeout=15)  # the chart
    await u.send("/export")
    document = await u.next_message()
    table = list(csv.DictReader(io.StringIO(document.document_bytes.decode("utf-8-sig"))))  # type: ignore[union-attr]
    assert [(r["systolic"], r["arm"], r["posture"]) for r in table] == [("138", "left", "sitting"),
                                                                       ("132", "right", "")]


async def test_guided_bp_high_reading_gets_the_symptom_check(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg, condition="High blood pressure")
    await u.send("/bp")
    await u.next_message()
    await u.send("186/114")
    await u.next_message()
    for _step in range(3):  # pulse, arm, posture
        await u.press("Skip")
        await u.next_message() if _step < 2 else None
    saved = await u.next_message()
    assert "attention" in saved.text.splitlines()[0]
    check = await u.next_message()
    assert "Chest pain or tightness" in check.buttons and "None of these" in check.buttons


async def test_low_glucose_symptom_check_and_danger_sign_alerts_the_doctor(tg: FakeTelegram,
                                                                           app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc, condition="Type 2 diabetes")
    patient_id = await _user_id(app, u.id)
    await u.send("/glucose")
    await u.next_message()
    await u.send("3.2")
    assert "When did you measure" in (await u.next_message()).text
    await u.press("fasting")
    saved = await u.next_message()
    assert "15 g" in saved.text  # GLU-HYPO: the 15-15 rule first
    check = await u.next_message()
    assert "Do you have any of these" in check.text
    assert {"Sweating", "Shaking or trembling", "Confusion or strange behaviour"} <= set(check.buttons)
    await u.press("Sweating")
    hypo = await u.next_message()
    assert "low blood sugar" in hypo.text and "15 g" in hypo.text and "hospital" not in hypo.text
    assert [a.rule for a in await _alerts(app, patient_id)] == ["GLU-HYPO"]
    await u.press("Confusion or strange behaviour")
    danger = await u.next_message()
    assert "call 120" in danger.text and "Dr Li" in danger.text
    rules = [a.rule for a in await _alerts(app, patient_id)]
    assert rules == ["GLU-HYPO", "GLU-DANGER"]
    reading = (await _readings(app, patient_id))[0]
    assert set(reading.symptoms.split(",")) == {"sweating", "confusion"} and reading.urgent
    assert "GLU-DANGER" in await _until(doc, "GLU-DANGER")  # the doctor's alert, through the outbox


async def test_free_text_high_glucose_offers_the_check_but_normal_does_not(tg: FakeTelegram,
                                                                           app: CareCircle) -> None:
    u = await patient(tg, condition="Type 2 diabetes")
    await u.send("空腹血糖 18.5")
    await u.next_message()
    check = await u.next_message()
    assert "Very thirsty, passing a lot of urine" in check.buttons and "Sweating" not in check.buttons
    await u.press("None of these")
    assert "Drink some water" in (await u.next_message()).text
    await u.send("空腹血糖 6.0")
    assert "Saved" in (await u.next_message()).text
    with pytest.raises(AssertionError):
        await u.next_message(timeout=0.7)


async def test_edit_corrects_the_last_reading_and_reassesses(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    patient_id = await _user_id(app, u.id)
    await u.send("/edit")
    assert "no reading to correct" in (await u.next_message()).text
    await u.send("158/95")
    assert "158/95" in (await u.next_message()).text
    await u.send("/edit")
    prompt = await u.next_message()
    assert "BP 158/95" in prompt.text
    await u.send("400/20")  # impossible: explained, nothing changed, still waiting
    assert "not saved" in (await u.next_message()).text
    await u.send("185/115")
    corrected = await u.next_message()
    assert corrected.text.startswith("Corrected.") and "attention" in corrected.text
    assert "Dr Li" in corrected.text and "Saved: BP 185/115" in corrected.text
    rows = await _readings(app, patient_id)
    assert len(rows) == 1
    assert (rows[0].systolic, rows[0].diastolic, rows[0].urgent, rows[0].category) == (185, 115, True, "grade3")
    assert rows[0].edited_at is not None
    assert [a.rule for a in await _alerts(app, patient_id)] == ["BP-URGENT"]
    assert "BP-URGENT" in await _until(doc, "BP-URGENT")
    check = await u.next_message()
    assert "None of these" in check.buttons  # the symptom check follows the corrected urgent value


async def test_edit_glucose_keeps_context_and_cancel_changes_nothing(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg, condition="Type 2 diabetes")
    patient_id = await _user_id(app, u.id)
    await u.send("空腹血糖 8.8")
    await u.next_message()
    await u.send("/edit")
    await u.next_message()
    await u.send("/cancel")
    assert "not changed" in (await u.next_message()).text
    await u.send("/edit")
    await u.next_message()
    await u.send("6.8")
    corrected = await u.next_message()
    assert "6.8 mmol/L fasting" in corrected.text and "in your target range" in corrected.text
    rows = await _readings(app, patient_id)
    assert [(r.mmol, r.context, r.in_target) for r in rows] == [(6.8, "fasting", True)]


async def test_caregiver_logs_a_reading_for_the_patient(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg, name="Wang", condition="High blood pressure")
    await u.send("/family")
    link = await u.next_message()
    payload = link.text.split("start=")[1].split()[0]
    son = await patient(tg, name="Son", condition="High blood pressure")
    await son.send(f"/start {payload}")
    assert "family contact for Wang" in await _until(son, "family contact")
    await _until(son, "Welcome back")
    await son.send("150/95")
    whose = await son.next_message()
    assert "Whose reading" in whose.text and whose.buttons == ["Wang", "Mine"]
    await son.press("Wang")
    saved = await _until(son, "Saved")
    assert saved.startswith("For Wang:") and "150/95" in saved
    patient_id, son_id = await _user_id(app, u.id), await _user_id(app, son.id)
    rows = await _readings(app, patient_id)
    assert [(r.systolic, r.entered_by) for r in rows] == [(150, son_id)]
    assert await _readings(app, son_id) == []
    told = await _until(u, "logged a reading for you")
    assert "Son" in told and "150/95" in told
    async with app.services.sessions() as session:
        notices = list(await session.scalars(select(Outbox).where(Outbox.recipient_id == patient_id)))
    assert len([n for n in notices if (n.dedupe_key or "").startswith("proxy:")]) == 1
    await u.send("/export")
    document = await u.next_message()
    table = list(csv.DictReader(io.StringIO(document.document_bytes.decode("utf-8-sig"))))  # type: ignore[union-attr]
    assert [(r["systolic"], r["entered_by"]) for r in table] == [("150", "family")]


async def test_export_holds_only_the_patients_own_readings(tg: FakeTelegram, app: CareCircle) -> None:
    a = await patient(tg, name="Ann")
    b = await patient(tg, name="Bob")
    for text in ("131/81", "空腹血糖 6.1"):
        await a.send(text)
        await a.next_message()
    await b.send("177/99")
    await b.next_message()
    await asyncio.sleep(0.1)
    a.drain()
    await a.send("/export")
    document = await a.next_message()
    assert document.document and document.document_name == "carecircle-readings.csv"
    assert "(2)" in document.text
    table = list(csv.DictReader(io.StringIO(document.document_bytes.decode("utf-8-sig"))))  # type: ignore[union-attr]
    assert [(r["kind"], r["systolic"], r["glucose_mmol_l"], r["context"]) for r in table] == [
        ("bp", "131", "", ""), ("glucose", "", "6.1", "fasting")]
    # Bob's reading in no column (a timestamp's digits may contain "177": compare values, not the text)
    assert not any(value in ("177", "99") for r in table for value in r.values())
