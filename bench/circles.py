"""Issue 7: peer-support circle relay at peak: C circles x M members, one member message per second
per circle for D seconds (open loop), relayed by the real app through the outbox to the other M-1
members via FakeTelegram with its rate limits on.

Reported: relay delay (member's message -> copy in a recipient's chat) p50/p99, 429 count, the
relay throughput, and beside them
- the baseline: the same relay with the system idle (one circle, messages 2 s apart), same run;
- the bound Telegram's limits allow: every message fans out to M-1 chats, so one second of peak
  traffic is C*(M-1) messages; at the ~30 msg/s bulk limit that takes C*(M-1)/30 seconds to send.
  Relays are bot-initiated, so the outbox sends them as bulk (our limiter: at most 30 in any
  second as the server counts them, i.e. 30 per (1 s + one request's latency)). Replies to
  chats that wrote in the last 60 s are not bulk for Telegram (the fake's rule too), but a
  circle's recipients mostly did NOT write: at most one sender per circle per second is "active".
  So the delay of the LAST copy of a second's messages cannot be below C*(M-1)/30 s, and at a
  sustained peak the queue (and the delay) grows by C*(M-1)/30 - 1 s every second. Scale-out
  path: paid broadcasts (1000/s) or a linked Telegram group per circle (one message, not M-1).

Members, circles and memberships are written straight into the database (setting up thousands of
people through the chat would measure onboarding, not the relay); every message then takes the
real path: Telegram update -> dialog -> CircleService.relay -> outbox -> copy in each chat.

    .venv/bin/python -m bench.circles [--circles C] [--members M] [--seconds D] [--full]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

from bench.common import ReplyLog, database, emit, ms, percentile, quiet_logs, settings_for
from bot.app import CareCircle, build
from bot.sandbox import FakeTelegram, SimUser
from storage.circle_models import Circle, CircleMember
from storage.models import Team, User

BENCH = "circles"
BULK_LIMIT = 30.0


async def seed(care: CareCircle, tg: FakeTelegram, circles: int, members: int, prefix: str) -> list[list[SimUser]]:
    """Circles with members in circle mode; returns the simulated members per circle."""
    sims = [[tg.user(f"{prefix}{c}-{m}", language_code="en", started=True) for m in range(members)]
            for c in range(circles)]
    now = datetime.now(UTC)
    async with care.services.sessions.begin() as session:
        team = Team(name=f"bench-{prefix}")
        session.add(team)
        await session.flush()
        for c, people in enumerate(sims):
            circle = Circle(name=f"circle {c}", topic="mixed", language="en", team_id=team.id, created_at=now)
            session.add(circle)
            users = [User(telegram_id=u.id, chat_id=u.id, first_name=u.first_name, language="en", consent_at=now,
                          onboarded_at=now, created_at=now) for u in people]
            session.add_all(users)
            await session.flush()
            session.add_all([CircleMember(circle_id=circle.id, user_id=user.id, alias=f"Pine {m}", talking=True,
                                          agreed_at=now, joined_at=now) for m, user in enumerate(users)])
    return sims


async def run(care: CareCircle, tg: FakeTelegram, sims: list[list[SimUser]], seconds: int,
              prefix: str, spacing: float = 1.0, timeout: float = 1800.0) -> tuple[list[float], float, int, int]:
    """Each circle: one member message per `spacing` s for `seconds` messages; delays per copy."""
    sent_at: dict[str, float] = {}
    log = ReplyLog(match=lambda e: bool(e.message and e.message.text and f"{prefix}#" in e.message.text))
    unsubscribe = tg.subscribe(log)
    members = len(sims[0])
    expected = len(sims) * seconds * (members - 1)
    start = time.perf_counter()
    try:
        for second in range(seconds):
            due = start + second * spacing
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            for c, people in enumerate(sims):
                tag = f"{prefix}#{c}-{second}"
                sent_at[tag] = time.perf_counter()
                await people[second % members].send(f"hello {tag}")
        await log.wait_for(expected, timeout)
    finally:
        unsubscribe()
    delays = []
    for at, event in log.events:
        assert event.message is not None and event.message.text is not None
        tag = event.message.text.split("hello ", 1)[-1]
        if tag in sent_at:
            delays.append(at - sent_at[tag])
    elapsed = (log.events[-1][0] - start) if log.events else 0.0
    return delays, elapsed, log.count, _out_of_order(log.events)


def _out_of_order(events: list[tuple[float, object]]) -> int:
    """Copies that reached a chat before an earlier message of the same circle (order must hold)."""
    last: dict[tuple[int, str], int] = {}
    wrong = 0
    for _at, event in events:
        text = event.message.text or ""  # type: ignore[attr-defined]
        circle, second = text.split("#", 1)[1].rsplit("-", 1)
        key = (event.chat_id, circle)  # type: ignore[attr-defined]
        if int(second) < last.get(key, -1):
            wrong += 1
        last[key] = max(last.get(key, -1), int(second))
    return wrong


async def measure(circles: int, members: int, seconds: int) -> None:
    async with FakeTelegram() as tg, database("sqlite") as url:
        care = build(settings_for(tg, url, outbox_poll_seconds=0.05))
        await care.start(serve_http=False)
        try:
            base_sims = await seed(care, tg, 1, members, "base")
            big = await seed(care, tg, circles, members, "peak")
            base, _e, _n, _o = await run(care, tg, base_sims, 3, "base", spacing=2.0, timeout=60)
            tg.reset_stats()
            delays, elapsed, count, out_of_order = await run(care, tg, big, seconds, "peak")
            too_many = tg.stats.too_many_requests_real
        finally:
            await care.stop()
    expected = circles * seconds * (members - 1)
    bound = circles * (members - 1) / BULK_LIMIT
    emit(BENCH, "relay_delay_p50", ms(percentile(delays, 50)), unit="ms", target="as low as the 30 msg/s bound allows",
         baseline=ms(percentile(base, 50)), circles=circles, members=members, peak_seconds=seconds)
    # The last copy cannot arrive before all C*(M-1)*D copies went out at 30/s; add the idle delay.
    allowed = bound * seconds + (percentile(base, 99) or 0.0)
    p99 = percentile(delays, 99)
    emit(BENCH, "relay_delay_p99", ms(p99), unit="ms",
         target=f">= {bound * seconds * 1000:.0f} ms is forced by Telegram's bulk limit",
         bound_ms=ms(allowed), ratio_to_bound=round(p99 / allowed, 3) if allowed else None,
         baseline=ms(percentile(base, 99)), circles=circles, members=members, peak_seconds=seconds,
         telegram_bound_s_per_peak_second=bound,
         explain=f"each peak second = {circles}x{members - 1} = {circles * (members - 1)} copies; "
                 f"at 30/s that is {bound:.1f} s of sending per second of peak")
    emit(BENCH, "relay_429", too_many, unit="count", target="0", baseline=0, ok=too_many == 0)
    emit(BENCH, "relay_order", out_of_order, unit="copies out of order", target="0", ok=out_of_order == 0)
    emit(BENCH, "relay_throughput", count / elapsed if elapsed else None, unit="msg/s", target="<= 30 (Telegram)",
         baseline=BULK_LIMIT, delivered=count, expected=expected, ok=count == expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.circles", description=__doc__.split("\n\n")[0])
    parser.add_argument("--circles", type=int, default=40)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=1, help="seconds of peak traffic (1 msg/s per circle)")
    parser.add_argument("--full", action="store_true", help="200 circles x 20 members, 5 s of peak (~15 min)")
    args = parser.parse_args(argv)
    if args.full:
        args.circles, args.members, args.seconds = 200, 20, 5
    quiet_logs()
    asyncio.run(measure(args.circles, args.members, args.seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
