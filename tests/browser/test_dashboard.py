"""The doctor dashboard in headless Chromium: log in by the link, open the panel, open a patient,
acknowledge an alert. With SCREENSHOT_DIR set, saves dashboard.png there (for docs/)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cdp import Browser, find_chromium
from sqlalchemy import select

from bot.app import CareCircle, build
from bot.sandbox import FakeTelegram
from bot.services.clock import ManualClock
from storage.models import Alert
from tests.conftest import app_settings
from tests.web.seed import Seeder, at

pytestmark = pytest.mark.browser
NOW = at("2026-06-30 04:00")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    binary = find_chromium()
    if binary is None:
        message = "Chromium is not installed (make installs it at /usr/bin/chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + "; browser tests are required on CI")
        pytest.skip(message)
    browser = await Browser.launch(binary, width=1280, height=860)
    try:
        yield browser
    finally:
        await browser.close()


@pytest.fixture
async def care(tg: FakeTelegram, sqlite_url: str) -> AsyncIterator[CareCircle]:
    app = build(app_settings(tg, sqlite_url), clock=ManualClock(NOW))
    await app.start()
    yield app
    await app.stop()


async def test_log_in_open_a_patient_and_acknowledge_an_alert(browser: Browser, care: CareCircle) -> None:
    sd = Seeder(care.services.sessions, NOW)
    team = await sd.team("Qingshan")
    doc = await sd.doctor("Dr Li", team, lead=True)
    names = ["Wang Ayi", "Li Shu", "Zhao Nainai", "Chen Bo", "Liu Yi"]
    pids = [await sd.patient(n, team, doc, conditions="hypertension,diabetes" if i % 2 else "hypertension")
            for i, n in enumerate(names)]
    for i, pid in enumerate(pids):
        for day in range(14, 29, 2):
            await sd.bp(pid, f"2026-06-{day:02d} 00:30", 128 + 4 * i + day % 5, 80 + i)
        await sd.glucose(pid, "2026-06-20 00:00", 6.2 + i)
    urgent = await sd.bp(pids[0], "2026-06-29 23:00", 186, 112, pulse=92)
    alert_id = await sd.alert(pids[0], urgent)
    await sd.followup(pids[1], doc, "2026-05-02")
    base = f"http://127.0.0.1:{care.settings.http_port}"
    token = await care.services.dashboard.create_login(doc)

    await browser.navigate(f"{base}/dashboard/login?token={token}")
    await browser.click("#login-btn")
    await browser.wait_for("document.body.dataset.page === 'panel'", timeout=10)
    assert await browser.evaluate("document.querySelector('#total').textContent") == "5"
    first = await browser.evaluate("document.querySelector('#panel tbody tr').dataset.patient")
    assert first == str(pids[0])  # the open alert ranks first, as in /patients
    shots = os.environ.get("SCREENSHOT_DIR")
    if shots:
        await browser.screenshot(Path(shots) / "dashboard.png")

    await browser.click(f'#panel a[href="/dashboard/patient/{pids[0]}"]')
    await browser.wait_for("document.body.dataset.page === 'patient'", timeout=10)
    assert await browser.evaluate("document.querySelector('#patient-name').textContent.includes('Wang Ayi')")
    assert await browser.evaluate("document.querySelector('#readings').textContent.includes('186/112')")
    await browser.wait_for("document.querySelector('img.chart').complete && "
                           "document.querySelector('img.chart').naturalWidth > 0", timeout=10)

    await browser.click('a[href="/dashboard/alerts"]')
    await browser.wait_for("document.body.dataset.page === 'alerts'", timeout=10)
    await browser.click(f'.alert-row[data-alert="{alert_id}"] .act-ack')
    await browser.wait_for("!!document.querySelector('#done')", timeout=10)
    assert await browser.evaluate("!!document.querySelector('#no-alerts')")
    async with care.services.sessions() as s:
        alert = await s.scalar(select(Alert).where(Alert.id == alert_id))
    assert alert is not None and (alert.status, alert.acked_by) == ("acknowledged", doc)
