"""Panel indicators on a seeded panel whose values are worked out by hand below (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest

from bot.clinical import indicators as ind
from bot.config import Settings
from bot.services.clock import ManualClock
from bot.services.container import Services
from storage.migrate import upgrade
from tests.web.seed import Seeder, at

NOW = at("2026-06-30 04:00")  # 12:00 in Shanghai: "today" is 2026-06-30
START, END = date(2026, 4, 1), date(2026, 6, 30)  # 91 days


@pytest.fixture
async def services(db_url: str) -> AsyncIterator[Services]:
    s = Services.build(Settings(database_url=db_url), ManualClock(NOW))
    await upgrade(s.engine)
    yield s
    await s.engine.dispose()


async def seed_panel(s: Services) -> dict[str, int]:
    sd = Seeder(s.sessions, NOW)
    t1, t2 = await sd.team("Qingshan"), await sd.team("Other")
    d1 = await sd.doctor("Dr Li", t1, lead=True)
    d2 = await sd.doctor("Dr Zhao", t1)
    d3 = await sd.doctor("Dr Far", t2)
    ids = {"d1": d1, "d2": d2, "d3": d3, "t1": t1, "t2": t2}
    # A: hypertension, standard risk, Dr Li. 1 confirmed follow-up in the window; last BP 130/80 (< 140/90).
    a = ids["A"] = await sd.patient("A", t1, d1, next_due=date(2026, 8, 8))
    await sd.followup(a, d1, "2026-05-10")
    await sd.bp(a, "2026-03-01 01:00", 150, 95)  # before the 3-month window: ignored
    await sd.bp(a, "2026-06-20 01:00", 130, 80)
    await sd.doses(a, "2026-05-01 01:00", taken=8, missed=2)
    await sd.doses(a, "2026-03-15 01:00", taken=0, missed=3)  # before the period: ignored
    # B: hypertension, HIGH risk, born 1950 (76: target < 150/90). 2 follow-ups but 91 // 30 = 3 needed.
    b = ids["B"] = await sd.patient("B", t1, d1, risk="high", birth_year=1950, next_due=date(2026, 6, 14))
    await sd.followup(b, d1, "2026-04-15")
    await sd.followup(b, d1, "2026-05-15")
    await sd.bp(b, "2026-06-01 01:00", 170, 100)
    await sd.bp(b, "2026-06-25 01:00", 145, 85)  # last: < 150/90 -> controlled
    await sd.doses(b, "2026-06-01 01:00", taken=5, missed=5)
    # C: both conditions, Dr Zhao. Follow-up before the window; no BP in the window; fasting 6.5 in target
    # (a later RANDOM 12.0 is not a fasting value).
    c = ids["C"] = await sd.patient("C", t1, d2, conditions="hypertension,diabetes", linked="2025-06-01 00:00")
    await sd.followup(c, d2, "2026-03-20")
    await sd.bp(c, "2026-02-01 01:00", 135, 85)
    await sd.glucose(c, "2026-06-10 00:00", 6.5)
    await sd.glucose(c, "2026-06-20 05:00", 12.0, context="random")
    # E: diabetes, registered 2026-05-01 (< 3 months: not in the glucose denominator), 1 follow-up.
    e = ids["E"] = await sd.patient("E", t1, d2, conditions="diabetes", linked="2026-05-01 00:00")
    await sd.followup(e, d2, "2026-05-02")
    await sd.glucose(e, "2026-06-01 00:00", 8.0)
    await sd.doses(e, "2026-06-02 01:00", taken=3, missed=0)
    # F: hypertension, Dr Li, no reading ever, last contact 2025-03-01 (486 days ago): lost and overdue.
    ids["F"] = await sd.patient("F", t1, d1, linked="2024-01-01 00:00", next_due=date(2025, 6, 1),
                                    last_contact="2025-03-01 02:00")
    # G: diabetes, Dr Li. Fasting 7.0 (in target, inclusive) then 3.9 (below 4.4): the last one counts.
    # Its only follow-up is a patient's DRAFT: not counted.
    g = ids["G"] = await sd.patient("G", t1, d1, conditions="diabetes")
    await sd.glucose(g, "2026-05-01 00:00", 7.0)
    await sd.glucose(g, "2026-06-28 00:00", 3.9)
    await sd.followup(g, None, "2026-06-01", status="draft")
    # X: another team: never counted.
    x = ids["X"] = await sd.patient("X", t2, d3)
    await sd.followup(x, d3, "2026-05-01")
    await sd.bp(x, "2026-06-01 01:00", 120, 70)
    # Quizzes (latest attempt per quiz, pooled): A salt 2/5 then 5/5, sugar 3/5 -> 8/10 = 0.8 (counts, >=);
    # B 3/5 = 0.6; G 4/5 + 5/5 = 0.9.
    ids["quiz"] = int(await sd.quiz(a, "salt", 2, 5, "2026-05-01 00:00"))
    await sd.quiz(a, "salt", 5, 5, "2026-05-02 00:00")
    await sd.quiz(a, "sugar", 3, 5, "2026-05-03 00:00")
    await sd.quiz(b, "salt", 3, 5, "2026-05-03 00:00")
    await sd.quiz(g, "salt", 4, 5, "2026-05-03 00:00")
    await sd.quiz(g, "sugar", 5, 5, "2026-05-04 00:00")
    return ids


async def test_indicators_match_the_hand_computed_values(services: Services) -> None:
    ids = await seed_panel(services)
    scope = await services.indicators.scope_for(ids["d1"])
    team, by_doctor = await services.indicators.per_doctor(scope, START, END)
    A, B, C, E, F, G = (ids[k] for k in "ABCEFG")

    # managed: A B C E F G (X is another team's) = 6
    assert team["managed"].numerator == 6
    # standardized: A (1 >= 1), E (1 >= 1); B 2 < 3 (high risk, 91 // 30), C before window, F none, G draft
    # -> 2 / 6
    assert (team["standardized"].numerator, team["standardized"].denominator) == (2, 6)
    assert set(team["standardized"].numerator_ids) == {A, E}
    # BP control: hypertension registered before 2026-04-01 = A B C F; A 130/80 < 140/90, B 145/85 < 150/90
    # (aged 76), C no BP since 2026-04-01, F none -> 2 / 4 = 50 % (meets the 50 % target)
    assert set(team["bp_control"].denominator_ids) == {A, B, C, F}
    assert set(team["bp_control"].numerator_ids) == {A, B}
    assert team["bp_control"].rate == 0.5 and team["bp_control"].meets_target
    # glucose control: diabetes registered before 2026-04-01 = C G (E joined 2026-05-01);
    # C last fasting 6.5 in 4.4-7.0, G last fasting 3.9 not -> 1 / 2
    assert set(team["glucose_control"].denominator_ids) == {C, G}
    assert team["glucose_control"].numerator_ids == (C,)
    # adherence: taken 8 + 5 + 3 = 16 of 10 + 10 + 3 = 23 doses -> 69.6 % < 70 % target
    assert (team["adherence"].numerator, team["adherence"].denominator) == (16, 23)
    assert team["adherence"].meets_target is False
    assert set(team["adherence"].numerator_ids) == {A, E}  # A 80 %, E 100 %; B 50 %
    # overdue: B (due 2026-06-14), F (due 2025-06-01) -> 2; lost: F only
    assert set(team["overdue"].numerator_ids) == {B, F}
    assert team["lost"].numerator_ids == (F,)
    if ids["quiz"]:
        # knowledge: A 0.8, G 0.9 pass; B 0.6 -> 2 / 3
        assert (team["knowledge"].numerator, team["knowledge"].denominator) == (2, 3)
    # per doctor: Dr Li has A B F G -> standardized 1/4; BP control A B of A B F = 2/3; glucose G = 0/1
    li = by_doctor[ids["d1"]]
    assert (li["standardized"].numerator, li["standardized"].denominator) == (1, 4)
    assert (li["bp_control"].numerator, li["bp_control"].denominator) == (2, 3)
    assert (li["glucose_control"].numerator, li["glucose_control"].denominator) == (0, 1)
    zhao = by_doctor[ids["d2"]]
    assert set(zhao["managed"].numerator_ids) == {C, E}
    # one doctor's view narrows to their own patients
    only = await services.indicators.compute(await services.indicators.scope_for(ids["d1"], ids["d2"]), START, END)
    assert set(only["managed"].numerator_ids) == {C, E}
    # the other team's doctor sees only X
    far = await services.indicators.compute(await services.indicators.scope_for(ids["d3"]), START, END)
    assert far["managed"].numerator_ids == (ids["X"],) and far["bp_control"].numerator == 1


def test_followup_window_and_requirement() -> None:
    # a year needs 4 quarterly / 12 monthly follow-ups; a month still looks back one full interval
    assert ind.followup_window("standard", date(2025, 7, 1), date(2026, 6, 30)) == (date(2025, 7, 1), 4)
    assert ind.followup_window("high", date(2025, 7, 1), date(2026, 6, 30)) == (date(2025, 7, 1), 12)
    assert ind.followup_window("standard", date(2026, 6, 1), date(2026, 6, 30)) == (date(2026, 4, 2), 1)


def test_month_ends_cover_calendar_months() -> None:
    assert ind.month_ends(date(2026, 3, 15), 3) == [
        (date(2026, 1, 1), date(2026, 1, 31)), (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 15))]


def test_empty_panel_has_no_rates() -> None:
    values = ind.compute([], START, END, END)
    assert values["bp_control"].rate is None and values["bp_control"].meets_target is None
