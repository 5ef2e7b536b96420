"""Regenerate the README pictures: `.venv/bin/python docs/screenshots.py` (needs Debian's chromium;
`apt-get install fonts-noto-cjk` makes the Chinese readable). Drives the real sandbox."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings
from bot.sandbox.runner import run_sandbox
from tests.browser.cdp import Browser
from tests.conftest import free_port

OUT = Path(__file__).parent


async def main() -> None:
    port = free_port()
    stop = asyncio.Event()
    server = asyncio.create_task(run_sandbox(Settings(http_port=port), stop))
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        async with http.get(f"{base}/sandbox/api/users") as r:
            users = (await r.json())["users"]
        patient = next(u for u in users if u["first_name"] == "王阿姨")
        for text in ("/start", "150/95", "186/112"):
            async with http.post(f"{base}/sandbox/api/users/{patient['id']}/send", json={"text": text}):
                pass
            await asyncio.sleep(1.5)
    async with await Browser.launch(width=1500, height=950) as browser:
        await browser.navigate(base + "/")
        await browser.wait_for("document.body.dataset.ready === '1'")
        await asyncio.sleep(3)
        await browser.screenshot(OUT / "webchat.png")
    stop.set()
    await server


if __name__ == "__main__":
    asyncio.run(main())
