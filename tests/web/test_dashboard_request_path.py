"""The statements every dashboard request runs, made cheaper for the panel benchmark (issue 8): the session
check in one statement, the audit row in one INSERT, quiz results by a typed query (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.services.clock import ManualClock
from bot.services.container import Services
from bot.services.dashboard import DashboardService
from storage.dashboard_models import AuditLog
from storage.migrate import upgrade
from storage.models import TeamMember
from tests.web.seed import Seeder, at

NOW = at("2026-06-30 04:00")


@pytest.fixture
async def services(db_url: str) -> AsyncIterator[Services]:
    s = Services.build(Settings(database_url=db_url, dashboard_secret="test"), ManualClock(NOW))
    await upgrade(s.engine)
    yield s
    await s.engine.dispose()


async def test_session_doctor_checks_signature_revocation_and_role(services: Services) -> None:
    sd = Seeder(services.sessions, NOW)
    team = await sd.team("T")
    doctor = await sd.doctor("Dr A", team)
    patient = await sd.patient("P", team, doctor)
    auth = services.dashboard
    cookie = await auth.session_cookie(doctor)
    found = await auth.session_doctor(cookie)
    assert found is not None and found[0].doctor_id == doctor and found[1].id == doctor
    assert found[1].has_role("doctor")  # roles loaded with the user
    assert await auth.session_doctor(cookie[:-1] + ("0" if cookie[-1] != "0" else "1")) is None  # bad signature
    assert await auth.session_doctor(await auth.session_cookie(patient)) is None  # a patient is no doctor
    await auth.revoke(found[0])
    assert await auth.session_doctor(cookie) is None  # logged out
    assert await auth.session_doctor(await auth.session_cookie(doctor)) is not None  # a new login works


async def test_audit_row_names_the_first_team_and_quiz_results_come_newest_first(services: Services) -> None:
    sd = Seeder(services.sessions, NOW)
    t1, t2 = await sd.team("One"), await sd.team("Two")
    doctor = await sd.doctor("Dr A", t2)
    loner = await sd.doctor("Dr B", t1)
    patient = await sd.patient("P", t2, doctor)
    async with services.sessions.begin() as s:  # Dr A is in both teams: the lower team id is recorded
        s.add(TeamMember(team_id=t1, user_id=doctor))
    async with services.sessions.begin() as s:
        await s.execute(TeamMember.__table__.delete().where(TeamMember.user_id == loner))
    dash = DashboardService(services.sessions, services.clock)
    await dash.audit(doctor, "patient", "/dashboard/patient/1", patient_id=patient, detail="x" * 300)
    await dash.audit(loner, "page", "/dashboard/")
    async with services.sessions() as s:
        rows = (await s.execute(select(AuditLog.actor_id, AuditLog.team_id, AuditLog.patient_id, AuditLog.detail,
                                       AuditLog.at).order_by(AuditLog.id))).all()
    assert [(r.actor_id, r.team_id, r.patient_id) for r in rows] == [(doctor, min(t1, t2), patient), (loner, None, None)]
    assert len(rows[0].detail) == 256 and rows[0].at == NOW

    if not await sd.quiz(patient, "salt", 2, 5, "2026-05-01 00:00"):
        pytest.skip("no quiz table")
    await sd.quiz(patient, "sugar", 5, 5, "2026-05-03 00:00")
    results = await dash.quiz_results(patient)
    assert [(q["quiz_id"], q["correct"], q["total"]) for q in results] == [("sugar", 5, 5), ("salt", 2, 5)]
    assert await dash.quiz_results(doctor) == []
