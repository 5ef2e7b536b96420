"""Urgent first: with a backlog of ordinary readings waiting (the bot over capacity), an urgent
reading is handled and its alert delivered to the doctor long before the backlog drains; the
ordinary readings are all still stored and answered, and every chat's own updates stay in order.

Real app, FakeTelegram over HTTP, SQLite and PostgreSQL (`db_url`). On SQLite, also the write
queue: an urgent update's writes go before ordinary writes that were waiting first."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.readings import onboarded_patients
from bot.app import CareCircle, build
from bot.sandbox import ChatEvent, FakeTelegram
from bot.services.invites import parse_payload
from storage.models import Alert, Reading, TeamMember, UpdateInbox, UpdateLog
from storage.write_lock import WriteLock, lock_of, urgent_writes
from tests.conftest import app_settings
from tests.e2e.helpers import until, until_true

PATIENTS = 100
PER_PATIENT = 4  # the FloodLimiter's per-chat burst: no "Saved" reply waits for its chat
# The overtaking test's backlog: big enough that the alert (~0.25 s) comes while most of it still
# waits, now that readings are answered at several hundred a second (group commit, issue 4).
BACKLOG = 2 * PATIENTS * PER_PATIENT
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


async def _doctor_and_patients(care: CareCircle, tg: FakeTelegram,
                               patients: int = PATIENTS) -> tuple[Any, list[Any], Any]:
    services = care.services
    doc_sim = tg.user("Dr Li", language_code="en", started=True)
    doc = await services.users.ensure(doc_sim.id, doc_sim.id, doc_sim.first_name, "en")
    kind, code = parse_payload(await services.invites.create_doctor_invite("Dr Li", "Qingshan")) or ("", "")
    assert (await services.invites.redeem(kind, code, doc.id)).ok
    async with services.sessions() as session:
        team_id = await session.scalar(select(TeamMember.team_id).where(TeamMember.user_id == doc.id))
    sims = await onboarded_patients(care, tg, patients + 1, prefix="bk")
    urgent_sim = sims[-1]
    user = await services.users.by_telegram(urgent_sim.id)
    assert user is not None
    await services.users.update_profile(user.id, team_id=team_id, doctor_id=doc.id)
    return doc_sim, sims[:-1], urgent_sim


async def test_an_urgent_reading_overtakes_a_backlog_of_ordinary_ones(tg: FakeTelegram, db_url: str) -> None:
    care = build(app_settings(tg, db_url))
    await care.start()
    try:
        doc_sim, backlog, urgent_sim = await _doctor_and_patients(care, tg, BACKLOG // PER_PATIENT)
        watch = Watch({sim.id for sim in backlog}, doc_sim.id)
        unsubscribe = tg.subscribe(watch)
        try:
            for i in range(PER_PATIENT):  # 800 ordinary readings at once: a few seconds of work
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
        # answered all 800 first).
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


async def _writer(sessions: async_sessionmaker[AsyncSession]) -> AsyncSession:
    """The test's own writer, in the urgent lane: an open write transaction (an UPDATE that matches
    nothing) that keeps every other writer of the app queued until it commits."""
    session = sessions()
    with urgent_writes():
        await session.execute(text("UPDATE teams SET name = name WHERE id = -1"))
    return session


async def _pass_to_poller(sessions: async_sessionmaker[AsyncSession], lock: WriteLock,
                          held: AsyncSession) -> AsyncSession:
    """Let the poller's waiting inbox commit (urgent lane) through, and only it: we queue right behind
    it in the urgent lane, so no ordinary writer gets a turn in between."""
    await until_true(lambda: lock.queued(True) >= 1)
    nxt = asyncio.create_task(_writer(sessions))
    await until_true(lambda: lock.queued(True) >= 2)
    await held.commit()
    await held.close()
    return await nxt


async def test_on_sqlite_urgent_writes_go_before_ordinary_ones_waiting_longer(tg: FakeTelegram,
                                                                              sqlite_url: str) -> None:
    """Deterministic, through the real app: eight ordinary readings wait in the write queue (the test
    holds the write lock), then the urgent reading arrives; its reading and alert are stored before
    any of the eight. Without the urgent lane (or without `urgent_writes` in the processor) it would
    be stored after them."""
    care = build(app_settings(tg, sqlite_url))
    await care.start()
    opened: list[AsyncSession] = []
    try:
        doc_sim, backlog, urgent_sim = await _doctor_and_patients(care, tg, patients=8)
        sessions = care.services.sessions
        lock = lock_of(care.services.engine.sync_engine)
        assert lock is not None

        async def received() -> int:
            async with sessions() as session:  # readers never wait for the write lock
                return sum([int(await session.scalar(select(func.count()).select_from(t)) or 0)
                            for t in (UpdateInbox, UpdateLog)])

        before = await received()
        held = await _writer(sessions)
        opened.append(held)
        for n, sim in enumerate(backlog):
            await sim.send(f"{121 + n}/75")
        while await received() < before + len(backlog):  # only the poller writes meanwhile
            held = await _pass_to_poller(sessions, lock, held)
            opened.append(held)
        batch = care.services.readings.batch
        assert batch is not None

        def ordinary() -> int:  # waiting in the write queue, or (group commit, issue 4) queued behind
            return lock.queued(False) + batch.waiting  # the one batch of readings that waits there

        await until_true(lambda: ordinary() == len(backlog))  # every ordinary handler waits to write
        await urgent_sim.send(URGENT)
        held = await _pass_to_poller(sessions, lock, held)
        opened.append(held)
        await until_true(lambda: lock.queued(True) == 1)  # the urgent update's transaction waits ...
        assert (lock.queued(True), ordinary()) == (1, len(backlog))  # ... ahead of them
        await held.commit()
        await held.close()

        alert = await until(doc_sim, lambda m: any(d.startswith("al:ack:") for row in m.inline for _l, d in row))
        assert alert is not None
        for sim in backlog:
            assert "Saved" in (await until(sim, "Saved")).text
        async with sessions() as session:
            rows = (await session.execute(select(Reading.id, Reading.systolic).order_by(Reading.id))).all()
            assert await session.scalar(select(func.count(Alert.id))) == 1
        assert rows[0].systolic == 185, rows  # the urgent one first
        assert len(rows) == len(backlog) + 1
    finally:
        for session in opened:  # a failed run must not leave the app's writers queued behind us
            await session.close()
        await care.stop()
