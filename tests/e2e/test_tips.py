"""Tips, tools and quizzes through FakeTelegram: what a patient sees and what is stored."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import CareCircle
from bot.sandbox import FakeTelegram, SimUser
from bot.services.users import Onboarding
from content.catalog import default_catalog
from storage.tips_models import QuizAttempt, TipView
from tests.e2e.helpers import patient

_CONDITIONS = {"hypertension": frozenset({"hypertension"}), "both": frozenset({"hypertension", "diabetes"})}


async def quick_patient(tg: FakeTelegram, app: CareCircle, name: str = "Wang", conditions: str = "both",
                        year: int = 1956) -> SimUser:
    """A patient set up through the services (the chat onboarding has its own tests): keeps each test
    inside Telegram's per-chat flood limit instead of spending it on onboarding messages."""
    u = tg.user(name, language_code="en", started=True)
    user = await app.services.users.ensure(u.id, u.id, name, "en")
    await app.services.users.complete_onboarding(
        user.id, Onboarding("en", "Asia/Shanghai", _CONDITIONS[conditions], year))
    return u


async def _user_id(app: CareCircle, u: SimUser) -> int:
    user = await app.services.users.by_telegram(u.id)
    assert user is not None
    return user.id


async def _views(app: CareCircle, u: SimUser) -> list[TipView]:
    return await app.services.tips.views(await _user_id(app, u))


async def _send_reading(u: SimUser, text: str, asks_symptoms: bool = False) -> str:
    """Send a reading; return the feedback text (after the symptom question, when one is asked)."""
    await u.send(text)
    feedback = (await u.next_message()).text or ""
    if asks_symptoms:
        assert "Do you have any of these" in ((await u.next_message()).text or "")
    return feedback


# --- tips -------------------------------------------------------------------------------------------
async def test_tips_rotate_without_repeats_then_restart(tg: FakeTelegram, app: CareCircle) -> None:
    u = await patient(tg)
    user_id = await _user_id(app, u)
    pool = default_catalog().tips_for(await app.services.tips.context_for(user_id), (), "en")
    assert len(pool) > 20
    await u.press("💡 Tips")  # the menu button
    first = await u.next_message()
    assert first.buttons == ["Another", "👍 Helpful", "👎 Not helpful"]
    assert first.text.startswith("💡 ") and "\n\nSource: " in first.text
    for _ in range(len(pool) - 1):
        await u.press("Another")
        edited = await u.next_edit()
        assert "here they come again" not in edited.text
    ids = [v.tip_id for v in await _views(app, u)]
    assert len(ids) == len(pool) == len(set(ids))  # every fitting tip once, no repeat
    assert any(default_catalog().tip(i).is_exercise for i in ids)  # readings are fine: exercise tips come
    await u.press("Another")
    again = await u.next_edit()
    assert "here they come again" in again.text
    views = await _views(app, u)
    assert views[-1].tip_id == ids[0] and views[-1].round == 2
    await u.press("Another")
    assert "here they come again" not in (await u.next_edit()).text
    assert (await _views(app, u))[-1].tip_id == ids[1]


async def test_high_7_day_bp_average_gets_a_salt_bp_tip_first(tg: FakeTelegram, app: CareCircle) -> None:
    u = await quick_patient(tg, app, conditions="hypertension")
    for reading in ("162/102", "164/104", "160/100"):  # grade 2: each reading asks about symptoms
        await _send_reading(u, reading, asks_symptoms=True)
    await u.send("/tips")
    shown = await u.next_message()
    tip = default_catalog().tip((await _views(app, u))[0].tip_id)
    assert tip.when.get("bp_avg7_above_target") and tip.topic == "salt", tip.id
    assert tip.text_for("en") in shown.text and "Source: " + tip.source in shown.text


async def test_a_patient_with_good_readings_gets_a_general_tip_first(tg: FakeTelegram, app: CareCircle) -> None:
    u = await quick_patient(tg, app, conditions="hypertension")
    for reading in ("128/78", "126/80"):
        await _send_reading(u, reading)
    await u.send("/tips")
    await u.next_message()
    tip = default_catalog().tip((await _views(app, u))[0].tip_id)
    assert not tip.when.get("bp_avg7_above_target")


async def test_no_exercise_tip_after_an_urgent_reading(tg: FakeTelegram, app: CareCircle) -> None:
    u = await quick_patient(tg, app)
    feedback = await _send_reading(u, "186/112", asks_symptoms=True)
    assert "needs attention now" in feedback
    exercise_texts = [t.text_for("en") for t in default_catalog().tips.values() if t.is_exercise]
    for _ in range(3):
        await u.send("/tips")
        text = (await u.next_message()).text
        assert not any(x in text for x in exercise_texts)
    for _ in range(40):
        await u.press("Another")
        text = (await u.next_edit()).text
        assert not any(x in text for x in exercise_texts)
    views = await _views(app, u)
    assert len(views) == 43
    assert not [v.tip_id for v in views if default_catalog().tip(v.tip_id).is_exercise]


async def test_feedback_is_stored_and_a_forged_feedback_button_changes_nothing(tg: FakeTelegram,
                                                                              app: CareCircle) -> None:
    u = await quick_patient(tg, app)
    other = await quick_patient(tg, app, name="Zhang")
    await other.send("/tips")
    await other.next_message()
    await u.send("/tips")
    tip_message = await u.next_message()
    helpful = await u.press("👍 Helpful")
    edit = await u.next_edit()
    assert edit.buttons == ["Another"]
    assert await u.answer_to(helpful) == "Thank you for telling me."
    await u.press("Another")
    await u.next_edit()
    await u.press("👎 Not helpful")
    await u.next_edit()
    assert [v.feedback for v in await _views(app, u)] == ["helpful", "not_helpful"]
    foreign = (await _views(app, other))[0]
    presses = [await u.press_data(tip_message.message_id, f"tp:fb:{foreign.id}:0"),
               await u.press_data(tip_message.message_id, "tp:fb:abc:1")]
    assert [await u.answer_to(q) for q in presses] == ["This button has expired.", "This button has expired."]
    assert (await _views(app, other))[0].feedback is None


# --- tools -------------------------------------------------------------------------------------------
async def test_salt_calculator_for_a_household(tg: FakeTelegram, app: CareCircle) -> None:
    u = await quick_patient(tg, app)
    await u.send("/tools")
    assert (await u.next_message()).buttons == ["🧂 Salt calculator", "🫒 Oil calculator", "📏 BMI and waist",
                                                "🏃 Exercise plan"]
    await u.press("🧂 Salt calculator")
    assert "How many people" in (await u.next_message()).text
    await u.send("3")
    assert "How many grams" in (await u.next_message()).text
    await u.send("a lot")
    assert "Please type the grams as a number" in (await u.next_message()).text  # kind re-ask
    await u.send("500")
    assert "How many days" in (await u.next_message()).text
    await u.send("30")
    result = await u.next_message()
    assert "5.6 g per person per day; the guideline says under 5 g (CDG-2022)" in result.text


async def test_oil_calculator_and_cancel(tg: FakeTelegram, app: CareCircle) -> None:
    u = await quick_patient(tg, app)
    await u.send("/tools")
    await u.next_message()
    await u.press("🫒 Oil calculator")
    assert "cooking oil" in (await u.next_message()).text
    await u.send("2")
    await u.next_message()
    await u.send("/cancel")
    assert "Stopped" in (await u.next_message()).text
    await u.send("3")  # no longer inside the tool: a lone number is not a reading
    assert "did not find a reading" in (await u.next_message()).text
    await u.press("🫒 Oil calculator")
    assert "cooking oil" in (await u.next_message()).text
    for answer_text in ("2", "1800", "30"):
        await u.send(answer_text)
        reply = (await u.next_message()).text
    assert "30.0 g of oil per person per day" in reply and "Well done" in reply


async def test_a_reading_typed_inside_a_tool_is_saved_not_swallowed(tg: FakeTelegram, app: CareCircle) -> None:
    u = await quick_patient(tg, app)
    await u.send("/tools")
    await u.next_message()
    await u.press("🧂 Salt calculator")
    await u.next_message()
    await u.send("135/85")
    assert "Saved: BP 135/85" in (await u.next_message()).text
    assert await app.services.readings.count(await _user_id(app, u)) == 1


async def test_bmi_and_waist(tg: FakeTelegram, app: CareCircle) -> None:
    u = await quick_patient(tg, app)
    await u.send("/tools")
    await u.next_message()
    await u.press("📏 BMI and waist")
    assert "height" in (await u.next_message()).text
    await u.send("1700")
    assert "Please type your height in cm" in (await u.next_message()).text
    for value in ("170", "80", "92"):
        await u.send(value)
        last = await u.next_message()
    assert last.buttons == ["Man", "Woman"]
    await u.press("Man")
    result = (await u.next_message()).text
    assert "BMI 27.7: in the overweight range" in result
    assert "at or above 90 cm, which counts as central obesity" in result and "WS/T 428-2013" in result
    profile = await app.services.users.profile(await _user_id(app, u))
    assert profile is not None and profile.height_cm == 170  # remembered for BMI tips


async def test_waist_below_the_limit_for_a_woman(tg: FakeTelegram, app: CareCircle) -> None:
    u = await quick_patient(tg, app)
    await u.send("/tools")
    await u.next_message()
    await u.press("📏 BMI and waist")
    await u.next_message()
    for value in ("158", "52", "84"):
        await u.send(value)
        await u.next_message()
    await u.press("Woman")
    result = (await u.next_message()).text
    assert "BMI 20.8: in the healthy range" in result and "below the 85 cm limit" in result


async def test_exercise_planner_refuses_after_186_112(tg: FakeTelegram, app: CareCircle) -> None:
    u = await quick_patient(tg, app)
    await _send_reading(u, "186/112", asks_symptoms=True)
    await u.send("/tools")
    await u.next_message()
    await u.press("🏃 Exercise plan")
    refusal = (await u.next_message()).text
    assert "Please do not start exercise now" in refusal and "186/112" in refusal
    assert "contact your doctor" in refusal and "call 120" in refusal
    await u.send("30")  # not in the planner: nothing was asked
    assert "did not find a reading" in (await u.next_message()).text


async def test_exercise_planner_makes_a_plan_by_age(tg: FakeTelegram, app: CareCircle) -> None:
    u = await quick_patient(tg, app, year=1956)
    await _send_reading(u, "132/82")
    await u.send("/tools")
    await u.next_message()
    await u.press("🏃 Exercise plan")
    kinds = await u.next_message()
    assert "🚶 Brisk walking" in kinds.buttons
    await u.press("🚶 Brisk walking")
    assert "How many minutes" in (await u.next_message()).text
    await u.send("thirty")
    assert "Please type the minutes" in (await u.next_message()).text
    await u.send("30")
    plan = (await u.next_message()).text
    age = app.services.clock.now().year - 1956
    low, high = round((220 - age) * 0.6), round((220 - age) * 0.7)
    assert "30 minutes, 5 times a week = 150 minutes" in plan
    assert f"{low} to {high} per minute" in plan and "6000 steps" in plan and "balance" in plan


# --- quizzes ---------------------------------------------------------------------------------------------
async def test_quiz_taken_end_to_end_with_score_stored(tg: FakeTelegram, app: CareCircle) -> None:
    u = await quick_patient(tg, app)
    quiz = default_catalog().quiz("quiz-salt")
    await u.send("/quiz")
    menu = await u.next_message()
    assert "Salt quiz" in menu.buttons and len(menu.buttons) == len(default_catalog().quizzes)
    await u.press("Salt quiz")
    for i, question in enumerate(quiz.questions):
        shown = await u.next_message()
        assert question.prompt_for("en") in shown.text and f"question {i + 1} of {len(quiz.questions)}" in shown.text
        options = question.options_for("en")
        pick = question.answer if i else (question.answer + 1) % len(options)  # first one wrong
        await u.press(options[pick], message_id=shown.message_id)
        explained = (await u.next_edit()).text
        assert question.explanation_for("en") in explained and "Source: " in explained
        assert ("Right!" in explained) == (i > 0)
    total = len(quiz.questions)
    final = await u.next_message()
    assert f"You answered {total - 1} of {total} right" in final.text
    assert f"Your knowledge score: {round(100 * (total - 1) / total)} %" in final.text
    async with app.services.sessions() as session:
        rows = list(await session.scalars(select(QuizAttempt)))
    assert [(r.quiz_id, r.correct, r.total) for r in rows] == [("quiz-salt", total - 1, total)]
    await u.press("Another quiz")
    again = await u.next_message()
    assert f"Salt quiz ✓ {total - 1}/{total}" in again.buttons


async def test_forged_quiz_callbacks_change_nothing(tg: FakeTelegram, app: CareCircle) -> None:
    u = await quick_patient(tg, app)
    mallory = await quick_patient(tg, app, name="Mallory")
    quiz = default_catalog().quiz("quiz-salt")
    await u.send("/quiz")
    menu = await u.next_message()
    assert await u.answer_to(await u.press_data(menu.message_id, "qz:start:quiz-nope")) == "Not found."
    await u.press_data(menu.message_id, "qz:start:quiz-salt")  # any message may start a quiz
    first = await u.next_message()
    question_label, data = first.inline[0][0]
    assert question_label == quiz.questions[0].options_for("en")[0]
    token = data.split(":")[2]
    forged = [f"qz:a:{token}:1:0", f"qz:a:{token}:0:9", f"qz:a:deadbeef:0:{quiz.questions[0].answer}",
              f"qz:a:{token}:0", "qz:a:::"]
    presses = [await u.press_data(first.message_id, item) for item in forged]
    await mallory.send("/tips")
    own = await mallory.next_message()
    stolen = await mallory.press_data(own.message_id, data)  # another user's button data
    assert [await u.answer_to(q) for q in presses] == ["This button has expired."] * len(forged)
    assert await mallory.answer_to(stolen) == "This button has expired."
    # the real attempt is untouched: question 1 still waits, and a press answers it once only
    await u.press(question_label, message_id=first.message_id)
    assert "Your answer" in (await u.next_edit()).text
    assert "question 2 of" in (await u.next_message()).text
    again = await u.press_data(first.message_id, data)  # the same button again
    assert await u.answer_to(again) == "This button has expired."
    async with app.services.sessions() as session:
        assert list(await session.scalars(select(QuizAttempt))) == []
