"""Urgent first: with a backlog of ordinary readings waiting (the bot over capacity), an urgent
reading is handled and its alert delivered to the doctor long before the backlog drains; the
ordinary readings are all still stored and answered, and every chat's own updates stay in order.

Real app, FakeTelegram over HTTP, SQLite and PostgreSQL (`db_url`)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from bench.readings import onboarded_patients
from bot.app import CareCircle, build
from bot.sandbox import ChatEvent, FakeTelegram
from bot.services.invites import parse_payload
from storage.models import Alert, Reading, TeamMember
from tests.conftest import app_settings

PATIENTS = 100
PER_PATIENT = 4  # the FloodLimiter's per-chat burst: no "Saved" reply waits for its chat
BACKLOG = PATIENTS * PER_PATIENT
URGENT = "185/115"


class Watch:
    """Every bot message, timed; counts the "Saved" replies to the backlog's patients."""

    def __init__(self, backlog_chats: set[int], doctor_chat: int) -> None:
        self.backlog_chats = backlog_chats
        self.doctor_chat = doctor_chat
        self.saved = 0
        self.saved_when_alerted: int | None = None
        self.alerts = 0
        self.by_chat: dict[int, list[str]] = defaultdict(list)
        self.drained = asyncio.Event()
        self.alerted = asyncio.Event()

    def __call__(self, event: ChatEvent) -> None:
        if event.kind != "message" or event.message is None:
            return
        text = event.message.text or ""
        self.by_chat[event.chat_id].append(text)
        if event.chat_id in self.backlog_chats and "Saved" in text:
            self.saved += 1
            if self.saved >= BACKLOG:
                self.drained.set()
        if event.chat_id == self.doctor_chat and any(
                data.startswith("al:ack:") for row in event.message.inline for _label, data in row):
            self.alerts += 1
            if self.saved_when_alerted is None:
                self.saved_when_alerted = self.saved
            self.alerted.set()


async def _doctor_and_patients(care: CareCircle, tg: FakeTelegram) -> tuple[Any, list[Any], Any]:
    services = care.services
    doc_sim = tg.user("Dr Li", language_code="en", started=True)
    doc = await services.users.ensure(doc_sim.id, doc_sim.id, doc_sim.first_name, "en")
    kind, code = parse_payload(await services.invites.create_doctor_invite("Dr Li", "Qingshan")) or ("", "")
    assert (await services.invites.redeem(kind, code, doc.id)).ok
    async with services.sessions() as session:
        team_id = await session.scalar(select(TeamMember.team_id).where(TeamMember.user_id == doc.id))
    sims = await onboarded_patients(care, tg, PATIENTS + 1, prefix="bk")
    urgent_sim = sims[-1]
    user = await services.users.by_telegram(urgent_sim.id)
    assert user is not None
    await services.users.update_profile(user.id, team_id=team_id, doctor_id=doc.id)
    return doc_sim, sims[:-1], urgent_sim


async def test_an_urgent_reading_overtakes_a_backlog_of_ordinary_ones(tg: FakeTelegram, db_url: str) -> None:
    care = build(app_settings(tg, db_url))
    await care.start()
    try:
        doc_sim, backlog, urgent_sim = await _doctor_and_patients(care, tg)
        watch = Watch({sim.id for sim in backlog}, doc_sim.id)
        unsubscribe = tg.subscribe(watch)
        try:
            for i in range(PER_PATIENT):  # 400 ordinary readings at once: several seconds of work
                for n, sim in enumerate(backlog):
                    await sim.send(f"{120 + (n + i) % 20}/{70 + i}")
            # The urgent patient's chat: two ordinary readings, then the urgent one (order must hold).
            for text in ("131/81", "132/82", URGENT):
                await urgent_sim.send(text)
            sent = time.perf_counter()
            await asyncio.wait_for(watch.alerted.wait(), 60)
            alert_seconds = time.perf_counter() - sent
            await asyncio.wait_for(watch.drained.wait(), 120)
        finally:
            unsubscribe()
        # The alert came while most of the backlog was still waiting (FIFO handling would have
        # answered nearly all 400 first).
        assert watch.saved_when_alerted is not None and watch.saved_when_alerted < BACKLOG // 2, (
            watch.saved_when_alerted, alert_seconds)
        # Nothing lost, nothing twice.
        assert watch.saved == BACKLOG
        async with care.services.sessions() as session:
            assert await session.scalar(select(func.count(Reading.id))) == BACKLOG + 3
            assert await session.scalar(select(func.count(Alert.id))) == 1
        await asyncio.sleep(0.3)
        assert watch.alerts == 1
        # The promoted chat kept its own order: its earlier readings were answered first.
        replies = [text for text in watch.by_chat[urgent_sim.id] if "Saved" in text or "needs attention" in text]
        assert len(replies) == 3, watch.by_chat[urgent_sim.id]
        assert "131/81" in replies[0] and "132/82" in replies[1] and "needs attention" in replies[2], replies
        assert care.application.update_processor.dropped == 0  # type: ignore[attr-defined]
    finally:
        await care.stop()
