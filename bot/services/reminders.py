"""Reminders: the person's own (measure BP / glucose, take a medicine), and the ones the bot keeps
for them (daily tip, missed-reading nudge, prescribed lessons, weekly summary, doctor digest).

Every reminder is one row with `next_due_at` (UTC, indexed). `tick(now)` claims due rows (FOR
UPDATE SKIP LOCKED on PostgreSQL), queues Outbox rows with dedupe key
`rem:<id>:<due iso>` and advances `next_due_at` IN THE SAME TRANSACTION, so a crash or restart
never sends one twice (the key) and never skips one (the row stays due until that commit).

Policy (design choices, documented in the issue notes):
- More than 2 h late: advanced, not sent.
- Quiet hours (default 22:00-07:00 local): the person's own reminders found inside them are
  skipped (the dialog refuses to set a time inside quiet hours, so this only happens when quiet
  hours change later); the bot's own messages (tip, nudge, lesson, summaries) are postponed to the
  end of quiet hours. Nothing here is urgent: urgent alerts never go through reminders.
- Unreachable users (User.unreachable_at) are advanced, not sent.
- A row whose zone differs from the user's current zone is recomputed, not sent.
Light kinds (bp, glucose, medicine) go in big set-based statements (on PostgreSQL in parallel
shards); heavy kinds (with a chart or per-person
queries) in small batches, each batch still one transaction.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clinical.schedule import (
    DEFAULT_QUIET_END,
    DEFAULT_QUIET_START,
    format_times,
    in_quiet_hours,
    is_too_late,
    next_occurrence,
    quiet_hours_end,
    rhythm_days,
    times_from_str,
    weekdays_from_str,
    weekdays_to_str,
    zone,
)
from bot.services.clock import Clock
from bot.services.db import with_retry
from bot.services.education import EducationService
from bot.services.panel import PanelService
from bot.services.plan_focus import plan_focus
from bot.services.reminder_enqueue import LightEnqueue, ShardPass
from bot.services.summaries import (
    doctor_digest,
    last_readings,
    tip_context,
    weekly_caregiver,
    weekly_patient,
)
from content.catalog import default_catalog
from content.i18n import translator
from storage.models import CaregiverLink, Medicine, Outbox, PatientProfile, Reading, User, UserRole
from storage.reminder_models import Reminder, ReminderPrefs

log = logging.getLogger(__name__)

LIGHT_KINDS = ("bp", "glucose", "medicine")
HEAVY_KINDS = ("tip", "nudge", "lesson", "weekly", "digest")
LIGHT_BATCH = 20_000  # rows per transaction on SQLite; each batch is 3-4 statements whatever its size
# PostgreSQL: due rows are split by `user_id % SHARDS` into parallel transactions of one statement each
# (bot.services.reminder_enqueue.run_shard): 2 = the cores of the machine measured in docs/benchmarks.md.
SHARDS = 2
SHARD_BATCH = 100_000  # rows per statement: bounds one transaction's length and memory
HEAVY_BATCH = 10
HEAVY_BATCHES_PER_TICK = 5
SNOOZE = timedelta(minutes=30)
ENSURE_EVERY = timedelta(minutes=10)
NUDGE_AT = time(10, 0)
WEEKLY_AT, WEEKLY_DAY = time(19, 0), 6  # Sunday 19:00 local
DIGEST_AT, DIGEST_DAY = time(8, 0), 0  # Monday 08:00 local, the start of the doctor's week
TIP_AT = time(9, 0)
# The first summary/digest only after some use, so it has something to say.
FIRST_WEEKLY_AFTER = timedelta(days=5)
FIRST_DIGEST_AFTER = timedelta(days=7)


def _(msgid: str) -> str:
    return msgid


REMINDER_TEXT = {
    "bp": _("⏰ Time to measure your blood pressure."),
    "glucose": _("⏰ Time to measure your blood glucose."),
    "medicine": _("⏰ Time for your medicine: {name}"),
}


@dataclass(frozen=True)
class Prefs:
    """Quiet hours and subscriptions, with defaults for a person who never changed them."""

    quiet_start: time = DEFAULT_QUIET_START
    quiet_end: time = DEFAULT_QUIET_END
    tip_on: bool = False
    tip_at: time | None = None


REMINDER_LABELS = (_("Done"), _("Snooze 30 min"), _("Skip"))


def reminder_buttons(t: Any, origin_id: int) -> list[list[list[str]]]:
    done, snooze, skip = (t(label) for label in REMINDER_LABELS)
    return [[[done, f"rm:done:{origin_id}"], [snooze, f"rm:snz:{origin_id}"], [skip, f"rm:skip:{origin_id}"]]]


def _quiet(prefs: tuple[str, str] | None) -> tuple[time, time]:
    if prefs is None:
        return DEFAULT_QUIET_START, DEFAULT_QUIET_END
    return time.fromisoformat(prefs[0]), time.fromisoformat(prefs[1])


async def not_in_quiet_hours(session: AsyncSession, user: User, now: datetime) -> datetime:
    """When a non-urgent message to `user` may go out: now, or the end of their quiet hours.

    For messages queued by other features (a plan update announced at 23:00 waits until 07:00);
    reminders themselves apply the same rule in SQL (reminder_enqueue)."""
    row = await session.get(ReminderPrefs, user.id)
    start, end = _quiet((row.quiet_start, row.quiet_end) if row else None)
    if in_quiet_hours(now, user.timezone, start, end):
        return quiet_hours_end(now, user.timezone, end)
    return now


class ReminderService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, panel: PanelService,
                 education: EducationService, *, postgres: bool = False):
        self._sessions = sessions
        self._clock = clock
        self._panel = panel
        self._education = education
        self._postgres = postgres
        self._last_ensure: datetime | None = None
        self._enqueue = LightEnqueue(postgres, REMINDER_TEXT, REMINDER_LABELS, LIGHT_KINDS)

    # --- the person's settings -------------------------------------------------------------
    async def list(self, user_id: int) -> list[tuple[Reminder, Medicine | None]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(Reminder, Medicine).outerjoin(Medicine, Medicine.id == Reminder.medicine_id)
                .where(Reminder.user_id == user_id, Reminder.kind.in_(LIGHT_KINDS), Reminder.one_off.is_(False))
                .order_by(Reminder.id))
            return [(r, m) for r, m in rows.all()]

    async def add(self, user_id: int, kind: str, times: Sequence[time], weekdays: Sequence[int] = (),
                  medicine_id: int | None = None) -> Reminder | None:
        """None when the kind is unknown, no time given, or the medicine is not this user's."""
        if kind not in LIGHT_KINDS or not times:
            return None
        now = self._clock.now()
        async with self._sessions.begin() as session:
            user = await session.get(User, user_id)
            if user is None:
                return None
            if kind == "medicine":
                medicine = await session.get(Medicine, medicine_id) if medicine_id else None
                if medicine is None or medicine.patient_id != user_id:
                    return None
            else:
                medicine_id = None
            due = next_occurrence(times, weekdays, user.timezone, now)
            assert due is not None
            row = Reminder(user_id=user_id, kind=kind, medicine_id=medicine_id, times=format_times(times),
                           weekdays=weekdays_to_str(weekdays), tz=user.timezone, next_due_at=due, created_at=now)
            session.add(row)
        return row

    async def delete(self, user_id: int, reminder_id: int) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(delete(Reminder).where(
                Reminder.id == reminder_id, Reminder.user_id == user_id, Reminder.kind.in_(LIGHT_KINDS)))
            return bool(result.rowcount)

    async def get_own(self, user_id: int, reminder_id: int) -> tuple[Reminder, Medicine | None] | None:
        async with self._sessions() as session:
            row = await session.get(Reminder, reminder_id)
            if row is None or row.user_id != user_id or row.kind not in LIGHT_KINDS:
                return None
            medicine = await session.get(Medicine, row.medicine_id) if row.medicine_id else None
            return row, medicine

    async def snooze(self, user_id: int, reminder_id: int) -> datetime | None:
        """A one-off row due in 30 min that repeats the reminder; None for a foreign/stale id."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            origin = await session.get(Reminder, reminder_id)
            if origin is None or origin.user_id != user_id or origin.kind not in LIGHT_KINDS:
                return None
            due = now + SNOOZE
            session.add(Reminder(user_id=user_id, kind=origin.kind, medicine_id=origin.medicine_id, times="",
                                 tz=origin.tz, next_due_at=due, one_off=True,
                                 payload={"origin": origin.id}, created_at=now))
            return due

    async def prefs(self, user_id: int) -> Prefs:
        async with self._sessions() as session:
            row = await session.get(ReminderPrefs, user_id)
            tip = await session.scalar(select(Reminder).where(Reminder.user_id == user_id, Reminder.kind == "tip"))
        start, end = _quiet((row.quiet_start, row.quiet_end) if row else None)
        return Prefs(start, end, tip is not None, times_from_str(tip.times)[0] if tip else None)

    async def _prefs_row(self, session: AsyncSession, user_id: int) -> ReminderPrefs:
        row = await session.get(ReminderPrefs, user_id)
        if row is None:
            profile = await session.get(PatientProfile, user_id)
            row = ReminderPrefs(user_id=user_id, quiet_start="22:00", quiet_end="07:00", tip_seen={},
                                rhythm_days=rhythm_days(profile.condition_set if profile else ()), nudge_level=0)
            session.add(row)
            await session.flush()
        return row

    async def set_quiet_hours(self, user_id: int, start: time, end: time) -> None:
        async with self._sessions.begin() as session:
            row = await self._prefs_row(session, user_id)
            row.quiet_start, row.quiet_end = start.strftime("%H:%M"), end.strftime("%H:%M")

    async def set_tip(self, user_id: int, on: bool, at: time = TIP_AT) -> datetime | None:
        """Subscribe to (or stop) the daily tip at local time `at`; returns the first due instant."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            await session.execute(delete(Reminder).where(Reminder.user_id == user_id, Reminder.kind == "tip"))
            if not on:
                return None
            user = await session.get(User, user_id)
            if user is None:
                return None
            due = next_occurrence((at,), None, user.timezone, now)
            assert due is not None
            session.add(Reminder(user_id=user_id, kind="tip", times=at.strftime("%H:%M"), tz=user.timezone,
                                 next_due_at=due, created_at=now))
            return due

    async def reschedule_user(self, user_id: int) -> int:
        """The person's zone changed: recompute every recurring row in the new zone."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            user = await session.get(User, user_id)
            if user is None:
                return 0
            rows = list(await session.scalars(select(Reminder).where(Reminder.user_id == user_id,
                                                                     Reminder.one_off.is_(False))))
            for row in rows:
                due = next_occurrence(times_from_str(row.times), weekdays_from_str(row.weekdays), user.timezone, now)
                if due is not None:
                    row.next_due_at, row.tz = due, user.timezone
            return len(rows)

    async def silent_ids(self, patient_ids: Sequence[int]) -> set[int]:
        """Patients marked silent after a second missed rhythm (for the doctor's panel)."""
        async with self._sessions() as session:
            return set(await session.scalars(select(ReminderPrefs.user_id).where(
                ReminderPrefs.user_id.in_(patient_ids), ReminderPrefs.silent_since.is_not(None))))

    # --- the tick ---------------------------------------------------------------------------
    async def tick(self, now: datetime | None = None) -> int:
        """Queue everything due; returns the number of outbox rows queued."""
        now = now or self._clock.now()
        if self._last_ensure is None or now - self._last_ensure >= ENSURE_EVERY or now < self._last_ensure:
            await with_retry(lambda: self.ensure_defaults(now))
            self._last_ensure = now
        if self._postgres:
            # Every shard runs to its end before a failure is raised: a failed sibling must not leave the
            # other still writing in the background while the next tick starts (each is atomic anyway).
            results = await asyncio.gather(*(self._light_shard(now, k) for k in range(SHARDS)),
                                           return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise failed[0]
            queued = sum(r for r in results if isinstance(r, int))
        else:
            queued = 0
            while True:
                n, more = await with_retry(lambda: self._light_batch(now))
                queued += n
                if not more:
                    break
        for _i in range(HEAVY_BATCHES_PER_TICK):
            n, more = await with_retry(lambda: self._heavy_batch(now))
            queued += n
            if not more:
                break
        return queued

    def _claim(self, kinds: Sequence[str], now: datetime, limit: int) -> Any:
        query = (select(Reminder).where(Reminder.next_due_at <= now, Reminder.kind.in_(kinds))
                 .order_by(Reminder.next_due_at, Reminder.id).limit(limit))
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        return query

    async def _insert_outbox(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        dialect = postgresql if self._postgres else sqlite
        stmt = dialect.insert(Outbox).on_conflict_do_nothing(index_elements=["dedupe_key"])
        await session.execute(stmt, rows)

    async def _light_batch(self, now: datetime) -> tuple[int, bool]:
        """One set-based batch (bot.services.reminder_enqueue): claim, INSERT ... SELECT, advance."""
        async with self._sessions.begin() as session:
            claimed = await self._enqueue.claim(session, now, LIGHT_BATCH)
            if not claimed.ids:
                return 0, False
            queued = await self._enqueue.enqueue(session, claimed, now)
            await self._enqueue.advance(session, claimed, now)
            return queued, len(claimed.ids) == LIGHT_BATCH

    async def _light_shard(self, now: datetime, shard: int) -> int:
        """PostgreSQL: this shard's due rows, SHARD_BATCH per transaction, until none is left (or only
        rows that changed under us, which the next tick takes)."""
        queued = 0
        while True:
            done = await with_retry(lambda: self._light_shard_pass(now, shard))
            queued += done.queued
            if done.claimed < SHARD_BATCH or done.moved == 0:
                return queued

    async def _light_shard_pass(self, now: datetime, shard: int) -> ShardPass:
        async with self._sessions.begin() as session:
            return await self._enqueue.run_shard(session, now, shard, SHARDS, SHARD_BATCH)

    async def _heavy_batch(self, now: datetime) -> tuple[int, bool]:
        queued = 0
        async with self._sessions.begin() as session:
            rows = list(await session.scalars(self._claim(HEAVY_KINDS, now, HEAVY_BATCH)))
            for row in rows:
                queued += await self._heavy_one(session, row, now)
        return queued, len(rows) == HEAVY_BATCH

    async def _heavy_one(self, session: AsyncSession, row: Reminder, now: datetime) -> int:
        user = await session.get(User, row.user_id)
        due = row.next_due_at
        times, days = times_from_str(row.times), weekdays_from_str(row.weekdays)
        tz = user.timezone if user else row.tz
        if user is None or user.chat_id is None or user.unreachable_at is not None or row.tz != tz \
                or is_too_late(due, now):
            row.next_due_at, row.tz = next_occurrence(times, days, tz, now) or now + timedelta(days=1), tz
            return 0
        prefs = await self._prefs_row(session, user.id)
        start, end = _quiet((prefs.quiet_start, prefs.quiet_end))
        if in_quiet_hours(now, tz, start, end):
            row.next_due_at = quiet_hours_end(now, tz, end)  # postponed, sent at the end of quiet hours
            return 0
        key = f"rem:{row.id}:{due.isoformat()}"
        messages: list[dict[str, Any]] = []

        def message(recipient: User, payload: dict[str, Any], suffix: str = "") -> None:
            messages.append({"kind": "reminder", "recipient_id": recipient.id, "chat_id": recipient.chat_id,
                             "payload": payload, "dedupe_key": key + suffix, "next_attempt_at": now,
                             "created_at": now})

        nxt = next_occurrence(times, days, tz, now)
        t = translator(user.language)
        if row.kind == "tip":
            profile = await session.get(PatientProfile, user.id)
            last_bp, last_glu, urgent = await last_readings(session, user.id)
            age = now.year - profile.birth_year if profile and profile.birth_year else None
            ctx = tip_context(profile, None, last_bp, last_glu, urgent, now.astimezone(zone(tz)).month, age)
            focus = await plan_focus(session, user.id)  # issue 10: the care plan's goals not met come first
            ctx = replace(ctx, plan_topics=focus.topics, smoker=focus.smoker)
            seen = list((prefs.tip_seen or {}).get("ids", []))
            tip = default_catalog().next_tip(ctx, seen, user.language)
            if tip is not None:
                prefs.tip_seen = {"ids": ([*seen, tip.id] if tip.id not in seen else [tip.id])[-200:]}
                message(user, {"text": "💡 " + tip.text_for(user.language),
                               "buttons": [[[t("Stop daily tips"), "sub:tip:off"]]]})
        elif row.kind == "nudge":
            await self._nudge(session, user, prefs, now, message)
        elif row.kind == "lesson":
            lesson = await self._education.compose(session, row, user, now)
            if lesson.text:
                message(user, {"text": lesson.text, "buttons": lesson.buttons})
            if lesson.finished:
                await session.delete(row)
                await self._insert_outbox(session, messages)
                return len(messages)
            nxt = lesson.retry_at or nxt
        elif row.kind == "weekly":
            seen = list((prefs.tip_seen or {}).get("ids", []))
            text, png, facts, tip_id = await weekly_patient(session, user, now, seen)
            if tip_id:
                prefs.tip_seen = {"ids": ([*seen, tip_id] if tip_id not in seen else [tip_id])[-200:]}
            message(user, {"text": text})
            if png:
                message(user, {"text": t("Your readings this week"),
                               "photo_png_b64": base64.b64encode(png).decode("ascii")}, ":chart")
            for carer, _link in (await session.execute(
                    select(User, CaregiverLink).join(CaregiverLink, CaregiverLink.caregiver_id == User.id)
                    .where(CaregiverLink.patient_id == user.id, CaregiverLink.receive_summary.is_(True)))).all():
                if carer.chat_id and carer.unreachable_at is None:
                    message(carer, {"text": weekly_caregiver(carer, user, facts)}, f":cg:{carer.id}")
        elif row.kind == "digest":
            message(user, {"text": await doctor_digest(self._panel, user)})
        row.next_due_at = nxt or now + timedelta(days=1)
        await self._insert_outbox(session, messages)
        return len(messages)

    async def _nudge(self, session: AsyncSession, user: User, prefs: ReminderPrefs, now: datetime,
                     message: Any) -> None:
        """No reading for the person's rhythm: one gentle nudge; a second miss tells the caregiver
        (receive_summary or receive_alerts) and marks the patient silent for the panel."""
        last = await session.scalar(select(Reading.measured_at).where(
            Reading.patient_id == user.id, Reading.kind.in_(("bp", "glucose")))
            .order_by(Reading.measured_at.desc()).limit(1))
        if prefs.nudge_level and last is not None and prefs.last_nudge_at is not None and last > prefs.last_nudge_at:
            prefs.nudge_level, prefs.silent_since, prefs.last_nudge_at = 0, None, None  # they came back
        rhythm = timedelta(days=max(1, prefs.rhythm_days))
        since = last or user.onboarded_at or user.created_at
        if now - since < rhythm:
            return
        t = translator(user.language)
        if prefs.nudge_level == 0:
            message(user, {"text": t("Hello! No reading for {days} days. When you have a moment, measure and "
                                     "send it here, like 135/85.", days=(now - since).days)})
            prefs.nudge_level, prefs.last_nudge_at = 1, now
        elif prefs.nudge_level == 1 and prefs.last_nudge_at and now - prefs.last_nudge_at >= rhythm:
            prefs.nudge_level, prefs.silent_since = 2, now
            carers = (await session.execute(
                select(User).join(CaregiverLink, CaregiverLink.caregiver_id == User.id)
                .where(CaregiverLink.patient_id == user.id,
                       (CaregiverLink.receive_summary.is_(True)) | (CaregiverLink.receive_alerts.is_(True))))).scalars()
            for carer in carers:
                if carer.chat_id and carer.unreachable_at is None:
                    ct = translator(carer.language)
                    message(carer, {"text": ct("{name} has not sent a reading for {days} days. Maybe give them "
                                               "a call?", name=user.display_name or user.first_name,
                                               days=(now - since).days)}, f":cg:{carer.id}")

    async def ensure_defaults(self, now: datetime) -> int:
        """Create the bot's own rows (weekly summary, nudge check for patients; digest for doctors)
        for people who lack them. Idempotent; runs every few minutes, not every tick."""
        created = 0
        async with self._sessions.begin() as session:
            for kind, at, day, after, role in (("weekly", WEEKLY_AT, WEEKLY_DAY, FIRST_WEEKLY_AFTER, "patient"),
                                               ("nudge", NUDGE_AT, None, timedelta(0), "patient"),
                                               ("digest", DIGEST_AT, DIGEST_DAY, FIRST_DIGEST_AFTER, "doctor")):
                missing = (await session.execute(
                    select(User.id, User.timezone, User.created_at)
                    .join(UserRole, (UserRole.user_id == User.id) & (UserRole.role == role))
                    .where(~exists().where(Reminder.user_id == User.id, Reminder.kind == kind))
                    .limit(5000))).all()
                values = []
                for uid, tz, created_at in missing:
                    start = max(now, (created_at or now) + after)
                    due = next_occurrence((at,), None if day is None else (day,), tz, start)
                    values.append({"user_id": uid, "kind": kind, "times": at.strftime("%H:%M"),
                                   "weekdays": "" if day is None else str(day), "tz": tz, "next_due_at": due,
                                   "one_off": False, "payload": {}, "created_at": now})
                if values:
                    await session.execute(Reminder.__table__.insert(), values)
                    created += len(values)
        return created
