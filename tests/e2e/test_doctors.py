"""Family doctors through FakeTelegram: invites, alerts with buttons, acknowledgement,
escalation, delivery through Telegram failures, access control."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select

from bot.app import CareCircle, build
from bot.sandbox import FakeTelegram
from storage.models import Alert, AlertEvent, Outbox, User
from tests.conftest import app_settings
from tests.e2e.helpers import doctor, linked_patient, patient


async def test_doctor_joins_by_invite_and_patient_by_qr_link(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    await doc.send("/patients")
    panel = await doc.next_message()
    assert "Wang" in panel.text and "(1)" in panel.text


async def test_urgent_reading_reaches_doctor_within_2s_and_ack_tells_patient(tg: FakeTelegram,
                                                                             app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    await u.send("135/85")
    await u.next_message()
    started = time.monotonic()
    await u.send("186/112")
    told = await u.next_message()
    assert "Your doctor (Dr Li) is being notified now" in told.text
    alert = await doc.next_message(timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert "186/112" in alert.text and "Wang" in alert.text and "135/85" in alert.text
    assert alert.buttons == ["Acknowledge", "Called patient", "Referred", "Snooze 1 h"]
    await doc.press("Acknowledge")
    edited = await doc.next_edit()
    assert "Acknowledge by Dr Li" in edited.text
    u.drain()
    seen = await u.next_message(timeout=3.0)
    while "Dr Li has seen" not in seen.text:
        seen = await u.next_message(timeout=3.0)
    async with app.services.sessions() as session:
        events = [e.event for e in await session.scalars(select(AlertEvent).order_by(AlertEvent.id))]
    assert events[:3] == ["created", "queued", "delivered"] and "acked:ack" in events


async def test_a_patient_cannot_use_doctor_commands_or_buttons(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    await u.send("/patients")
    assert "don't know that command" in (await u.next_message()).text
    await u.send("186/112")
    await doc.next_message(timeout=3.0)
    async with app.services.sessions() as session:
        alert_id = await session.scalar(select(Alert.id))
    msg = (await u.next_message()).message_id
    await u.press_data(msg, f"al:ack:{alert_id}")
    await asyncio.sleep(0.3)
    async with app.services.sessions() as session:
        assert (await session.get(Alert, alert_id)).status == "open"  # type: ignore[union-attr]


async def test_doctor_of_another_team_gets_not_found(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    other = await doctor(tg, app, name="Dr Zhao", team="Hillside")
    u = await linked_patient(tg, doc)
    user = await app.services.users.by_telegram(u.id)
    assert user is not None
    await other.send(f"/patient {user.id}")
    assert (await other.next_message()).text == "Not found."
    await doc.send(f"/patient {user.id}")
    assert "Wang" in (await doc.next_message()).text


async def test_invite_used_twice_expired_or_forged(tg: FakeTelegram, app: CareCircle, clock=None) -> None:
    payload = await app.services.invites.create_doctor_invite("Dr Li", "Qingshan")
    a, b = tg.user("A"), tg.user("B")
    await a.send(f"/start {payload}")
    assert "team" in (await a.next_message()).text
    await b.send(f"/start {payload}")
    assert "already been used" in (await b.next_message()).text
    await b.send("/start d-AAAAAAAAAAAAAAAA")
    assert "not valid" in (await b.next_message()).text
    await b.send("/start <script>")
    assert "not valid" in (await b.next_message()).text
    async with app.services.sessions() as session:
        b_user = await session.scalar(select(User).where(User.telegram_id == b.id))
        assert b_user is not None and not b_user.has_role("doctor")
