"""The readings CSV export is exactly the doctor's scope and the period (issue 8), on SQLite and PostgreSQL:
the rows of the doctor's team's patients and of their own patients in another team, none of another
team's, `since` included and `until` excluded to the microsecond, patient by patient, each patient's
readings in time order (ties by id)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from bot.services import exports
from bot.services.container import Services
from storage.models import Reading
from tests.web.seed import Seeder, at

SINCE, UNTIL = at("2026-06-10 00:00"), at("2026-06-20 00:00")
STEP = timedelta(microseconds=1)


async def test_readings_export_is_the_scope_and_the_period_in_patient_order(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    sd = Seeder(services.sessions, at("2026-06-30 04:00"))
    mine, other = await sd.team("Qingshan"), await sd.team("Hexi")
    doctor, colleague = await sd.doctor("Dr Li", mine), await sd.doctor("Dr Far", other)
    # created in this order so that patient ids and reading ids do not follow time order
    team_b = await sd.patient("Team B", mine, None)
    foreign = await sd.patient("Foreign", other, colleague)
    own = await sd.patient("Own, other team", other, doctor)  # Dr Li's own patient, kept in team Hexi
    team_a = await sd.patient("Team A", mine, doctor)
    moments = [SINCE - STEP, SINCE, SINCE + timedelta(days=3), UNTIL - STEP, UNTIL, SINCE + timedelta(days=3)]
    kept: list[tuple[int, object, int]] = []
    async with services.sessions.begin() as session:
        for moment in reversed(moments):  # ids against time order; one time twice (a tie, by id)
            for pid in (team_a, foreign, own, team_b):
                reading = Reading(patient_id=pid, kind="bp", systolic=130, diastolic=80, measured_at=moment,
                                  created_at=moment)
                session.add(reading)
                await session.flush()
                if pid != foreign and SINCE <= moment < UNTIL:
                    kept.append((pid, moment, reading.id))
    monkeypatch.setattr(exports, "BATCH", 3)  # several batches
    scope = await services.indicators.scope_for(doctor)
    body = b"".join([c async for c in services.exports.csv_rows("readings", scope, SINCE, UNTIL)])
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [int(r["id"]) for r in rows] == [rid for _pid, _at, rid in sorted(kept)]
    assert {int(r["patient_id"]) for r in rows} == {team_a, team_b, own}
    assert len(rows) == 3 * 4  # since, the same time twice, until - 1 µs: for each of the three patients

    # the other doctor: their team only (Dr Li's own patient sits in it), whole history without a period
    theirs = await services.indicators.scope_for(colleague)
    body = b"".join([c async for c in services.exports.csv_rows("readings", theirs)])
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert {int(r["patient_id"]) for r in rows} == {foreign, own} and len(rows) == 2 * len(moments)
    assert [(int(r["patient_id"]), r["measured_at"], int(r["id"])) for r in rows] == sorted(
        (int(r["patient_id"]), r["measured_at"], int(r["id"])) for r in rows)
