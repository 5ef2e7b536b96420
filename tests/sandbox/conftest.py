"""Fixtures for the FakeTelegram tests: the server, a real PTB ``Bot`` and a raw aiohttp client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import telegram

from bot.sandbox import FakeTelegram


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as ptb_bot:
        yield ptb_bot


class RawApi:
    """Calls the fake with plain aiohttp so tests see the exact JSON and HTTP status."""

    def __init__(self, tg: FakeTelegram, session: aiohttp.ClientSession) -> None:
        self.tg = tg
        self.session = session

    async def __call__(self, method: str, *, encoding: str = "json", token: str | None = None,
                       **params: Any) -> tuple[int, dict[str, Any]]:
        url = f"{self.tg.base_url}{token or self.tg.token}/{method}"
        if encoding == "json":
            resp = await self.session.post(url, json=params)
        elif encoding == "form":
            form = {k: v if isinstance(v, str) else __import__("json").dumps(v) for k, v in params.items()}
            resp = await self.session.post(url, data=form)
        else:
            resp = await self.session.get(url, params={k: str(v) for k, v in params.items()})
        async with resp:
            return resp.status, await resp.json()

    async def error(self, method: str, **params: Any) -> tuple[int, str]:
        """Status and description of a call that must fail; checks the body mirrors the status."""
        status, body = await self(method, **params)
        assert body["ok"] is False, body
        assert body["error_code"] == status
        return status, body["description"]


@pytest.fixture
async def api(tg: FakeTelegram) -> AsyncIterator[RawApi]:
    async with aiohttp.ClientSession() as session:
        yield RawApi(tg, session)
