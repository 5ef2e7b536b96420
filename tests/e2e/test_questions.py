"""Ask my doctor and Trouble with my care through FakeTelegram: a question asked and answered
(reply and button), one asked after working hours (when to expect the answer, its age in
/questions), an urgent-sounding one (safety answer now, alert to the doctor), a caregiver's
question, and hardship flags only the patient's own team sees."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from bot.app import CareCircle
from bot.sandbox import FakeTelegram, SimUser
from bot.sandbox.fake.models import BotMessage
from storage.models import Alert, User
from storage.question_models import CareTrouble, Question
from tests.e2e.helpers import doctor, linked_patient, patient, until

QUESTION = "Can I take my amlodipine in the evening instead of the morning?"
# `care_clock` (tests/e2e/conftest.py) starts on Tuesday 2026-11-24 10:00 in Shanghai: the team is at work.


def has(text: str) -> Callable[[BotMessage], bool]:
    return lambda m: text in (m.text or "")


async def nothing_for(u: SimUser, seconds: float = 0.8) -> list[str]:
    """Every text `u` receives within `seconds` (expected: none about the subject)."""
    await asyncio.sleep(seconds)
    return [m.text or "" for m in u.drain()]


async def uid(app: CareCircle, u: SimUser) -> int:
    user = await app.services.users.by_telegram(u.id)
    assert user is not None
    return user.id


async def ask(u: SimUser, text: str) -> BotMessage:
    await u.send("/ask")
    prompt = await u.next_message()
    assert "Write your question for your care team" in prompt.text
    await u.send(text)
    return await u.next_message()


async def test_question_asked_and_answered_by_reply_and_by_button(tg: FakeTelegram, care_clock: Any) -> None:
    app, _clock = care_clock
    doc = await doctor(tg, app)
    nurse = await doctor(tg, app, name="Nurse Chen", role="nurse")
    u = await linked_patient(tg, doc)
    await u.send("150/95")
    await u.next_message()
    sent = await ask(u, QUESTION)
    assert "Sent to your care team" in sent.text and "working now" in sent.text

    inbox = await until(doc, has("Question #"))
    assert "Wang" in inbox.text and "age 70" in inbox.text and "Hypertension" in inbox.text
    assert "150/95" in inbox.text and QUESTION in inbox.text and inbox.buttons == ["Answer"]
    copy = await until(nurse, has("Question #"))
    assert QUESTION in copy.text

    await doc.reply(inbox.message_id, "Yes, the evening is fine. Take it at the same time every day.")
    assert (await until(doc, has("Sent to"))).text == "Sent to Wang."
    answer = await until(u, has("from your care team answered"))
    assert "Dr Li from your care team answered" in answer.text
    assert "the evening is fine" in answer.text and "amlodipine" in answer.text
    edited = await nurse.next_edit()
    assert "Answered by Dr Li" in edited.text and edited.buttons == []
    async with app.services.sessions() as session:
        q = await session.scalar(select(Question))
        assert q is not None and q.answered_by == await uid(app, doc) and q.asker_role == "patient"
        assert q.answer is not None and q.answer.startswith("Yes, the evening") and q.answered_at is not None

    # The nurse's copy lost its button; an old button press is refused all the same.
    await nurse.press_data(copy.message_id, f"qa:ans:{q.id}")
    assert "already answered" in (await until(nurse, has("already answered"))).text
    # The Answer button, on a new question.
    await ask(u, "Should I measure before or after breakfast?")
    second = await until(nurse, has("before or after breakfast"))
    await nurse.press("Answer", second.message_id)
    assert "Type your answer to question" in (await nurse.next_message()).text
    await nurse.send("Before breakfast, after the toilet, sitting for 5 minutes.")
    assert (await nurse.next_message()).text == "Sent to Wang."
    answer = await until(u, has("Nurse Chen from your care team answered"))
    assert "sitting for 5 minutes" in answer.text
    assert "No unanswered questions" in (await _command(doc, "/questions")).text


async def _command(u: SimUser, text: str) -> BotMessage:
    u.drain()
    await u.send(text)
    return await u.next_message()


async def test_question_after_working_hours_tells_when_and_shows_its_age(tg: FakeTelegram, care_clock: Any) -> None:
    app, clock = care_clock
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    clock.advance(days=3, hours=8)  # Friday 18:00 in Shanghai: after work, before the weekend
    sent = await ask(u, QUESTION)
    assert "Sent to your care team" in sent.text
    assert "Monday to Friday, 08:00-17:30" in sent.text and "Next working hours start Monday 08:00" in sent.text
    await until(doc, has("Question #"))
    clock.advance(hours=3)
    listing = await _command(doc, "/questions")
    assert "Unanswered questions (1)" in listing.text
    assert "Wang, waiting 3 hours" in listing.text and "amlodipine" in listing.text
    assert listing.buttons == [f"Answer #{(await app.services.questions.open_for(await uid(app, doc)))[0].id}"]
    panel = await _command(doc, "/patients")
    assert "Unanswered questions: 1" in panel.text


async def test_urgent_sounding_question_gets_safety_answer_and_alerts_the_doctor(tg: FakeTelegram,
                                                                                care_clock: Any) -> None:
    app, clock = care_clock
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    clock.advance(days=4, hours=12)  # Saturday night: nobody at work, the safety answer must not wait
    await u.send("/ask")
    await u.next_message()
    await u.send("I have chest pain since this morning, should I take an extra pill?")
    safety = await u.next_message()
    assert "call 120 or go to hospital now" in safety.text
    assert "your doctor has been alerted" in (await u.next_message()).text
    alert = await until(doc, has("danger signs"))
    assert "chest_pain" in alert.text and alert.buttons[0] == "Acknowledge"
    question = await until(doc, has("Question #"))
    assert "This sounds urgent" in question.text
    async with app.services.sessions() as session:
        assert [a.rule for a in await session.scalars(select(Alert))] == ["SYMPTOM-TEXT"]
        assert (await session.scalar(select(Question))).urgent is True  # type: ignore[union-attr]
    # An urgent reading inside a question takes the reading path: saved, graded, the doctor alerted.
    await u.send("/ask")
    await u.next_message()
    await u.send("my blood pressure is 190/120 now, what should I do?")
    reading = await until(u, has("needs attention now"))
    assert "190/120" in reading.text
    await until(u, has("your doctor has been alerted"))
    urgent = await until(doc, has("Urgent reading"))
    assert "190/120" in urgent.text


async def test_caregiver_asks_for_the_patient_and_both_get_the_answer(tg: FakeTelegram, care_clock: Any) -> None:
    app, _clock = care_clock
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    await u.send("/family")
    payload = (await u.next_message()).text.split("start=")[1].split()[0]
    daughter = await patient(tg, name="Mei", condition="High blood pressure")
    await daughter.send(f"/start {payload}")
    await until(daughter, has("family contact"))
    u.drain()
    daughter.drain()
    await daughter.send("/ask")
    whose = await until(daughter, has("Whose question"))
    assert "Whose question" in whose.text and whose.buttons == ["Mine", "Wang"]
    await daughter.press("Wang")
    assert "Write your question" in (await daughter.next_message()).text
    await daughter.send("Is it safe for my mother to fast during the festival?")
    sent = await daughter.next_message()
    assert "Sent to your care team" in sent.text
    inbox = await until(doc, has("Question #"))
    assert "asked by their family member Mei" in inbox.text and "Wang" in inbox.text
    await doc.reply(inbox.message_id, "Please do not fast; bring her to the clinic this week.")
    for person in (daughter, u):
        got = await until(person, has("from the care team answered") if person is daughter
                          else has("question your family member asked"))
        assert "do not fast" in got.text and "Dr Li" in got.text
    async with app.services.sessions() as session:
        q = await session.scalar(select(Question))
        assert q is not None and q.asker_role == "caregiver" and q.patient_id == await uid(app, u)


async def test_another_teams_doctor_cannot_see_or_answer_a_question(tg: FakeTelegram, care_clock: Any) -> None:
    app, _clock = care_clock
    doc = await doctor(tg, app)
    other = await doctor(tg, app, name="Dr Zhao", team="Hillside")
    u = await linked_patient(tg, doc)
    await ask(u, QUESTION)
    await until(doc, has("Question #"))
    assert await nothing_for(other) == []
    assert "No unanswered questions" in (await _command(other, "/questions")).text
    async with app.services.sessions() as session:
        qid = await session.scalar(select(Question.id))
    own = await _command(other, "/help")
    await other.press_data(own.message_id, f"qa:ans:{qid}")  # a forged Answer button
    await other.send("Stop your pills.")
    u.drain()
    assert not [t for t in await nothing_for(u, 1.0) if "Stop your pills" in t]
    async with app.services.sessions() as session:
        assert (await session.get(Question, qid)).answered_at is None  # type: ignore[union-attr]
    result = await app.services.questions.answer(qid, await uid(app, other), "Stop your pills.")  # type: ignore[arg-type]
    assert not result.ok and result.reason == "not_found"


async def test_hardship_flag_is_seen_by_the_own_team_only(tg: FakeTelegram, care_clock: Any) -> None:
    app, _clock = care_clock
    doc = await doctor(tg, app)
    other = await doctor(tg, app, name="Dr Zhao", team="Hillside")
    u = await linked_patient(tg, doc)
    neighbour = await linked_patient(tg, doc, name="Zhang")
    pid = await uid(app, u)
    await u.send("/trouble")
    card = await u.next_message()
    assert "only your doctor's team sees this" in card.text
    assert "⬜ I cannot travel to the clinic" in card.buttons
    await u.press("⬜ I cannot travel to the clinic")
    edited = await u.next_edit()
    assert "✅ I cannot travel to the clinic" in edited.buttons and "⬜ I have nobody to help me" in edited.buttons
    told = await until(doc, has("reports trouble with their care"))
    assert "Wang" in told.text and "cannot travel to the clinic" in told.text

    panel = await _command(doc, "/patients")
    line = next(x for x in panel.text.splitlines() if "Wang" in x)
    assert "🆘 cannot travel to the clinic" in line
    assert "🆘" not in next(x for x in panel.text.splitlines() if "Zhang" in x)
    view = await _command(doc, f"/patient {pid}")
    assert "Trouble with care: cannot travel to the clinic" in view.text

    assert (await _command(other, f"/patient {pid}")).text == "Not found."
    assert "🆘" not in (await _command(other, "/patients")).text
    for person in (other, neighbour):
        assert not [t for t in await nothing_for(person) if "trouble" in t.lower() or "travel" in t]

    await u.press("✅ I cannot travel to the clinic")
    await u.next_edit()
    assert "🆘" not in (await _command(doc, "/patients")).text
    async with app.services.sessions() as session:
        flags = list(await session.scalars(select(CareTrouble)))
        assert [(f.kind, f.cleared_at is not None) for f in flags] == [("travel", True)]
        assert (await session.get(User, pid)) is not None


async def test_a_forgotten_ask_does_not_swallow_a_later_reading(tg: FakeTelegram, care_clock: Any) -> None:
    app, clock = care_clock
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    await u.send("/ask")
    await u.next_message()
    clock.advance(hours=2)
    await u.send("135/85")
    assert "Saved: BP 135/85" in (await until(u, has("Saved"))).text
    await u.send("/ask")
    await u.next_message()
    await u.send("/cancel")
    assert (await u.next_message()).text == "Stopped. Nothing was sent."
    async with app.services.sessions() as session:
        assert list(await session.scalars(select(Question))) == []
