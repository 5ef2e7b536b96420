"""Group commit of typed readings (issue 4), on SQLite and PostgreSQL: readings of concurrent updates
share one transaction, and each caller gets what it would have got alone — the same assessment,
replay flag and 7-day average (a second reading of the same patient in the batch counts the first),
StaleSender for a stale cached sender, its own error for a bad row while the rest of the batch is
stored, and a cancelled caller breaks nobody else's reading."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.services.container import Services
from bot.services.group_commit import GroupCommit
from bot.services.readings import NewReading, ReadingService, RecordResult
from bot.services.users import Onboarding, Sender, StaleSender
from storage.models import Reading, User
from tests.services.test_hot_path import Statements

TYPED = [NewReading("bp", 140, 90), NewReading("bp", 150, 95, pulse=72), NewReading("bp", 128, 82),
         NewReading("glucose", mmol=6.8, context="fasting"), NewReading("bp", 135, 85)]


async def _sender(services: Services, tg_id: int) -> Sender:
    user = await services.users.ensure(tg_id, tg_id, f"P{tg_id}", "en")
    await services.users.complete_onboarding(user.id, Onboarding("en", "Asia/Shanghai",
                                                                 frozenset({"hypertension", "diabetes"}), 1950))
    return await services.users.sender(tg_id, tg_id, f"P{tg_id}", "en")


def _typed(service: ReadingService, sender: Sender, reading: NewReading, update_id: int,
           revision: int | None = None) -> asyncio.Task[RecordResult]:
    """As dialogs.readings.save records a typed reading of the sender's own."""
    return asyncio.ensure_future(service.record(
        sender.user.id, reading, entered_by=sender.user.id, source_update_id=update_id,
        known=(sender.user, sender.profile), revision=revision))


def _shape(result: RecordResult) -> tuple[object, ...]:
    a = result.average7
    return (result.duplicate, result.assessment.category, a.count, a.systolic, a.diastolic, a.mmol)


def _one_lane(services: Services) -> ReadingService:
    """The batching mechanics, on one lane (SQLite's default; PostgreSQL's is two, tested below)."""
    return ReadingService(services.sessions, services.clock, services.alerts, GroupCommit(services.sessions))


async def test_a_burst_shares_commits_and_answers_as_one_by_one(services: Services) -> None:
    """Patients a, b, c log concurrently (a three times: its later readings' averages count its
    earlier ones, in arrival order); twins a2, b2, c2 log the same one by one without group commit."""
    alone = ReadingService(services.sessions, services.clock, services.alerts)  # no batch
    a, b, c, a2, b2, c2 = [await _sender(services, 5100 + n) for n in range(6)]
    for sender in (a, a2):  # an earlier reading in the week
        await alone.record(sender.user.id, NewReading("bp", 160, 100))
    plan = [(a, TYPED[0]), (b, TYPED[1]), (a, TYPED[1]), (c, TYPED[3]), (b, TYPED[2]), (a, TYPED[2]), (c, TYPED[3])]
    twin = {a.user.id: a2, b.user.id: b2, c.user.id: c2}

    counter = Statements(services)
    one = _one_lane(services)
    batched = await asyncio.gather(*(_typed(one, s, r, 9000 + n) for n, (s, r) in enumerate(plan)))
    commits = counter.commits
    serial = [await _typed(alone, twin[s.user.id], r, 9100 + n) for n, (s, r) in enumerate(plan)]

    assert commits < len(plan), commits  # group commit: the first alone, the rest together
    assert [_shape(r) for r in batched] == [_shape(r) for r in serial]
    assert [r.average7.count for r in batched] == [1, 0, 2, 0, 1, 3, 1]  # a: 1 earlier, then its own
    assert batched[2].average7.systolic == pytest.approx((160 + 140) / 2)
    assert len({r.reading_id for r in batched}) == len(plan)
    async with services.sessions() as session:
        rows = list(await session.scalars(select(Reading).where(Reading.source_update_id >= 9000,
                                                                  Reading.source_update_id < 9100)
                                           .order_by(Reading.id)))
    assert [(r.source_update_id, r.patient_id) for r in rows] == [(9000 + n, s.user.id) for n, (s, _r) in
                                                                   enumerate(plan)]  # arrival order


async def test_a_replay_and_a_stale_sender_in_a_batch_answer_as_today(services: Services) -> None:
    a, b, c = [await _sender(services, 5200 + n) for n in range(3)]
    one = _one_lane(services)
    first = await _typed(one, a, TYPED[0], 9200)
    async with services.sessions() as session:
        old_revision = await session.scalar(select(User.revision).where(User.id == b.user.id))
    await services.users.update_profile(b.user.id, glucose_unit="mgdl")  # b's cached answer is now stale

    tasks = [_typed(one, c, TYPED[2], 9201),  # alone: the rest queue behind it
             _typed(one, a, TYPED[0], 9200),  # the same update again (a redelivery)
             _typed(one, b, TYPED[1], 9202, revision=old_revision),
             _typed(one, c, TYPED[4], 9203)]
    replay, stale, other = (await asyncio.gather(*tasks, return_exceptions=True))[1:]

    assert isinstance(replay, RecordResult) and replay.duplicate and replay.reading_id == first.reading_id
    assert _shape(replay)[2:] == _shape(first)[2:]
    assert isinstance(stale, StaleSender), stale
    assert isinstance(other, RecordResult) and not other.duplicate and other.average7.count == 1
    async with services.sessions() as session:
        stored = dict((await session.execute(
            select(Reading.source_update_id, func.count()).group_by(Reading.source_update_id))).all())
    assert stored == {9200: 1, 9201: 1, 9203: 1}  # nothing for the stale sender, the replay once


async def test_a_failing_row_loses_none_of_the_others(services: Services, caplog: pytest.LogCaptureFixture) -> None:
    a, b = [await _sender(services, 5300 + n) for n in range(2)]
    ghost = User(id=987654, telegram_id=987654, first_name="Gone", consent_at=datetime.now(UTC))  # no such row
    bad = Sender(ghost, a.profile, False)
    one = _one_lane(services)
    with caplog.at_level(logging.WARNING, logger="bot.services.group_commit"):
        results = await asyncio.gather(
            _typed(one, a, TYPED[0], 9300),  # alone
            _typed(one, a, TYPED[1], 9301),
            _typed(one, bad, TYPED[2], 9302),  # its INSERT fails (no such patient): the batch rolls back
            _typed(one, b, TYPED[3], 9303),
            return_exceptions=True)
    assert "rolled back" in caplog.text  # the three were written together, and failed together
    assert isinstance(results[2], IntegrityError), results[2]  # the bad row's own error, as alone
    good = [results[n] for n in (0, 1, 3)]
    assert all(isinstance(r, RecordResult) and not r.duplicate for r in good), good
    assert results[1].average7.count == 1  # type: ignore[union-attr]  # a's first reading, as one by one
    async with services.sessions() as session:
        ids = set(await session.scalars(select(Reading.source_update_id)))
    assert ids == {9300, 9301, 9303}


async def test_a_cancelled_caller_breaks_no_other_reading(services: Services) -> None:
    one = _one_lane(services)
    batch = one.batch
    assert batch is not None
    senders = [await _sender(services, 5400 + n) for n in range(6)]
    tasks = [_typed(one, s, TYPED[0], 9400 + n) for n, s in enumerate(senders[:4])]
    await tasks[0]  # written alone; meanwhile 1, 2 and 3 queued: 1 is now writing the three together
    assert batch.waiting == 0
    tasks += [_typed(one, s, TYPED[0], 9400 + n) for n, s in enumerate(senders[4:], 4)]
    await asyncio.sleep(0)  # 4 and 5 queue for the next batch (every statement takes a loop turn or more)
    assert batch.waiting == 2
    tasks[1].cancel()  # the writer of a batch of three: it rolls back, 2 and 3 write theirs on their own
    tasks[3].cancel()  # in that batch: its row may or may not be stored
    tasks[5].cancel()  # waiting for its turn: taken back, written by nobody
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [n for n, r in enumerate(results) if isinstance(r, asyncio.CancelledError)] == [1, 3, 5], results
    assert all(isinstance(results[n], RecordResult) for n in (0, 2, 4)), results
    async with services.sessions() as session:
        stored = set(await session.scalars(select(Reading.source_update_id)))
    assert {9400, 9402, 9404} <= stored and 9405 not in stored
    # The update of a cancelled caller is handled again later (it was never marked handled): its
    # reading is then stored, or found stored (a replay), exactly once.
    again = [await _typed(one, senders[n], TYPED[0], 9400 + n) for n in (1, 3, 5)]
    assert all(isinstance(r, RecordResult) for r in again)
    async with services.sessions() as session:
        counts = dict((await session.execute(
            select(Reading.source_update_id, func.count()).group_by(Reading.source_update_id))).all())
    assert counts == {9400 + n: 1 for n in range(6)}


class _Watched(GroupCommit):
    """Counts batches being written at the same time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = self.most = 0

    async def _write(self, batch: Any) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await super()._write(batch)
        finally:
            self.in_flight -= 1


async def test_two_lanes_write_at_once_and_keep_each_patients_order(services: Services) -> None:
    """PostgreSQL's two lanes: two batches are in flight together, and each patient's readings stay in
    one lane (their `key`), so every caller still gets what one by one gives: a patient's later
    reading counts the earlier ones of the burst in its average."""
    watched = _Watched(services.sessions, lanes=2)
    lanes = ReadingService(services.sessions, services.clock, services.alerts, watched)
    alone = ReadingService(services.sessions, services.clock, services.alerts)  # no batch
    a, b, c, a2, b2, c2 = [await _sender(services, 5500 + n) for n in range(6)]
    assert {a.user.id % 2, b.user.id % 2} == {0, 1}  # consecutive ids: a and b write in different lanes
    plan = [(a, TYPED[0]), (b, TYPED[1]), (a, TYPED[1]), (c, TYPED[3]), (b, TYPED[2]), (a, TYPED[2]), (c, TYPED[3])]
    twin = {a.user.id: a2, b.user.id: b2, c.user.id: c2}

    batched = await asyncio.gather(*(_typed(lanes, s, r, 9600 + n) for n, (s, r) in enumerate(plan)))
    serial = [await _typed(alone, twin[s.user.id], r, 9700 + n) for n, (s, r) in enumerate(plan)]

    assert watched.most == 2  # a's lane and b's lane each had a batch in flight at the same time
    assert [_shape(r) for r in batched] == [_shape(r) for r in serial]
    assert [r.average7.count for r in batched] == [0, 0, 1, 0, 1, 2, 1]
    async with services.sessions() as session:
        rows = list(await session.execute(select(Reading.patient_id, Reading.source_update_id)
                                          .where(Reading.source_update_id >= 9600, Reading.source_update_id < 9700)
                                          .order_by(Reading.id)))
    for sender in (a, b, c):  # each patient's readings stored in the order they were sent
        mine = [update for patient, update in rows if patient == sender.user.id]
        assert mine == sorted(mine) and len(mine) == sum(1 for s, _r in plan if s is sender)
