"""Confirming a chat follow-up draft from the dashboard over real HTTP (issue 10), on SQLite and
PostgreSQL: the patient answers in FakeTelegram, the doctor confirms on the patient page with the
signs and the classification; CSRF required, another team gets 404, implausible signs are refused,
the next date follows the patient's care plan and the patient is told."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import CareCircle, build
from bot.sandbox import FakeTelegram
from bot.services.clock import ManualClock
from storage.models import FollowUp
from tests.conftest import app_settings
from tests.e2e.helpers import doctor, linked_patient
from tests.e2e.test_chat_followups import START, TODAY, answer_questionnaire, due_today, until


@pytest.fixture
async def care(tg: FakeTelegram, db_url: str) -> AsyncIterator[CareCircle]:
    app = build(app_settings(tg, db_url), clock=ManualClock(START))
    await app.start()
    yield app
    await app.stop()


def _base(app: CareCircle) -> str:
    return f"http://127.0.0.1:{app.settings.http_port}"


async def _logged_in(app: CareCircle, doctor_id: int) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    token = await app.services.dashboard.create_login(doctor_id)
    response = await http.post(_base(app) + "/dashboard/login", data={"token": token}, allow_redirects=False)
    assert response.status == 303
    return http


async def _row(app: CareCircle, patient_id: int) -> FollowUp:
    async with app.services.sessions() as session:
        row = await session.scalar(select(FollowUp).where(FollowUp.patient_id == patient_id))
    assert row is not None
    return row


async def test_doctor_confirms_a_chat_followup_on_the_dashboard(tg: FakeTelegram, care: CareCircle) -> None:
    doc = await doctor(tg, care)
    u = await linked_patient(tg, doc)
    other = await doctor(tg, care, name="Dr Zhao", team="Elsewhere")
    doctor_user = await care.services.users.by_telegram(doc.id)
    other_user = await care.services.users.by_telegram(other.id)
    assert doctor_user and other_user
    patient_id = await due_today(care, u)
    draft_plan = await care.services.plans.draft(doctor_user.id, patient_id)
    assert draft_plan is not None  # a monthly plan: the next date follows it (quarterly by default)
    assert await care.services.plans.save(doctor_user.id, patient_id, replace(draft_plan[1], followup_days=30))
    await care.services.users.update_profile(patient_id, next_followup_due=TODAY)  # due today again
    u.drain()
    await care.tick()
    await until(u, "time for your regular follow-up")
    await answer_questionnaire(u)
    await until(doc, "Follow-up answered in the chat")
    row = await _row(care, patient_id)
    assert row.status == "draft"
    confirm_url = _base(care) + f"/dashboard/followup/{row.id}/confirm"
    page_url = _base(care) + f"/dashboard/patient/{patient_id}"

    async with await _logged_in(care, other_user.id) as http:  # another team: 404, as if missing
        html = await (await http.get(_base(care) + "/dashboard/")).text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', html)
        assert csrf is not None
        response = await http.post(confirm_url, data={"csrf": csrf.group(1), "outcome": "controlled"},
                                   allow_redirects=False)
        assert response.status == 404
    assert (await _row(care, patient_id)).status == "draft"

    async with await _logged_in(care, doctor_user.id) as http:
        html = await (await http.get(page_url)).text()
        assert 'id="followup-drafts"' in html and f'action="/dashboard/followup/{row.id}/confirm"' in html
        assert "Headache or dizziness" in html  # the patient's answers, as in the chat
        csrf = re.search(r'name="csrf" value="([^"]+)"', html)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "way": "phone", "systolic": "150", "diastolic": "92", "heart_rate": "76",
                "weight_kg": "66", "outcome": "controlled"}
        assert (await http.post(confirm_url, data={**form, "csrf": "forged"}, allow_redirects=False)).status == 403
        response = await http.post(confirm_url, data={**form, "systolic": "400"}, allow_redirects=False)
        assert response.status == 400 and "outside the possible range" in await response.text()
        response = await http.post(confirm_url, data={**form, "outcome": "fine"}, allow_redirects=False)
        assert response.status == 400
        assert (await _row(care, patient_id)).status == "draft"  # nothing changed by the refused posts

        response = await http.post(confirm_url, data=form, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].endswith(f"/{patient_id}?saved=1")
        html = await (await http.get(page_url + "?saved=1")).text()
        assert 'id="saved"' in html and 'id="followup-drafts"' not in html
        # A second press (an old tab) changes nothing.
        response = await http.post(confirm_url, data={**form, "outcome": "unsatisfactory"}, allow_redirects=False)
        assert response.status == 303

    row = await _row(care, patient_id)
    assert row.status == "confirmed" and row.outcome == "controlled" and row.way == "phone"
    assert (row.systolic, row.diastolic, row.heart_rate, row.weight_kg) == (150, 92, 76, 66.0)
    assert row.doctor_id == doctor_user.id and row.next_due == TODAY + timedelta(days=30)  # the plan's interval
    profile = await care.services.users.profile(patient_id)
    assert profile is not None and profile.next_followup_due == TODAY + timedelta(days=30)
    told = await until(u, "has read your follow-up answers")
    assert (TODAY + timedelta(days=30)).isoformat() in told.text
