"""The same service tests on SQLite and PostgreSQL: users, idempotent readings, erase, outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.services.container import Services
from bot.services.readings import NewReading
from bot.services.users import Onboarding
from storage.models import Alert, Base, Outbox, Reading, Team, TeamMember, User


async def _patient(services: Services, tg_id: int = 1001) -> User:
    user = await services.users.ensure(tg_id, tg_id, "Wang", "zh-hans")
    await services.users.complete_onboarding(user.id, Onboarding("zh_CN", "Asia/Shanghai",
                                                                 frozenset({"hypertension"}), 1950))
    return user


async def test_ensure_user_is_idempotent_and_picks_language(services: Services) -> None:
    a = await services.users.ensure(42, 42, "Li", "en-US")
    b = await services.users.ensure(42, 42, "Li", "en-US")
    assert a.id == b.id and a.language == "en"
    c = await services.users.ensure(43, 43, "Zhang", None)
    assert c.language == "zh_CN" and c.timezone == "Asia/Shanghai"


async def test_no_clinical_data_before_consent(services: Services) -> None:
    user = await services.users.ensure(7, 7, "NoConsent", "en")
    with pytest.raises(PermissionError):
        await services.readings.record(user.id, NewReading("bp", systolic=130, diastolic=80))


async def test_same_update_recorded_twice_stores_once(services: Services) -> None:
    user = await _patient(services)
    first = await services.readings.record(user.id, NewReading("bp", systolic=150, diastolic=95),
                                           source_update_id=555, seq=0)
    again = await services.readings.record(user.id, NewReading("bp", systolic=150, diastolic=95),
                                           source_update_id=555, seq=0)
    assert not first.duplicate and again.duplicate and again.reading_id == first.reading_id
    assert await services.readings.count(user.id) == 1


async def test_urgent_reading_writes_alert_and_one_outbox_row_in_same_transaction(services: Services) -> None:
    user = await _patient(services)
    doctor = await services.users.ensure(2001, 2001, "Dr Li", "en")
    async with services.sessions.begin() as session:
        team = Team(name="Qingshan")
        session.add(team)
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=doctor.id, oncall_order=0))
        team_id = team.id
    await services.users.update_profile(user.id, team_id=team_id, doctor_id=doctor.id)
    result = await services.readings.record(user.id, NewReading("bp", systolic=186, diastolic=112))
    assert result.assessment.urgent and result.alert is not None
    async with services.sessions() as session:
        rows = list(await session.scalars(select(Outbox).where(Outbox.alert_id == result.alert.alert_id)))
        assert [r.chat_id for r in rows] == [2001]
        assert rows[0].payload["buttons"][0][0][1] == f"al:ack:{result.alert.alert_id}"
    # A repeat inside the window folds into the open alert instead of a second alert.
    again = await services.readings.record(user.id, NewReading("bp", systolic=190, diastolic=115))
    assert again.alert is not None and again.alert.folded and again.alert.alert_id == result.alert.alert_id
    async with services.sessions() as session:
        assert await session.scalar(select(func.count(Alert.id))) == 1
        assert await session.scalar(select(func.count(Outbox.id))) == 1


async def test_average_uses_only_last_seven_days(services: Services, clock) -> None:  # type: ignore[no-untyped-def]
    user = await _patient(services)
    now = clock.now()
    await services.readings.record(user.id, NewReading("bp", systolic=200 - 60, diastolic=90),
                                   measured_at=now - timedelta(days=10))
    await services.readings.record(user.id, NewReading("bp", systolic=130, diastolic=80),
                                   measured_at=now - timedelta(days=2))
    await services.readings.record(user.id, NewReading("bp", systolic=140, diastolic=90),
                                   measured_at=now - timedelta(days=1))
    result = await services.readings.record(user.id, NewReading("bp", systolic=150, diastolic=95))
    assert result.average7.count == 2
    assert result.average7.systolic == pytest.approx(135.0)


async def test_erase_removes_every_row_of_the_user(services: Services) -> None:
    user = await _patient(services)
    await services.readings.record(user.id, NewReading("bp", systolic=185, diastolic=100))
    await services.medicines.add(user.id, "amlodipine", "5 mg")
    await services.medicines.log(user.id, None, "missed")
    await services.users.erase(user.id)
    async with services.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for column in ("patient_id", "user_id", "recipient_id"):
                if column in table.c:
                    count = await session.scalar(select(func.count()).select_from(table)
                                                 .where(table.c[column] == user.id))
                    assert count == 0, f"{table.name}.{column} still holds rows of the erased user"
        assert await session.get(User, user.id) is None
        assert await session.scalar(select(func.count(Reading.id))) == 0
