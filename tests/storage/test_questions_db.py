"""QuestionService on SQLite and PostgreSQL: asking (idempotent, team inbox, working hours),
answering (scope, once, edits of the other copies), lists and hardship flags, erase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.config import Settings
from bot.services.clock import ManualClock
from bot.services.container import Services
from bot.services.users import Onboarding
from storage.migrate import upgrade
from storage.models import Alert, Outbox, Team, TeamMember, User
from storage.question_models import CareTrouble, Question

TUESDAY_10H = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
async def services(db_url: str):  # type: ignore[no-untyped-def]
    s = Services.build(Settings(database_url=db_url), ManualClock(TUESDAY_10H))
    await upgrade(s.engine)
    yield s
    await s.engine.dispose()


async def _patient(s: Services, tg_id: int, name: str = "Wang") -> User:
    user = await s.users.ensure(tg_id, tg_id, name, "en")
    await s.users.complete_onboarding(user.id, Onboarding("en", "Asia/Shanghai", frozenset({"hypertension"}), 1950))
    return user


async def _team(s: Services, name: str, *doctors: User) -> int:
    async with s.sessions.begin() as session:
        team = Team(name=name)
        session.add(team)
        await session.flush()
        for order, d in enumerate(doctors):
            session.add(TeamMember(team_id=team.id, user_id=d.id, oncall_order=order))
        return team.id


async def _setup(s: Services) -> tuple[User, User, User, User]:
    """Wang (patient) of Dr Li and Nurse Chen's team; Dr Zhao in another team."""
    li, chen, zhao = [await s.users.ensure(tg, tg, name, "en") for tg, name in
                      ((2001, "Dr Li"), (2002, "Nurse Chen"), (2003, "Dr Zhao"))]
    wang = await _patient(s, 1001)
    team = await _team(s, "Qingshan", li, chen)
    await _team(s, "Hillside", zhao)
    await s.users.update_profile(wang.id, team_id=team, doctor_id=li.id)
    return wang, li, chen, zhao


async def _outbox(s: Services, **where: object) -> list[Outbox]:
    async with s.sessions() as session:
        query = select(Outbox).order_by(Outbox.id)
        for key, value in where.items():
            query = query.where(getattr(Outbox, key) == value)
        return list(await session.scalars(query))


async def test_ask_queues_to_the_team_once_and_knows_working_hours(services: Services) -> None:
    s = services
    wang, li, chen, _zhao = await _setup(s)
    result = await s.questions.ask(wang.id, wang.id, "Can I take my pill at night?", source_update_id=9)
    assert result.question_id is not None and not result.duplicate and not result.safety.urgent
    assert result.next_open is None and result.recipients == 2
    again = await s.questions.ask(wang.id, wang.id, "Can I take my pill at night?", source_update_id=9)
    assert again.duplicate and again.question_id == result.question_id
    rows = await _outbox(s, kind="question")
    assert [r.recipient_id for r in rows] == [li.id, chen.id]
    assert "Can I take my pill at night?" in rows[0].payload["text"] and "age 76" in rows[0].payload["text"]
    assert rows[0].payload["buttons"] == [[["Answer", f"qa:ans:{result.question_id}"]]]
    # Saturday: the next working hours start on Monday 08:00 in the team's zone.
    s.clock.advance(days=4)  # type: ignore[attr-defined]
    later = await s.questions.ask(wang.id, wang.id, "And on weekends?")
    assert later.next_open is not None
    assert later.next_open.strftime("%a %H:%M") == "Mon 08:00" and later.next_open.utcoffset() == timedelta(hours=8)


async def test_no_team_means_no_question_and_danger_signs_raise_the_alert(services: Services) -> None:
    s = services
    alone = await _patient(s, 1500, "Alone")
    assert (await s.questions.ask(alone.id, alone.id, "hello?")).question_id is None
    wang, li, _chen, _zhao = await _setup(s)
    result = await s.questions.ask(wang.id, wang.id, "胸口痛，要不要吃药？")
    assert result.safety.urgent and result.safety.signs == frozenset({"chest_pain"})
    async with s.sessions() as session:
        alerts = list(await session.scalars(select(Alert).where(Alert.patient_id == wang.id)))
        question = await session.get(Question, result.question_id)
    assert [a.rule for a in alerts] == ["SYMPTOM-TEXT"] and question is not None and question.urgent
    alert_rows = await _outbox(s, kind="alert")
    assert [r.recipient_id for r in alert_rows] == [li.id]


async def test_answer_is_scoped_once_and_closes_the_other_copies(services: Services) -> None:
    s = services
    wang, li, chen, zhao = await _setup(s)
    qid = (await s.questions.ask(wang.id, wang.id, "Can I eat rice?")).question_id
    assert qid is not None
    async with s.sessions.begin() as session:  # the nurse's copy was delivered as message 77
        await session.execute(update(Outbox).where(Outbox.recipient_id == chen.id, Outbox.kind == "question")
                              .values(status="sent", telegram_message_id=77))
    assert (await s.questions.answer(qid, zhao.id, "No.")).reason == "not_found"
    assert await s.questions.question_for(zhao.id, qid) is None
    assert await s.questions.answer_reply(chen.id, 2002, 78, "Yes") is None  # not a question message
    assert (await s.questions.answer(qid, li.id, "   ")).reason == "empty"
    done = await s.questions.answer_reply(chen.id, 2002, 77, "Yes, a small bowl.")
    assert done is not None and done.ok and done.answered_by == "Nurse Chen" and done.patient_name == "Wang"
    again = await s.questions.answer(qid, li.id, "Brown rice.")
    assert not again.ok and again.reason == "already" and again.answered_by == "Nurse Chen"
    notices = await _outbox(s, recipient_id=wang.id, kind="notice")
    assert len(notices) == 1 and "Yes, a small bowl." in notices[0].payload["text"]
    assert "Nurse Chen from your care team answered" in notices[0].payload["text"]
    edits = await _outbox(s, kind="edit")
    assert [(e.recipient_id, e.payload["message_id"]) for e in edits] == [(chen.id, 77)]
    assert "Answered by Nurse Chen" in edits[0].payload["text"] and "buttons" not in edits[0].payload
    pending = (await _outbox(s, recipient_id=li.id, kind="question"))[0]
    assert "Answered by Nurse Chen" in pending.payload["text"] and "buttons" not in pending.payload
    async with s.sessions() as session:
        q = await session.get(Question, qid)
    assert q is not None and q.answered_by == chen.id and q.answer == "Yes, a small bowl."


async def test_open_questions_urgent_first_then_oldest_and_only_for_the_team(services: Services) -> None:
    s = services
    wang, li, _chen, zhao = await _setup(s)
    zhang = await _patient(s, 1002, "Zhang")
    other_team = (await s.panel.teams_of(zhao.id))[0]
    await s.users.update_profile(zhang.id, team_id=other_team, doctor_id=zhao.id)
    first = await s.questions.ask(wang.id, wang.id, "first")
    s.clock.advance(minutes=5)  # type: ignore[attr-defined]
    urgent = await s.questions.ask(wang.id, wang.id, "I fainted this morning")
    await s.questions.ask(zhang.id, zhang.id, "someone else's")
    mine = await s.questions.open_for(li.id)
    assert [q.id for q in mine] == [urgent.question_id, first.question_id] and mine[0].urgent
    assert await s.questions.open_count(li.id) == 2
    assert [q.text for q in await s.questions.open_for(zhao.id)] == ["someone else's"]
    await s.questions.answer(first.question_id, li.id, "ok")  # type: ignore[arg-type]
    assert await s.questions.open_count(li.id) == 1


async def test_trouble_flags_raise_once_clear_and_tell_the_own_doctor(services: Services) -> None:
    s = services
    wang, li, _chen, _zhao = await _setup(s)
    assert await s.questions.set_trouble(wang.id, "medicines", True, by=wang.id)
    assert not await s.questions.set_trouble(wang.id, "medicines", True, by=wang.id)  # already raised
    assert not await s.questions.set_trouble(wang.id, "bogus", True)
    assert await s.questions.set_trouble(wang.id, "support", True)
    assert await s.questions.troubles_for([wang.id, 999]) == {wang.id: ["medicines", "support"]}
    notices = [r for r in await _outbox(s, kind="notice") if (r.dedupe_key or "").startswith("trouble:")]
    assert [r.recipient_id for r in notices] == [li.id, li.id]
    assert "cannot afford or get medicines" in notices[0].payload["text"]
    assert await s.questions.set_trouble(wang.id, "medicines", False)
    assert not await s.questions.set_trouble(wang.id, "medicines", False)
    assert [f.kind for f in await s.questions.troubles(wang.id)] == ["support"]
    await s.questions.ask(wang.id, wang.id, "a question erased with the patient")
    await s.users.erase(wang.id)
    async with s.sessions() as session:
        assert await session.scalar(select(func.count(CareTrouble.id))) == 0
        assert await session.scalar(select(func.count(Question.id))) == 0
        # the copies queued for the team (other people's outbox rows) went with them, unsent
        leftovers = (await session.scalars(select(Outbox).where(Outbox.status == "pending"))).all()
        assert not [r.dedupe_key for r in leftovers
                    if (r.dedupe_key or "").startswith(("q:", "trouble:"))], "erased words still queued"
