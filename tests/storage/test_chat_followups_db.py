"""Chat follow-up services on SQLite and PostgreSQL: due cycles, invitation spacing and hours, the
to-call list and its scope, the questionnaire to a draft, confirmation and the form's fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.config import Settings
from bot.services.chat_followups import ChatFollowUpService, next_question
from bot.services.clock import ManualClock
from bot.services.container import Services
from bot.services.followups import FollowUpForm, signs_from_text
from bot.services.readings import NewReading
from bot.services.users import Onboarding
from storage.chat_followup_models import ChatFollowUp
from storage.migrate import upgrade
from storage.models import FollowUp, Outbox, Team, TeamMember, User

START = datetime(2026, 3, 2, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai
TODAY = date(2026, 3, 2)


@pytest.fixture
def mclock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def services(db_url: str, mclock: ManualClock):  # type: ignore[no-untyped-def]
    s = Services.build(Settings(database_url=db_url), mclock)
    await upgrade(s.engine)
    yield s
    await s.engine.dispose()


async def _doctor(s: Services, tg_id: int, team: str) -> tuple[User, int]:
    doc = await s.users.ensure(tg_id, tg_id, f"Dr {tg_id}", "en")
    await s.users.add_role(doc.id, "doctor")
    async with s.sessions.begin() as session:
        row = Team(name=team)
        session.add(row)
        await session.flush()
        session.add(TeamMember(team_id=row.id, user_id=doc.id))
        return doc, row.id


async def _patient(s: Services, tg_id: int, doctor: User, team_id: int, *, conditions: frozenset[str] = frozenset(
        {"hypertension"}), linked_days_ago: int = 1, due: date | None = TODAY) -> User:
    user = await s.users.ensure(tg_id, tg_id, f"P{tg_id}", "en")
    await s.users.complete_onboarding(user.id, Onboarding("en", "Asia/Shanghai", conditions, 1955))
    await s.users.update_profile(user.id, team_id=team_id, doctor_id=doctor.id, next_followup_due=due,
                                 linked_at=START - timedelta(days=linked_days_ago))
    return user


async def _outbox(s: Services, prefix: str) -> list[Outbox]:
    async with s.sessions() as session:
        return list(await session.scalars(select(Outbox).where(Outbox.dedupe_key.like(prefix + "%"))
                                          .order_by(Outbox.id)))


async def test_invitations_spaced_then_listed_for_a_call_only_for_own_team(services: Services,
                                                                            mclock: ManualClock) -> None:
    s = services
    doc, team = await _doctor(s, 9001, "A")
    other, _team_b = await _doctor(s, 9002, "B")
    p = await _patient(s, 101, doc, team)
    await _patient(s, 102, doc, team, due=TODAY + timedelta(days=10))  # not due yet
    assert await s.chat_followups.tick() == 1
    assert await s.chat_followups.tick() == 0  # idempotent
    first = await _outbox(s, "cf:")
    assert len(first) == 1 and first[0].recipient_id == p.id
    assert first[0].payload["buttons"][0][0][1].startswith("cf:go:")
    mclock.advance(days=3)
    assert await s.chat_followups.tick() == 1
    assert await s.chat_followups.to_call(doc.id) == []
    mclock.advance(days=3)
    assert await s.chat_followups.tick() == 0
    listed = await s.chat_followups.to_call(doc.id)
    assert [(c.patient_id, c.invitations, c.due_date) for c in listed] == [(p.id, 2, TODAY)]
    assert await s.chat_followups.to_call(other.id) == []  # another team's doctor sees nothing
    # A follow-up recorded another way closes the cycle and takes them off the list.
    result = await s.followups.record(doc.id, p.id, way="phone", outcome="controlled")
    assert result is not None and result.next_due == TODAY + timedelta(days=6 + 90)
    assert await s.chat_followups.to_call(doc.id) == []
    mclock.advance(days=1)
    assert await s.chat_followups.tick() == 0  # next cycle only when the new date is due


async def test_never_followed_up_patient_is_due_one_interval_after_linking(services: Services) -> None:
    s = services
    doc, team = await _doctor(s, 9001, "A")
    old = await _patient(s, 101, doc, team, due=None, linked_days_ago=91)
    await _patient(s, 102, doc, team, due=None, linked_days_ago=10)
    assert await s.chat_followups.tick() == 1
    async with s.sessions() as session:
        cycles = list(await session.scalars(select(ChatFollowUp)))
    assert [(c.patient_id, c.due_date) for c in cycles] == [(old.id, (START - timedelta(days=1)).date())]


async def test_invitations_wait_for_daytime(services: Services, mclock: ManualClock) -> None:
    s = services
    doc, team = await _doctor(s, 9001, "A")
    await _patient(s, 101, doc, team)
    mclock.advance(hours=12)  # 22:30 in Shanghai
    assert await s.chat_followups.tick() == 0
    async with s.sessions() as session:
        cycle = await session.scalar(select(ChatFollowUp))
    assert cycle is not None and cycle.next_invite_at == datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 local
    mclock.advance(hours=11, minutes=29)  # 09:59 local next day
    assert await s.chat_followups.tick() == 0
    mclock.advance(minutes=1)  # 10:00
    assert await s.chat_followups.tick() == 1


async def test_questionnaire_makes_a_draft_the_doctor_confirms(services: Services) -> None:
    s = services
    doc, team = await _doctor(s, 9001, "A")
    p = await _patient(s, 101, doc, team, conditions=frozenset({"diabetes"}))
    await s.users.update_profile(p.id, height_cm=160.0)
    await s.readings.record(p.id, NewReading("glucose", mmol=7.8, context="fasting"))
    await s.readings.record(p.id, NewReading("weight", kg=64.0))
    await s.chat_followups.tick()
    async with s.sessions() as session:
        cycle = await session.scalar(select(ChatFollowUp))
    assert cycle is not None
    svc: ChatFollowUpService = s.chat_followups
    step = await svc.current(p.id, cycle.id)
    assert step.ok and step.question is not None and step.question.key == "symptoms"
    assert "thirst" in step.question.options and "nosebleed" not in step.question.options  # diabetes only
    assert not (await svc.answer(p.id, cycle.id, "salt", "light")).ok  # not the current question
    assert not (await svc.current(999999, cycle.id)).ok  # not theirs
    assert (await svc.toggle(p.id, cycle.id, "symptoms", "thirst")).selected == ("thirst",)
    assert (await svc.toggle(p.id, cycle.id, "symptoms", "infections")).selected == ("thirst", "infections")
    assert (await svc.toggle(p.id, cycle.id, "symptoms", "thirst")).selected == ("infections",)
    step = await svc.answer(p.id, cycle.id, "symptoms", "done")
    answers = {"cigarettes_per_day": "6-10", "alcohol_liang_per_day": "<1", "exercise_per_week": "0",
               "salt": "heavy", "staple_g_per_day": "250-350", "mood": "fair", "advice": "poor",
               "med_adherence": "intermittent", "side_effects": "none", "hypo_reactions": "occasional"}
    while not step.done:
        assert step.ok and step.question is not None
        assert step.question.key != "exercise_minutes"  # skipped: no exercise
        step = await svc.answer(p.id, cycle.id, step.question.key, answers[step.question.key])
    assert step.followup_id is not None
    assert not (await svc.answer(p.id, cycle.id, "hypo_reactions", "frequent")).ok  # answered: closed
    drafts = await _outbox(s, "cfdraft:")
    assert len(drafts) == 1 and drafts[0].recipient_id == doc.id
    assert "fasting glucose 7.8" in drafts[0].payload["text"] and "BMI 25.0" in drafts[0].payload["text"]
    draft = await svc.draft(doc.id, step.followup_id)
    assert draft is not None and draft.followup.status == "draft"
    form = draft.form
    assert (form.symptoms, form.cigarettes_per_day, form.staple_g_per_day, form.hypo_reactions) == (
        ["infections"], "6-10", "250-350", "occasional")
    assert form.side_effects == [] and form.med_adherence == "intermittent" and form.bmi == 25.0
    other, _ = await _doctor(s, 9002, "B")
    assert await svc.draft(other.id, step.followup_id) is None
    assert await svc.confirm(other, step.followup_id, "controlled") is None  # not their patient
    result = await svc.confirm(doc, step.followup_id, "controlled")
    assert result is not None and result.next_due == TODAY + timedelta(days=90)
    assert await svc.confirm(doc, step.followup_id, "unsatisfactory") is None  # once
    assert len(await _outbox(s, "cfdone:")) == 1
    async with s.sessions() as session:
        row = await session.get(FollowUp, step.followup_id)
        n_cycles = await session.scalar(select(func.count(ChatFollowUp.id)).where(ChatFollowUp.status == "confirmed"))
    assert row is not None and row.outcome == "controlled" and row.confirmed_at is not None and n_cycles == 1


async def test_doctor_followup_keeps_every_form_field(services: Services) -> None:
    s = services
    doc, team = await _doctor(s, 9001, "A")
    p = await _patient(s, 101, doc, team, conditions=frozenset({"hypertension", "diabetes"}))
    form = FollowUpForm(symptoms=["leg_oedema"], heart_rate=76, bmi=24.2, target_weight_kg=60, target_bmi=23.5,
                        foot_pulse="weak", hba1c=7.4, hba1c_date="2026-02-20", cigarettes_per_day="0",
                        alcohol_liang_per_day="1", exercise_per_week="5", exercise_minutes="30", salt="medium",
                        staple_g_per_day="300", mood="good", advice="fair", lifestyle_target={"salt": "light"},
                        med_adherence="regular", side_effects=["cough"], hypo_reactions="none",
                        medicines="amlodipine 5 mg qd; metformin 500 mg bid", insulin="none",
                        referral_reason="uncontrolled twice", referral_to="county hospital")
    result = await s.followups.record(doc.id, p.id, way="clinic", outcome="adverse_reaction", systolic=150,
                                      diastolic=92, fasting_mmol=7.9, weight_kg=63.0, form=form, source="bot")
    assert result is not None and result.next_due == TODAY + timedelta(days=14)
    async with s.sessions() as session:
        row = await session.get(FollowUp, result.followup_id)
    assert row is not None
    assert (row.heart_rate, row.bmi, row.hba1c, row.med_adherence, row.hypo_reactions) == (
        76, 24.2, 7.4, "regular", "none")
    assert row.referral == "uncontrolled twice -> county hospital"
    back = FollowUpForm.of(row)
    assert back.foot_pulse == "weak" and back.lifestyle_target == {"salt": "light"}
    assert back.medicines.startswith("amlodipine") and back.side_effects == ["cough"]


def test_signs_from_text_uses_the_reading_rules() -> None:
    signs = signs_from_text("152/96 pulse 80 空腹血糖 6.5 weight 66 kg")
    assert signs is not None
    assert (signs.systolic, signs.diastolic, signs.heart_rate, signs.fasting_mmol, signs.weight_kg) == (
        152, 96, 80, 6.5, 66.0)
    assert signs_from_text("hello") is None
    assert signs_from_text("80/120") is None  # SBP <= DBP: rejected like a reading


def test_questions_follow_the_patients_conditions() -> None:
    htn = frozenset({"hypertension"})
    keys = []
    answers: dict[str, object] = {}
    while (q := next_question(htn, answers)) is not None:
        keys.append(q.key)
        answers[q.key] = q.options[1] if q.options and not q.multi else []
    assert "staple_g_per_day" not in keys and "hypo_reactions" not in keys and "exercise_minutes" in keys
    assert next_question(frozenset({"diabetes"}), {k: "x" for k in keys}).key == "staple_g_per_day"  # type: ignore[union-attr]
