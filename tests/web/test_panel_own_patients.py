"""The panel of a doctor in no team: their own patients only (the panel's scope without team ids),
ranked from `panel_latest`, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete

from bot.config import Settings
from bot.services.clock import ManualClock
from bot.services.container import Services
from storage.migrate import upgrade
from storage.models import Alert, Reading, TeamMember
from tests.web.seed import Seeder, at

NOW = at("2026-06-30 04:00")


@pytest.fixture
async def services(db_url: str) -> AsyncIterator[Services]:
    s = Services.build(Settings(database_url=db_url), ManualClock(NOW))
    await upgrade(s.engine)
    yield s
    await s.engine.dispose()


async def test_a_doctor_without_a_team_sees_their_own_patients(services: Services) -> None:
    sd = Seeder(services.sessions, NOW)
    team = await sd.team("Qingshan")
    lone = await sd.doctor("Dr Lone", team)
    other = await sd.doctor("Dr Other", team)
    async with services.sessions.begin() as session:
        await session.execute(delete(TeamMember).where(TeamMember.user_id == lone))
    mine = await sd.patient("Mine Out", team, lone)
    await sd._add(Reading(patient_id=mine, kind="bp", systolic=150, diastolic=95, in_target=False,
                          measured_at=at("2026-06-29 01:00"), created_at=at("2026-06-29 01:00")))
    urgent = await sd.patient("Mine Urgent", None, lone)
    await sd._add(Alert(patient_id=urgent, rule="bp_urgent", status="open", created_at=NOW))
    await sd.patient("Not Mine", team, other)
    page = await services.panel.panel(lone, per_page=10)
    assert [(r.patient_id, r.status) for r in page.rows] == [(urgent, "open_alert"), (mine, "uncontrolled")]
    assert page.total == 2 and page.counts["open_alert"] == 1 and page.counts["uncontrolled"] == 1
    assert (await services.panel.panel(lone, search="Urgent")).total == 1
    assert (await services.panel.panel(other, per_page=10)).total == 2  # the team: both profiles in it
