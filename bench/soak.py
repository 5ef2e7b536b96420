"""Issue 9: soak — mixed realistic load with faults against the scale-out deployment.

`carecircle run --workers 2` (webhook mode, PostgreSQL) as real processes. For the whole run,
patients send an open-loop mix at R messages/s: routine readings (each value unique per patient),
urgent readings (each from a patient of its own: one alert each), /tips and /history; a doctor
acknowledges every alert he gets; every patient has a reminder falling due during the run. Faults,
all the time: a 500 on the doctor's chat every 5 s, a 429 (retry_after 1) every 7 s, a dropped
connection on the doctor's chat every 11 s, every PostgreSQL connection of the bot terminated every
20 s, and one worker SIGKILLed halfway (the supervisor restarts it).

Reported: updates/s handled, p50/p99 message -> first reply, errors ("sorry" replies, webhook
redeliveries), RSS of each worker at start and end, and lost/duplicated messages, which must be 0:
a reading answered "Saved" but not stored, a reading stored twice, a message never answered, an
alert never delivered or delivered twice, a reminder sent twice or not at all.

    .venv/bin/python -m bench.soak [--minutes 1] [--rate 8] [--patients 40] [--workers 2]
    .venv/bin/python -m bench.soak --minutes 10      # the full run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select, update

from bench.common import PG_URL, database, database_kinds, emit, ms, percentile, quiet_logs
from bench.scale import bot_processes, seed_patients
from bot.config import Settings
from bot.sandbox import ChatEvent, FakeTelegram, SimUser
from bot.services.container import Services
from storage.models import Alert, Outbox, Reading
from storage.reminder_models import Reminder

BENCH = "soak"
TOKEN = "123456:" + "C" * 35
SAVED = re.compile(r"Saved: BP (\d+/\d+)")
ALERT = re.compile(r"^al:ack:(\d+)$")
REMINDER_TEXT = "Time to measure your blood pressure"


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def worker_pids(parent: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    except OSError:
        return []


async def terminate_backends(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await admin.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                        "WHERE datname = $1", name))
    finally:
        await admin.close()


class Observer:
    """Everything the bot sent, as the simulated users saw it."""

    def __init__(self, doctor: SimUser) -> None:
        self.doctor = doctor
        self.first_reply: dict[int, list[float]] = defaultdict(list)  # chat -> times of replies to messages
        self.saved: dict[int, list[str]] = defaultdict(list)
        self.sorry = 0
        self.reminders: Counter[int] = Counter()
        self.alert_messages: Counter[int] = Counter()
        self.alert_message_ids: dict[int, int] = {}

    def __call__(self, event: ChatEvent) -> None:
        if event.kind != "message" or event.message is None:
            return
        text = event.message.text or ""
        now = time.perf_counter()
        if event.chat_id == self.doctor.id:
            for row in event.message.inline or []:
                for _label, data in row:
                    m = ALERT.match(data or "")
                    if m:
                        self.alert_messages[int(m.group(1))] += 1
                        self.alert_message_ids[int(m.group(1))] = event.message.message_id
            return
        if REMINDER_TEXT in text:
            self.reminders[event.chat_id] += 1
            return
        if "something went wrong" in text:
            self.sorry += 1
        m = SAVED.search(text)
        if m:
            self.saved[event.chat_id].append(m.group(1))
        self.first_reply[event.chat_id].append(now)


async def soak(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    seconds = args.minutes * 60
    total = int(args.rate * seconds)
    urgent_every = 25  # 4 percent of messages
    urgent_count = total // urgent_every
    async with database("postgres") as url, FakeTelegram(token=TOKEN, webhook_max_connections=8) as tg:
        doctor = tg.user("Dr Soak", language_code="en", started=True)
        sims = [tg.user(f"soak{n}", language_code="en", started=True) for n in range(args.patients + urgent_count)]
        await seed_patients(url, sims, doctor, tz="UTC")  # reminders never fall into their quiet hours
        routine, urgent = sims[:args.patients], sims[args.patients:]
        services = Services.build(Settings(database_url=url))
        start_wall = datetime.now(UTC)
        for n, sim in enumerate(routine):  # one reminder per patient, due during the run
            user = await services.users.by_telegram(sim.id)
            assert user is not None
            reminder = await services.reminders.add(user.id, "bp", [dtime(3, 0)])
            assert reminder is not None
            due = start_wall + timedelta(seconds=10 + (seconds * 0.6) * n / len(routine))
            async with services.sessions.begin() as session:
                await session.execute(update(Reminder).where(Reminder.id == reminder.id).values(next_due_at=due))
        observer = Observer(doctor)
        tg.subscribe(observer)
        async with bot_processes(tg, url, args.workers, folder / "soak.log") as proc:
            await asyncio.sleep(3)
            pids = worker_pids(proc.pid)
            rss_start = {pid: rss_kb(pid) for pid in pids}
            sent: dict[int, list[float]] = defaultdict(list)
            values: dict[int, list[str]] = defaultdict(list)
            faults: Counter[str] = Counter()
            stop = asyncio.Event()

            async def inject() -> None:
                tick = 0
                while not stop.is_set():
                    await asyncio.sleep(1)
                    tick += 1
                    if tick % 5 == 0:
                        tg.fail_next("sendMessage", 500, chat_id=doctor.id)
                        faults["telegram_500"] += 1
                    if tick % 7 == 0:
                        tg.fail_next("sendMessage", 429, retry_after=1)
                        faults["telegram_429"] += 1
                    if tick % 11 == 0:
                        tg.fail_next("sendMessage", "reset", chat_id=doctor.id)
                        faults["telegram_reset"] += 1
                    if tick % 20 == 0:
                        faults["postgres_connections_dropped"] += await terminate_backends(url)
                    if tick == int(seconds / 2) and len(pids) > 1:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pids[-1], signal.SIGKILL)  # the supervisor starts it again
                            faults["worker_sigkill"] += 1

            async def acknowledge() -> None:
                done: set[int] = set()
                while not stop.is_set():
                    await asyncio.sleep(0.5)
                    for alert_id, message_id in list(observer.alert_message_ids.items()):
                        if alert_id not in done:
                            done.add(alert_id)
                            try:
                                await doctor.press_data(message_id, f"al:ack:{alert_id}")
                            except Exception:
                                faults["ack_failed"] += 1

            samples: list[int] = []  # the first worker's RSS, ten times over the run: growth or plateau?

            async def sample() -> None:
                while not stop.is_set():
                    samples.append(rss_kb(pids[0]) or 0)
                    await asyncio.sleep(seconds / 10)

            sampler = asyncio.create_task(sample())
            injector = asyncio.create_task(inject())
            acker = asyncio.create_task(acknowledge())
            t0 = time.perf_counter()
            u = 0
            for k in range(total):
                due = t0 + k / args.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if k % urgent_every == urgent_every - 1 and u < len(urgent):
                    sim, text = urgent[u], "186/114"
                    u += 1
                else:
                    sim = routine[k % len(routine)]
                    kind = k % 10
                    if kind == 7:
                        text = "/tips"
                    elif kind == 9:
                        text = "/history"
                    else:
                        n = len(values[sim.id])
                        text = f"{112 + n % 40}/{70 + n // 40}"
                        values[sim.id].append(text)
                sent[sim.id].append(time.perf_counter())
                await sim.send(text)
            t_sent = time.perf_counter()
            # Drain: until every message got a reply (or 60 s), then reminders and alerts settle.
            deadline = time.monotonic() + 60
            while sum(len(v) for v in observer.first_reply.values()) < total and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            t_done = time.perf_counter()
            # Alerts and reminders leased by a leader that died wait for the lease (30 s) to end.
            deadline = time.monotonic() + 45
            while (len(observer.alert_messages) < u or sum(observer.reminders.values()) < len(routine)) \
                    and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)
            stop.set()
            await asyncio.gather(injector, acker, sampler, return_exceptions=True)
            pids_end = worker_pids(proc.pid)
            rss_end = {pid: rss_kb(pid) for pid in pids_end}
            webhook_failures = tg.stats.webhook_failures

        async with services.sessions() as session:
            stored: dict[int, list[str]] = defaultdict(list)
            rows = await session.execute(select(Reading.patient_id, Reading.systolic, Reading.diastolic))
            by_user = {}
            for sim in sims:
                user = await services.users.by_telegram(sim.id)
                by_user[user.id] = sim.id  # type: ignore[union-attr]
            for patient_id, sys_, dia in rows.all():
                stored[by_user[patient_id]].append(f"{sys_}/{dia}")
            alerts = int(await session.scalar(select(func.count()).select_from(Alert)) or 0)
            alerts_undelivered = int(await session.scalar(select(func.count()).select_from(Outbox).where(
                Outbox.kind == "alert", Outbox.status.in_(("pending", "sending")))) or 0)
            reminders_due = int(await session.scalar(select(func.count()).select_from(Reminder).where(
                Reminder.kind == "bp", Reminder.next_due_at <= datetime.now(UTC))) or 0)
        await services.engine.dispose()

    lat = []
    for chat, times in sent.items():
        lat += [r - s for s, r in zip(times, observer.first_reply.get(chat, []), strict=False)]
    answered = sum(min(len(sent[c]), len(observer.first_reply.get(c, []))) for c in sent)
    lost_saved = sum(len(set(observer.saved[c]) - set(stored[c])) for c in observer.saved)
    dup_stored = sum(sum(n - 1 for n in Counter(v).values() if n > 1) for v in stored.values())
    dup_saved = sum(sum(n - 1 for n in Counter(v).values() if n > 1) for v in observer.saved.values())
    return {
        "messages": total, "answered": answered, "unanswered": total - answered,
        "updates_per_second": answered / (t_done - t0), "offered_per_second": total / (t_sent - t0),
        "p50_ms": ms(percentile(lat, 50)), "p99_ms": ms(percentile(lat, 99)),
        "sorry_replies": observer.sorry, "webhook_redeliveries": webhook_failures,
        # the worker never killed, at start and end (the killed one restarts fresh, so it would flatter the figure)
        "rss_start_kb": [rss_start[p] for p in rss_start if p in rss_end],
        "rss_end_kb": [rss_end[p] for p in rss_start if p in rss_end],
        "rss_restarted_worker_end_kb": [rss_end[p] for p in rss_end if p not in rss_start],
        "rss_first_worker_samples_kb": samples,
        "readings_saved_not_stored": lost_saved, "readings_stored_twice": dup_stored, "saved_replied_twice": dup_saved,
        "urgent_sent": u, "alerts": alerts, "alerts_delivered": len(observer.alert_messages),
        "alerts_undelivered": alerts_undelivered,
        "alerts_delivered_twice": sum(1 for n in observer.alert_messages.values() if n > 1),
        "reminders_expected": len(routine), "reminders_sent": sum(observer.reminders.values()),
        "reminders_twice": sum(1 for n in observer.reminders.values() if n > 1), "reminders_still_due": reminders_due,
        **{f"fault_{k}": v for k, v in faults.items()},
    }


async def run(args: argparse.Namespace) -> None:
    if "postgres" not in await database_kinds(["postgres"]):
        return
    with tempfile.TemporaryDirectory(prefix="cc-soak-") as folder:
        r = await soak(args, Path(folder))
    bad = (r["unanswered"] + r["readings_saved_not_stored"] + r["readings_stored_twice"] + r["saved_replied_twice"]
           + r["alerts_undelivered"] + r["alerts_delivered_twice"] + r["reminders_twice"] + r["reminders_still_due"])
    emit(BENCH, f"updates_per_second[{args.minutes:g} min, {args.workers} workers]", r.pop("updates_per_second"),
         unit="updates/s", target="lost/duplicated 0, RSS not growing", ok=bad == 0, lost_or_duplicated=bad, **r)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=8.0, help="messages/s offered")
    parser.add_argument("--patients", type=int, default=40, help="routine patients (urgent ones come extra)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    quiet_logs()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
