"""The monthly indicator chart computes its six months in one pass: the figures must be exactly those of
six separate per-month computations (SQLite and PostgreSQL), for fewer statements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event

from bot.clinical import indicators as ind
from bot.config import Settings
from bot.services.clock import ManualClock
from bot.services.container import Services
from storage.migrate import upgrade
from tests.web.seed import Seeder
from tests.web.test_indicators import END, NOW, seed_panel


@pytest.fixture
async def services(db_url: str) -> AsyncIterator[Services]:
    s = Services.build(Settings(database_url=db_url), ManualClock(NOW))
    await upgrade(s.engine)
    yield s
    await s.engine.dispose()


async def seed_months(s: Services, ids: dict[str, int]) -> dict[str, int]:
    """Data that changes from month to month, with values on both sides of local (Shanghai) month starts."""
    sd = Seeder(s.sessions, NOW)
    d1, t1 = ids["d1"], ids["t1"]
    h = ids["H"] = await sd.patient("H", t1, d1, conditions="hypertension,diabetes", linked="2025-09-01 00:00")
    # 2026-04-30 16:00 UTC is 2026-05-01 00:00 in Shanghai: May's, not April's.
    await sd.bp(h, "2026-01-20 01:00", 120, 70)  # January: controlled
    await sd.bp(h, "2026-02-25 01:00", 160, 95)  # February: not
    await sd.bp(h, "2026-04-30 15:59", 125, 75)  # April (local 23:59): controlled
    await sd.bp(h, "2026-04-30 16:00", 150, 92)  # May (local 00:00): not
    await sd.glucose(h, "2026-03-10 00:00", 6.0)
    await sd.glucose(h, "2026-05-31 15:00", 9.0)  # May 31 23:00 local
    await sd.followup(h, d1, "2026-02-01")
    await sd.followup(h, d1, "2026-05-31")
    await sd.doses(h, "2026-01-31 15:30", taken=2, missed=0)  # January 31 local
    await sd.doses(h, "2026-01-31 16:30", taken=0, missed=4)  # February 1 local
    await sd.doses(h, "2026-06-29 00:00", taken=1, missed=1)
    # K: registered in March, a reading only in February before that (lost/contact per month), quiz score
    k = ids["K"] = await sd.patient("K", t1, d1, risk="high", linked="2026-03-15 00:00")
    await sd.bp(k, "2026-02-10 00:00", 135, 85)
    await sd.followup(k, d1, "2026-03-20")
    await sd.followup(k, d1, "2026-04-20")
    await sd.quiz(k, "salt", 5, 5, "2026-03-21 00:00")
    return ids


def count_statements(s: Services) -> list[str]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(s.engine.sync_engine, "before_cursor_execute", before)
    return seen


async def test_monthly_equals_six_separate_months(services: Services) -> None:
    ids = await seed_months(services, await seed_panel(services))
    scope = await services.indicators.scope_for(ids["d1"])
    seen = count_statements(services)
    monthly = await services.indicators.monthly(scope, END, 6)
    one_pass = len(seen)
    months = ind.month_ends(END, 6)
    assert [(m.start, m.end) for m in monthly] == months
    seen.clear()
    separate = [await services.indicators.compute(scope, first, last) for first, last in months]
    # Indicator and IndicatorSet are dataclasses: equal means every count and every patient id list.
    for got, want in zip(monthly, separate, strict=True):
        for key in ind.INDICATOR_KEYS:
            assert got[key] == want[key], (got.start, key)
    assert monthly == separate
    # one pass: about the statements of one month (9 here), not six times as many (52)
    assert len(seen) >= 5 * one_pass, (one_pass, len(seen))

    # The seeded changes show in the chart (so the comparison above is not between empty months).
    h = ids["H"]
    by_month = {m.start.month: m for m in monthly}
    bp_ok = {month: h in m["bp_control"].numerator_ids for month, m in by_month.items()}
    # control window = 90 days before each month end: Jan 120/70 ok; Feb 160/95 no; Mar still Feb's; Apr
    # 125/75 (local Apr 30 23:59) ok; May 150/92 (local May 1 00:00) no; Jun still May's
    assert bp_ok == {1: True, 2: False, 3: False, 4: True, 5: False, 6: False}
    assert h in by_month[3]["glucose_control"].numerator_ids
    assert h not in by_month[5]["glucose_control"].numerator_ids
    # doses either side of local midnight Jan 31 / Feb 1: January 2 taken, February 4 missed
    assert (by_month[1]["adherence"].numerator, by_month[1]["adherence"].denominator) == (2, 2)
    assert h in by_month[2]["adherence"].denominator_ids and h not in by_month[2]["adherence"].numerator_ids
    # K is managed from March (registered 2026-03-15), standardized in April (high risk: 1 per 30 days)
    k = ids["K"]
    assert k not in by_month[2]["managed"].numerator_ids and k in by_month[3]["managed"].numerator_ids
    assert k in by_month[4]["standardized"].numerator_ids and k not in by_month[6]["standardized"].numerator_ids


async def test_monthly_of_an_empty_scope(services: Services) -> None:
    sd = Seeder(services.sessions, NOW)
    doctor = await sd.doctor("Dr Alone", await sd.team("Empty"))
    months = await services.indicators.monthly(await services.indicators.scope_for(doctor), date(2026, 6, 30), 3)
    assert [m["managed"].numerator for m in months] == [0, 0, 0]
    assert all(m["bp_control"].rate is None for m in months)
