"""Scale-out: `carecircle run --workers 2` as real processes behind one webhook port, on one
PostgreSQL, fed by FakeTelegram's webhook delivery. Each chat stays in order, no update is handled
twice, no outbox row is sent twice, bulk sends stay within the global rate limit, and the workers
ride out PostgreSQL dropping every connection."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from sqlalchemy import func, select

from bot.config import Settings
from bot.sandbox import ChatEvent, FakeTelegram, SimUser
from bot.services.container import Services
from storage.models import Outbox, Reading, UpdateInbox, UpdateLog
from tests.conftest import free_port
from tests.e2e.test_crash import TOKEN, _collect, _seed

ROOT = Path(__file__).parents[2]
SECRET = "scale-test-secret"


@asynccontextmanager
async def workers(tg: FakeTelegram, url: str, count: int, log_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`carecircle run --workers N` in webhook mode; stopped with SIGTERM (their stats go to the log)."""
    port = free_port()
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE": tg.base_url, "DATABASE_URL": url,
           "HTTP_PORT": str(port), "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/webhook",
           "WEBHOOK_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:  # noqa: ASYNC230 - opened once, before the event loop is busy
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--log-level", "INFO", "run", "--workers", str(count),
            env=env, cwd=str(ROOT), stderr=log, stdout=log)
        try:
            deadline = time.monotonic() + 180  # a hang guard: ~10 s on a quiet machine, over 60 s on a shared one
            while not (tg.webhook_url and _leader_count(log_path) >= 1
                       and log_path.read_text(errors="replace").count("CareCircle is running (webhook") == count):
                assert proc.returncode is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "the workers did not start:\n" + log_path.read_text()[-3000:]
                await asyncio.sleep(0.1)
            async with aiohttp.ClientSession() as http:  # every worker answers on the shared port
                for _ in range(100):
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                        if r.status == 200:
                            break
                    await asyncio.sleep(0.05)
            yield proc
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 30)


def _leader_count(log_path: Path) -> int:
    return log_path.read_text(errors="replace").count("is the leader")


def _worker_stats(log_path: Path) -> dict[str, tuple[int, int, int]]:
    found = re.findall(r"worker (\d+/\d+): (\d+) updates received \((\d+) for other workers\), (\d+) handled here",
                       log_path.read_text(errors="replace"))
    return {w: (int(a), int(b), int(c)) for w, a, b, c in found}


async def _queue_bulk(url: str, users: list[SimUser], per_user: int) -> list[str]:
    """Outbox rows the bot sends on its own (like reminders): the leader must send each once, at <= 30/s."""
    services = Services.build(Settings(database_url=url))
    texts = []
    async with services.sessions.begin() as session:
        for u in users:
            for k in range(per_user):
                text = f"bulk {u.id} #{k}"
                texts.append(text)
                session.add(Outbox(kind="notice", chat_id=u.id, payload={"text": text}, dedupe_key=text,
                                   next_attempt_at=datetime.now(UTC)))
    await services.engine.dispose()
    return texts


async def _leave_in_inbox(url: str, users: list[SimUser], text: str) -> int:
    """Updates a one-process bot stored (no chat key) and had not handled when the workers start."""
    services = Services.build(Settings(database_url=url))
    await services.ledger.receive([
        {"update_id": 1000 + n, "message": {"message_id": 1, "date": int(time.time()), "text": text,
                                            "chat": {"id": u.id, "type": "private", "first_name": u.first_name},
                                            "from": {"id": u.id, "is_bot": False, "first_name": u.first_name}}}
        for n, u in enumerate(users)])
    await services.engine.dispose()
    return len(users)


def _max_per_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


ANSWER = re.compile(r"Saved: BP|something went wrong|Patient: ")  # an answer to a reading; an alert


async def _replies(users: list[SimUser], want: int | dict[int, int], quiet: float = 1.0,
                   timeout: float = 20.0) -> dict[int, list[str]]:
    """What each user got: `want` answers (or `timeout` s: a loaded machine starts slowly), then
    whatever else comes before the bot is quiet for `quiet` s (a duplicate would)."""
    async def one(u: SimUser) -> list[str]:
        texts: list[str] = []
        deadline = time.monotonic() + timeout
        wanted = want if isinstance(want, int) else want[u.id]
        while sum(1 for t in texts if ANSWER.search(t)) < wanted and time.monotonic() < deadline:
            try:
                texts.append((await u.next_message(timeout=max(0.1, deadline - time.monotonic()))).text)
            except AssertionError:
                break
        return texts + await _collect(u, quiet=quiet)

    texts = await asyncio.gather(*(one(u) for u in users))
    return {u.id: t for u, t in zip(users, texts, strict=True)}


def _bp_order(texts: list[str]) -> list[str]:
    return [m.group(1) for t in texts if (m := re.search(r"Saved: BP (\d+/\d+)", t))]


async def test_two_workers_keep_order_and_send_nothing_twice(pg_url: str, tmp_path: Path) -> None:
    async with FakeTelegram(token=TOKEN, webhook_max_connections=8) as tg:
        doctor = tg.user("Dr Li", started=True)
        patients = [tg.user(f"Patient{i}", started=True) for i in range(10)]
        bulk_users = [tg.user(f"Reader{i}", started=True) for i in range(30)]
        await _seed(pg_url, doctor, patients)
        bulk = await _queue_bulk(pg_url, bulk_users, per_user=3)  # 90 rows: >= 3 s at 25-30/s
        leftovers = await _leave_in_inbox(pg_url, patients[:4], "129/79")
        sent_at: dict[str, list[float]] = {}

        def on_event(event: ChatEvent) -> None:
            if event.kind == "message" and event.message is not None and event.chat_id != doctor.id:
                if event.message.text.startswith("bulk "):
                    sent_at.setdefault(event.message.text, []).append(time.monotonic())

        tg.subscribe(on_event)
        log_path = tmp_path / "workers.log"
        readings = {p.id: [f"{131 + k}/{81 + k}" for k in range(5)] for p in patients}
        for p in patients[:3]:
            readings[p.id][2] = "186/113"  # urgent (BP-URGENT): one alert each to the doctor
        async with workers(tg, pg_url, 2, log_path):

            async def talk(p: SimUser) -> None:
                for text in readings[p.id]:
                    await p.send(text)
                    await asyncio.sleep(0.02)  # faster than the bot answers: the chat queues up

            await asyncio.gather(*(talk(p) for p in patients))
            replies = await _replies(patients, want={p.id: 5 + (p in patients[:4]) for p in patients})
            alerts = (await _replies([doctor], want=3, quiet=0.5))[doctor.id]
            deadline = time.monotonic() + 10
            while len(sent_at) < len(bulk) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a plain dict
                await asyncio.sleep(0.2)
        stats = _worker_stats(log_path)
    print("worker stats (received, for other workers, handled):", stats)

    for p in patients:  # in order, each exactly once (a second handling would answer "Already saved")
        order = _bp_order(replies[p.id])
        assert [v for v in order if v != "129/79"] == readings[p.id], (p.first_name, replies[p.id])
        assert order.count("129/79") == (1 if p in patients[:4] else 0), (p.first_name, replies[p.id])
        assert not [t for t in replies[p.id] if "Already saved" in t]
    assert sorted(a.split("Patient: ")[1].split(",")[0] for a in alerts if "Patient: " in a) == \
        sorted(p.first_name for p in patients[:3])
    assert sorted(sent_at) == sorted(bulk)
    assert all(len(v) == 1 for v in sent_at.values()), "an outbox row was sent twice"
    assert _max_per_second([t for v in sent_at.values() for t in v]) <= 30

    total = sum(len(v) for v in readings.values()) + leftovers
    assert set(stats) == {"0/2", "1/2"}, stats
    assert sum(s[2] for s in stats.values()) == total  # every update handled, by one worker only
    assert all(s[2] > 0 for s in stats.values()), stats
    assert sum(s[1] for s in stats.values()) > 0, "no update reached the other worker's chats through the inbox"
    services = Services.build(Settings(database_url=pg_url))
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(UpdateInbox)) == 0
        assert await session.scalar(select(func.count()).select_from(UpdateLog)) == total
        assert await session.scalar(select(func.count()).select_from(Reading)) == total
        statuses = set(await session.scalars(select(Outbox.status).where(Outbox.dedupe_key.like("bulk %"))))
        assert statuses == {"sent"}
    await services.engine.dispose()


async def _terminate_backends(url: str) -> int:
    """What a PostgreSQL restart does to the bot: every connection to its database dies at once.
    (Restarting the shared server itself would break everyone else's tests.)"""
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0].replace("postgresql+asyncpg://", "postgresql://") + "/test")
    try:
        return int(await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name))
    finally:
        await admin.close()


async def test_workers_reconnect_after_postgres_drops_every_connection(pg_url: str, tmp_path: Path) -> None:
    async with FakeTelegram(token=TOKEN, webhook_max_connections=4) as tg:
        doctor = tg.user("Dr Li", started=True)
        patients = [tg.user(f"Patient{i}", started=True) for i in range(6)]
        await _seed(pg_url, doctor, patients)
        log_path = tmp_path / "workers.log"
        async with workers(tg, pg_url, 2, log_path):

            async def talk(p: SimUser, values: list[str]) -> None:
                for text in values:
                    await p.send(text)
                    await asyncio.sleep(0.1)

            first = [f"{131 + k}/{81 + k}" for k in range(4)]
            traffic = asyncio.gather(*(talk(p, first) for p in patients))
            await asyncio.sleep(0.25)
            killed = await _terminate_backends(pg_url)
            await asyncio.sleep(0.3)
            killed += await _terminate_backends(pg_url)
            await traffic
            before = await _replies(patients, want=len(first))
            # After the outage: every worker serves again, the leader is back and alerts flow.
            for p in patients:
                await p.send("140/90")
            await patients[0].send("187/114")
            after = await _replies(patients, want={p.id: 2 if p is patients[0] else 1 for p in patients})
            alerts = (await _replies([doctor], want=1))[doctor.id]
        leaders = _leader_count(log_path)
        failures = tg.stats.webhook_failures
    log_text = log_path.read_text(errors="replace")
    print(f"dropped {killed} connections; webhook deliveries retried: {failures}; "
          f"reconnects logged: {log_text.count('reconnecting')}; leader terms: {leaders}")

    assert killed >= 4, "the workers' connections (pool, listeners, leader lock) were not there to drop"
    services = Services.build(Settings(database_url=pg_url))
    async with services.sessions() as session:
        for p in patients:
            user = await services.users.by_telegram(p.id)
            assert user is not None
            stored = [f"{r.systolic}/{r.diastolic}" for r in
                      await session.scalars(select(Reading).where(Reading.patient_id == user.id).order_by(Reading.id))]
            acknowledged = _bp_order(before[p.id]) + _bp_order(after[p.id])
            assert sorted(acknowledged) == sorted(stored), (p.first_name, acknowledged, stored)  # stored once each
            answered = [t for t in before[p.id] if "Saved: BP" in t or "something went wrong" in t]
            assert len(answered) == len(first), (p.first_name, before[p.id])  # every message answered once
            assert "140/90" in _bp_order(after[p.id])
        assert await session.scalar(select(func.count()).select_from(UpdateInbox)) == 0
    await services.engine.dispose()
    assert [a for a in alerts if "Patient: Patient0," in a], alerts
    assert leaders >= 2, "the leader lock died with its connection and was taken again"


def test_workers_refuse_sqlite_and_long_polling(monkeypatch, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.delenv("WEBHOOK_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert main(["run", "--workers", "2"]) == 2
    assert "--workers needs PostgreSQL" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    assert main(["run", "--workers", "2"]) == 2
    assert "--workers needs webhook mode" in capsys.readouterr().err
    assert not (tmp_path / "x.sqlite3").exists()  # refused before touching anything


async def test_workers_starting_together_migrate_once(pg_url: str) -> None:
    """N workers (or `carecircle migrate` beside them) upgrading at the same moment: the advisory
    lock lets one apply the migrations; the others wait and find nothing to do."""
    from storage.db import create_engine
    from storage.migrate import upgrade

    engines = [create_engine(pg_url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade(e) for e in engines))
        async with engines[0].connect() as conn:
            versions = set((await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalars())
        assert "0005_scale" in versions or any(v > "0005" for v in versions), versions
    finally:
        for e in engines:
            await e.dispose()


async def test_a_second_process_with_the_same_worker_index_stays_idle(pg_url: str) -> None:
    """Two supervisors on one database (or a worker restarted while its old self still runs) must
    not both take a chat: the worker index is an advisory lock, and without it a worker reads no inbox."""
    from types import SimpleNamespace

    from bot.telegram.scaleout import ScaleOut, SlotTaken, WorkerSlot, asyncpg_dsn
    from storage.db import create_engine
    from storage.migrate import upgrade

    engine = create_engine(pg_url)
    await upgrade(engine)
    await engine.dispose()
    care = SimpleNamespace(settings=Settings(database_url=pg_url))
    first, second = ScaleOut(care, WorkerSlot(1, 2)), ScaleOut(care, WorkerSlot(1, 2))  # type: ignore[arg-type]
    conn1 = await asyncpg.connect(asyncpg_dsn(pg_url))
    holder = asyncio.create_task(first._listen(conn1))
    for _ in range(50):
        if first._own_slot:
            break
        await asyncio.sleep(0.05)
    assert first._own_slot
    conn2 = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        with pytest.raises(SlotTaken):
            await second._listen(conn2)
        assert not second._own_slot
        await second._fetch()  # idle: returns without reading (care has no database services at all)
    finally:
        holder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holder
        conn1.terminate()  # the first process dies: its lock goes with its connection
    conn2.terminate()
    taker = asyncio.create_task(second._loop("inbox listener", second._listen))  # the retrying path
    try:
        for _ in range(100):
            if second._own_slot:
                break
            await asyncio.sleep(0.05)
        assert second._own_slot
    finally:
        taker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await taker
