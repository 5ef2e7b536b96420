"""`carecircle sandbox` (and `make run` without a token): FakeTelegram + the real bot + the web
chat on one page, with demo people, so CareCircle can be tried without a Telegram account."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from bot.app import build
from bot.config import DEFAULT_DB_URL, Settings
from bot.sandbox.demo import seed_demo
from bot.sandbox.fake_telegram import FakeTelegram
from bot.sandbox.webchat import add_webchat_routes

log = logging.getLogger(__name__)
SANDBOX_DB = Path("data/sandbox.sqlite3")


async def run_sandbox(settings: Settings, stop: asyncio.Event | None = None) -> None:
    if settings.database_url == DEFAULT_DB_URL:
        # A fresh demo each start, kept apart from real data.
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SANDBOX_DB}{suffix}").unlink(missing_ok=True)
        settings = settings.with_(database_url=f"sqlite+aiosqlite:///{SANDBOX_DB}")
    async with FakeTelegram() as tg:
        settings = settings.with_(telegram_token=tg.token, telegram_api_base=tg.base_url,
                                  webhook_url=None, bot_username=tg.bot_username)
        doctor = tg.user("李医生 Dr Li", language_code="zh-hans", started=True)
        patient = tg.user("王阿姨", language_code="zh-hans", started=True)
        caregiver = tg.user("Xiao Wang", language_code="en", started=True)
        app = build(settings)
        add_webchat_routes(app.web_app, tg, personas=[patient, doctor, caregiver])
        await app.start()
        await seed_demo(app.services, doctor.id, patient.id, caregiver.id)
        url = f"http://{settings.http_host}:{settings.http_port}/"
        print(f"\nCareCircle sandbox is running. Open {url} to chat (Ctrl+C to stop).\n", flush=True)
        try:
            if stop is None:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError):
                        loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await app.stop()
