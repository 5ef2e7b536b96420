"""Issue 9: soak — mixed realistic load with faults against the scale-out deployment.

`carecircle run --workers 2` (webhook mode, PostgreSQL) as real processes. For the whole run,
patients send an open-loop mix at R messages/s: routine readings (each value unique per patient),
urgent readings (each from a patient of its own: one alert each), /tips and /history; a doctor
acknowledges every alert he gets; every patient has a reminder falling due during the run. Faults,
all the time: a 500 on the doctor's chat every 5 s, a 429 (retry_after 1) every 7 s, a dropped
connection on the doctor's chat every 11 s, every PostgreSQL connection of the bot terminated every
20 s, and one worker SIGKILLed halfway (the supervisor restarts it).

Reported: updates/s handled, p50/p99 message -> first reply, errors ("sorry" replies, webhook
redeliveries), lost/duplicated messages, which must be 0: a reading answered "Saved" but not stored,
a reading stored twice, a message never answered, an alert never delivered or delivered twice, a
reminder sent twice or not at all. And memory, under "memory", for the first worker (never killed):
RSS at the start, at the end of the warm-up (`--warmup`, default 2 minutes: caches, pools and
per-chat state fill up then) and at the end, every 30 s in between, and the growth per minute over
the steady part after the warm-up, which is what "must not grow" is judged on (`memory_ok`: under
MAX_STEADY_KB_PER_MINUTE). With `--memprobe FRAMES` (bench/memprobe.py inside the workers) also
where the memory is: pymalloc's arenas, glibc's heap (in use / free but kept), gc objects, and with
FRAMES > 0 tracemalloc's top growers during and after the warm-up. Note that the survivor becomes
the leader (outbox sender, periodic jobs) when the other worker is SIGKILLed halfway: a second,
smaller warm-up.

    .venv/bin/python -m bench.soak [--minutes 1] [--rate 8] [--patients 40] [--workers 2]
    .venv/bin/python -m bench.soak --minutes 10 --memprobe 0     # the full run, with memory figures
    .venv/bin/python -m bench.soak --minutes 4 --warmup 1 --memprobe 6   # what grows, by traceback
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select, update

from bench import memprobe
from bench.common import PG_URL, database, database_kinds, emit, ms, percentile, quiet_logs
from bench.scale import ROOT, bot_processes, seed_patients
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
# RSS growth after the warm-up that still counts as flat: a leak of 1 KB per message would add
# ~240 KB/min to one of two workers at 8 messages/s; RSS itself moves by a few hundred KB between samples.
MAX_STEADY_KB_PER_MINUTE = 128


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


async def probe_lines(folder: Path, pid: int, count: int, timeout: float = 120) -> list[dict[str, Any]]:
    """The probe's figures for `pid`, once it has written `count` lines (or what there is after `timeout`)."""
    path = folder / f"{pid}.jsonl"
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        await asyncio.sleep(0.5)


def slope_per_minute(points: list[tuple[float, int]]) -> float | None:
    """Least-squares growth of (seconds, KB) points, in KB per minute."""
    if len(points) < 2:
        return None
    mt = sum(t for t, _ in points) / len(points)
    mv = sum(v for _, v in points) / len(points)
    var = sum((t - mt) ** 2 for t, _ in points)
    return None if var == 0 else 60 * sum((t - mt) * (v - mv) for t, v in points) / var


def _round1(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _where(traceback: tracemalloc.Traceback, frames: int = 4) -> str:
    """The most recent frames of an allocation, newest first, with short paths."""
    def short(name: str) -> str:
        for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
            if marker in name:
                return name.split(marker, 1)[1]
        return name
    return " < ".join(f"{short(f.filename)}:{f.lineno}" for f in list(reversed(traceback))[:frames])


def top_growers(before: Path, after: Path, count: int = 10) -> dict[str, list[str]]:
    """What the Python heap gained between two probe snapshots: by allocating traceback and by file."""
    old, new = tracemalloc.Snapshot.load(str(before)), tracemalloc.Snapshot.load(str(after))
    by_trace = [f"{s.size_diff / 1024:+.0f} KB ({s.count_diff:+d} blocks, {s.size / 1024:.0f} KB now): "
                f"{_where(s.traceback)}" for s in new.compare_to(old, "traceback")[:count]]
    by_file = [f"{s.size_diff / 1024:+.0f} KB ({s.size / 1024:.0f} KB now): {_where(s.traceback, 1).rsplit(':', 1)[0]}"
               for s in new.compare_to(old, "filename")[:count]]
    return {"by_traceback": by_trace, "by_file": by_file}


PROBE_SERIES = ("rss_kb", "rss_anon_kb", "rss_brk_heap_kb", "pymalloc_arenas_kb", "pymalloc_used_kb",
                "malloc_in_use_kb", "malloc_free_kept_kb", "objects", "threads", "traced_kb")


def memory_report(samples: list[tuple[float, int]], warm: float, probe: Path | None, pid: int,
                  lines: list[dict[str, Any]]) -> dict[str, Any]:
    """RSS of the never-killed worker at start, at the end of the warm-up and at the end, the growth
    per minute over the steady part (after the warm-up), and what the probe saw (if it ran)."""
    if not samples:
        return {}
    at_warm = next((kb for t, kb in samples if t >= warm - 1), samples[-1][1])
    steady = [(t, kb) for t, kb in samples if t >= warm - 1]
    out: dict[str, Any] = {
        "warmup_minutes": warm / 60, "rss_start_kb": samples[0][1], "rss_warmup_end_kb": at_warm,
        "rss_end_kb": samples[-1][1], "rss_warmup_growth_kb": at_warm - samples[0][1],
        "rss_steady_growth_kb": samples[-1][1] - at_warm,
        "rss_steady_kb_per_minute": _round1(slope_per_minute(steady)),
        "rss_steady_minutes": _round1((samples[-1][0] - steady[0][0]) / 60) if steady else 0,
        "rss_samples": [[round(t), kb] for t, kb in samples],
    }
    if probe is None:
        return out
    marked = [line for line in lines if line.get("snapshot")]
    first_warm = next((line for line in lines if line["time"] >= lines[0]["time"] + warm - 1), None) if lines else None
    out["probe"] = {"start": lines[0] if lines else None, "warmup_end": first_warm, "end": lines[-1] if lines else None,
                    "series": {key: [line.get(key) for line in lines] for key in PROBE_SERIES}}
    snaps = [probe / f"{pid}-{line['label']}.snap" for line in marked]
    if len(snaps) == 3 and all(p.exists() for p in snaps):
        out["growers_during_warmup"] = top_growers(snaps[0], snaps[1])
        out["growers_after_warmup"] = top_growers(snaps[1], snaps[2])
    return out


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
        probe, extra_env = None, {}
        if args.memprobe is not None:  # bench/memprobe.py inside every worker
            probe = folder / "memprobe"
            probe.mkdir()
            extra_env = {memprobe.ENV_DIR: str(probe), memprobe.ENV_FRAMES: str(args.memprobe),
                         "PYTHONPATH": os.pathsep.join([str(memprobe.shim(folder / "shim")), str(ROOT),
                                                        os.environ.get("PYTHONPATH", "")])}
        async with bot_processes(tg, url, args.workers, folder / "soak.log", extra_env) as proc:
            await asyncio.sleep(3)
            pids = worker_pids(proc.pid)
            rss_start = {pid: memprobe.rss_kb(pid) for pid in pids}
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

            # The first worker (never killed): RSS every `every` seconds, and the probe's figures and
            # snapshots at the start, at the end of the warm-up and at the end.
            every = min(30.0, seconds / 10)
            samples: list[tuple[float, int]] = []
            warm = min(args.warmup * 60, seconds / 2)

            began = time.perf_counter()

            async def sample() -> None:
                probed_warm = False
                while not stop.is_set():
                    elapsed = time.perf_counter() - began
                    samples.append((elapsed, memprobe.rss_kb(pids[0]) or 0))
                    if probe is not None:
                        snapshot = not probed_warm and elapsed >= warm - 1
                        os.kill(pids[0], memprobe.SNAPSHOT if snapshot else memprobe.FIGURES)
                        probed_warm = probed_warm or snapshot
                    await asyncio.sleep(every)

            if probe is not None:
                os.kill(pids[0], memprobe.SNAPSHOT)  # tracing starts here
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
            rss_end = {pid: memprobe.rss_kb(pid) for pid in pids_end}
            if pids[0] in rss_end:
                samples.append((time.perf_counter() - began, rss_end[pids[0]] or 0))
            lines: list[dict[str, Any]] = []
            if probe is not None and pids[0] in rss_end:
                os.kill(pids[0], memprobe.FINAL)  # figures, snapshot, then malloc_trim
                lines = await probe_lines(probe, pids[0], len(samples) + 1)
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
        "memory": memory_report(samples, warm, probe, pids[0], lines),
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
    slope = r["memory"].get("rss_steady_kb_per_minute")
    memory_ok = slope is not None and slope <= MAX_STEADY_KB_PER_MINUTE
    emit(BENCH, f"updates_per_second[{args.minutes:g} min, {args.workers} workers]", r.pop("updates_per_second"),
         unit="updates/s", target=f"lost/duplicated 0, RSS after the warm-up growing under "
                                  f"{MAX_STEADY_KB_PER_MINUTE} KB/min", ok=bad == 0 and memory_ok,
         lost_or_duplicated=bad, memory_ok=memory_ok, **r)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=8.0, help="messages/s offered")
    parser.add_argument("--patients", type=int, default=40, help="routine patients (urgent ones come extra)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="minutes of warm-up; RSS growth is judged on the rest (at most half the run)")
    parser.add_argument("--memprobe", type=int, metavar="FRAMES",
                        help="run bench/memprobe.py in the workers: tracemalloc with FRAMES frames (0: figures only) "
                             "and the heap's top growers during and after the warm-up")
    args = parser.parse_args(argv)
    quiet_logs()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
