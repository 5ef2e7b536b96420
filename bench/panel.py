"""Dashboard benchmark: panel, patient and indicators pages, and the streamed CSV export.

    .venv/bin/python -m bench.panel            # 4 000 patients, 400 000 readings (SQLite + PostgreSQL)
    .venv/bin/python -m bench.panel --full     # 100 000 patients, 10 000 000 readings
    .venv/bin/python -m bench.panel --patients 20000 --readings 2000000 --only sqlite
    .venv/bin/python -m bench.panel --full --keep-sqlite /tmp/full.sqlite3 --keep-pg bench_full [--pages-only]
        # seed once, reuse on the next runs (A/B of code on the same data); delete / drop them yourself

The default keeps the full size's shape (2 000 patients per doctor, 100 readings per patient), so the
per-page work is the same; only the tables are smaller. Seeds with bulk inserts (sqlite3 executemany /
PostgreSQL COPY), readings generated and inserted 100 000 at a time so memory stays flat; serves the
real dashboard on the real aiohttp app (no Telegram needed for the web side), logs a doctor in through
a one-time link, and times requests from one client. Baseline: a trivial aiohttp handler on the same server, measured in the same run.
Prints one JSON line per figure: {"bench", "db", "metric", "value", "unit", "target", "baseline", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

PER_DOCTOR = 2000
PG_ADMIN = os.environ.get("CARECIRCLE_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 6, 30, 4, 0, tzinfo=UTC)


def emit(**values: Any) -> None:
    print(json.dumps({"bench": "panel", **values}), flush=True)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def rows_for(patients: int, readings: int, seed: int = 7) -> dict[str, list[tuple[Any, ...]]]:
    """Every row but the readings, as tuples in column order (see COLUMNS); readings come in chunks
    from `reading_chunks` so ten million of them never sit in memory at once."""
    rnd = random.Random(seed)
    teams = max(1, patients // PER_DOCTOR)
    naive_now = NOW.replace(tzinfo=None)
    out: dict[str, list[tuple[Any, ...]]] = {k: [] for k in COLUMNS if k != "readings"}
    for t in range(1, teams + 1):
        out["teams"].append((t, f"Team {t}", "Asia/Shanghai", "08:00", "17:30", naive_now))
    # users: doctors 1..teams, an export doctor (member of every team), then patients
    for d in range(1, teams + 2):
        out["users"].append((d, None, None, f"Dr {d}", f"Dr {d}", "en", "Asia/Shanghai", naive_now, naive_now,
                             naive_now))
        out["user_roles"].append((d, "doctor"))
    for t in range(1, teams + 1):
        out["team_members"].append((t, t, "gp", 0, True))
        out["team_members"].append((t, teams + 1, "gp", 1, False))
    first_patient = teams + 2
    for i in range(patients):
        pid = first_patient + i
        team = i // PER_DOCTOR % teams + 1
        linked = naive_now - timedelta(days=rnd.randint(30, 900))
        out["users"].append((pid, None, None, f"P{pid}", f"Patient {pid}", "en", "Asia/Shanghai", linked, linked,
                             linked))
        out["user_roles"].append((pid, "patient"))
        conditions = CONDITIONS[pid % 3]
        due = (naive_now - timedelta(days=rnd.randint(-90, 30))).date()
        out["patient_profiles"].append((pid, conditions, 1940 + rnd.randint(0, 40), "mmol",
                                        rnd.choice(("standard", "standard", "high")), team, team, linked, due))
        out["followups"].append((pid, team, (naive_now - timedelta(days=rnd.randint(0, 200))).date(), "clinic",
                                 "confirmed", "controlled", "", "{}", naive_now))
        for k in range(4):
            out["medication_logs"].append((pid, "taken" if k else rnd.choice(("taken", "missed")),
                                           naive_now - timedelta(days=k * 7), "", 0))
        if i % 100 == 0:
            out["alerts"].append((pid, "bp_urgent", "open", naive_now - timedelta(hours=i % 48), 0, 0))
    return out


CONDITIONS = ("hypertension", "diabetes", "hypertension,diabetes")


def reading_chunks(patients: int, readings: int, seed: int = 11, size: int = 100_000
                   ) -> Iterator[list[tuple[Any, ...]]]:
    """The readings, patient by patient, `size` rows at a time (columns as COLUMNS["readings"])."""
    rnd = random.Random(seed)
    teams = max(1, patients // PER_DOCTOR)
    naive_now = NOW.replace(tzinfo=None)
    per_patient = max(1, readings // max(1, patients))
    span = 180 * 24 * 60
    rid = 0
    chunk: list[tuple[Any, ...]] = []
    for pid in range(teams + 2, teams + 2 + patients):
        conditions = CONDITIONS[pid % 3]
        for k in range(per_patient):
            rid += 1
            at = naive_now - timedelta(minutes=rnd.randrange(span))
            if "hypertension" in conditions and (k % 3 or "diabetes" not in conditions):
                s = rnd.randint(105, 175)
                chunk.append((rid, pid, "bp", s, s - rnd.randint(30, 60), rnd.randint(55, 95), None, None, "",
                              False, s < 140, at, at, 0, ""))
            else:
                mmol = round(rnd.uniform(4.0, 11.0), 1)
                chunk.append((rid, pid, "glucose", None, None, None, mmol, "fasting" if k % 2 else "after_meal",
                              "", False, mmol <= 7.0, at, at, 0, ""))
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


COLUMNS = {
    "teams": ("id", "name", "timezone", "work_start", "work_end", "created_at"),
    "users": ("id", "telegram_id", "chat_id", "first_name", "display_name", "language", "timezone", "created_at",
              "consent_at", "onboarded_at"),
    "user_roles": ("user_id", "role"),
    "team_members": ("team_id", "user_id", "role", "oncall_order", "is_lead"),
    "patient_profiles": ("user_id", "conditions", "birth_year", "glucose_unit", "risk", "team_id", "doctor_id",
                         "linked_at", "next_followup_due"),
    "followups": ("patient_id", "doctor_id", "visit_date", "way", "status", "outcome", "medication_change",
                  "details", "created_at"),
    "readings": ("id", "patient_id", "kind", "systolic", "diastolic", "pulse", "mmol", "context", "category",
                 "urgent", "in_target", "measured_at", "created_at", "seq", "symptoms"),
    "medication_logs": ("patient_id", "status", "logged_at", "note", "source_update_id"),
    "alerts": ("patient_id", "rule", "status", "created_at", "repeat_count", "escalation_level"),
}


async def migrate(url: str) -> None:
    from storage.db import create_engine
    from storage.migrate import upgrade

    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # the text format SQLAlchemy's SQLite DATETIME writes, so range comparisons agree
    return tuple(v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in row)


def seed_sqlite(path: str, data: dict[str, list[tuple[Any, ...]]], patients: int, readings: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA journal_mode=WAL")
    for table, cols in COLUMNS.items():
        marks = ",".join("?" * len(cols))
        sql = f"INSERT INTO {table} ({','.join(cols)}) VALUES ({marks})"
        chunks = reading_chunks(patients, readings) if table == "readings" else [data[table]]
        for chunk in chunks:
            conn.executemany(sql, map(_sqlite_row, chunk))
        conn.commit()
    conn.execute("ANALYZE")
    conn.close()


async def seed_pg(dsn: str, data: dict[str, list[tuple[Any, ...]]], patients: int, readings: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for table, cols in COLUMNS.items():
            chunks = reading_chunks(patients, readings) if table == "readings" else [data[table]]
            for chunk in chunks:
                await conn.copy_records_to_table(table, records=chunk, columns=list(cols))
        for table in ("teams", "users", "readings"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))")
        await conn.execute("VACUUM ANALYZE")  # as autovacuum would: visibility map for index-only scans
    finally:
        await conn.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(http: aiohttp.ClientSession, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        async with http.get(url) as response:
            await response.read()
            assert response.status == 200, (url, response.status)
        out.append((time.perf_counter() - started) * 1000)
    return out


async def run_one(kind: str, url: str, patients: int, reps: int, export: bool = True) -> None:
    from bot.app import build, freeze_startup_objects
    from bot.config import Settings
    from bot.services.clock import ManualClock

    teams = max(1, patients // PER_DOCTOR)
    settings = Settings(telegram_token="123456:" + "A" * 35, database_url=url, http_port=0,
                        dashboard_secret="bench")
    care = build(settings, clock=ManualClock(NOW))

    async def trivial(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    care.web_app.router.add_get("/bench/trivial", trivial)
    runner = web.AppRunner(care.web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    freeze_startup_objects()  # as `carecircle run` does once started
    base = f"http://127.0.0.1:{port}"
    try:
        # no total timeout: the full-size CSV export of 10 million rows takes minutes
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         timeout=aiohttp.ClientTimeout(total=None, sock_read=900)) as http:
            async def login(doctor_id: int) -> None:
                token = await care.services.dashboard.create_login(doctor_id)
                async with http.post(base + "/dashboard/login", data={"token": token}, allow_redirects=False) as r:
                    assert r.status == 303

            await login(1)
            baseline = await timed(http, base + "/bench/trivial", reps * 4)
            base_p50, base_p99 = pct(baseline, 0.5), pct(baseline, 0.99)
            emit(db=kind, metric="baseline_trivial_p50", value=round(base_p50, 2), unit="ms", target=None,
                 baseline=None)
            await timed(http, base + "/dashboard/", 2)  # warm caches
            panel = await timed(http, base + "/dashboard/", reps)
            emit(db=kind, metric="panel_page_p50", value=round(pct(panel, 0.5), 1), unit="ms", target=None,
                 baseline=round(base_p50, 2), patients_on_panel=PER_DOCTOR)
            emit(db=kind, metric="panel_page_p99", value=round(pct(panel, 0.99), 1), unit="ms", target=100,
                 baseline=round(base_p99, 2), patients_on_panel=PER_DOCTOR)
            first = teams + 2
            # The process's first patient page compiles patient.html and the page's statements (the panel
            # was warmed the same way above): timed apart, it is not one of the steady-state requests.
            cold = await timed(http, f"{base}/dashboard/patient/{first + PER_DOCTOR - 1}", 1)
            emit(db=kind, metric="patient_page_first", value=round(cold[0], 1), unit="ms", target=None,
                 baseline=None)
            await timed(http, f"{base}/dashboard/patient/{first + PER_DOCTOR - 2}", 1)  # warm caches
            rnd = random.Random(3)
            pages: list[float] = []
            for _ in range(reps):
                pages += await timed(http, f"{base}/dashboard/patient/{first + rnd.randrange(PER_DOCTOR)}", 1)
            emit(db=kind, metric="patient_page_p50", value=round(pct(pages, 0.5), 1), unit="ms", target=None,
                 baseline=round(base_p50, 2))
            emit(db=kind, metric="patient_page_p99", value=round(pct(pages, 0.99), 1), unit="ms", target=100,
                 baseline=round(base_p99, 2))
            end = NOW.date()
            query = f"?start={end - timedelta(days=89)}&end={end}"
            ind = await timed(http, base + "/dashboard/indicators" + query, max(5, reps // 5))
            emit(db=kind, metric="indicators_page_p50", value=round(pct(ind, 0.5), 1), unit="ms", target=None,
                 baseline=round(base_p50, 2))
            emit(db=kind, metric="indicators_page_p99", value=round(pct(ind, 0.99), 1), unit="ms", target=1000,
                 baseline=round(base_p99, 2))
            chart = await timed(http, base + "/dashboard/indicators/chart.svg" + query, max(3, reps // 10))
            emit(db=kind, metric="indicator_chart_p50", value=round(pct(chart, 0.5), 1), unit="ms", target=None,
                 baseline=round(base_p50, 2), months=6)
            emit(db=kind, metric="indicator_chart_max", value=round(max(chart), 1), unit="ms", target=None,
                 baseline=round(base_p99, 2), months=6)

            if not export:
                return
            # CSV export of every reading: the export doctor is in every team.
            await login(teams + 1)
            before = rss_mb()
            peak = before
            done = asyncio.Event()

            async def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, rss_mb())
                    await asyncio.sleep(0.05)

            sampler = asyncio.create_task(sample())
            started = time.perf_counter()
            lines = 0
            async with http.get(base + "/dashboard/export/readings.csv") as response:
                assert response.status == 200
                async for chunk in response.content.iter_chunked(1 << 16):
                    lines += chunk.count(b"\n")
            elapsed = time.perf_counter() - started
            done.set()
            await sampler
            rows = lines - 1
            emit(db=kind, metric="csv_export_readings_per_s", value=round(rows / elapsed), unit="rows/s",
                 target=100_000, baseline=None, rows=rows, seconds=round(elapsed, 2),
                 rss_before_mb=round(before, 1), rss_peak_mb=round(peak, 1),
                 rss_growth_mb=round(peak - before, 1))
    finally:
        await runner.cleanup()
        await care.services.engine.dispose()


async def main_async(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    data = rows_for(args.patients, args.readings)
    emit(db="-", metric="generated_rows", value=sum(len(v) for v in data.values()), unit="rows", target=None,
         baseline=None, seconds=round(time.perf_counter() - started, 1), readings_streamed=args.readings)
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            path = args.keep_sqlite or str(Path(tmp) / "bench.sqlite3")
            url = f"sqlite+aiosqlite:///{path}"
            if not Path(path).exists():
                t0 = time.perf_counter()
                await migrate(url)
                seed_sqlite(path, data, args.patients, args.readings)
                emit(db="sqlite", metric="seed_seconds", value=round(time.perf_counter() - t0, 1), unit="s",
                     target=None, baseline=None, readings=args.readings)
            await run_one("sqlite", url, args.patients, args.reps, not args.pages_only)
    if args.only in (None, "postgres"):
        import asyncpg

        admin_dsn = PG_ADMIN.replace("postgresql+asyncpg://", "postgresql://")
        name = args.keep_pg or "bench_" + uuid.uuid4().hex[:8]
        try:
            admin = await asyncpg.connect(admin_dsn, timeout=3)
        except (OSError, asyncpg.PostgresError) as exc:
            emit(db="postgres", metric="skipped", value=str(exc)[:100], unit=None, target=None, baseline=None)
            return
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        try:
            if not exists:
                t0 = time.perf_counter()
                await migrate(url)
                await seed_pg(url.replace("postgresql+asyncpg://", "postgresql://"), data, args.patients,
                              args.readings)
                emit(db="postgres", metric="seed_seconds", value=round(time.perf_counter() - t0, 1), unit="s",
                     target=None, baseline=None, readings=args.readings)
            await run_one("postgres", url, args.patients, args.reps, not args.pages_only)
        finally:
            if not args.keep_pg:
                admin = await asyncpg.connect(admin_dsn)
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="100 000 patients, 10 000 000 readings")
    parser.add_argument("--patients", type=int, default=4_000)
    parser.add_argument("--readings", type=int, default=400_000)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--pages-only", action="store_true", help="skip the CSV export (page timings only)")
    parser.add_argument("--keep-sqlite", metavar="PATH",
                        help="seed this SQLite file once and keep it (reused when it exists; delete it yourself)")
    parser.add_argument("--keep-pg", metavar="NAME",
                        help="seed this PostgreSQL database once and keep it (reused when it exists; drop it yourself)")
    args = parser.parse_args(argv)
    if args.full:
        args.patients, args.readings = 100_000, 10_000_000
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
