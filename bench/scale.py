"""Issue 9: `carecircle run --workers N` for N = 1, 2, 4 on PostgreSQL, webhook mode.

Each N gets a fresh database with P onboarded patients; the bot runs as real processes (the
supervisor and its N workers behind one port, SO_REUSEPORT) and FakeTelegram delivers webhooks over
up to 16 parallel connections. All patients send K readings at once. Reported per N: updates/s (stored
readings / seconds from the first send to the last "Saved" reply) and p50/p99 message -> "Saved";
N = 1 (the single-process path, same webhook mode) is the baseline of the same run.

This machine has 2 cores, shared by FakeTelegram and the simulated users (this process), PostgreSQL
and the workers: beyond 2 workers there is no core left to gain, so 4 shows the cost of contention,
not a deployment's scaling.

    .venv/bin/python -m bench.scale [--workers 1 2 4] [--patients P] [--per-patient K]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.common import (
    ReplyLog,
    database,
    database_kinds,
    emit,
    free_port,
    latencies,
    ms,
    percentile,
    quiet_logs,
)
from bot.config import Settings
from bot.sandbox import ChatEvent, FakeTelegram, SimUser
from bot.services.container import Services
from bot.services.users import Onboarding
from storage.migrate import upgrade

BENCH = "scale"
ROOT = Path(__file__).parents[1]
TOKEN = "123456:" + "B" * 35
SECRET = "bench-scale-secret"


def saved(event: ChatEvent) -> bool:
    return bool(event.message and event.message.text and "Saved" in event.message.text)


async def seed_patients(url: str, sims: list[SimUser], doctor: SimUser | None = None,
                        tz: str = "Asia/Shanghai") -> None:
    """Onboarded patients (through the services, not the chat), optionally all under one doctor."""
    services = Services.build(Settings(database_url=url))
    await upgrade(services.engine)
    doctor_id = None
    if doctor is not None:
        from storage.models import Team, TeamMember, UserRole

        doc = await services.users.ensure(doctor.id, doctor.id, doctor.first_name, "en")
        async with services.sessions.begin() as session:
            team = Team(name="Bench")
            session.add(team)
            await session.flush()
            session.add(TeamMember(team_id=team.id, user_id=doc.id, oncall_order=0))
            session.add(UserRole(user_id=doc.id, role="doctor"))
            team_id, doctor_id = team.id, doc.id

    async def one(sim: SimUser) -> None:
        user = await services.users.ensure(sim.id, sim.id, sim.first_name, "en")
        await services.users.complete_onboarding(user.id, Onboarding("en", tz,
                                                                     frozenset({"hypertension", "diabetes"}), 1956))
        if doctor_id is not None:
            await services.users.update_profile(user.id, team_id=team_id, doctor_id=doctor_id)

    for start in range(0, len(sims), 10):
        await asyncio.gather(*(one(sim) for sim in sims[start:start + 10]))
    await services.engine.dispose()


@asynccontextmanager
async def bot_processes(tg: FakeTelegram, url: str, workers: int, log_path: Path,
                        extra_env: dict[str, str] | None = None) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m bot run --workers N` (webhook mode) until the block ends; SIGTERM, then wait."""
    port = free_port()
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE": tg.base_url, "DATABASE_URL": url,
           "HTTP_PORT": str(port), "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/webhook",
           "WEBHOOK_SECRET": SECRET, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    with open(log_path, "wb") as log:  # noqa: ASYNC230 - once, before the measurement
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--log-level", "INFO", "run", "--workers", str(workers),
            env=env, cwd=str(ROOT), stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while log_path.read_text(errors="replace").count("CareCircle is running (webhook") < workers \
                    or not tg.webhook_url or (workers > 1 and "is the leader" not in log_path.read_text()):
                if proc.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("the bot did not start:\n" + log_path.read_text(errors="replace")[-2000:])
                await asyncio.sleep(0.1)
            yield proc
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()


async def measure(workers: int, patients: int, per_patient: int, folder: Path) -> dict[str, Any]:
    async with database("postgres") as url, FakeTelegram(token=TOKEN, webhook_max_connections=16) as tg:
        sims = [tg.user(f"pt{n}", language_code="en", started=True) for n in range(patients)]
        await seed_patients(url, sims)
        async with bot_processes(tg, url, workers, folder / f"workers{workers}.log"):
            log = ReplyLog(match=saved)
            unsubscribe = tg.subscribe(log)
            sent: dict[int, list[float]] = {}
            start = time.perf_counter()
            for i in range(per_patient):
                for n, sim in enumerate(sims):
                    sent.setdefault(sim.id, []).append(time.perf_counter())
                    await sim.send(f"{120 + (n + i) % 15}/{76 + (n * 3 + i) % 10}")
            total = patients * per_patient
            await log.wait_for(total, timeout=180)
            end = log.events[-1][0] if log.events else time.perf_counter()
            unsubscribe()
        lat = latencies(sent, log)
        return {"workers": workers, "updates": total, "saved": log.count, "seconds": end - start,
                "per_second": log.count / (end - start), "p50_ms": ms(percentile(lat, 50)),
                "p99_ms": ms(percentile(lat, 99))}


async def run(args: argparse.Namespace) -> None:
    if "postgres" not in await database_kinds(["postgres"]):
        return
    import tempfile

    results = []
    with tempfile.TemporaryDirectory(prefix="cc-scale-") as folder:
        for n in args.workers:
            results.append(await measure(n, args.patients, args.per_patient, Path(folder)))
    baseline = results[0]["per_second"] if results and results[0]["workers"] == 1 else None
    for r in results:
        emit(BENCH, f"updates_per_second[workers={r['workers']}]", r["per_second"], unit="updates/s",
             baseline=baseline, p50_ms=r["p50_ms"], p99_ms=r["p99_ms"], updates=r["updates"], saved=r["saved"],
             seconds=r["seconds"], cpu_cores=os.cpu_count(),
             note="2 cores shared by the workers, PostgreSQL and FakeTelegram with its simulated users")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--patients", type=int, default=150)
    parser.add_argument("--per-patient", type=int, default=2)
    args = parser.parse_args(argv)
    quiet_logs()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
