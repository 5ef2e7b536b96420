"""The doctor dashboard over real HTTP on the bot's own web server: login links, sessions, team
privacy, CSRF, audit, alerts, follow-ups, indicators and exports."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import func, select, update

from bot.app import CareCircle, build
from bot.sandbox import FakeTelegram
from bot.services.clock import ManualClock
from storage.dashboard_models import AuditLog
from storage.models import Alert, AlertEvent, FollowUp, TeamMember, User
from tests.conftest import app_settings
from tests.e2e.helpers import doctor, linked_patient, patient
from tests.web.seed import Seeder, at

NOW = at("2026-06-30 04:00")


@pytest.fixture
def clock() -> ManualClock:
    """"Today" is 2026-06-30 for the seeded dates."""
    return ManualClock(NOW)


@pytest.fixture
async def care(tg: FakeTelegram, sqlite_url: str, clock: ManualClock) -> AsyncIterator[CareCircle]:
    app = build(app_settings(tg, sqlite_url), clock=clock)
    await app.start()
    yield app
    await app.stop()


def base(care: CareCircle) -> str:
    return f"http://127.0.0.1:{care.settings.http_port}"


def client() -> aiohttp.ClientSession:
    # unsafe=True: keep cookies for an IP-address host (127.0.0.1), as a browser does
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http: aiohttp.ClientSession, care: CareCircle, token: str) -> aiohttp.ClientResponse:
    return await http.post(base(care) + "/dashboard/login", data={"token": token}, allow_redirects=False)


async def logged_in(care: CareCircle, doctor_id: int) -> aiohttp.ClientSession:
    http = client()
    response = await login(http, care, await care.services.dashboard.create_login(doctor_id))
    assert response.status == 303
    return http


async def csrf_of(http: aiohttp.ClientSession, url: str) -> str:
    html = await (await http.get(url)).text()
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


async def test_login_link_works_once_for_10_minutes_and_the_session_for_8_hours(
        tg: FakeTelegram, care: CareCircle, clock: ManualClock) -> None:
    doc = await doctor(tg, care)
    await doc.send("/dashboard")
    text = (await doc.next_message()).text
    link = re.search(r"(http://\S+/dashboard/login\?token=\S+)", text)
    assert link and link.group(1).startswith(base(care)), text
    token = link.group(1).split("token=")[1]
    async with client() as http:
        # Opening the link (or a preview bot fetching it) shows a button and spends nothing.
        page = await http.get(link.group(1))
        assert page.status == 200 and 'id="login-btn"' in await page.text()
        response = await login(http, care, token)
        assert response.status == 303 and response.headers["Location"] == "/dashboard/"
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=28800" in cookie
        panel = await http.get(base(care) + "/dashboard/")
        assert panel.status == 200 and "Log out" in await panel.text()
    async with client() as http:
        assert (await login(http, care, token)).status == 403  # reuse
        assert (await http.get(base(care) + "/dashboard/")).status == 401  # no session
        assert (await login(http, care, "forged-token")).status == 403
    await doc.send("/dashboard")
    late = (await doc.next_message()).text.split("token=")[1].split()[0]
    clock.advance(minutes=10, seconds=1)
    async with client() as http:
        assert (await login(http, care, late)).status == 403  # expired
    await doc.send("/dashboard")
    fresh = (await doc.next_message()).text.split("token=")[1].split()[0]
    async with client() as http:
        assert (await login(http, care, fresh)).status == 303
        assert (await http.get(base(care) + "/dashboard/")).status == 200
        clock.advance(hours=8, seconds=1)
        assert (await http.get(base(care) + "/dashboard/")).status == 401  # session over
    # A tampered cookie is not a session.
    async with client() as http:
        raw = await care.services.dashboard.session_cookie(1)
        forged = raw.replace("1.", "2.", 1)
        page = await http.get(base(care) + "/dashboard/", cookies={"cc_dash": forged})
        assert page.status == 401
    # Not a doctor: the same answer as an unknown command.
    u = await patient(tg, "Zhang")
    await u.send("/dashboard")
    assert "don't know that command" in (await u.next_message()).text


async def seed_two_teams(care: CareCircle) -> dict[str, int]:
    sd = Seeder(care.services.sessions, NOW)
    t1, t2 = await sd.team("Qingshan"), await sd.team("Hexi")
    ids = {"d1": await sd.doctor("Dr Li", t1, lead=True), "d2": await sd.doctor("Dr Far", t2)}
    ids["nurse"] = await sd.doctor("Nurse Wu", t1)
    p = ids["p"] = await sd.patient("Wang Ayi", t1, ids["d1"], conditions="hypertension,diabetes")
    q = ids["q"] = await sd.patient("Other Team Patient", t2, ids["d2"])
    for i in range(12):
        await sd.bp(p, f"2026-06-{10 + i:02d} 01:00", 130 + i, 82, pulse=70)
    await sd.glucose(p, "2026-06-11 00:00", 6.4)
    await sd.weight(p, "2026-06-12 00:00", 68.5)
    urgent = await sd.bp(p, "2026-06-29 01:00", 186, 112, pulse=90)
    ids["alert"] = await sd.alert(p, urgent)
    await sd.followup(p, ids["d1"], "2026-05-01")
    await sd.bp(q, "2026-06-20 01:00", 150, 95)
    ids["q_alert"] = await sd.alert(q, None)
    return ids


async def test_team_privacy_csrf_followups_alerts_audit_and_exports(care: CareCircle, clock: ManualClock) -> None:
    ids = await seed_two_teams(care)
    url = base(care)
    async with await logged_in(care, ids["d1"]) as http:
        # panel: counts and the patient; the other team's patient is not there
        html = await (await http.get(url + "/dashboard/")).text()
        assert "Wang Ayi" in html and "Other Team Patient" not in html
        assert re.search(r'id="total">1<', html)  # team 1 has one patient
        found = await http.get(url + "/dashboard/?q=Wang")
        assert "Wang Ayi" in await found.text()
        jumped = await http.get(url + f"/dashboard/?q={ids['p']}", allow_redirects=False)
        assert jumped.status == 303 and jumped.headers["Location"] == f"/dashboard/patient/{ids['p']}"
        # another team's patient, a missing one and junk are all 404
        for pid in (ids["q"], 999999, "abc"):
            assert (await http.get(url + f"/dashboard/patient/{pid}")).status == 404
            assert (await http.get(url + f"/dashboard/patient/{pid}/chart.png")).status == 404
        page = await http.get(url + f"/dashboard/patient/{ids['p']}")
        html = await page.text()
        assert page.status == 200 and "186/112" in html and "68.5 kg" in html and "6.4 mmol/L" in html
        assert "&lt; 140/90" in html and "bp_urgent" in html
        chart = await http.get(url + f"/dashboard/patient/{ids['p']}/chart.png")
        assert chart.content_type == "image/png" and (await chart.read())[:4] == b"\x89PNG"

        # CSRF: a POST without the token (or with a wrong one) is refused and changes nothing
        form = {"way": "phone", "outcome": "controlled", "systolic": "132", "diastolic": "84"}
        assert (await http.post(url + f"/dashboard/patient/{ids['p']}/followup", data=form)).status == 403
        bad = {**form, "csrf": "0" * 32}
        assert (await http.post(url + f"/dashboard/patient/{ids['p']}/followup", data=bad)).status == 403
        csrf = await csrf_of(http, url + f"/dashboard/patient/{ids['p']}")
        saved = await http.post(url + f"/dashboard/patient/{ids['p']}/followup", data={**form, "csrf": csrf},
                                allow_redirects=False)
        assert saved.status == 303
        foreign = await http.post(url + f"/dashboard/patient/{ids['q']}/followup", data={**form, "csrf": csrf})
        assert foreign.status == 404
        async with care.services.sessions() as s:
            rows = list(await s.scalars(select(FollowUp).where(FollowUp.way == "phone")))
        assert [(r.patient_id, r.systolic, r.doctor_id) for r in rows] == [(ids["p"], 132, ids["d1"])]

        # alerts: only our team's; acting on the other team's alert is "not found" and changes nothing
        html = await (await http.get(url + "/dashboard/alerts")).text()
        assert f'data-alert="{ids["alert"]}"' in html and f'data-alert="{ids["q_alert"]}"' not in html
        assert (await http.post(url + f"/dashboard/alerts/{ids['alert']}", data={"action": "ack"})).status == 403
        assert (await http.post(url + f"/dashboard/alerts/{ids['q_alert']}",
                                data={"action": "ack", "csrf": csrf})).status == 404
        done = await http.post(url + f"/dashboard/alerts/{ids['alert']}", data={"action": "called", "csrf": csrf},
                               allow_redirects=False)
        assert done.status == 303
        async with care.services.sessions() as s:
            mine, theirs = await s.get(Alert, ids["alert"]), await s.get(Alert, ids["q_alert"])
            assert (mine.status, mine.action, mine.acked_by) == ("acknowledged", "called", ids["d1"])
            assert theirs.status == "open"

        # indicators page, drill-down and chart
        ind = await http.get(url + "/dashboard/indicators?start=2026-04-01&end=2026-06-30")
        html = await ind.text()
        assert ind.status == 200 and "BP control rate" in html and "≥ 50 %" in html and "below their target" in html
        drill = await http.get(url + "/dashboard/indicators/patients?key=managed&which=all&start=2026-04-01"
                               "&end=2026-06-30")
        assert "Wang Ayi" in await drill.text()
        svg = await http.get(url + "/dashboard/indicators/chart.svg?end=2026-06-30")
        assert svg.content_type == "image/svg+xml" and "<polyline" in await svg.text()

        # CSV: streamed (chunked), parses, only our team's rows, the period filter applies
        export = await http.get(url + "/dashboard/export/readings.csv?since=2026-06-15&until=2026-06-30")
        assert export.headers.get("Transfer-Encoding") == "chunked"
        rows = list(csv.DictReader(io.StringIO((await export.read()).decode("utf-8-sig"))))
        assert {r["patient_id"] for r in rows} == {str(ids["p"])}
        assert len(rows) == 8  # BP on 06-15..06-21 (7) + the urgent 06-29
        assert {"systolic", "measured_at", "kind"} <= set(rows[0])
        for what in ("patients", "followups", "alerts"):
            response = await http.get(url + f"/dashboard/export/{what}.csv")
            parsed = list(csv.DictReader(io.StringIO((await response.read()).decode("utf-8-sig"))))
            assert parsed and all(r.get("patient_id", r.get("id")) != str(ids["q"]) for r in parsed), what

        # FHIR: one patient's bundle and the panel's validate as FHIR R4(B) Bundles
        one = await http.get(url + f"/dashboard/export/fhir.json?patient={ids['p']}")
        bundle = Bundle.model_validate(json.loads(await one.text()))
        kinds = [e.resource.get_resource_type() for e in bundle.entry]
        assert kinds.count("Patient") == 1 and "Practitioner" in kinds and "Encounter" in kinds
        data = json.loads(await one.text())
        bp = next(e["resource"] for e in data["entry"] if e["resource"].get("code", {}).get("coding", [{}])[0]
                  .get("code") == "85354-9")
        assert [c["code"]["coding"][0]["code"] for c in bp["component"]] == ["8480-6", "8462-4"]
        assert bp["component"][0]["valueQuantity"]["code"] == "mm[Hg]"
        codes = {e["resource"]["code"]["coding"][0]["code"] for e in data["entry"] if "code" in e["resource"]}
        assert {"85354-9", "8867-4", "14743-9", "29463-7"} <= codes
        assert (await http.get(url + f"/dashboard/export/fhir.json?patient={ids['q']}")).status == 404
        panel_bundle = Bundle.model_validate(json.loads(await (await http.get(url + "/dashboard/export/fhir.json")).text()))
        assert all(e.resource.id != f"p{ids['q']}" for e in panel_bundle.entry)

        # the lead reads the audit log
        audit = await http.get(url + "/dashboard/audit")
        assert audit.status == 200 and "export" in await audit.text()

        # logout needs the token too, then the session cookie is gone
        assert (await http.post(url + "/dashboard/logout")).status == 403
        assert (await http.post(url + "/dashboard/logout", data={"csrf": csrf})).status == 200
        assert (await http.get(url + "/dashboard/")).status == 401

    async with care.services.sessions() as s:
        audited = (await s.execute(select(AuditLog.action, AuditLog.patient_id, AuditLog.actor_id))).all()
    assert ("patient", ids["p"], ids["d1"]) in audited
    assert ("followup", ids["p"], ids["d1"]) in audited
    assert any(a == "export" for a, _p, _d in audited)
    assert not any(p == ids["q"] for _a, p, _d in audited)  # the 404s were never shown, so not "seen"

    # not the lead: no audit page; the other team's doctor sees none of team 1
    async with await logged_in(care, ids["nurse"]) as http:
        assert (await http.get(url + "/dashboard/audit")).status == 403
        assert (await http.get(url + f"/dashboard/patient/{ids['p']}")).status == 200
    async with await logged_in(care, ids["d2"]) as http:
        assert (await http.get(url + f"/dashboard/patient/{ids['p']}")).status == 404
        assert "Wang Ayi" not in await (await http.get(url + "/dashboard/")).text()


async def test_acknowledging_on_the_web_is_the_same_as_the_chat_button(tg: FakeTelegram, care: CareCircle) -> None:
    doc = await doctor(tg, care)
    u = await linked_patient(tg, doc)
    await u.send("186/112")
    await u.next_message()
    alert = await doc.next_message(timeout=3.0)
    assert "186/112" in alert.text
    async with care.services.sessions() as s:
        doctor_id = await s.scalar(select(User.id).where(User.telegram_id == doc.id))
        alert_id = await s.scalar(select(Alert.id))
        await s.execute(update(TeamMember).values(is_lead=True))
        await s.commit()
    async with await logged_in(care, doctor_id) as http:
        url = base(care)
        assert f'data-alert="{alert_id}"' in await (await http.get(url + "/dashboard/alerts")).text()
        csrf = await csrf_of(http, url + "/dashboard/alerts")
        await http.post(url + f"/dashboard/alerts/{alert_id}", data={"action": "ack", "csrf": csrf})
        assert f'data-alert="{alert_id}"' not in await (await http.get(url + "/dashboard/alerts")).text()
    # the patient hears that the doctor has seen it, as after the chat button
    seen = await u.next_message(timeout=3.0)
    while "has seen" not in seen.text:
        seen = await u.next_message(timeout=3.0)
    # the chat button now answers "Already handled." and changes nothing
    await doc.press("Acknowledge")
    for _ in range(50):
        if doc.callback_answers:
            break
        await asyncio.sleep(0.05)
    assert doc.callback_answers[-1] == "Already handled."
    async with care.services.sessions() as s:
        acks = await s.scalar(select(func.count()).select_from(AlertEvent).where(AlertEvent.event.like("acked:%")))
    assert acks == 1
