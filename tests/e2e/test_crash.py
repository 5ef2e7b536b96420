"""Crash safety: the bot runs as a real process, is killed with SIGKILL while patients send
readings and alerts are in flight, and is restarted. Every reading the patients sent is stored
exactly once and every urgent reading produces exactly one alert in the doctor's chat."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
from sqlalchemy import select

from bot.config import Settings
from bot.sandbox import FakeTelegram, SimUser
from bot.services.container import Services
from bot.services.users import Onboarding
from storage.migrate import upgrade
from storage.models import Reading, Team, TeamMember, UserRole
from tests.conftest import free_port

TOKEN = "123456:" + "A" * 35
PATIENTS = 8
READINGS = ["131/81", "132/82", "186/113", "133/83"]  # the third is urgent (BP-URGENT)


async def _seed(url: str, doctor: SimUser, patients: list[SimUser]) -> None:
    services = Services.build(Settings(database_url=url))
    await upgrade(services.engine)
    doc = await services.users.ensure(doctor.id, doctor.id, "Dr Li", "en")
    async with services.sessions.begin() as session:
        team = Team(name="Qingshan")
        session.add(team)
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=doc.id, oncall_order=0))
        session.add(UserRole(user_id=doc.id, role="doctor"))
        team_id = team.id
    for p in patients:
        user = await services.users.ensure(p.id, p.id, p.first_name, "en")
        await services.users.complete_onboarding(user.id, Onboarding("en", "Asia/Shanghai",
                                                                     frozenset({"hypertension"}), 1950))
        await services.users.update_profile(user.id, team_id=team_id, doctor_id=doc.id)
    await services.engine.dispose()


async def _start_bot(tg: FakeTelegram, url: str, port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE": tg.base_url, "DATABASE_URL": url,
           "HTTP_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "--log-level", "WARNING", "run",
                                                env=env, cwd=str(Path(__file__).parents[2]))
    # A hang guard, not a speed check: a bot's start (imports, migrations) took over 15 s on a
    # shared 2-core CI machine; give it two minutes.
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline and proc.returncode is None:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    if proc.returncode is None:
        proc.kill()
    raise AssertionError(f"the bot process did not start (exit code {proc.returncode})")


async def _collect(u: SimUser, quiet: float) -> list[str]:
    texts = []
    while True:
        try:
            texts.append((await u.next_message(timeout=quiet)).text)
        except AssertionError:
            return texts


async def test_sigkill_mid_traffic_loses_and_doubles_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.sqlite3'}"
    async with FakeTelegram(token=TOKEN) as tg:
        doctor = tg.user("Dr Li", started=True)
        patients = [tg.user(f"Patient{i}", started=True) for i in range(PATIENTS)]
        await _seed(url, doctor, patients)
        port = free_port()
        first = await _start_bot(tg, url, port)

        async def talk(p: SimUser) -> None:
            for text in READINGS:
                await p.send(text)
                await asyncio.sleep(0.15)

        traffic = asyncio.gather(*(talk(p) for p in patients))
        await asyncio.sleep(0.35)
        first.send_signal(signal.SIGKILL)  # mid-traffic: some updates handled, some not, alerts in flight
        await first.wait()
        await traffic
        second = await _start_bot(tg, url, port)
        try:
            replies = {p.id: await _collect(p, quiet=3.0) for p in patients}
            alerts = await _collect(doctor, quiet=2.0)
        finally:
            second.terminate()
            await second.wait()

    services = Services.build(Settings(database_url=url))
    async with services.sessions() as session:
        for p in patients:
            user = await services.users.by_telegram(p.id)
            assert user is not None
            rows = list(await session.scalars(select(Reading).where(Reading.patient_id == user.id)))
            stored = sorted(f"{r.systolic}/{r.diastolic}" for r in rows)
            assert stored == sorted(READINGS), f"{p.first_name}: {stored}"  # every reading once, none twice
            saved = [t for t in replies[p.id] if "Saved: BP" in t or "Already saved" in t]
            assert saved, f"{p.first_name} got no answer after the restart"
            mine = [a for a in alerts if f"Patient: {p.first_name}," in a]
            assert len(mine) == 1, f"{p.first_name}: {len(mine)} alerts"
    await services.engine.dispose()
