"""Reminders end to end: FakeTelegram users, the real app on SQLite, a ManualClock and
`await care.tick()` instead of sleeping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot.app import CareCircle, build
from bot.clinical.schedule import parse_times
from bot.sandbox import FakeTelegram, SimUser
from bot.services.clock import ManualClock
from storage.models import Outbox
from storage.reminder_models import LessonDelivery, Reminder
from tests.conftest import app_settings
from tests.e2e.helpers import doctor, linked_patient, patient, until

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # Monday 08:00 in Shanghai


@pytest.fixture
def mclock() -> ManualClock:
    return ManualClock(START)


async def add_reminder(u: SimUser, what: str, times: str, days: str = "Every day") -> None:
    await u.send("/reminders")
    await u.next_message()
    await u.press("➕ Add a reminder")
    await u.next_message()
    await u.press(what)
    assert "At what time" in (await u.next_message()).text
    await u.send(times)
    assert "which days" in (await u.next_message()).text
    await u.press(days)
    saved = await u.next_message()
    assert "Reminder saved" in saved.text, saved.text


async def add_direct(care: CareCircle, u: SimUser, kind: str, at: str, days: tuple[int, ...] = (),
                     medicine_id: int | None = None) -> None:
    """The same row the dialog saves, without the dialog (keeps the slower tests fast)."""
    user = await care.services.users.by_telegram(u.id)
    assert user is not None
    assert await care.services.reminders.add(user.id, kind, parse_times(at) or (), days, medicine_id) is not None


async def test_medicine_reminder_done_records_adherence(tg: FakeTelegram, care: CareCircle,
                                                        mclock: ManualClock) -> None:
    u = await patient(tg)
    user = await care.services.users.by_telegram(u.id)
    assert user is not None
    await care.services.medicines.add(user.id, "Amlodipine", "5 mg")
    await add_reminder(u, "💊 Amlodipine", "09:00, 21:00")
    await care.tick()
    with pytest.raises(AssertionError):
        await u.next_message(timeout=0.3)  # 08:00 local: not yet
    mclock.advance(hours=1, seconds=20)  # 09:00:20 local
    await care.tick()
    msg = await until(u, "Amlodipine 5 mg")
    assert msg.buttons == ["Done", "Snooze 30 min", "Skip"]  # type: ignore[attr-defined]
    await u.press("Done")
    edited = await u.next_edit()
    assert "Taken" in edited.text and not edited.buttons
    assert await care.services.medicines.adherence(user.id) == (1, 1)
    await care.tick()  # nothing more is due
    async with care.services.sessions() as session:
        assert await session.scalar(select(func.count(Outbox.id)).where(Outbox.kind == "reminder")) == 1
        rem = await session.scalar(select(Reminder).where(Reminder.kind == "medicine"))
        assert rem is not None and rem.next_due_at == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 21:00 local
    # a forged Done on someone else's reminder changes nothing
    other = await patient(tg, name="Li")
    await other.send("hello")
    bot_msg = await other.next_message()
    before = len(other.callback_answers)
    await other.press_data(bot_msg.message_id, f"rm:done:{rem.id}")
    for _i in range(50):
        if len(other.callback_answers) > before:
            break
        await asyncio.sleep(0.05)
    assert other.callback_answers[-1] == "This button has expired."
    assert await care.services.medicines.adherence(user.id) == (1, 1)


async def test_skip_logs_missed_and_snooze_repeats_once(tg: FakeTelegram, care: CareCircle,
                                                        mclock: ManualClock) -> None:
    u = await patient(tg)
    user = await care.services.users.by_telegram(u.id)
    assert user is not None
    med = await care.services.medicines.add(user.id, "Metformin", "500 mg")
    await add_direct(care, u, "medicine", "09:00", medicine_id=med.id)
    await add_direct(care, u, "bp", "10:00", (0, 1, 2, 3, 4))
    mclock.advance(hours=1, seconds=5)
    await care.tick()
    await until(u, "Metformin")
    await u.press("Skip")
    await u.next_edit()
    assert await care.services.medicines.adherence(user.id) == (0, 1)
    mclock.advance(hours=1)
    await care.tick()
    await until(u, "measure your blood pressure")
    await u.press("Snooze 30 min")
    await u.next_edit()
    mclock.advance(minutes=20)
    await care.tick()
    with pytest.raises(AssertionError):
        await until(u, "blood pressure", timeout=0.3)
    mclock.advance(minutes=11)
    await care.tick()
    again = await until(u, "measure your blood pressure")
    await care.tick()
    await u.press("Done", message_id=again.message_id)  # type: ignore[attr-defined]
    assert "type your reading" in (await until(u, "reading")).text  # type: ignore[attr-defined]
    async with care.services.sessions() as session:
        assert await session.scalar(select(func.count(Reminder.id)).where(Reminder.one_off.is_(True))) == 0


async def test_restart_never_sends_twice_nor_skips(tg: FakeTelegram, sqlite_url: str) -> None:
    clock = ManualClock(START)
    first = build(app_settings(tg, sqlite_url), clock=clock)
    await first.start()
    u = await patient(tg)
    await add_direct(first, u, "bp", "09:00")
    await first.stop()
    clock.advance(hours=1, minutes=30)  # down over the due time, back within 2 h
    second = build(app_settings(tg, sqlite_url), clock=clock)
    await second.start()
    try:
        await second.tick()
        await until(u, "measure your blood pressure")
        await second.tick()
        third = build(app_settings(tg, sqlite_url), clock=clock)  # a second process on the same DB
        await third.services.reminders.tick()
        await third.services.engine.dispose()
        with pytest.raises(AssertionError):
            await until(u, "blood pressure", timeout=0.5)
        async with second.services.sessions() as session:
            assert await session.scalar(select(func.count(Outbox.id)).where(Outbox.kind == "reminder")) == 1
    finally:
        await second.stop()


async def test_more_than_two_hours_late_is_dropped(tg: FakeTelegram, care: CareCircle, mclock: ManualClock) -> None:
    u = await patient(tg)
    await add_direct(care, u, "bp", "09:00")
    mclock.advance(hours=3, minutes=1)  # 11:01 local
    await care.tick()
    with pytest.raises(AssertionError):
        await until(u, "blood pressure", timeout=0.5)
    async with care.services.sessions() as session:
        rem = await session.scalar(select(Reminder).where(Reminder.kind == "bp"))
        assert rem is not None and rem.next_due_at == datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # tomorrow 09:00


async def test_timezone_change_moves_next_due(tg: FakeTelegram, care: CareCircle) -> None:
    u = await patient(tg)
    await add_direct(care, u, "bp", "09:00")
    await u.send("/settings")
    await u.next_message()
    await u.press("Change time zone")
    await u.next_message()
    await u.send("New York")
    assert "America/New_York" in (await u.next_message()).text
    async with care.services.sessions() as session:
        rem = await session.scalar(select(Reminder).where(Reminder.kind == "bp"))
        assert rem is not None and rem.tz == "America/New_York"
        assert rem.next_due_at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 09:00 EST


async def test_blocked_user_is_skipped_and_quiet_hours_refused(tg: FakeTelegram, care: CareCircle,
                                                               mclock: ManualClock) -> None:
    u = await patient(tg)
    await u.send("/reminders")
    await u.next_message()
    await u.press("➕ Add a reminder")
    await u.next_message()
    await u.press("Measure blood glucose")
    await u.next_message()
    await u.send("23:00")
    assert "quiet hours" in (await u.next_message()).text
    await u.send("09:00")
    await u.next_message()
    await u.press("Every day")
    await u.next_message()
    user = await care.services.users.by_telegram(u.id)
    assert user is not None
    await care.services.users.mark_unreachable(user.id, "Forbidden: bot was blocked by the user")
    mclock.advance(hours=1, seconds=5)
    await care.tick()
    async with care.services.sessions() as session:
        assert await session.scalar(select(func.count(Outbox.id)).where(Outbox.kind == "reminder")) == 0
        rem = await session.scalar(select(Reminder).where(Reminder.kind == "glucose"))
        assert rem is not None and rem.next_due_at > mclock.now()  # advanced, not stuck


async def test_daily_tip_subscribe_and_one_tap_stop(tg: FakeTelegram, care: CareCircle, mclock: ManualClock) -> None:
    u = await patient(tg)
    await u.send("/reminders")
    await u.next_message()
    await u.press("💡 Daily tip")
    await u.next_message()
    await u.send("08:30")
    assert "Daily tip on" in (await u.next_message()).text
    mclock.advance(minutes=30, seconds=5)
    await care.tick()
    tip = await until(u, "💡")
    assert "Stop daily tips" in tip.buttons  # type: ignore[attr-defined]
    await u.press("Stop daily tips")
    assert "stopped" in (await u.next_message()).text
    mclock.advance(days=1)
    await care.tick()
    with pytest.raises(AssertionError):
        await until(u, "💡", timeout=0.5)


async def test_missed_readings_nudge_then_caregiver_then_silent(tg: FakeTelegram, care: CareCircle,
                                                                 mclock: ManualClock) -> None:
    doc = await doctor(tg, care)
    u = await linked_patient(tg, doc)
    user = await care.services.users.by_telegram(u.id)
    assert user is not None
    await u.send("135/85")
    await u.next_message()
    await care.tick()  # creates the daily nudge check (10:00 local)
    for _day in range(3):  # the check runs daily at 10:00 local; Mon-Wed: fewer than 3 days
        mclock.advance(hours=2, seconds=5) if _day == 0 else mclock.advance(days=1)
        await care.tick()
    mclock.advance(days=1)  # Thursday 10:00 local, 3 days without a reading
    await care.tick()
    assert "No reading for 3 days" in (await until(u, "No reading")).text  # type: ignore[attr-defined]
    for _day in range(2):
        mclock.advance(days=1)
        await care.tick()
    with pytest.raises(AssertionError):
        await until(u, "No reading", timeout=0.5)  # one gentle nudge, not one a day
    mclock.advance(days=1)  # Sunday: the second miss
    await care.tick()
    page = await care.services.panel.panel(doc_id := (await care.services.users.by_telegram(doc.id)).id)  # type: ignore[union-attr]
    assert page.rows[0].status == "silent", page.rows
    await u.send("130/80")  # back: no longer silent
    await until(u, "Saved")
    page = await care.services.panel.panel(doc_id)
    assert page.rows[0].status != "silent"


async def test_prescribed_lessons_arrive_and_reads_are_tracked(tg: FakeTelegram, care: CareCircle,
                                                               mclock: ManualClock) -> None:
    doc = await doctor(tg, care)
    u = await linked_patient(tg, doc)
    user = await care.services.users.by_telegram(u.id)
    assert user is not None
    await doc.send(f"/prescribe {user.id}")
    sets = await doc.next_message()
    assert "Which lessons" in sets.text
    await doc.press("Low-salt eating: three lessons") if "Low-salt eating: three lessons" in sets.buttons \
        else await doc.send(f"/prescribe {user.id} low-salt")
    assert "Prescribed" in (await doc.next_message()).text
    mclock.advance(hours=1, seconds=5)  # 09:00 local
    await care.tick()
    lesson = await until(u, "📘")
    assert "Read ✓" in lesson.buttons  # type: ignore[attr-defined]
    await u.press("Read ✓")
    await u.next_edit()
    mclock.advance(days=1)
    await care.tick()
    with pytest.raises(AssertionError):
        await until(u, "📘", timeout=0.3)  # one every 3 days
    mclock.advance(days=2)
    await care.tick()
    second = await until(u, "📘")
    assert "(2/" in second.text  # type: ignore[attr-defined]
    await doc.send(f"/prescriptions {user.id}")
    report = (await doc.next_message()).text
    assert "2 of 4 sent, 1 read" in report
    other = await doctor(tg, care, name="Dr Zhao", team="Hillside")
    await other.send(f"/prescriptions {user.id}")
    assert (await other.next_message()).text == "Not found."
    async with care.services.sessions() as session:
        assert await session.scalar(select(func.count(LessonDelivery.id))) == 2


async def test_exercise_lesson_postponed_when_unsafe(tg: FakeTelegram, care: CareCircle, mclock: ManualClock) -> None:
    doc = await doctor(tg, care)
    u = await linked_patient(tg, doc)
    user = await care.services.users.by_telegram(u.id)
    assert user is not None
    docu = await care.services.users.by_telegram(doc.id)
    assert await care.services.education.prescribe(docu.id, user.id, "exercise-start") is not None  # type: ignore[union-attr]
    await u.send("185/112")
    await until(u, "Saved")
    mclock.advance(hours=1, seconds=5)
    await care.tick()
    with pytest.raises(AssertionError):
        await until(u, "📘", timeout=0.5)
    await u.send("130/80")
    await until(u, "Saved")
    mclock.advance(days=1)
    await care.tick()
    assert "(1/" in (await until(u, "📘")).text  # type: ignore[attr-defined]


async def test_weekly_summary_sunday_evening_with_chart(tg: FakeTelegram, care: CareCircle,
                                                        mclock: ManualClock) -> None:
    u = await patient(tg)
    user = await care.services.users.by_telegram(u.id)
    assert user is not None
    await care.services.medicines.add(user.id, "Amlodipine", "5 mg")
    await care.tick()  # creates the weekly row
    for value in ("150/95", "138/86", "132/84"):
        await u.send(value)
        await until(u, "Saved")
        mclock.advance(days=1)
    tg.reset_rate_limits()
    mclock.advance(days=3, hours=10, minutes=59)  # Sunday 18:59 local
    await care.tick()
    with pytest.raises(AssertionError):
        await until(u, "Your week", timeout=0.3)
    mclock.advance(minutes=1, seconds=5)
    await care.tick()
    summary = await until(u, "Your week")
    assert "Readings this week: 3" in summary.text and "140/88" in summary.text  # type: ignore[attr-defined]
    chart = await u.next_message(timeout=5)
    while not chart.photo:
        chart = await u.next_message(timeout=5)
    assert chart.photo_bytes and chart.photo_bytes.startswith(b"\x89PNG")
