"""`carecircle run --workers N`: migrate once, start N worker processes on one port, keep them up.

Why a parent at all (and not just N copies under systemd): the workers must agree on N (it decides
which worker owns a chat, see bot.telegram.scaleout), a worker that dies must come back with the
same index or its chats wait, and SIGTERM must reach them all. The parent holds no database
connection and no socket of its own; each worker binds the port with SO_REUSEPORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time

from bot.config import Settings

log = logging.getLogger("carecircle.supervisor")
RESTART_DELAY = 1.0


def refusal(settings: Settings, workers: int) -> str | None:
    """Why `--workers N` cannot run with these settings (one readable line), or None."""
    if workers < 1:
        return "--workers must be at least 1"
    if workers == 1:
        return None
    if not settings.database_url.startswith("postgresql"):
        return ("--workers needs PostgreSQL (DATABASE_URL=postgresql://...): SQLite allows one writer, "
                "so run one process")
    if settings.sandbox:
        return "--workers needs TELEGRAM_BOT_TOKEN: the sandbox runs in one process"
    if not settings.webhook:
        return ("--workers needs webhook mode (WEBHOOK_URL and WEBHOOK_SECRET): with long polling Telegram "
                "serves one getUpdates caller, so run one process")
    return None


async def supervise(settings: Settings, workers: int, log_level: str) -> None:
    from storage.db import create_engine
    from storage.migrate import upgrade

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)  # once, before any worker serves (they would wait on the lock anyway)
    finally:
        await engine.dispose()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    procs: dict[int, asyncio.subprocess.Process] = {}

    async def spawn(index: int) -> None:
        procs[index] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--log-level", log_level, "run", "--worker", f"{index}/{workers}",
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    async def keep(index: int) -> None:
        while not stopping.is_set():
            await spawn(index)
            started = time.monotonic()
            code = await procs[index].wait()
            if stopping.is_set():
                return
            log.error("worker %d/%d exited with %s after %.0f s; restarting it", index, workers, code,
                      time.monotonic() - started)
            await asyncio.sleep(RESTART_DELAY)

    keepers = [asyncio.create_task(keep(i)) for i in range(workers)]
    log.info("CareCircle is running with %d workers on port %d", workers, settings.http_port)
    await stopping.wait()
    for proc in procs.values():
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
    for task in keepers:
        task.cancel()
    await asyncio.gather(*keepers, return_exceptions=True)
