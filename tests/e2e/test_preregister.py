"""Issue 5 gaps through FakeTelegram: a doctor pre-registers a patient and hands over a personal
link/QR; the patient's account takes over the record when they open it; /patient sends a chart."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.app import CareCircle
from bot.clinical.plan import CarePlan, PlanMedicine, PlanTargets
from bot.sandbox import FakeTelegram, SimUser
from storage.models import Medicine, PatientProfile, TeamMember, User
from storage.reminder_models import Prescription
from tests.e2e.helpers import doctor, join_by_link, linked_patient
from tests.e2e.helpers import until_text as _until

PNG = b"\x89PNG\r\n\x1a\n"


async def _preregister(doc: SimUser, name: str = "Zhang Wei") -> tuple[int, str]:
    """Walk /preregister; returns the pre-registered patient number and the /start payload."""
    await doc.send("/preregister")
    assert "full name" in (await doc.next_message()).text
    await doc.send(name)
    assert "Phone" in (await doc.next_message()).text
    await doc.send("abc")
    assert "digits" in (await doc.next_message()).text
    await doc.send("138 0013 8000")
    assert "Year of birth" in (await doc.next_message()).text
    await doc.send("1950")
    conditions = await doc.next_message()
    assert conditions.buttons == ["High blood pressure", "Type 2 diabetes", "Both", "Not sure"]
    await doc.press("Type 2 diabetes")
    card = await doc.next_message(timeout=10)
    assert card.photo and card.photo_bytes and card.photo_bytes[:8] == PNG  # the QR code
    assert "Pre-registered #" in card.text and name in card.text
    number = int(card.text.split("#")[1].split()[0])
    return number, card.text.split("start=")[1].split()[0]


async def test_preregistered_patient_joins_by_personal_link(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    doc_user = await app.services.users.by_telegram(doc.id)
    assert doc_user is not None
    number, payload = await _preregister(doc)
    assert payload.startswith("p-")
    async with app.services.sessions() as session:
        record = await session.get(User, number)
        profile = await session.get(PatientProfile, number)
        team_id = await session.scalar(select(TeamMember.team_id).where(TeamMember.user_id == doc_user.id))
    assert record is not None and record.telegram_id is None and record.consent_at is None
    assert record.display_name == "Zhang Wei" and record.phone == "13800138000"
    assert profile is not None and profile.birth_year == 1950 and profile.conditions == "diabetes"
    assert profile.team_id == team_id and profile.doctor_id == doc_user.id
    await doc.send("/patients")
    assert f"#{number} Zhang Wei" in (await doc.next_message()).text
    await doc.send(f"/target {number} 130/80")  # the doctor can work on the record before the patient joins
    assert "130/80" in (await doc.next_message()).text
    await doc.send(f"/patient {number}")
    view = await doc.next_message()
    assert "has not joined" in view.text
    with pytest.raises(AssertionError):
        await doc.next_message(timeout=0.7)  # no readings: no chart
    await doc.send(f"/msg {number} hello")
    assert "not joined" in (await doc.next_message()).text

    u = tg.user("Wei", language_code="en")
    # the patient's own answer (the doctor's diagnosis is kept too); year of birth skipped: the doctor entered it
    linked = await join_by_link(u, payload, condition="High blood pressure", year=None)
    assert "Dr Li" in linked
    joined = await app.services.users.by_telegram(u.id)
    assert joined is not None
    async with app.services.sessions() as session:
        assert await session.get(User, number) is None  # the placeholder was folded in
        profile = await session.get(PatientProfile, joined.id)
        user = await session.get(User, joined.id)
    assert user is not None and user.display_name == "Zhang Wei" and user.phone == "13800138000"
    assert profile is not None and profile.birth_year == 1950
    assert profile.condition_set == {"diabetes", "hypertension"}
    assert (profile.target_sys, profile.target_dia, profile.team_id, profile.doctor_id) == (130, 80, team_id,
                                                                                             doc_user.id)
    told = await _until(doc, "personal link")
    assert f"#{joined.id}" in told and f"#{number}" in told
    await doc.send(f"/patient {joined.id}")
    assert "Zhang Wei" in (await doc.next_message()).text

    other = tg.user("Stranger", language_code="en")  # the personal link works once
    await other.send(f"/start {payload}")
    await other.next_message()
    await other.press("English")
    await other.next_message()
    await other.press("I agree")
    await other.next_message()
    await other.press("Not sure")
    await other.next_message()
    await other.press("Skip")
    await other.next_message()
    await other.press("Yes")
    assert "already been used" in await _until(other, "invite")
    stranger = await app.services.users.by_telegram(other.id)
    assert stranger is not None
    assert (await app.services.users.profile(stranger.id)).team_id is None  # type: ignore[union-attr]


async def test_patient_view_sends_the_chart_beside_the_summary(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc, condition="Both")
    for text in ("150/95", "142/90", "空腹血糖 7.5"):
        await u.send(text)
        await _until(u, "Saved")
    await asyncio.sleep(0.1)
    user = await app.services.users.by_telegram(u.id)
    assert user is not None
    doc.drain()
    await doc.send(f"/patient {user.id}")
    summary = await doc.next_message()
    assert "Wang" in summary.text and "150/95" in summary.text
    chart = await doc.next_message(timeout=15)
    assert chart.photo and chart.photo_bytes and chart.photo_bytes[:8] == PNG
    assert f"#{user.id} Wang" in chart.text and "30 days" in chart.text


async def test_plan_and_lessons_made_before_joining_follow_the_patient(tg: FakeTelegram, app: CareCircle) -> None:
    """Issue 5: what the doctor set up for the pre-registered record (a personal plan with a medicine,
    a lesson prescription) is the patient's once they join, not deleted with the placeholder."""
    doc = await doctor(tg, app)
    doc_user = await app.services.users.by_telegram(doc.id)
    assert doc_user is not None
    number, payload = await _preregister(doc)
    plan = CarePlan(PlanTargets(130, 80), medicines=(PlanMedicine("Amlodipine", "5 mg", ("08:00",)),))
    assert await app.services.plans.save(doc_user.id, number, plan) is not None
    await doc.send(f"/prescribe {number} low-salt")
    assert "Prescribed" in await _until(doc, "Prescribed")
    u = tg.user("Wei", language_code="en")
    await join_by_link(u, payload, condition="High blood pressure", year=None)
    joined = await app.services.users.by_telegram(u.id)
    assert joined is not None
    current = await app.services.plans.current(joined.id)
    assert current is not None and current[1].medicines[0].name == "Amlodipine"
    async with app.services.sessions() as session:
        medicines = list(await session.scalars(select(Medicine.name).where(Medicine.patient_id == joined.id)))
        prescriptions = list(await session.scalars(select(Prescription.set_id)
                                                   .where(Prescription.patient_id == joined.id)))
    assert medicines == ["Amlodipine"] and prescriptions == ["low-salt"]
    u.drain()
    await u.send("/plan")
    assert "Amlodipine" in await _until(u, "Amlodipine")
    doc.drain()
    await doc.send(f"/prescriptions {joined.id}")
    report = await doc.next_message()
    assert "Not found" not in report.text and "0 of" in report.text
