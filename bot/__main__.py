"""The one entry point: `carecircle run | sandbox | migrate | admin ... | export ...`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from bot.config import ConfigError, Settings


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx/aiohttp access lines would print the bot token inside URLs: keep them quiet.
    for noisy in ("httpx", "httpcore", "aiohttp.access", "telegram.ext.Updater"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _run(settings: Settings, worker: str | None = None) -> None:
    from bot.app import build

    if settings.sandbox:
        from bot.sandbox.runner import run_sandbox

        await run_sandbox(settings)
        return
    app = build(settings)
    if worker is not None:  # one of `run --workers N` (bot.supervisor)
        from bot.telegram.scaleout import ScaleOut, WorkerSlot

        app.scale = ScaleOut(app, WorkerSlot.parse(worker))
    await app.start()
    from bot.app import freeze_startup_objects

    freeze_startup_objects()
    logging.getLogger("carecircle").info("CareCircle is running (%s%s)", "webhook" if settings.webhook else "polling",
                                         f", worker {worker}" if worker else "")
    try:
        await _wait_for_stop()
    finally:
        await app.stop()


async def _migrate(settings: Settings) -> None:
    from storage.db import create_engine
    from storage.migrate import upgrade

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def _invite_doctor(settings: Settings, name: str, team: str, role: str) -> str:
    from bot.services.container import Services

    services = Services.build(settings)
    try:
        from storage.migrate import upgrade

        await upgrade(services.engine)
        payload = await services.invites.create_doctor_invite(name, team, role)
    finally:
        await services.engine.dispose()
    username = settings.bot_username or "<your_bot_username>"
    return f"https://t.me/{username}?start={payload}"


async def _export(settings: Settings, fmt: str, what: str, team: str, since: str | None, until: str | None,
                  output: str) -> int:
    """`carecircle export`: the dashboard's CSV / FHIR exports for a whole team, to a file or stdout."""
    import json
    from datetime import UTC, datetime, timedelta

    from bot.services.container import Services
    from storage.migrate import upgrade

    try:
        start = datetime.fromisoformat(since).replace(tzinfo=UTC) if since else None
        end = datetime.fromisoformat(until).replace(tzinfo=UTC) + timedelta(days=1) if until else None
    except ValueError:
        print("--since/--until must be dates like 2026-01-31", file=sys.stderr)
        return 2
    services = Services.build(settings)
    try:
        await upgrade(services.engine)
        scope = await services.exports.team_scope(team)
        if scope is None:
            print(f"no team named {team!r}", file=sys.stderr)
            return 1
        out = sys.stdout.buffer if output == "-" else open(output, "wb")  # noqa: ASYNC230 - a CLI: nothing else runs on this loop
        try:
            if fmt == "csv":
                async for chunk in services.exports.csv_rows(what, scope, start, end):
                    out.write(chunk)
            else:
                bundle = await services.exports.fhir_bundle(scope, None, start, end)
                out.write(json.dumps(bundle, ensure_ascii=False).encode())
        finally:
            if out is not sys.stdout.buffer:
                out.close()
    finally:
        await services.engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carecircle", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="start the bot (the sandbox when TELEGRAM_BOT_TOKEN is unset)")
    run.add_argument("--workers", type=int, default=1,
                     help="N processes on one port (webhook mode and PostgreSQL only)")
    run.add_argument("--worker", help=argparse.SUPPRESS)  # "i/N", set by the supervisor for its children
    sub.add_parser("sandbox", help="start the local sandbox: fake Telegram + web chat")
    sub.add_parser("migrate", help="apply database migrations")
    admin = sub.add_parser("admin", help="administration")
    admin_sub = admin.add_subparsers(dest="admin_command")
    invite = admin_sub.add_parser("invite-doctor", help="print a one-time doctor invite link (7 days)")
    invite.add_argument("--name", required=True)
    invite.add_argument("--team", required=True)
    invite.add_argument("--role", default="gp", choices=["gp", "public_health", "nurse"])
    export = sub.add_parser("export", help="export a team's data as CSV or a FHIR R4 bundle (dates in UTC)")
    export.add_argument("--format", default="csv", choices=["csv", "fhir"])
    export.add_argument("--what", default="readings", choices=["patients", "readings", "followups", "alerts"])
    export.add_argument("--team", required=True)
    export.add_argument("--since", help="YYYY-MM-DD")
    export.add_argument("--until", help="YYYY-MM-DD (inclusive)")
    export.add_argument("-o", "--output", default="-", help="file (default: stdout)")
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"configuration problem: {problem}", file=sys.stderr)
        return 2
    from bot.app import StartupError

    try:
        if args.command == "run" and args.workers != 1:
            from bot.supervisor import refusal, supervise

            problem = refusal(settings, args.workers)
            if problem:
                print(f"cannot start: {problem}", file=sys.stderr)
                return 2
            asyncio.run(supervise(settings, args.workers, args.log_level))
        elif args.command in (None, "run"):
            asyncio.run(_run(settings, getattr(args, "worker", None)))
        elif args.command == "sandbox":
            asyncio.run(_run(settings.with_(telegram_token=None)))
        elif args.command == "migrate":
            asyncio.run(_migrate(settings))
            print("database is up to date")
        elif args.command == "export":
            return asyncio.run(_export(settings, args.format, args.what, args.team, args.since, args.until,
                                       args.output))
        elif args.command == "admin" and args.admin_command == "invite-doctor":
            print(asyncio.run(_invite_doctor(settings, args.name, args.team, args.role)))
        else:
            parser.print_help()
            return 2
    except StartupError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
