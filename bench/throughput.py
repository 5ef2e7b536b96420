"""Issue 3: update throughput and reply latency through FakeTelegram by long polling.

N simulated users each send M messages at once (default 200 x 5; 5 is FakeTelegram's
per-chat burst, so a bot that answers every message can do it without a 429). Three bots,
same run, same machine:

  (a) echo on PTB defaults  — HTTPXRequest, updates processed one at a time (the baseline);
  (b) echo on our glue      — AiohttpRequest + ChatOrderedProcessor (in-memory ledger) + FloodLimiter;
  (c) the full CareCircle app (`bot.app.build`, SQLite) answering /help.

Target: (b) >= 2x (a) in updates/s. `--profile` prints a cProfile of (b) to stderr.

    .venv/bin/python -m bench.throughput [--users N] [--messages M] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys

from bench.common import (
    BurstResult,
    database,
    echo_burst,
    emit,
    quiet_logs,
    run_burst,
    settings_for,
)
from bot.app import build
from bot.sandbox import FakeTelegram

BENCH = "throughput"


async def full_app_burst(users: int, per_user: int) -> BurstResult:
    """The real application (SQLite file, production settings) answering /help."""
    async with FakeTelegram() as tg, database("sqlite") as url:
        care = build(settings_for(tg, url))
        await care.start(serve_http=False)
        try:
            sims = [tg.user(f"help{n}", language_code="en") for n in range(users)]
            return await run_burst(tg, sims, per_user, lambda n, i: "/help")
        finally:
            await care.stop()


def report(label: str, result: BurstResult, baseline: BurstResult | None, target: str | None) -> None:
    ratio = result.per_second / baseline.per_second if baseline and baseline.per_second else None
    emit(BENCH, f"updates_per_second[{label}]", result.per_second, unit="updates/s", target=target,
         baseline=baseline.per_second if baseline else None,
         ok=(ratio >= 2.0) if (target and ratio is not None) else None,
         ratio_to_baseline=ratio, p50_ms=result.p50_ms, p99_ms=result.p99_ms,
         messages=result.messages, replies=result.replies, seconds=result.seconds)


async def run(users: int, per_user: int, profile: bool) -> list[BurstResult]:
    baseline = await echo_burst(users, per_user, glue=False)
    report("a: echo, PTB defaults", baseline, None, None)
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    glue = await echo_burst(users, per_user, glue=True)
    if profiler:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
        print(out.getvalue(), file=sys.stderr)
    report("b: echo, CareCircle glue", glue, baseline, ">= 2x (a)")
    full = await full_app_burst(users, per_user)
    report("c: full app, /help", full, baseline, None)
    return [baseline, glue, full]


def main(argv: list[str] | None = None) -> list[BurstResult]:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5, help="per user, sent at once (FakeTelegram burst: 5)")
    parser.add_argument("--full", action="store_true", help="same as the defaults (the issue's size)")
    parser.add_argument("--profile", action="store_true", help="cProfile bot (b) to stderr")
    args = parser.parse_args(argv)
    quiet_logs()
    return asyncio.run(run(args.users, args.messages, args.profile))


if __name__ == "__main__":
    main()
