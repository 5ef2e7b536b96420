"""Patients through FakeTelegram: onboarding, guided and free-text logging, confirmations,
urgent readings, history chart, export and delete."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.app import CareCircle
from bot.sandbox import FakeTelegram
from storage.models import Base, Outbox, Reading
from tests.e2e.helpers import onboard, patient


async def _user_id(app: CareCircle, tg_id: int) -> int:
    user = await app.services.users.by_telegram(tg_id)
    assert user is not None
    return user.id


async def test_onboarding_in_english_then_free_text_reading(tg: FakeTelegram, app: CareCircle) -> None:
    u = tg.user("Mary", language_code="en")
    await onboard(u, condition="High blood pressure")
    await u.send("150/95")
    reply = await u.next_message()
    assert "Saved: BP 150/95 mmHg" in reply.text
    assert "grade 1" in reply.text
    assert "diagnos" not in reply.text.lower() and "you have" not in reply.text.lower()
    assert await app.services.readings.count(await _user_id(app, u.id)) == 1


async def test_onboarding_in_chinese(tg: FakeTelegram, app: CareCircle) -> None:
    u = tg.user("王阿姨", language_code="zh-hans")
    await onboard(u, lang="zh_CN", condition="High blood pressure")
    await u.send("血压150/95 心率72")
    reply = await u.next_message()
    assert "150/95" in reply.text and "72" in reply.text
    assert "已保存" in reply.text or "保存" in reply.text


async def test_nothing_clinical_is_stored_before_consent(tg: FakeTelegram, app: CareCircle) -> None:
    u = tg.user("Shy", language_code="en")
    await u.send("/start")
    await u.next_message()
    await u.press("English")
    await u.next_message()
    await u.press("Not now")
    assert "Nothing has been stored" in (await u.next_message()).text
    await u.send("150/95")
    assert "/start" in (await u.next_message()).text
    async with app.services.sessions() as session:
        assert await session.scalar(select(func.count(Reading.id))) == 0


async def test_glucose_without_context_asks_one_question(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg, condition="Type 2 diabetes")
    await u.send("6.8")
    question = await u.next_message()
    assert "When did you measure" in question.text
    await u.press("fasting")
    saved = await u.next_message()
    assert "6.8 mmol/L" in saved.text and "fasting" in saved.text


async def test_implausible_value_confirmed_and_impossible_rejected(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg)
    await u.send("160")  # probably glucose in mg/dL
    question = await u.next_message()
    assert "mg/dL" in question.text
    await u.press(question.buttons[0])
    context_question = await u.next_message()
    await u.press("2 h after a meal")
    saved = await u.next_message()
    assert "8.9 mmol/L" in saved.text
    await u.send("400/90")
    rejected = await u.next_message()
    assert "not saved" in rejected.text.lower() or "have not saved" in rejected.text
    assert context_question.text
    assert await app.services.readings.count(await _user_id(app, u.id)) == 1


async def test_urgent_bp_safety_first_and_exactly_one_outbox_row(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg, condition="High blood pressure")
    await u.send("186/112")
    reply = await u.next_message()
    first_line = reply.text.splitlines()[0]
    assert "attention" in first_line
    assert "5 minutes" in reply.text and "120" in reply.text
    assert reply.text.index("5 minutes") < reply.text.index("Saved")
    symptoms = await u.next_message()
    assert "None of these" in symptoms.buttons
    async with app.services.sessions() as session:
        rows = list(await session.scalars(select(Outbox)))
    # no doctor linked yet: the alert exists but nobody to send to, and the patient is told so
    assert rows == []
    assert "not linked to a doctor" in reply.text


async def test_guided_bp_flow_with_pulse(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg, condition="High blood pressure")
    await u.send("/bp")
    assert "135/85" in (await u.next_message()).text
    await u.send("128/82")
    assert "pulse" in (await u.next_message()).text.lower()
    await u.send("70")
    assert "arm" in (await u.next_message()).text  # optional details (issue 4): arm, then posture
    await u.press("Skip")
    await u.next_message()
    await u.press("Skip")
    saved = await u.next_message()
    assert "128/82" in saved.text and "pulse 70" in saved.text and "high-normal" in saved.text


async def test_history_sends_a_chart_photo(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg)
    for text in ("135/85", "140/88", "空腹血糖 6.1"):
        await u.send(text)
        await u.next_message()
        await asyncio.sleep(0.2)
    u.drain()
    await u.send("/history")
    summary = await u.next_message()
    assert "Blood pressure: 2 readings" in summary.text
    photo = await u.next_message(timeout=15)
    assert photo.photo and photo.photo_bytes and photo.photo_bytes[:8] == b"\x89PNG\r\n\x1a\n"


async def test_several_readings_in_one_message_and_undo(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg)
    await u.send("早上 135/85，空腹血糖 6.5")
    first, second = await u.next_message(), await u.next_message()
    assert "135/85" in first.text and "6.5" in second.text
    await u.send("/undo")
    assert "Deleted" in (await u.next_message()).text
    assert await app.services.readings.count(await _user_id(app, u.id)) == 1


async def test_delete_removes_every_row_of_the_user(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg)
    await u.send("150/95")
    await u.next_message()
    user_id = await _user_id(app, u.id)
    await u.send("/delete")
    await u.next_message()
    await u.press("Yes, delete everything")
    assert "deleted" in (await u.next_message()).text
    async with app.services.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for column in ("patient_id", "user_id", "recipient_id", "caregiver_id"):
                if column in table.c:
                    n = await session.scalar(select(func.count()).select_from(table).where(table.c[column] == user_id))
                    assert n == 0, table.name


async def test_forged_button_changes_nothing(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg)
    await u.send("6.8")
    question = await u.next_message()
    await u.press_data(question.message_id, "rd:ctx:deadbeef:fasting")
    assert await app.services.readings.count(await _user_id(app, u.id)) == 0
    await u.press_data(question.message_id, "al:ack:1")
    await u.press_data(question.message_id, "zzz")
    await asyncio.sleep(0.3)
    assert any("expired" in a or "Not found" in a for a in u.callback_answers)
