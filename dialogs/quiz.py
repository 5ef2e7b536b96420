"""/quiz: pick a topic, answer question by question, see why after each answer, get a score.

The attempt lives in user_data under a random token; an answer button carries the token, the
question number and the option ("qz:a:<token>:<q>:<option>"). Only a press that matches the
current attempt AND the current question counts, so a forged, repeated or stale button changes
nothing. "qz:start:<quiz_id>" starts a quiz from any message (lessons attach it).
"""

from __future__ import annotations

import secrets
from typing import Any

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from content.catalog import Quiz, default_catalog, score_quiz
from dialogs.common import Who, answer, inline, reply, who

STATE_KEY = "quiz"


def _percent(share: float) -> int:
    return round(100 * share)


async def quiz_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    await answer(update)
    t = w.t
    latest = await w.services.quizzes.latest_by_quiz(w.user.id)
    buttons = []
    for quiz in sorted(default_catalog().quizzes.values(), key=lambda q: q.title_for(w.user.language)):
        label = quiz.title_for(w.user.language)
        if quiz.id in latest:
            label += f" ✓ {latest[quiz.id].correct}/{latest[quiz.id].total}"
        buttons.append((label, f"qz:start:{quiz.id}"))
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    lines = [t("Pick a topic for a short quiz. After each answer I explain why.")]
    score = await w.services.quizzes.knowledge_score(w.user.id)
    if score is not None:
        lines.append(t("Your knowledge score: {score} % (the goal is 80 %).", score=_percent(score)))
    await reply(update, "\n".join(lines), reply_markup=inline(rows))


def _question(w: Who, quiz: Quiz, state: dict[str, Any]) -> tuple[str, Any]:
    index = state["q"]
    question = quiz.questions[index]
    lang = w.user.language
    text = w.t("{title} — question {n} of {total}", title=quiz.title_for(lang), n=index + 1,
               total=len(quiz.questions)) + "\n\n" + question.prompt_for(lang)
    rows = [[(option, f"qz:a:{state['token']}:{index}:{i}")] for i, option in enumerate(question.options_for(lang))]
    return text, inline(rows)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    quiz_id = (update.callback_query.data or "").split(":", 2)[2]  # type: ignore[union-attr]
    quiz = default_catalog().quizzes.get(quiz_id)
    if quiz is None:
        await answer(update, w.t("Not found."))
        return
    await answer(update)
    state = {"token": secrets.token_hex(4), "quiz": quiz.id, "q": 0, "answers": []}
    context.user_data[STATE_KEY] = state  # type: ignore[index]
    text, markup = _question(w, quiz, state)
    await reply(update, text, reply_markup=markup)


async def on_answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    w = await who(update, context)
    t = w.t
    parts = (query.data or "").split(":")
    state = context.user_data.get(STATE_KEY)  # type: ignore[union-attr]
    quiz = default_catalog().quizzes.get(state["quiz"]) if state else None
    valid = (quiz is not None and len(parts) == 5 and parts[2] == state["token"]
             and parts[3] == str(state["q"]) and parts[4].isdigit()
             and int(parts[4]) < len(quiz.questions[state["q"]].options))
    if not valid:
        await answer(update, t("This button has expired."))
        return
    assert quiz is not None and state is not None
    await answer(update)
    lang = w.user.language
    question = quiz.questions[state["q"]]
    chosen = int(parts[4])
    state["answers"].append(chosen)
    state["q"] += 1
    options = question.options_for(lang)
    verdict = ("✅ " + t("Right!")) if chosen == question.answer else \
        ("❌ " + t("Not quite. The answer is: {answer}", answer=options[question.answer]))
    explained = "\n".join([
        question.prompt_for(lang), "", t("Your answer: {answer}", answer=options[chosen]), verdict,
        question.explanation_for(lang), t("Source: {source}", source="/".join(question.sources)),
    ])
    try:
        await query.edit_message_text(explained)
    except BadRequest:
        await reply(update, explained)
    if state["q"] < len(quiz.questions):
        text, markup = _question(w, quiz, state)
        await reply(update, text, reply_markup=markup)
        return
    context.user_data.pop(STATE_KEY, None)  # type: ignore[union-attr]
    result = score_quiz(quiz, state["answers"])
    await w.services.quizzes.record(w.user.id, quiz.id, result.correct, result.total)
    lines = [t("You answered {correct} of {total} right ({percent} %).", correct=result.correct,
               total=result.total, percent=round(result.percent))]
    lines.append(t("Well done!") if result.meets_target else
                 t("Have another look at the explanations and try again any time."))
    score = await w.services.quizzes.knowledge_score(w.user.id)
    if score is not None:
        lines.append(t("Your knowledge score: {score} % (the goal is 80 %).", score=_percent(score)))
    await reply(update, "\n".join(lines), reply_markup=inline([[(t("Another quiz"), "qz:list")]]))


def handlers() -> list[object]:
    return [
        CommandHandler("quiz", quiz_command),
        CallbackQueryHandler(quiz_command, pattern=r"^qz:list$"),
        CallbackQueryHandler(start, pattern=r"^qz:start:"),
        CallbackQueryHandler(on_answer, pattern=r"^qz:a:"),
    ]
