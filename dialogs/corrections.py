"""/edit: correct the last reading. Beside /undo (delete it), the patient types the right value;
the same row is re-assessed and the usual feedback (safety first if urgent) is shown.

Only the sender's own readings; the correction must be the same kind (a BP for a BP). An
unusual value is confirmed with a button, an impossible one is explained, as for new readings.
"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot import clinical
from bot.services.corrections import CorrectionService
from bot.services.readings import NewReading
from content.render import reading_text
from dialogs.common import Who, answer, inline, reply, who
from dialogs.readings import PROBLEM_TEXT, _reading_dict, ask_symptoms, feedback_text
from dialogs.symptoms import ask_glucose_symptoms

EDIT_VALUE, EDIT_CONFIRM = range(2)
FULLWIDTH = str.maketrans("０１２３４５６７８９．／", "0123456789./")


def _service(w: Who) -> CorrectionService:
    return CorrectionService(w.services.sessions, w.services.clock, w.services.alerts)


async def edit_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    t = w.t
    if not w.onboarded:
        await reply(update, t("Please press /start first."))
        return ConversationHandler.END
    last = await _service(w).last(w.user.id)
    if last is None or last.kind not in ("bp", "glucose", "weight"):
        await reply(update, t("There is no reading to correct."))
        return ConversationHandler.END
    unit = w.loaded_profile.glucose_unit if w.loaded_profile else "mmol"
    context.user_data["edit"] = {"reading_id": last.id, "kind": last.kind}  # type: ignore[index]
    example = {"bp": "135/85", "glucose": "6.8", "weight": "68.5"}[last.kind]
    await reply(update, t("Your last reading: {reading} ({time}). Type the correct value, like {example}, "
                          "or /cancel.", reading=reading_text(last, t, unit),
                          time=f"{last.measured_at.astimezone(w.tz):%m-%d %H:%M}", example=example))
    return EDIT_VALUE


def _parse(text: str, kind: str) -> Any:
    """The typed value read as the kind being corrected ("6.8" alone is a glucose here)."""
    text = text.translate(FULLWIDTH)
    parsed = clinical.parse_reading(text)
    if (parsed is None or parsed.kind != kind) and kind in ("glucose", "weight"):
        parsed = clinical.parse_reading(("血糖 " if kind == "glucose" else "体重 ") + text
                                        + ("" if kind == "glucose" else " kg"))
    return parsed if parsed is not None and parsed.kind == kind else None


async def edit_value(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    t = w.t
    state = context.user_data.get("edit")  # type: ignore[union-attr]
    if state is None:
        return ConversationHandler.END
    parsed = _parse((update.effective_message.text or "") if update.effective_message else "", state["kind"])
    if parsed is None:
        await reply(update, t("Please type the corrected value, or /cancel."))
        return EDIT_VALUE
    reading = NewReading.from_parsed(parsed)
    unit = w.loaded_profile.glucose_unit if w.loaded_profile else "mmol"
    if parsed.problem in clinical.REJECT_PROBLEMS:
        template = PROBLEM_TEXT.get(parsed.problem, PROBLEM_TEXT["out_of_range"])
        await reply(update, t(template, reading=reading_text(reading, t, unit)))
        return EDIT_VALUE
    state["reading"] = _reading_dict(reading)
    if parsed.problem is not None:
        await reply(update, t("{reading} is unusual. Is it right?", reading=reading_text(reading, t, unit)),
                    reply_markup=inline([[(t("Yes, save it"), "ed:ok"), (t("No, don't save"), "ed:no")]]))
        return EDIT_CONFIRM
    return await _save(update, context, w)


async def edit_confirm(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await answer(update)
    w = await who(update, context)
    if (update.callback_query.data or "") != "ed:ok":  # type: ignore[union-attr]
        context.user_data.pop("edit", None)  # type: ignore[union-attr]
        await reply(update, w.t("OK, your reading was not changed."))
        return ConversationHandler.END
    return await _save(update, context, w)


async def _save(update: Update, context: ContextTypes.DEFAULT_TYPE, w: Who) -> int:
    t = w.t
    state = context.user_data.pop("edit", None)  # type: ignore[union-attr]
    if state is None or "reading" not in state:
        return ConversationHandler.END
    reading = NewReading(**state["reading"])
    result = await _service(w).correct(w.user.id, int(state["reading_id"]), reading)
    if result is None:
        await reply(update, t("That reading is no longer there. Send the reading again as a new one."))
        return ConversationHandler.END
    w.services.outbox.wake()  # a new alert, or the notice that the old one is withdrawn
    stored = await _service(w).last(w.user.id)
    shown = NewReading.from_parsed(stored) if stored is not None and stored.id == result.reading_id else reading
    unit = w.loaded_profile.glucose_unit if w.loaded_profile else "mmol"
    await reply(update, t("Corrected.") + "\n" + feedback_text(w, shown, result, unit, None))
    a = result.assessment
    if shown.kind == "bp" and (a.urgent or a.category in ("grade2", "low")):
        await ask_symptoms(update, w, result.reading_id)
    elif shown.kind == "glucose":
        await ask_glucose_symptoms(update, w, result.reading_id, shown)
    return ConversationHandler.END


async def edit_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    context.user_data.pop("edit", None)  # type: ignore[union-attr]
    await reply(update, w.t("OK, your reading was not changed."))
    return ConversationHandler.END


def handlers() -> list[object]:
    return [
        ConversationHandler(
            entry_points=[CommandHandler("edit", edit_start)],
            states={
                EDIT_VALUE: [MessageHandler(filters.TEXT & ~filters.COMMAND, edit_value)],
                EDIT_CONFIRM: [CallbackQueryHandler(edit_confirm, pattern=r"^ed:")],
            },
            fallbacks=[CommandHandler("cancel", edit_cancel)],
            name="edit",
            persistent=True,
            allow_reentry=True,
        )
    ]
