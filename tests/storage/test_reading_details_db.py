"""On SQLite and PostgreSQL (migrated schema, incl. 0005_reading_details): /edit corrections
re-assess in place, and a pre-registered record is folded into the joining account."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.services.container import Services
from bot.services.corrections import CorrectionService
from bot.services.preregister import PreRegistration, PreRegistrationService
from bot.services.readings import NewReading
from bot.services.users import Onboarding
from storage.models import Alert, FollowUp, Invite, Outbox, PatientProfile, Reading, Team, TeamMember, User


async def _patient(services: Services, tg_id: int = 1001, conditions: frozenset[str] = frozenset({"hypertension"}),
                   birth_year: int | None = 1950) -> User:
    user = await services.users.ensure(tg_id, tg_id, "Wang", "en")
    await services.users.complete_onboarding(user.id, Onboarding("en", "Asia/Shanghai", conditions, birth_year))
    return user


async def _doctor(services: Services) -> tuple[User, int]:
    doctor = await services.users.ensure(2001, 2001, "Dr Li", "en")
    async with services.sessions.begin() as session:
        team = Team(name="Qingshan")
        session.add(team)
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=doctor.id, oncall_order=0))
        return doctor, team.id


async def test_correction_reassesses_in_place_and_alerts(services: Services, clock) -> None:  # type: ignore[no-untyped-def]
    corrections = CorrectionService(services.sessions, services.clock, services.alerts)
    doctor, team_id = await _doctor(services)
    user = await _patient(services)
    await services.users.update_profile(user.id, team_id=team_id, doctor_id=doctor.id)
    first = await services.readings.record(user.id, NewReading("bp", systolic=158, diastolic=95, arm="left"))
    assert first.alert is None
    assert await corrections.correct(user.id, first.reading_id, NewReading("glucose", mmol=6.0)) is None  # other kind
    other = await _patient(services, tg_id=1002)
    assert await corrections.correct(other.id, first.reading_id, NewReading("bp", systolic=120, diastolic=80)) is None
    result = await corrections.correct(user.id, first.reading_id, NewReading("bp", systolic=185, diastolic=115))
    assert result is not None and result.assessment.urgent and result.alert is not None
    async with services.sessions() as session:
        row = await session.get(Reading, first.reading_id)
        assert row is not None and (row.systolic, row.diastolic, row.arm, row.urgent) == (185, 115, "left", True)
        assert row.edited_at == clock.now()
        assert await session.scalar(select(func.count(Reading.id))) == 1
        assert await session.scalar(select(func.count(Outbox.id)).where(Outbox.chat_id == 2001)) == 1
    back = await corrections.correct(user.id, first.reading_id, NewReading("bp", systolic=128, diastolic=82))
    assert back is not None and not back.assessment.urgent and back.alert is None
    last = await corrections.last(user.id)
    assert last is not None and (last.category, last.urgent, last.in_target) == ("high_normal", False, True)


async def test_preregistered_record_is_folded_into_the_joining_account(services: Services) -> None:
    doctor, team_id = await _doctor(services)
    prereg = PreRegistrationService(services.sessions, services.clock, services.invites)
    loner = await services.users.ensure(3001, 3001, "Loner", "en")
    assert await prereg.create(loner.id, PreRegistration("Nobody")) is None  # no team: nothing created
    created = await prereg.create(doctor.id, PreRegistration("Zhang Wei", "13800138000", 1950,
                                                             frozenset({"diabetes"})))
    assert created is not None
    await services.users.update_profile(created.patient_id, target_sys=130, target_dia=80, risk="high")
    joiner = await _patient(services, tg_id=1005, conditions=frozenset({"hypertension"}), birth_year=None)
    kind, code = created.payload.split("-", 1)
    assert kind == "p"
    result = await services.invites.redeem("patient", code, joiner.id)
    assert result.ok and result.doctor_name == "Dr Li"
    async with services.sessions() as session:
        assert await session.get(User, created.patient_id) is None
        user = await session.get(User, joiner.id)
        profile = await session.get(PatientProfile, joiner.id)
        invite = await session.get(Invite, code)
        notices = list(await session.scalars(select(Outbox).where(Outbox.dedupe_key == f"prereg:{code}")))
        assert await session.scalar(select(func.count(FollowUp.id))) == 0
        assert await session.scalar(select(func.count(Alert.id))) == 0
    assert user is not None and (user.display_name, user.phone) == ("Zhang Wei", "13800138000")
    assert profile is not None and profile.condition_set == {"diabetes", "hypertension"}
    assert (profile.birth_year, profile.target_sys, profile.risk, profile.team_id, profile.doctor_id) == (
        1950, 130, "high", team_id, doctor.id)
    assert invite is not None and invite.patient_id == joiner.id and invite.used_by == joiner.id
    assert [n.chat_id for n in notices] == [2001]
    second = await _patient(services, tg_id=1006)
    again = await services.invites.redeem("patient", code, second.id)
    assert not again.ok and again.reason == "used"
