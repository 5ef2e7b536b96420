"""The dashboard's patient page reads everything in one session (issue 8), on SQLite and PostgreSQL: it
still answers 404 for another team's patient (and writes no audit row then), shows the doctor's own
patient kept in another team, writes one audit row per view, and shows each alert's own timeline (all
timelines now come from one statement)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import CareCircle, build
from bot.sandbox import FakeTelegram
from bot.services.clock import ManualClock
from storage.dashboard_models import AuditLog
from storage.models import AlertEvent
from tests.conftest import app_settings
from tests.web.seed import Seeder, at

NOW = at("2026-06-30 04:00")


@pytest.fixture
async def care(tg: FakeTelegram, db_url: str) -> AsyncIterator[CareCircle]:
    app = build(app_settings(tg, db_url), clock=ManualClock(NOW))
    await app.start()
    yield app
    await app.stop()


async def test_patient_page_scope_audit_and_timelines(care: CareCircle) -> None:
    sd = Seeder(care.services.sessions, NOW)
    mine, other = await sd.team("Qingshan"), await sd.team("Hexi")
    doctor, colleague = await sd.doctor("Dr Li", mine), await sd.doctor("Dr Far", other)
    patient = await sd.patient("Wang Ayi", mine, doctor)
    own = await sd.patient("Own Elsewhere", other, doctor)  # Dr Li's own patient in team Hexi
    foreign = await sd.patient("Foreign Patient", other, colleague)
    first = await sd.alert(patient, await sd.bp(patient, "2026-06-28 01:00", 186, 112))
    second = await sd.alert(patient, await sd.bp(patient, "2026-06-29 01:00", 190, 115))
    quiet = await sd.alert(foreign, None)
    async with care.services.sessions.begin() as session:
        for alert_id, event, minute in ((second, "escalated-second", 30), (first, "sent-first", 10),
                                        (first, "acked-first", 20), (quiet, "foreign-event", 15)):
            session.add(AlertEvent(alert_id=alert_id, at=at(f"2026-06-29 02:{minute}"), event=event,
                                   detail=""))

    found = await care.services.alerts.timelines([first, second, 999_999])
    assert [[e.event for e in found[a]] for a in (first, second, 999_999)] == [
        ["sent-first", "acked-first"], ["escalated-second"], []]
    assert await care.services.alerts.timelines([]) == {}

    url = f"http://127.0.0.1:{care.settings.http_port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        token = await care.services.dashboard.create_login(doctor)
        assert (await http.post(url + "/dashboard/login", data={"token": token}, allow_redirects=False)).status == 303
        for pid in (foreign, 999_999, "12abc"):
            page = await http.get(f"{url}/dashboard/patient/{pid}")
            assert page.status == 404 and "Foreign Patient" not in await page.text()
        page = await http.get(f"{url}/dashboard/patient/{patient}")
        html = await page.text()
        assert page.status == 200 and "Wang Ayi" in html and "186/112" in html
        assert html.index("sent-first") < html.index("acked-first") and "escalated-second" in html
        assert "foreign-event" not in html
        assert (await http.get(f"{url}/dashboard/patient/{own}")).status == 200
        assert (await http.get(f"{url}/dashboard/patient/{patient}")).status == 200

    async with care.services.sessions() as session:
        audited = (await session.execute(select(AuditLog.action, AuditLog.patient_id, AuditLog.actor_id)
                                         .where(AuditLog.action == "patient").order_by(AuditLog.id))).all()
    assert [tuple(row) for row in audited] == [("patient", patient, doctor), ("patient", own, doctor),
                                               ("patient", patient, doctor)]
