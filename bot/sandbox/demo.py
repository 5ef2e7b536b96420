"""Demo data for the sandbox: a village team with Dr Li, a patient with two weeks of readings,
and her daughter as family contact, so a newcomer sees something alive at once."""

from __future__ import annotations

from datetime import timedelta

from bot.services.container import Services
from bot.services.readings import NewReading
from bot.services.users import Onboarding
from storage.models import CaregiverLink, PatientProfile, Team, TeamMember, UserRole


async def seed_demo(services: Services, doctor_tg: int, patient_tg: int, caregiver_tg: int) -> None:
    users = services.users
    doctor = await users.ensure(doctor_tg, doctor_tg, "李医生 Dr Li", "zh-hans")
    patient = await users.ensure(patient_tg, patient_tg, "王阿姨", "zh-hans")
    caregiver = await users.ensure(caregiver_tg, caregiver_tg, "Xiao Wang", "en")
    async with services.sessions.begin() as session:
        team = Team(name="青山村家庭医生团队 Qingshan Village Team")
        session.add(team)
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=doctor.id, role="gp", oncall_order=0, is_lead=True))
        session.add(UserRole(user_id=doctor.id, role="doctor"))
        team_id = team.id
    await users._update(doctor.id, display_name="李医生")
    await users.complete_onboarding(patient.id, Onboarding("zh_CN", "Asia/Shanghai",
                                                           frozenset({"hypertension", "diabetes"}), 1954))
    await users.complete_onboarding(caregiver.id, Onboarding("en", "Asia/Shanghai", frozenset(), None))
    async with services.sessions.begin() as session:
        profile = await session.get(PatientProfile, patient.id)
        assert profile is not None
        profile.team_id = team_id
        profile.doctor_id = doctor.id
        profile.linked_at = services.clock.now()
        profile.height_cm = 158
        session.add(CaregiverLink(patient_id=patient.id, caregiver_id=caregiver.id))
        session.add(UserRole(user_id=caregiver.id, role="caregiver"))
    now = services.clock.now()
    bp = [(148, 92), (142, 88), (151, 95), (139, 86), (145, 90), (136, 84), (144, 89), (138, 85),
          (141, 87), (135, 83), (146, 91), (137, 84), (133, 82), (140, 86)]
    for day, (sys_, dia) in enumerate(bp):
        await services.readings.record(patient.id, NewReading("bp", systolic=sys_, diastolic=dia, pulse=72 + day % 5),
                                       measured_at=now - timedelta(days=14 - day, hours=2))
        if day % 2 == 0:
            await services.readings.record(
                patient.id, NewReading("glucose", mmol=round(6.2 + (day % 5) * 0.4, 1), context="fasting"),
                measured_at=now - timedelta(days=14 - day, hours=3))
    await services.medicines.add(patient.id, "氨氯地平 amlodipine", "5 mg", "08:00")
    await services.medicines.add(patient.id, "二甲双胍 metformin", "500 mg", "08:00,18:00")
