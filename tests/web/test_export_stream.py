"""The CSV export's streaming path (issue 8), on SQLite and PostgreSQL: rows read from the driver's
cursor come out exactly as before (booleans, times, empty values), a client that leaves mid-export
frees the connection, and memory does not depend on the size of the export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest

from bot.config import Settings
from bot.services import exports
from bot.services.clock import ManualClock
from bot.services.container import Services
from storage.migrate import upgrade
from storage.models import Reading
from tests.web.seed import Seeder, at

NOW = at("2026-06-30 04:00")


@pytest.fixture
async def services(db_url: str) -> AsyncIterator[Services]:
    s = Services.build(Settings(database_url=db_url), ManualClock(NOW))
    await upgrade(s.engine)
    yield s
    await s.engine.dispose()


async def seed(s: Services, n: int) -> tuple[int, int]:
    sd = Seeder(s.sessions, NOW)
    team = await sd.team("Qingshan")
    doctor = await sd.doctor("Dr Li", team)
    pid = await sd.patient("Wang", team, doctor)
    async with s.sessions.begin() as session:
        for i in range(n):
            session.add(Reading(patient_id=pid, kind="bp", systolic=120 + i % 50, diastolic=80, pulse=None,
                                category="", urgent=i % 7 == 0, in_target=None if i % 5 == 0 else i % 2 == 0,
                                measured_at=at("2026-06-01 00:00").replace(minute=i % 60, hour=i // 60 % 24,
                                                                           microsecond=i % 2 * 250),
                                created_at=NOW))
    return doctor, pid


async def test_rows_keep_their_text_form_and_order(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    doctor, pid = await seed(services, 23)
    monkeypatch.setattr(exports, "BATCH", 5)  # the first batch comes partly from SQLAlchemy's buffer
    scope = await services.indicators.scope_for(doctor)
    chunks = [c async for c in services.exports.csv_rows("readings", scope)]
    assert len(chunks) == 1 + 5  # header, then 23 rows in batches of 5
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))
    assert len(rows) == 23 and len({r["id"] for r in rows}) == 23
    assert [r["measured_at"] for r in rows] == sorted(r["measured_at"] for r in rows)
    first, odd = rows[0], rows[1]
    assert first["measured_at"] == "2026-06-01T00:00:00+00:00"  # as datetime.isoformat() writes it
    assert odd["measured_at"] == "2026-06-01T00:01:00.000250+00:00"
    assert (first["urgent"], first["in_target"], first["pulse"], first["category"]) == ("True", "", "", "")
    assert {r["in_target"] for r in rows} == {"True", "False", ""}
    assert {r["urgent"] for r in rows} == {"True", "False"}
    assert first["systolic"] == "120" and first["patient_id"] == str(pid)


async def test_a_client_leaving_mid_export_frees_the_connection(services: Services,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    doctor, _pid = await seed(services, 40)
    monkeypatch.setattr(exports, "BATCH", 4)
    scope = await services.indicators.scope_for(doctor)
    for _ in range(services.engine.pool.size() + 2):  # more than the pool holds, if any leaked
        stream = services.exports.csv_rows("readings", scope)
        assert (await anext(stream)).startswith(b"\xef\xbb\xbfid,")
        assert (await anext(stream)).count(b"\n") == 4
        await stream.aclose()
    whole = [c async for c in services.exports.csv_rows("readings", scope)]
    assert b"".join(whole).count(b"\n") == 41
