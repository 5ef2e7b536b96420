"""Ask my doctor (/ask), the team's inbox (/questions, replies, the Answer button) and
Trouble with my care (/trouble).

Thin: the question is judged by `bot.clinical.questions`, stored and routed by
`bot.services.questions`. An urgent-sounding question gets the safety answer at once; an urgent
reading in it takes the usual reading path (saved, graded, alert), exactly as if it was typed.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from babel.dates import format_datetime
from telegram import Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.services.questions import (
    TROUBLE_KINDS,
    TROUBLE_LABELS,
    TROUBLE_TEAM_LABELS,
    AnswerResult,
    AskResult,
    excerpt,
    waited,
)
from content.i18n import Translator, translator
from dialogs import circles, readings
from dialogs.basics import unknown_command
from dialogs.common import MENU, Who, _, answer, inline, reply, who

ASK_WHO, ASK_TEXT = range(2)
ANSWER_TEXT = 0
DANGER_TEXT = _("That sounds serious. If you have chest pain, trouble breathing, a severe headache, "
                "blurred vision or confusion, call 120 or go to hospital now.")
LIST_LIMIT = 10
# /ask waits this long for the question; a text much later (a reading the next morning) is handled as usual.
ASK_WINDOW = timedelta(minutes=30)


def _menu_labels() -> re.Pattern[str]:
    """Every main-menu button in every language: pressing one while a question is awaited is not a question."""
    texts = {translator(lang)(label) for lang in ("en", "zh_CN") for row in MENU for _cmd, label in row}
    return re.compile("^(" + "|".join(re.escape(x) for x in sorted(texts)) + ")$")


TEXT = filters.TEXT & ~filters.COMMAND & ~filters.Regex(_menu_labels())


# ---- asking: /ask -> (whose question) -> the text ----------------------------------------------
async def _askable(w: Who) -> list[tuple[int, str]]:
    """Whose questions this person may send: their own (when onboarded) and the patients they help."""
    people: list[tuple[int, str]] = []
    if w.onboarded and await w.profile() is not None:
        people.append((w.user.id, w.t("Mine")))
    for patient, _link in await w.services.users.patients_of(w.user.id):
        people.append((patient.id, patient.display_name or patient.first_name))
    return people


async def ask_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    people = await _askable(w)
    if not people:
        await reply(update, w.t("Please press /start first."))
        return ConversationHandler.END
    if len(people) == 1:
        return await _prompt(update, context, w, people[0][0])
    await reply(update, w.t("Whose question is it?"),
                reply_markup=inline([[(label, f"qa:for:{pid}")] for pid, label in people]))
    return ASK_WHO


async def ask_who(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await answer(update)
    w = await who(update, context)
    raw = (update.callback_query.data or "").rsplit(":", 1)[-1]  # type: ignore[union-attr]
    allowed = {pid for pid, _label in await _askable(w)}
    if not raw.isdigit() or int(raw) not in allowed:
        await reply(update, w.t("This button has expired."))
        return ConversationHandler.END
    return await _prompt(update, context, w, int(raw))


async def _prompt(update: Update, context: ContextTypes.DEFAULT_TYPE, w: Who, patient_id: int) -> int:
    context.user_data["ask"] = {"patient_id": patient_id,  # type: ignore[index]
                                "at": w.services.clock.now().isoformat()}
    await reply(update, w.t("Write your question for your care team in one message. A doctor or nurse of your team "
                            "will answer here.\nIf it is an emergency, do not wait: call 120.\n/cancel to stop."))
    return ASK_TEXT


async def ask_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    pending = context.user_data.pop("ask", None)  # type: ignore[union-attr]
    message = update.effective_message
    if pending is None or message is None or not message.text:
        return ConversationHandler.END
    asked_at = datetime.fromisoformat(pending.get("at") or "1970-01-01T00:00:00+00:00")
    if w.services.clock.now() - asked_at > ASK_WINDOW:  # a forgotten /ask: this text is not the question
        await circles.on_text(update, context)
        return ConversationHandler.END
    patient_id = int(pending["patient_id"])
    if patient_id not in {pid for pid, _label in await _askable(w)}:  # e.g. the patient removed this caregiver
        await reply(update, w.t("Not found."))
        return ConversationHandler.END
    result = await w.services.questions.ask(patient_id, w.user.id, message.text, source_update_id=update.update_id)
    w.services.outbox.wake()
    alerted = await _urgent(update, context, w, message.text, patient_id, result) if result.safety.urgent else False
    if result.question_id is None:
        await reply(update, w.t("You are not linked to a care team in CareCircle yet, so I cannot pass on "
                                "questions. Please contact your doctor yourself. In an emergency call 120."))
    elif alerted:
        await reply(update, w.t("Your question was also sent to your care team, and your doctor has been alerted."))
    elif result.safety.urgent:
        await reply(update, w.t("Your question was also sent to your care team, marked as urgent."))
    else:
        await reply(update, _expected(w, result))
    return ConversationHandler.END


async def _urgent(update: Update, context: ContextTypes.DEFAULT_TYPE, w: Who, text: str, patient_id: int,
                  result: AskResult) -> bool:
    """Safety first: the reading path for an urgent reading (when this person may log it), the
    danger-sign answer otherwise; the service already raised the symptom alert for danger signs.
    True when the doctor was alerted (a danger sign, or the urgent reading was recorded)."""
    may_log = patient_id == w.user.id or any(
        p.id == patient_id and link.can_log for p, link in await w.services.users.patients_of(w.user.id))
    recorded = bool(result.safety.urgent_readings and may_log and not result.duplicate)
    if recorded:  # its answer leads with the reading's own safety advice
        await readings.handle_text(update, context, w, text, update.update_id, patient_id)
    if result.safety.signs or not recorded:
        await reply(update, "⚠️ " + w.t(DANGER_TEXT))
    return bool(result.safety.signs) or recorded


def _expected(w: Who, result: AskResult) -> str:
    """When to expect the answer: now (the team is working) or when the next working hours start."""
    t = w.t
    lines = ["✅ " + t("Sent to your care team.")]
    if result.next_open is None:
        lines.append(t("They are working now. A doctor usually answers within working hours."))
    else:
        when = format_datetime(result.next_open.astimezone(w.tz), "EEEE HH:mm", locale=t.locale)
        lines.append(t("A doctor usually answers within working hours (Monday to Friday, {start}-{end}). "
                       "Next working hours start {when}.", start=result.hours_start, end=result.hours_end,
                       when=when))
    lines.append(t("If you feel worse before then, call 120 or go to hospital."))
    return "\n".join(lines)


async def ask_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    context.user_data.pop("ask", None)  # type: ignore[union-attr]
    context.user_data.pop("answer", None)  # type: ignore[union-attr]
    await reply(update, w.t("Stopped. Nothing was sent."))
    return ConversationHandler.END


# ---- answering: reply to the question message, or its Answer button --------------------------
async def _doctor(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Who | None:
    w = await who(update, context)
    return w if w.user.has_role("doctor") else None


def _answered_text(w: Who, result: AnswerResult) -> str:
    if result.ok:
        return w.t("Sent to {name}.", name=result.patient_name)
    if result.reason == "already":
        return w.t("Already answered by {name}.", name=result.answered_by)
    return w.t("Not found.")


async def on_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text that replies to one of the bot's messages: an answer when it replies to a question
    message of this doctor's inbox; otherwise the text goes on as any other text would."""
    message = update.effective_message
    w = await _doctor(update, context)
    target = message.reply_to_message if message is not None else None
    result = None
    if w is not None and message is not None and target is not None:
        result = await w.services.questions.answer_reply(w.user.id, message.chat_id, target.message_id,
                                                         message.text or "")
    if result is None or w is None:
        await circles.on_text(update, context)  # the next text handler in dialogs.register
        return
    w.services.outbox.wake()
    await reply(update, _answered_text(w, result))


async def answer_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    raw = (update.callback_query.data or "").rsplit(":", 1)[-1]  # type: ignore[union-attr]
    question = (await w.services.questions.question_for(w.user.id, int(raw))
                if raw.isdigit() and len(raw) <= 18 and w.user.has_role("doctor") else None)
    if question is None:
        await answer(update, w.t("Not found."))
        return ConversationHandler.END
    await answer(update)
    if question.answered_at is not None:
        await reply(update, w.t("This question was already answered."))
        return ConversationHandler.END
    context.user_data["answer"] = {"question_id": question.id}  # type: ignore[index]
    await reply(update, w.t("Type your answer to question #{id} in one message. It goes to the patient with your "
                            "name.\n/cancel to stop.", id=question.id))
    return ANSWER_TEXT


async def answer_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    pending = context.user_data.pop("answer", None)  # type: ignore[union-attr]
    message = update.effective_message
    if pending is None or message is None:
        return ConversationHandler.END
    result = await w.services.questions.answer(int(pending["question_id"]), w.user.id, message.text or "")
    w.services.outbox.wake()
    await reply(update, _answered_text(w, result))
    return ConversationHandler.END


async def questions(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/questions: the team's unanswered questions, urgent first, then the oldest, with their age."""
    w = await _doctor(update, context)
    if w is None:
        await unknown_command(update, context)
        return
    t = w.t
    items = await w.services.questions.open_for(w.user.id, limit=50)
    if not items:
        await reply(update, t("No unanswered questions."))
        return
    now = w.services.clock.now()
    lines = [t("Unanswered questions ({n}):", n=len(items))]
    for q in items[:LIST_LIMIT]:
        lines.append(("⚠️ " if q.urgent else "• ") + t("#{id} {name}, waiting {age}:", id=q.id, name=q.patient_name,
                                                     age=waited(t, q.created_at, now))
                     + f" «{excerpt(q.text, 120)}»")
    if len(items) > LIST_LIMIT:
        lines.append(t("…and {n} more on the web dashboard (/dashboard).", n=len(items) - LIST_LIMIT))
    buttons = [[(t("Answer #{id}", id=q.id), f"qa:ans:{q.id}")] for q in items[:LIST_LIMIT]]
    await reply(update, "\n".join(lines), reply_markup=inline(buttons))


# ---- trouble with my care ------------------------------------------------------------------------
async def _trouble_view(w: Who) -> tuple[str, object]:
    raised = {flag.kind for flag in await w.services.questions.troubles(w.user.id)}
    text = w.t("Trouble with your care? Tell your care team: only your doctor's team sees this, never your "
               "circle or family. Press to turn on or off:")
    rows = [[(("✅ " if kind in raised else "⬜ ") + w.t(TROUBLE_LABELS[kind]), f"tr:{kind}")]
            for kind in TROUBLE_KINDS]
    return text, inline(rows)


async def trouble(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    if not w.onboarded:
        await reply(update, w.t("Please press /start first."))
        return
    text, markup = await _trouble_view(w)
    await reply(update, text, reply_markup=markup)


async def on_trouble_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    kind = (update.callback_query.data or "").split(":", 1)[-1]  # type: ignore[union-attr]
    if kind not in TROUBLE_KINDS or not w.onboarded:
        await answer(update, w.t("This button has expired."))
        return
    raised = any(flag.kind == kind for flag in await w.services.questions.troubles(w.user.id))
    await w.services.questions.set_trouble(w.user.id, kind, not raised, by=w.user.id)
    w.services.outbox.wake()
    await answer(update, w.t("Cleared.") if raised else w.t("Your care team will see this."))
    text, markup = await _trouble_view(w)
    message = update.callback_query.message  # type: ignore[union-attr]
    try:
        await message.edit_text(text, reply_markup=markup)  # type: ignore[union-attr]
    except Exception:
        await reply(update, text, reply_markup=markup)  # an old message cannot be edited: send it anew


def handlers() -> list[object]:
    return [
        ConversationHandler(
            entry_points=[CommandHandler("ask", ask_start)],
            states={
                ASK_WHO: [CallbackQueryHandler(ask_who, pattern=r"^qa:for:")],
                ASK_TEXT: [MessageHandler(TEXT, ask_text)],
            },
            fallbacks=[CommandHandler("cancel", ask_cancel)],
            name="ask",
            persistent=True,
            allow_reentry=True,
        ),
        ConversationHandler(
            entry_points=[CallbackQueryHandler(answer_start, pattern=r"^qa:ans:")],
            # A reply to another question's message answers that one (reply_handler), not this.
            states={ANSWER_TEXT: [MessageHandler(TEXT & ~filters.REPLY, answer_text)]},
            fallbacks=[CommandHandler("cancel", ask_cancel)],
            name="answer",
            persistent=True,
            allow_reentry=True,
        ),
        CommandHandler("questions", questions),
        CommandHandler("trouble", trouble),
        CallbackQueryHandler(on_trouble_button, pattern=r"^tr:"),
    ]


def reply_handler() -> MessageHandler:  # type: ignore[type-arg]
    """Registered just before the circles' free text: open conversations (a follow-up's BP typed
    as a reply) come first, and a reply that is not an answer goes on to `circles.on_text`."""
    return MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND & filters.UpdateType.MESSAGE
                          & filters.ChatType.PRIVATE, on_reply)


# ---- what the team sees on /patients and /patient ---------------------------------------------------
def trouble_suffix(t: Translator, kinds: list[str]) -> str:
    """" 🆘 cannot travel to the clinic" after a patient's panel line (team only)."""
    return (" 🆘 " + ", ".join(t(TROUBLE_TEAM_LABELS[k]) for k in kinds if k in TROUBLE_TEAM_LABELS)) if kinds else ""


async def care_lines(w: Who, patient_id: int) -> list[str]:
    """/patient: raised hardship flags and unanswered questions (the caller checked the team scope)."""
    t = w.t
    lines = []
    flags = await w.services.questions.troubles(patient_id)
    if flags:
        lines.append("🆘 " + t("Trouble with care: {what}", what=", ".join(
            t(TROUBLE_TEAM_LABELS[f.kind]) + " (" + t("since {date}", date=f.raised_at.astimezone(w.tz).date()
                                                      .isoformat()) + ")" for f in flags)))
    waiting = [q for q in await w.services.questions.of_patient(patient_id) if q.answered_at is None]
    if waiting:
        lines.append("❓ " + t("Unanswered questions: {n}. /questions lists them.", n=len(waiting)))
    return lines
