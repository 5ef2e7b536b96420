"""The 7-day average shown with "Saved" comes back with the reading's INSERT (issue 4: one round trip
instead of two), on SQLite and PostgreSQL: only the patient's own readings of the same kind in the
seven days up to the new reading count, never the new reading itself; a replayed update answers with
the same figures; a caller that already read the patient (`known`) gets the same result as one that
did not, and a `known` patient without consent is re-read, not trusted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from bot.services.clock import ManualClock
from bot.services.container import Services
from bot.services.readings import NewReading
from bot.services.users import Onboarding
from storage.models import User


async def _patient(services: Services, tg_id: int) -> User:
    user = await services.users.ensure(tg_id, tg_id, f"P{tg_id}", "en")
    await services.users.complete_onboarding(user.id, Onboarding("en", "Asia/Shanghai",
                                                                 frozenset({"hypertension", "diabetes"}), 1950))
    return user


async def test_week_average_counts_only_this_patients_earlier_week(services: Services, clock: ManualClock) -> None:
    me, other = await _patient(services, 4101), await _patient(services, 4102)
    now = clock.now()
    record = services.readings.record
    await record(me.id, NewReading("bp", 170, 100), measured_at=now - timedelta(days=8))  # too old
    await record(me.id, NewReading("bp", 140, 90), measured_at=now - timedelta(days=6))
    await record(me.id, NewReading("bp", 130, 80), measured_at=now - timedelta(days=1))
    await record(me.id, NewReading("bp", 120, 70), measured_at=now + timedelta(hours=1))  # after the new one
    await record(me.id, NewReading("glucose", mmol=6.0, context="fasting"), measured_at=now - timedelta(days=1))
    await record(other.id, NewReading("bp", 200, 120), measured_at=now - timedelta(days=1))

    result = await record(me.id, NewReading("bp", 150, 95), measured_at=now, source_update_id=900, seq=0)
    assert not result.duplicate
    assert result.average7.count == 2
    assert result.average7.systolic == pytest.approx(135.0)
    assert result.average7.diastolic == pytest.approx(85.0)
    assert result.average7.mmol is None

    again = await record(me.id, NewReading("bp", 150, 95), measured_at=now, source_update_id=900, seq=0)
    assert again.duplicate and again.reading_id == result.reading_id
    assert (again.average7.count, again.average7.systolic) == (2, pytest.approx(135.0))

    glucose = await record(me.id, NewReading("glucose", mmol=8.0, context="after_meal"), measured_at=now)
    assert glucose.average7.count == 1 and glucose.average7.mmol == pytest.approx(6.0)
    assert glucose.average7.systolic is None

    first = await record(other.id, NewReading("glucose", mmol=5.0, context="fasting"), measured_at=now)
    assert first.average7.count == 0 and first.average7.mmol is None


async def test_known_patient_gives_the_same_result_with_one_statement(services: Services, clock: ManualClock) -> None:
    me = await _patient(services, 4201)
    sender = await services.users.sender(4201, 4201, "P4201", "en")
    await services.readings.record(me.id, NewReading("bp", 140, 90), measured_at=clock.now() - timedelta(days=1))
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(services.engine.sync_engine, "before_cursor_execute", listener)
    try:
        known = await services.readings.record(me.id, NewReading("bp", 160, 100), known=(sender.user, sender.profile))
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", listener)
    assert len(statements) == 1 and statements[0].startswith("INSERT INTO readings"), statements
    assert known.assessment.category and known.average7.count == 1
    read = await services.readings.record(me.id, NewReading("bp", 160, 100))
    assert read.assessment == known.assessment and read.average7.count == 2


async def test_known_patient_without_consent_is_read_again(services: Services) -> None:
    stranger = await services.users.ensure(4301, 4301, "NoConsent", "en")
    with pytest.raises(PermissionError):
        await services.readings.record(stranger.id, NewReading("bp", 140, 90), known=(stranger, None))
    me = await _patient(services, 4302)
    stale = await services.users.ensure(4302, 4302, "P4302", "en")  # consented since: re-read, then stored
    stale.consent_at = None
    result = await services.readings.record(me.id, NewReading("bp", 140, 90), known=(stale, None))
    assert result.reading_id and not result.duplicate
