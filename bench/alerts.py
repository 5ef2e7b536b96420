"""Issue 5: urgent reading -> the doctor's alert DELIVERED, under load and Telegram failures.

Doctors (each with a team, joined through `InviteService.create_doctor_invite` + `redeem`) and
their linked patients (`users.update_profile(team_id, doctor_id)`) are set up through the
services. Patients then send R readings/s for D s (open loop), 5 % of them urgent (185/115). Each
urgent reading comes from a patient with no open alert, so every urgent reading opens exactly one
alert (a repeat inside 6 h would fold into the open one by design).

Meanwhile a background task makes FakeTelegram fail 1 % of all sendMessage calls with 500 and
answer one 429 (retry_after 1) every 2 s (`tg.fail_next`; the fake has no probability option).

Reported per database: p50/p99 from the patient's message to the alert message arriving in the
doctor's chat (target p99 < 1 s), alerts lost (alert rows with no delivered message: must be 0)
and duplicates (an alert delivered more than once as a new message: must be 0). Beside it, the
price: p50/p99 from each ordinary reading to its "Saved" reply, how many were answered, and when
the last one was (above the bot's capacity the ordinary backlog grows; urgent chats go first).

One doctor chat may receive about 1 message/s (Telegram's and the fake's per-chat limit), so the
urgent load is spread over `--doctors` (default: one per 0.5 alerts/s).

    .venv/bin/python -m bench.alerts [--rate R] [--seconds D] [--doctors N] [--db sqlite|postgres] [--full]
                                     [--no-baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from bench.common import (
    ReplyLog,
    database,
    database_kinds,
    echo_burst,
    emit,
    ms,
    new_users,
    paced,
    percentile,
    quiet_logs,
    settings_for,
    telegram,
)
from bench.readings import onboarded_patients
from bench.remote import RemoteTelegram, alert_in
from bot.app import CareCircle, build, freeze_startup_objects
from bot.sandbox import ChatEvent, FakeTelegram, SimUser
from bot.services.invites import parse_payload
from storage.models import Alert, AlertEvent, Outbox, TeamMember, User

BENCH = "alerts"
URGENT = "185/115"
ROUTINE = ["135/85", "血压150/95 心率72", "空腹血糖 6.8", "142/88"]
WALL_MINUS_PERF = time.time() - time.perf_counter()  # stored UTC times -> the perf_counter clock
ALERT_ID = re.compile(r"^al:ack:(\d+)$")


async def make_doctors(care: CareCircle, tg: Any, count: int) -> list[tuple[Any, int]]:
    """Doctors who redeemed an admin invite, each in their own team; returns (sim, team_id)."""
    services = care.services
    doctors: list[tuple[Any, int]] = []
    for n, sim in enumerate(await new_users(tg, "Dr", count)):
        user = await services.users.ensure(sim.id, sim.id, sim.first_name, "en")
        payload = await services.invites.create_doctor_invite(f"Dr {n}", f"Team {n}")
        kind, code = parse_payload(payload) or ("", "")
        result = await services.invites.redeem(kind, code, user.id)
        assert result.ok, result
        async with services.sessions() as session:
            team_id = await session.scalar(select(TeamMember.team_id).where(TeamMember.user_id == user.id))
        doctors.append((sim, int(team_id or 0)))
    return doctors


class FailureInjector:
    """1 % of sendMessage calls fail 500 (one injection per 100 calls seen), one 429 every 2 s."""

    def __init__(self, tg: FakeTelegram, every: int = 100, retry_after_every: float = 2.0) -> None:
        self._tg = tg
        self._every = every
        self._period = retry_after_every
        self.injected_500 = 0
        self.injected_429 = 0

    async def run(self) -> None:
        next_429 = time.perf_counter() + self._period
        while True:
            calls = self._tg.stats.calls["sendMessage"]
            while (self.injected_500 + 1) * self._every <= calls:
                self._tg.fail_next("sendMessage", 500)
                self.injected_500 += 1
            if time.perf_counter() >= next_429:
                self._tg.fail_next("sendMessage", 429, retry_after=1)
                self.injected_429 += 1
                next_429 += self._period
            await asyncio.sleep(0.01)


async def run_db(kind: str, rate: float, seconds: float, doctors: int, drain_timeout: float,
                 split: bool = True) -> dict[str, Any]:
    total = int(rate * seconds)
    urgent_count = max(1, round(total * 0.05))
    async with telegram(split) as tg, database(kind) as url:
        care = build(settings_for(tg, url))
        await care.start(serve_http=False)
        freeze_startup_objects()  # as `carecircle run` does (bench.readings: a full collection set the p99)
        injector = FailureInjector(tg)  # in-process only; a RemoteTelegram injects in its child
        inject_task: asyncio.Task[None] | None = None
        try:
            docs = await make_doctors(care, tg, doctors)
            doctor_chats = {sim.id for sim, _team in docs}
            # Routine senders write at most every 2 s; every urgent reading has a patient of its own.
            routine = max(1, int(rate * 2))
            sims = await onboarded_patients(care, tg, routine + urgent_count, prefix="ap")
            for n, sim in enumerate(sims):
                doctor_sim, team_id = docs[n % len(docs)]
                user = await care.services.users.by_telegram(sim.id)
                doctor_user = await care.services.users.by_telegram(doctor_sim.id)
                assert user and doctor_user
                await care.services.users.update_profile(user.id, team_id=team_id, doctor_id=doctor_user.id)
            urgent_sims = sims[routine:]
            every = total / urgent_count
            schedule: list[tuple[Any, str]] = []
            u = 0
            for k in range(total):
                if u < urgent_count and k >= u * every + every / 2 - 1:
                    schedule.append((urgent_sims[u], URGENT))
                    u += 1
                else:
                    schedule.append((sims[k % routine], ROUTINE[k % len(ROUTINE)]))
            urgent_sent: dict[int, float] = {}
            if isinstance(tg, RemoteTelegram):
                start = time.perf_counter()
                # "Saved" replies are timed in the routine patients' chats only (not in `chats`).
                urgent_chats = {sim.id for sim in urgent_sims}
                got = await tg.paced([(sim.id, text) for sim, text in schedule], rate,
                                     alert_in(doctor_chats | urgent_chats, saved=True), expect=total,
                                     drain_timeout=drain_timeout, inject_failures=True, settle=0.5)
                injector.injected_500, injector.injected_429 = got.injected_500, got.injected_429
                urgent_sent = {user_id: at for user_id, text, at in got.sent if text == URGENT}
                send_seconds = got.sent[-1][2] - start if got.sent else 0.0
                alerts = [(at, data) for at, chat, _t, data in got.events if chat in doctor_chats]
                saved = [(at, chat) for at, chat, _t, _data in got.events if chat not in doctor_chats | urgent_chats]
                price = Ordinary.of([(user_id, at) for user_id, text, at in got.sent if text != URGENT], saved, start)
                return await _report(kind, care, injector, alerts, urgent_sent, urgent_count, rate, seconds,
                                     send_seconds, len(docs), price)

            def on_send(_k: int, sim: SimUser, text: str, at: float) -> None:
                if text == URGENT:
                    urgent_sent[sim.id] = at

            def is_alert(event: ChatEvent) -> bool:
                return event.chat_id in doctor_chats and event.message is not None and any(
                    ALERT_ID.match(data) for row in event.message.inline for _label, data in row)

            routine_chats = {sim.id for sim in sims[:routine]}

            def is_saved(event: ChatEvent) -> bool:
                return event.chat_id in routine_chats and event.message is not None and (
                    "Saved" in (event.message.text or ""))

            delivered = ReplyLog(match=is_alert)
            answered = ReplyLog(match=is_saved)
            unsubscribe = tg.subscribe(delivered)
            unsubscribe_saved = tg.subscribe(answered)
            inject_task = asyncio.create_task(injector.run())
            try:
                start = time.perf_counter()
                sent = await paced(schedule, rate, on_send)
                send_seconds = time.perf_counter() - start
                await delivered.wait_for(urgent_count, drain_timeout)
                await answered.wait_for(total - urgent_count, drain_timeout)
                await asyncio.sleep(0.5)  # a late duplicate would show up here
            finally:
                inject_task.cancel()
                unsubscribe()
                unsubscribe_saved()
            deliveries = [(at, [d for row in event.message.inline for _label, d in row])
                          for at, event in delivered.events if event.message is not None]
            urgent_ids = {sim.id for sim in urgent_sims}
            price = Ordinary.of([(chat, at) for chat, times in sent.items() if chat not in urgent_ids for at in times],
                                [(at, event.chat_id) for at, event in answered.events], start)
            return await _report(kind, care, injector, deliveries, urgent_sent, urgent_count, rate, seconds,
                                 send_seconds, len(docs), price)
        finally:
            if inject_task is not None and not inject_task.done():
                inject_task.cancel()
            await care.stop()
            gc.unfreeze()


@dataclass
class Ordinary:
    """The price of urgent-first: how the ordinary readings fared (message -> its "Saved" reply)."""

    sent: int
    answered: int
    latencies: list[float]
    last_answer_s: float  # from the first send to the last "Saved": when the backlog drained

    @staticmethod
    def of(sent: list[tuple[int, float]], answers: list[tuple[float, int]], start: float) -> Ordinary:
        """Pair each chat's k-th ordinary reading with its k-th "Saved" (a chat is handled in order)."""
        by_chat: dict[int, list[float]] = defaultdict(list)
        for chat, at in sent:
            by_chat[chat].append(at)
        replies: dict[int, list[float]] = defaultdict(list)
        for at, chat in answers:
            replies[chat].append(at)
        lat = [r - s for chat, times in by_chat.items() for s, r in zip(sorted(times), replies.get(chat, []),
                                                                         strict=False)]
        last = max((at for at, _chat in answers), default=start) - start
        return Ordinary(len(sent), len(answers), lat, last)


async def _report(kind: str, care: CareCircle, injector: FailureInjector, deliveries: list[tuple[float, list[str]]],
                  urgent_sent: dict[int, float], urgent_count: int, rate: float, seconds: float,
                  send_seconds: float, doctors: int, price: Ordinary) -> dict[str, Any]:
    first_seen: dict[int, float] = {}
    copies: Counter[int] = Counter()
    for at, datas in deliveries:
        for data in datas:
            match = ALERT_ID.match(data)
            if match:
                alert_id = int(match.group(1))
                copies[alert_id] += 1
                first_seen.setdefault(alert_id, at)
    async with care.services.sessions() as session:
        alerts = await session.execute(select(Alert.id, User.telegram_id, Alert.created_at)
                                       .join(User, User.id == Alert.patient_id))
        rows = alerts.all()
        alert_rows = [(alert_id, tg_id) for alert_id, tg_id, _created in rows]
        created = {alert_id: at.timestamp() - WALL_MINUS_PERF for alert_id, _tg, at in rows}
        send_failed = int(await session.scalar(
            select(func.count(AlertEvent.id)).where(AlertEvent.event == "send_failed")) or 0)
        pending = int(await session.scalar(
            select(func.count(Outbox.id)).where(Outbox.status.in_(("pending", "sending")))) or 0)
    lat = [first_seen[alert_id] - urgent_sent[tg_id] for alert_id, tg_id in alert_rows
           if alert_id in first_seen and tg_id in urgent_sent]
    # Where the time goes: message -> alert row committed (update queue + handler + transaction),
    # then commit -> delivered (outbox wake/poll, rate limiter, Telegram failures).
    ingest = [created[a] - urgent_sent[tg] for a, tg in alert_rows if a in created and tg in urgent_sent]
    outbox = [first_seen[a] - created[a] for a, _tg in alert_rows if a in first_seen and a in created]
    lost = sum(1 for alert_id, _tg in alert_rows if alert_id not in first_seen)
    duplicates = sum(n - 1 for n in copies.values() if n > 1)
    p99 = ms(percentile(lat, 99))
    result = {"p50_ms": ms(percentile(lat, 50)), "p99_ms": p99, "max_ms": ms(max(lat, default=0.0)),
              "alerts_lost": lost, "duplicates": duplicates}
    emit(BENCH, f"alert_delivery_p99_ms[{kind}]", p99, unit="ms", target="p99 < 1000 ms, 0 lost, 0 duplicates",
         ok=(p99 is not None and p99 < 1000 and lost == 0 and duplicates == 0 and len(alert_rows) == urgent_count),
         p50_ms=result["p50_ms"], max_ms=result["max_ms"], alerts_lost=lost,
         ingest_p50_ms=ms(percentile(ingest, 50)), ingest_p99_ms=ms(percentile(ingest, 99)),
         outbox_p50_ms=ms(percentile(outbox, 50)), outbox_p99_ms=ms(percentile(outbox, 99)), duplicates=duplicates,
         urgent_readings=urgent_count, alert_rows=len(alert_rows), delivered=len(first_seen),
         alert_send_failures=send_failed, outbox_left=pending, injected_500=injector.injected_500,
         injected_429=injector.injected_429, rate=rate, seconds=seconds, send_seconds=send_seconds,
         doctors=doctors, ordinary_sent=price.sent, ordinary_answered=price.answered,
         ordinary_p50_ms=ms(percentile(price.latencies, 50)), ordinary_p99_ms=ms(percentile(price.latencies, 99)),
         ordinary_last_answer_s=price.last_answer_s)
    return result


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    split = not args.in_process
    if not args.no_baseline:
        baseline = await echo_burst(int(args.rate), 1, glue=False, split=split)
        emit(BENCH, "echo_baseline_reply_p99_ms", baseline.p99_ms, unit="ms", p50_ms=baseline.p50_ms,
             baseline_is="echo bot, PTB defaults: R users send one message each at once",
             telegram="child process" if split else "same process")
    doctors = args.doctors or max(1, math.ceil(args.rate * 0.05 / 0.5))
    return [await run_db(kind, args.rate, args.seconds, doctors, args.drain_timeout, split)
            for kind in await database_kinds(args.db)]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="readings/s offered (5 %% urgent)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--doctors", type=int, default=0, help="default: one per 0.5 urgent readings/s")
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"], help="default: both")
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="wait this long for late alerts")
    parser.add_argument("--full", action="store_true", help="500 readings/s for 30 s")
    parser.add_argument("--no-baseline", action="store_true", help="skip the echo baseline (A/B runs)")
    parser.add_argument("--in-process", action="store_true",
                        help="FakeTelegram and the users in this process (default: a child process)")
    args = parser.parse_args(argv)
    if args.full:
        args.rate, args.seconds = 500.0, 30.0
    quiet_logs()
    return asyncio.run(run(args))


if __name__ == "__main__":
    main()
