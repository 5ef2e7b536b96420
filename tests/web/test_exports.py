"""CSV (streamed) and FHIR exports on SQLite and PostgreSQL, and the `carecircle export` CLI."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from bot import __main__ as cli
from bot.config import Settings
from bot.services import exports
from bot.services.clock import ManualClock
from bot.services.container import Services
from storage.migrate import upgrade
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
    p = await sd.patient("=Wang", t1, d1, conditions="hypertension,diabetes")  # a formula-looking name
    q = await sd.patient("Other", t2, d2)
    for day in range(1, 21):
        await sd.bp(p, f"2026-06-{day:02d} 01:00", 120 + day, 80, pulse=70)
    await sd.glucose(p, "2026-06-05 00:00", 6.1)
    await sd.weight(p, "2026-06-06 00:00", 70.2)
    await sd.bp(q, "2026-06-05 01:00", 150, 95)
    await sd.followup(p, d1, "2026-06-10", way="home")
    return {"p": p, "q": q, "d1": d1}


async def test_csv_streams_in_batches_and_keeps_to_the_team(services: Services,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    ids = await seed(services)
    monkeypatch.setattr(exports, "BATCH", 4)  # small batches: several chunks for 22 rows
    scope = await services.indicators.scope_for(ids["d1"])
    chunks = [c async for c in services.exports.csv_rows("readings", scope, at("2026-06-03 00:00"),
                                                         at("2026-06-11 00:00"))]
    assert len(chunks) >= 3  # header + at least two batches: rows leave as they are read
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))
    # BP on 06-03..06-10 (8) + glucose 06-05 + weight 06-06 = 10, in time order, only our patient
    assert len(rows) == 10 and {r["patient_id"] for r in rows} == {str(ids["p"])}
    assert [r["measured_at"] for r in rows] == sorted(r["measured_at"] for r in rows)
    assert rows[0]["measured_at"] == "2026-06-03T01:00:00+00:00"
    patients = [c async for c in services.exports.csv_rows("patients", scope)]
    listed = list(csv.DictReader(io.StringIO(b"".join(patients).decode("utf-8-sig"))))
    assert [r["display_name"] for r in listed] == ["'=Wang"]  # never a live spreadsheet formula


async def test_fhir_bundle_validates_and_uses_the_reference_codes(services: Services) -> None:
    ids = await seed(services)
    scope = await services.indicators.scope_for(ids["d1"])
    data = await services.exports.fhir_bundle(scope)
    bundle = Bundle.model_validate(data)
    assert bundle.type == "collection"
    resources = [e["resource"] for e in data["entry"]]
    assert {r["id"] for r in resources if r["resourceType"] == "Patient"} == {f"p{ids['p']}"}
    hr = next(r for r in resources if r.get("code", {}).get("coding", [{}])[0].get("code") == "8867-4")
    assert hr["valueQuantity"] == {"value": 70, "unit": "/min", "system": "http://unitsofmeasure.org",
                                   "code": "/min"}
    glucose = next(r for r in resources if r.get("code", {}).get("coding", [{}])[0].get("code") == "14743-9")
    assert glucose["valueQuantity"]["code"] == "mmol/L" and glucose["valueQuantity"]["value"] == 6.1
    weight = next(r for r in resources if r.get("code", {}).get("coding", [{}])[0].get("code") == "29463-7")
    assert weight["valueQuantity"]["code"] == "kg"
    encounter = next(r for r in resources if r["resourceType"] == "Encounter")
    assert encounter["class"]["code"] == "HH" and encounter["status"] == "finished"
    one = await services.exports.fhir_bundle(scope, ids["q"])  # another team's patient: nothing
    assert [e["resource"]["resourceType"] for e in one["entry"]] == []


def test_cli_export_writes_csv_and_fhir(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def prepare() -> None:
        s = Services.build(Settings(database_url=sqlite_url), ManualClock(NOW))
        await upgrade(s.engine)
        await seed(s)
        await s.engine.dispose()

    asyncio.run(prepare())
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    out = tmp_path / "readings.csv"
    assert cli.main(["export", "--format", "csv", "--what", "readings", "--team", "Qingshan",
                     "--since", "2026-06-15", "-o", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8-sig"))))
    assert len(rows) == 6  # BP 06-15..06-20
    fhir = tmp_path / "team.json"
    assert cli.main(["export", "--format", "fhir", "--team", "Qingshan", "-o", str(fhir)]) == 0
    Bundle.model_validate(json.loads(fhir.read_text("utf-8")))
    assert cli.main(["export", "--team", "Nowhere", "-o", str(out)]) == 1
