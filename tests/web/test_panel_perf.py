"""The panel ranked and paged by the database (issue 8), on SQLite and PostgreSQL.

Every rank, every tie-break of the order users rely on (more open alerts first, earlier due date,
then name), the counts, paging, filters and the team scope, on a panel worked out by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest

from bot.config import Settings
from bot.services.clock import ManualClock
from bot.services.container import Services
from storage.migrate import upgrade
from storage.models import Alert, Reading
from storage.reminder_models import ReminderPrefs
from tests.web.seed import Seeder, at

NOW = at("2026-06-30 04:00")


@pytest.fixture
async def services(db_url: str) -> AsyncIterator[Services]:
    s = Services.build(Settings(database_url=db_url), ManualClock(NOW))
    await upgrade(s.engine)
    yield s
    await s.engine.dispose()


async def seed(s: Services) -> dict[str, int]:
    sd = Seeder(s.sessions, NOW)
    t1, t2 = await sd.team("Qingshan"), await sd.team("Hexi")
    d1, d2 = await sd.doctor("Dr Li", t1), await sd.doctor("Dr Far", t2)
    ids = {"d1": d1, "d2": d2}

    async def reading(pid: int, when: str, in_target: bool | None, kind: str = "bp") -> None:
        values = {"systolic": 120, "diastolic": 80} if kind == "bp" else {"kg": 70.0}
        await sd._add(Reading(patient_id=pid, kind=kind, in_target=in_target, measured_at=at(when),
                              created_at=at(when), **values))

    async def alerts(pid: int, n: int) -> None:
        for _ in range(n):
            await sd._add(Alert(patient_id=pid, rule="bp_urgent", status="open", created_at=NOW))

    ids["A"] = await sd.patient("Alert Two", t1, d1)
    await alerts(ids["A"], 2)
    ids["B"] = await sd.patient("Alert One", t1, d1, next_due=date(2026, 6, 1), risk="high")
    await alerts(ids["B"], 1)
    await sd._add(Alert(patient_id=ids["B"], rule="glucose_low", status="acknowledged", created_at=NOW))
    ids["C"] = await sd.patient("Overdue Late", t1, d1, next_due=date(2026, 6, 20))
    ids["D"] = await sd.patient("Overdue Early", t1, d1, next_due=date(2026, 6, 1))
    ids["E"] = await sd.patient("Uncontrolled", t1, d1, conditions="diabetes")
    await reading(ids["E"], "2026-06-28 01:00", True)
    await reading(ids["E"], "2026-06-29 01:00", False)
    ids["F"] = await sd.patient("Silent Old", t1, d1)
    await reading(ids["F"], "2026-06-01 01:00", True)
    ids["G"] = await sd.patient("Silent None", t1, d1)
    ids["H"] = await sd.patient("Silent Flag", t1, d1)
    await reading(ids["H"], "2026-06-28 01:00", True)
    async with s.sessions.begin() as session:
        session.add(ReminderPrefs(user_id=ids["H"], silent_since=at("2026-06-29 00:00")))
    ids["I"] = await sd.patient("Fine Weight", t1, d1)
    await reading(ids["I"], "2026-06-28 01:00", True)
    await reading(ids["I"], "2026-06-29 01:00", None, kind="weight")  # not a bp/glucose: ignored
    ids["J"] = await sd.patient("Fine B", t1, d1, conditions="hypertension,diabetes")
    await reading(ids["J"], "2026-06-29 01:00", True)
    ids["K"] = await sd.patient("Fine A", t1, d1)
    await reading(ids["K"], "2026-06-29 02:00", True)
    ids["Y"] = await sd.patient("Fine Z", t2, d1)  # another team, but Dr Li is the own doctor
    await reading(ids["Y"], "2026-06-29 01:00", True)
    ids["X"] = await sd.patient("Other Team", t2, d2)
    await alerts(ids["X"], 3)
    return ids


ORDER = ["A", "B", "D", "C", "E", "H", "G", "F", "K", "J", "I", "Y"]
STATUS = {"A": "open_alert", "B": "open_alert", "C": "overdue", "D": "overdue", "E": "uncontrolled",
          "F": "silent", "G": "silent", "H": "silent", "I": "ok", "J": "ok", "K": "ok", "Y": "ok"}


async def test_ranking_counts_and_paging_happen_in_the_database(services: Services) -> None:
    ids = await seed(services)
    by_id = {v: k for k, v in ids.items()}
    panel = services.panel
    whole = await panel.panel(ids["d1"], per_page=50)
    assert [by_id[r.patient_id] for r in whole.rows] == ORDER
    assert {by_id[r.patient_id]: r.status for r in whole.rows} == STATUS
    assert whole.total == 12 and whole.pages == 1
    assert whole.counts == {"open_alert": 2, "overdue": 2, "uncontrolled": 1, "silent": 3, "ok": 4}
    first = whole.rows[0]
    assert first.open_alerts == 2 and first.name == "Alert Two" and first.last_reading_at is None
    uncontrolled = whole.rows[ORDER.index("E")]
    assert uncontrolled.last_in_target is False and uncontrolled.last_reading_at == at("2026-06-29 01:00")
    assert uncontrolled.conditions == frozenset({"diabetes"})
    weight = whole.rows[ORDER.index("I")]
    assert weight.last_reading_at == at("2026-06-28 01:00") and weight.last_in_target is True

    pages = [await panel.panel(ids["d1"], page=n, per_page=5) for n in range(3)]
    assert [by_id[r.patient_id] for p in pages for r in p.rows] == ORDER
    assert [p.pages for p in pages] == [3, 3, 3] and all(p.counts == whole.counts for p in pages)
    beyond = await panel.panel(ids["d1"], page=7, per_page=5)  # past the end: the last page
    assert beyond.page == 2 and [by_id[r.patient_id] for r in beyond.rows] == ORDER[10:]

    high = await panel.panel(ids["d1"], risk="high")
    assert [by_id[r.patient_id] for r in high.rows] == ["B"] and high.total == 1
    diabetes = await panel.panel(ids["d1"], condition="diabetes")
    assert [by_id[r.patient_id] for r in diabetes.rows] == ["E", "J"]
    found = await panel.panel(ids["d1"], search="silent")
    assert [by_id[r.patient_id] for r in found.rows] == ["H", "G", "F"] and found.counts["silent"] == 3

    other = await panel.panel(ids["d2"], per_page=50)
    assert [by_id[r.patient_id] for r in other.rows] == ["X", "Y"]  # team 2's patients, whoever the doctor
    assert other.rows[0].open_alerts == 3


async def test_an_empty_panel_is_one_empty_page(services: Services) -> None:
    sd = Seeder(services.sessions, NOW)
    doc = await sd.doctor("Dr New", await sd.team("Empty"))
    page = await services.panel.panel(doc, page=3)
    assert page.rows == [] and page.total == 0 and page.pages == 1 and page.page == 0
    assert set(page.counts.values()) == {0}
