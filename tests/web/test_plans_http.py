"""The care plan form on the dashboard over real HTTP: defaults shown, saved through the same use
case as the chat (reminders, targets, announcement), CSRF required, another team gets 404."""

from __future__ import annotations

import re

import aiohttp
import pytest
from multidict import MultiDict
from sqlalchemy import select

from bot.app import CareCircle
from bot.sandbox import FakeTelegram
from storage.models import Medicine, PatientProfile
from storage.plan_models import CarePlanVersion
from storage.reminder_models import Reminder
from tests.e2e.helpers import doctor, linked_patient


@pytest.fixture
def app(care: CareCircle) -> CareCircle:
    """The app on the ManualClock (a Tuesday 10:00 in Shanghai) instead of the real clock: a plan
    announcement waits for the end of the person's quiet hours, so on the real clock these tests
    would depend on the hour the suite runs."""
    return care


def _base(app: CareCircle) -> str:
    return f"http://127.0.0.1:{app.settings.http_port}"


async def _logged_in(app: CareCircle, doctor_id: int) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    token = await app.services.dashboard.create_login(doctor_id)
    response = await http.post(_base(app) + "/dashboard/login", data={"token": token}, allow_redirects=False)
    assert response.status == 303
    return http


async def test_dashboard_plan_form_saves_and_syncs(tg: FakeTelegram, app: CareCircle) -> None:
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    other = await doctor(tg, app, name="Dr Zhao", team="Elsewhere")
    doctor_user = await app.services.users.by_telegram(doc.id)
    other_user = await app.services.users.by_telegram(other.id)
    patient = await app.services.users.by_telegram(u.id)
    assert doctor_user and other_user and patient
    url = _base(app) + f"/dashboard/patient/{patient.id}/plan"
    async with await _logged_in(app, doctor_user.id) as http:
        html = await (await http.get(url)).text()
        assert 'id="defaults"' in html and 'name="bp_systolic" value="150"' in html  # age 70: BP-TARGET
        csrf = re.search(r'name="csrf" value="([^"]+)"', html)
        assert csrf is not None
        form = MultiDict([("csrf", csrf.group(1)), ("bp_systolic", "135"), ("bp_diastolic", "85"),
                          ("medicines", "amlodipine 5mg 08:00,20:00 after food\nmetformin 500mg 07:30"),
                          ("bp_times", "08:00"), ("bp_weekdays", "0"), ("bp_weekdays", "3"),
                          ("bp_intensive_times", "07:00,19:00"), ("bp_intensive_days", "7"),
                          ("salt_g_per_day", "5"), ("exercise_min_per_week", "150"), ("followup_days", "30"),
                          ("lessons", "low-salt")])
        forged = MultiDict(form)
        forged["csrf"] = "x"
        assert (await http.post(url, data=forged, allow_redirects=False)).status == 403
        invalid = MultiDict(form)
        invalid["medicines"] = "amlodipine with no time"
        response = await http.post(url, data=invalid, allow_redirects=False)
        assert response.status == 400 and "amlodipine with no time" in await response.text()
        response = await http.post(url, data=form, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].endswith("plan?saved=1")
        page = await (await http.get(url + "?saved=1")).text()
        assert 'id="saved"' in page and "v1" in page and "metformin 500 mg at 07:30" in page
    async with app.services.sessions() as session:
        profile = await session.get(PatientProfile, patient.id)
        assert profile is not None and (profile.target_sys, profile.target_dia) == (135, 85)
        meds = dict((await session.execute(select(Medicine.name, Reminder.times).join(
            Reminder, Reminder.medicine_id == Medicine.id))).all())
        assert meds == {"amlodipine": "08:00,20:00", "metformin": "07:30"}
        row = await session.scalar(select(CarePlanVersion))
        assert row is not None and row.source == "dashboard" and row.data["rhythm"][0]["weekdays"] == [0, 3]
    told = await u.next_message()
    while "added a medicine" not in told.text:
        told = await u.next_message()
    assert "amlodipine 5 mg" in told.text
    async with await _logged_in(app, other_user.id) as http:
        assert (await http.get(url)).status == 404
