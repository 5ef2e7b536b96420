"""Care plans on SQLite and PostgreSQL: a saved plan moves medicine reminders, stops the reminders
of a removed medicine, sets the targets the next assessment uses, switches measuring rhythm,
and only the patient's own team may save it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from bot.clinical.plan import CarePlan, parse_medicine_line
from bot.config import Settings
from bot.services.clock import ManualClock
from bot.services.container import Services
from bot.services.readings import NewReading
from bot.services.users import Onboarding
from storage.migrate import upgrade
from storage.models import CaregiverLink, Medicine, Outbox, PatientProfile, Team, TeamMember, User
from storage.plan_models import CarePlanVersion
from storage.reminder_models import Prescription, Reminder

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # Monday 08:00 in Shanghai


@pytest.fixture
async def services(db_url: str):  # type: ignore[no-untyped-def]
    s = Services.build(Settings(database_url=db_url), ManualClock(START))
    await upgrade(s.engine)
    yield s
    await s.engine.dispose()


async def _team_doctor(services: Services, tg_id: int, team: str) -> tuple[User, int]:
    doctor = await services.users.ensure(tg_id, tg_id, "Dr Li", "en")
    async with services.sessions.begin() as session:
        row = Team(name=team)
        session.add(row)
        await session.flush()
        session.add(TeamMember(team_id=row.id, user_id=doctor.id, oncall_order=0))
        team_id = row.id
    await services.users.add_role(doctor.id, "doctor")
    return doctor, team_id


async def _setup(services: Services) -> tuple[User, User]:
    doctor, team_id = await _team_doctor(services, 2001, "Qingshan")
    patient = await services.users.ensure(1001, 1001, "Wang", "en")
    await services.users.complete_onboarding(patient.id, Onboarding("en", "Asia/Shanghai",
                                                                    frozenset({"hypertension"}), 1970))
    await services.users.update_profile(patient.id, team_id=team_id, doctor_id=doctor.id)
    return doctor, patient


async def _medicine_reminders(services: Services, patient_id: int) -> dict[str, str]:
    async with services.sessions() as session:
        rows = (await session.execute(select(Medicine.name, Reminder.times).join(
            Reminder, Reminder.medicine_id == Medicine.id).where(Reminder.user_id == patient_id))).all()
    return {name: times for name, times in rows}


async def test_plan_drives_reminders_targets_and_assessment(services: Services) -> None:
    doctor, patient = await _setup(services)
    draft = await services.plans.draft(doctor.id, patient.id)
    assert draft is not None and draft[2] is True  # no plan yet: start from the defaults
    plan = draft[1]
    assert (plan.targets.bp_systolic, plan.targets.bp_diastolic) == (140, 90)  # age 56: BP-TARGET
    amlo = parse_medicine_line("amlodipine 5mg 08:00,20:00 after food")
    metf = parse_medicine_line("metformin 500 mg 07:30")
    assert amlo is not None and metf is not None
    plan = replace(plan.with_medicine(amlo).with_medicine(metf),
                   targets=replace(plan.targets, bp_systolic=130, bp_diastolic=80))
    saved = await services.plans.save(doctor.id, patient.id, plan)
    assert saved is not None and saved.version == 1
    assert await _medicine_reminders(services, patient.id) == {"amlodipine": "08:00,20:00", "metformin": "07:30"}

    # The next assessment uses the plan's target: 135/85 is in target by default, not under 130/80.
    result = await services.readings.record(patient.id, NewReading("bp", systolic=135, diastolic=85))
    assert result.assessment.in_target is False

    # Change a time: the reminder moves (no second row). Remove a medicine: its reminders stop.
    evening = parse_medicine_line("amlodipine 5mg 08:00,21:00 after food")
    assert evening is not None
    second = await services.plans.save(doctor.id, patient.id, plan.with_medicine(evening).without_medicine("metformin"))
    assert second is not None and second.version == 2
    assert await _medicine_reminders(services, patient.id) == {"amlodipine": "08:00,21:00"}
    async with services.sessions() as session:
        metformin = await session.scalar(select(Medicine).where(Medicine.name == "metformin"))
        assert metformin is not None and metformin.active is False
        rem = await session.scalar(select(Reminder).where(Reminder.kind == "medicine"))
        assert rem is not None and rem.next_due_at == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 21:00 local today
        versions = list(await session.scalars(select(CarePlanVersion.version).where(
            CarePlanVersion.patient_id == patient.id).order_by(CarePlanVersion.version)))
        assert versions == [1, 2]  # history kept
        notices = list(await session.scalars(select(Outbox).where(Outbox.recipient_id == patient.id,
                                                                  Outbox.kind == "notice").order_by(Outbox.id)))
        text = notices[-1].payload["text"]
        assert "Dr Li changed your evening medicine: amlodipine 5 mg at 21:00 from today." in text, text
        assert "Dr Li stopped metformin 500 mg" in text
        profile = await session.get(PatientProfile, patient.id)
        assert profile is not None and (profile.target_sys, profile.target_dia) == (130, 80)
        assert profile.next_followup_due == START.date() + timedelta(days=plan.followup_days)
        lessons = set(await session.scalars(select(Prescription.set_id).where(Prescription.patient_id == patient.id)))
        assert lessons == set(plan.lessons) and lessons


async def test_intensive_rhythm_after_medicine_change_then_maintenance(services: Services) -> None:
    doctor, patient = await _setup(services)
    draft = await services.plans.draft(doctor.id, patient.id)
    assert draft is not None
    med = parse_medicine_line("amlodipine 5mg 08:00")
    assert med is not None
    await services.plans.save(doctor.id, patient.id, draft[1].with_medicine(med))

    async def bp_rows() -> list[tuple[str, str]]:
        async with services.sessions() as session:
            return [(r.times, r.weekdays) for r in await session.scalars(
                select(Reminder).where(Reminder.user_id == patient.id, Reminder.kind == "bp"))]

    assert await bp_rows() == [("07:00,19:00", "")]  # twice a day after the change
    clock = services.clock
    assert isinstance(clock, ManualClock)
    clock.advance(days=6)
    assert await services.plans.tick() == 0
    clock.advance(days=1, seconds=1)
    assert await services.plans.tick() == 1
    assert await bp_rows() == [("08:00", "024")]  # then 3 times a week
    assert await services.plans.tick() == 0


async def test_another_teams_doctor_cannot_set_or_read_the_plan(services: Services) -> None:
    doctor, patient = await _setup(services)
    stranger, _team = await _team_doctor(services, 3001, "Elsewhere")
    draft = await services.plans.draft(doctor.id, patient.id)
    assert draft is not None
    assert await services.plans.draft(stranger.id, patient.id) is None
    assert await services.plans.save(stranger.id, patient.id, draft[1]) is None
    assert await services.plans.current(patient.id) is None
    await services.plans.save(doctor.id, patient.id, draft[1])
    assert await services.plans.viewable(stranger.id, patient.id) is None
    assert await services.plans.viewable(patient.id, patient.id) is not None


def test_plan_round_trips_through_json() -> None:
    from bot.clinical.plan_defaults import default_plan

    plan = default_plan({"hypertension", "diabetes"}, "high", 70)
    med = parse_medicine_line("二甲双胍 0.5g 07:00，19:00 饭后")
    assert med is not None and med.name == "二甲双胍" and med.times == ("07:00", "19:00") and med.food == "with"
    plan = plan.with_medicine(med)
    assert CarePlan.from_dict(plan.to_dict()) == plan
    assert plan.followup_days == 30 and plan.targets.bp_systolic == 150  # high risk; age 70 (BP-TARGET)
    assert plan.lifestyle.staple_g_per_day is not None and "hypo-safety" in plan.lessons


async def test_caregiver_without_consent_is_not_told_and_cannot_see(services: Services) -> None:
    doctor, patient = await _setup(services)
    carer = await services.users.ensure(4001, 4001, "Mei", "en")
    async with services.sessions.begin() as session:
        session.add(CaregiverLink(patient_id=patient.id, caregiver_id=carer.id, receive_summary=False))
    draft = await services.plans.draft(doctor.id, patient.id)
    assert draft is not None
    saved = await services.plans.save(doctor.id, patient.id, draft[1])
    assert saved is not None and saved.announced == 1  # the patient only
    assert await services.plans.viewable(carer.id, patient.id) is None
    await services.users.set_caregiver_prefs(patient.id, carer.id, receive_summary=True)
    assert await services.plans.viewable(carer.id, patient.id) is not None
    second = await services.plans.save(doctor.id, patient.id, replace(draft[1], followup_days=30))
    assert second is not None and second.announced == 2
    async with services.sessions() as session:
        text = await session.scalar(select(Outbox.payload).where(Outbox.recipient_id == carer.id))
        assert text is not None and "updated the care plan of Wang" in text["text"]


async def test_lessons_dropped_from_the_plan_stop_and_others_keep_running(services: Services) -> None:
    doctor, patient = await _setup(services)
    assert await services.education.prescribe(doctor.id, patient.id, "foot-care") is not None  # outside the plan
    draft = await services.plans.draft(doctor.id, patient.id)
    assert draft is not None and len(draft[1].lessons) >= 2
    await services.plans.save(doctor.id, patient.id, draft[1])
    kept, dropped = draft[1].lessons[0], draft[1].lessons[1]
    await services.plans.save(doctor.id, patient.id, replace(draft[1], lessons=(kept,)))
    async with services.sessions() as session:
        running = set(await session.scalars(select(Prescription.set_id).where(
            Prescription.patient_id == patient.id, Prescription.finished_at.is_(None))))
        assert running == {kept, "foot-care"} and dropped not in running
        lesson_rows = list(await session.scalars(select(Reminder).where(Reminder.kind == "lesson")))
        assert len(lesson_rows) == 2


async def test_two_team_members_saving_at_once_both_land(services: Services) -> None:
    doctor, patient = await _setup(services)
    draft = await services.plans.draft(doctor.id, patient.id)
    assert draft is not None
    a = parse_medicine_line("amlodipine 5mg 08:00")
    b = parse_medicine_line("metformin 500mg 07:30")
    assert a is not None and b is not None
    results = await asyncio.gather(services.plans.save(doctor.id, patient.id, draft[1].with_medicine(a)),
                                   services.plans.save(doctor.id, patient.id, draft[1].with_medicine(b)))
    assert sorted(r.version for r in results if r is not None) == [1, 2]
    current = await services.plans.current(patient.id)
    assert current is not None and current[0].version == 2


async def test_plan_saved_late_at_night_is_announced_after_quiet_hours(services: Services) -> None:
    """Issue 6: nothing non-urgent during quiet hours. Saved at 23:30 Shanghai, the announcement waits
    until the patient's 07:00; a patient who set quiet hours 23:00-06:00 gets it at 06:00."""
    doctor, patient = await _setup(services)
    await services.reminders.set_quiet_hours(patient.id, time(23, 0), time(6, 0))
    services.clock.advance(hours=15, minutes=30)  # START + 15:30 = 23:30 in Shanghai
    draft = await services.plans.draft(doctor.id, patient.id)
    assert draft is not None
    saved = await services.plans.save(doctor.id, patient.id, draft[1])
    assert saved is not None and saved.announced == 1
    async with services.sessions() as session:
        due = await session.scalar(select(Outbox.next_attempt_at).where(Outbox.recipient_id == patient.id))
    assert due == datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # 06:00 the next morning in Shanghai
    services.clock.advance(hours=10, minutes=30)  # 10:00 the next day: a new version goes out at once
    again = await services.plans.save(doctor.id, patient.id, replace(draft[1], followup_days=30))
    assert again is not None and again.announced == 1
    async with services.sessions() as session:
        latest = await session.scalar(select(Outbox.next_attempt_at).where(Outbox.recipient_id == patient.id)
                                      .order_by(Outbox.id.desc()).limit(1))
    assert latest == datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
