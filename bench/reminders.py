"""Reminder tick at scale: N patients with 2 reminders a day, every patient's morning one due in the same minute.

The issue's shape: 100 000 patients x 2 reminders a day (blood pressure at 09:00, glucose at 20:00),
so the 09:00 minute holds 100 000 due reminders (target < 5 s to enqueue them). `--same-minute`
puts both reminders at 09:00 (200 000 due at once), a harsher stress figure reported beside it.

Prints one JSON line per result: enqueue time, tick cost when
nothing is due (target < 50 ms), peak RSS (target < 300 MB), and the delivery rate of a sample
through FakeTelegram (target <= 30 msg/s with zero 429). Baselines measured in the same run:
the enqueue of a 1/10 population (linearity), an empty-table tick, RSS before seeding.

    .venv/bin/python -m bench.reminders            # 20 000 patients, SQLite and PostgreSQL
    .venv/bin/python -m bench.reminders --full     # 100 000 patients
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from bot.config import Settings
from bot.services.clock import ManualClock
from bot.services.container import Services
from storage.migrate import upgrade
from storage.models import Outbox, User, UserRole
from storage.reminder_models import Reminder

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DUE = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 Shanghai


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


EVENING = "20:00"


async def seed(services: Services, n: int, same_minute: bool) -> None:
    """Users, roles and 2 reminders each, bulk inserted (seeding is not what we measure)."""
    second = ("09:00", DUE) if same_minute else (EVENING, DUE + timedelta(hours=11))
    users, roles, rems = User.__table__, UserRole.__table__, Reminder.__table__
    step = 5000
    async with services.sessions.begin() as session:
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            await session.execute(users.insert(), [
                {"id": i + 1, "telegram_id": 10_000_000 + i, "chat_id": 10_000_000 + i, "first_name": "P",
                 "display_name": "P", "language": "en" if i % 2 else "zh_CN", "timezone": "Asia/Shanghai",
                 "created_at": DUE - timedelta(days=30), "consent_at": DUE, "onboarded_at": DUE}
                for i in range(lo, hi)])
            await session.execute(roles.insert(), [{"user_id": i + 1, "role": "patient"} for i in range(lo, hi)])
            await session.execute(rems.insert(), [
                {"user_id": i + 1, "kind": kind, "medicine_id": None, "times": times, "weekdays": "",
                 "tz": "Asia/Shanghai", "next_due_at": due, "one_off": False, "payload": {}, "created_at": DUE}
                for i in range(lo, hi) for kind, times, due in (("bp", "09:00", DUE), ("glucose", *second))])


async def run_db(label: str, url: str, n: int, same_minute: bool) -> None:
    clock = ManualClock(DUE - timedelta(minutes=1))
    services = Services.build(Settings(database_url=url), clock)
    try:
        await upgrade(services.engine)
        await services.reminders.tick()  # empty table: baseline tick (also runs ensure once)
        t0 = time.perf_counter()
        for _ in range(20):
            await services.reminders.tick()
        empty_ms = (time.perf_counter() - t0) / 20 * 1000
        await seed(services, n, same_minute)
        if label == "postgresql":  # what autovacuum does after a bulk load; without it the planner guesses 100 rows
            async with services.engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE")
        services.reminders._last_ensure = clock.now()
        t0 = time.perf_counter()
        for _ in range(20):
            await services.reminders.tick()
        idle_ms = (time.perf_counter() - t0) / 20 * 1000
        emit(bench="reminders.tick_nothing_due", db=label, patients=n, ms=round(idle_ms, 2), target_ms=50,
             baseline_empty_table_ms=round(empty_ms, 2))
        clock.advance(minutes=1, seconds=10)
        t0 = time.perf_counter()
        queued = await services.reminders.tick()
        seconds = time.perf_counter() - t0
        due = 2 * n if same_minute else n
        emit(bench="reminders.enqueue_due_minute", db=label, patients=n, reminders=2 * n, due_now=due,
             queued=queued, seconds=round(seconds, 2), rows_per_s=round(queued / seconds),
             target_seconds_for_100k_due=5, projected_seconds_for_100k_due=round(seconds * 100_000 / due, 2))
    finally:
        await services.engine.dispose()


async def delivery(sample: int) -> None:
    from bot.app import build
    from bot.sandbox import FakeTelegram

    async with FakeTelegram() as tg:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
            settings = Settings(telegram_token=tg.token, telegram_api_base=tg.base_url, database_url=url,
                                bot_username=tg.bot_username)
            care = build(settings)
            await upgrade(care.services.engine)
            await care.application.initialize()
            sims = [tg.user(f"U{i}", started=True) for i in range(sample)]
            async with care.services.sessions.begin() as session:
                for s in sims:
                    session.add(Outbox(kind="reminder", chat_id=s.id, payload={"text": "⏰ Time to measure."},
                                       next_attempt_at=care.services.clock.now() - timedelta(seconds=1)))
            t0 = time.perf_counter()
            worker = care.services.outbox
            while await worker.pending_count():
                await worker.run_once(care.application.bot)
            seconds = time.perf_counter() - t0
            await care.application.shutdown()
            await care.services.engine.dispose()
            emit(bench="reminders.delivery_rate", messages=sample, seconds=round(seconds, 2),
                 msg_per_s=round(sample / seconds, 1), target_max_msg_per_s=30,
                 http_429=tg.stats.too_many_requests, sent=worker.stats.sent)


async def pg_url() -> str | None:
    try:
        conn = await asyncpg.connect(PG.replace("+asyncpg", ""), timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    name = "bench_" + uuid.uuid4().hex[:8]
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return PG.rsplit("/", 1)[0] + "/" + name


async def drop_pg(url: str) -> None:
    conn = await asyncpg.connect(PG.replace("+asyncpg", ""))
    await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m bench` (which passes argv=[]) and `python -m bench.reminders`."""
    parser = argparse.ArgumentParser(prog="bench.reminders", description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="100 000 patients")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--same-minute", action="store_true",
                        help="both reminders of every patient at 09:00 (2 x N due at once)")
    args = parser.parse_args(argv)
    asyncio.run(_main(args))
    return 0


async def _main(args: argparse.Namespace) -> None:
    n = args.patients or (100_000 if args.full else 20_000)
    rss_before = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        await run_db("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.sqlite3", n, args.same_minute)
    url = await pg_url()
    if url:
        try:
            await run_db("postgresql", url, n, args.same_minute)
        finally:
            await drop_pg(url)
    else:
        emit(bench="reminders.enqueue_due_minute", db="postgresql", skipped="PostgreSQL not reachable")
    emit(bench="reminders.peak_rss", patients=n, mb=round(rss_mb(), 1), target_mb=300,
         baseline_before_seed_mb=round(rss_before, 1))
    await delivery(args.sample)


if __name__ == "__main__":
    raise SystemExit(main())
