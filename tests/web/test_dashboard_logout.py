"""Logout revokes the session on the server: the same cookie, replayed, opens nothing (issue 8)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import CareCircle, build
from bot.sandbox import FakeTelegram
from bot.services.clock import ManualClock
from bot.web.auth import COOKIE_NAME
from storage.dashboard_models import DashboardRevocation
from tests.conftest import app_settings
from tests.web.seed import Seeder, at

NOW = at("2026-06-30 04:00")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def care(tg: FakeTelegram, sqlite_url: str, clock: ManualClock) -> AsyncIterator[CareCircle]:
    app = build(app_settings(tg, sqlite_url), clock=clock)
    await app.start()
    yield app
    await app.stop()


async def session_cookie(care: CareCircle, url: str, doctor_id: int) -> str:
    """Log in through a one-time link, as a browser would, and return the raw session cookie."""
    async with aiohttp.ClientSession() as http:
        token = await care.services.dashboard.create_login(doctor_id)
        response = await http.post(url + "/dashboard/login", data={"token": token}, allow_redirects=False)
        assert response.status == 303
        return response.cookies[COOKIE_NAME].value


async def test_logout_makes_the_cookie_useless_but_not_other_sessions(care: CareCircle, clock: ManualClock) -> None:
    url = f"http://127.0.0.1:{care.settings.http_port}"
    sd = Seeder(care.services.sessions, NOW)
    doc = await sd.doctor("Dr Li", await sd.team("Qingshan"))
    laptop, phone = await session_cookie(care, url, doc), await session_cookie(care, url, doc)
    async with aiohttp.ClientSession() as http:
        page = await http.get(url + "/dashboard/", cookies={COOKIE_NAME: laptop})
        assert page.status == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert csrf
        out = await http.post(url + "/dashboard/logout", data={"csrf": csrf.group(1)},
                              cookies={COOKIE_NAME: laptop})
        assert out.status == 200
        assert out.cookies[COOKIE_NAME].value == ""  # the browser forgets it ...
        # ... and a copy of it (another tab, a stolen cookie) no longer opens anything, for any method.
        assert (await http.get(url + "/dashboard/", cookies={COOKIE_NAME: laptop})).status == 401
        assert (await http.get(url + "/dashboard/indicators", cookies={COOKIE_NAME: laptop})).status == 401
        assert (await http.post(url + "/dashboard/logout", data={"csrf": csrf.group(1)},
                                cookies={COOKIE_NAME: laptop})).status == 401
        # The doctor's other session (the phone) is untouched.
        assert (await http.get(url + "/dashboard/", cookies={COOKIE_NAME: phone})).status == 200

    # A revocation is kept only while its cookie could still be valid: the next logout purges it.
    clock.advance(hours=8, seconds=1)
    later = await session_cookie(care, url, doc)
    session = await care.services.dashboard.read_cookie(later)
    assert session is not None
    await care.services.dashboard.revoke(session)
    await care.services.dashboard.revoke(session)  # twice is harmless
    async with care.services.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(DashboardRevocation)) == 1
    assert await care.services.dashboard.read_cookie(later) is None
