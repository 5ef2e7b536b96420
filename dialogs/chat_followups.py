"""Follow-ups in the chat: the patient's button questionnaire (cf:...), the doctor's draft buttons
(cfd:...), /tocall for the doctor and /away for patient or doctor.

The questionnaire keeps no conversation state here: every answer is stored on the invitation row
(bot.services.chat_followups), so a button pressed after a restart or days later still works, and a
button of an earlier question is answered "expired" instead of changing an answer twice.
"""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.services.chat_followups import Question, Step, draft_buttons, draft_text, option_label
from bot.services.followups import signs_from_text
from content.i18n import Translator
from dialogs.common import Who, answer, inline, reply, who
from dialogs.doctor import _doctor

SIGNS = 0


def question_markup(t: Translator, cycle_id: int, q: Question, selected: tuple[str, ...] = ()) -> InlineKeyboardMarkup:
    if q.multi:
        toggles = [((f"✅ {option_label(t, v)}" if v in selected else option_label(t, v)),
                    f"cf:t:{cycle_id}:{q.key}:{v}") for v in q.options]
        rows = [[(t("None of these"), f"cf:a:{cycle_id}:{q.key}:none")]]
        rows += [toggles[i:i + 2] for i in range(0, len(toggles), 2)]
        rows.append([(t("Done ✔"), f"cf:a:{cycle_id}:{q.key}:done")])
        return inline(rows)
    buttons = [(option_label(t, v), f"cf:a:{cycle_id}:{q.key}:{v}") for v in q.options]
    return inline([buttons[i:i + 2] for i in range(0, len(buttons), 2)])


async def _ask(update: Update, w: Who, cycle_id: int, step: Step) -> None:
    assert step.question is not None
    await reply(update, w.t(step.question.prompt), reply_markup=question_markup(w.t, cycle_id, step.question,
                                                                                step.selected))


async def on_patient_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    t = w.t
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    service = w.services.chat_followups
    if len(parts) < 3 or not parts[2].isdigit():
        await answer(update, t("This button has expired."))
        return
    cycle_id = int(parts[2])
    if parts[1] == "go" and len(parts) == 3:
        step = await service.current(w.user.id, cycle_id)
        if not step.ok or step.question is None:
            await answer(update, t("This follow-up is already done or closed. Thank you!"))
            return
        await answer(update)
        await _ask(update, w, cycle_id, step)
        return
    if len(parts) != 5 or parts[1] not in ("t", "a"):
        await answer(update, t("This button has expired."))
        return
    key, value = parts[3], parts[4]
    message = update.callback_query.message  # type: ignore[union-attr]
    if parts[1] == "t":
        step = await service.toggle(w.user.id, cycle_id, key, value)
        if not step.ok or step.question is None:
            await answer(update, t("This button has expired."))
            return
        await answer(update)
        if message is not None:
            await message.edit_reply_markup(question_markup(t, cycle_id, step.question, step.selected))
        return
    before = await service.current(w.user.id, cycle_id)
    step = await service.answer(w.user.id, cycle_id, key, value)
    if not step.ok:
        await answer(update, t("This button has expired."))
        return
    await answer(update)
    if message is not None and getattr(message, "text", None):
        if value in ("none", "done"):
            chosen = ", ".join(option_label(t, v) for v in before.selected) if value == "done" else ""
            chosen = chosen or t("None")
        else:
            chosen = option_label(t, value)
        try:
            await message.edit_text(f"{message.text}\n✓ {chosen}")  # buttons removed: answered
        except Exception:
            pass  # a failed edit (too old) must not lose the answer
    if step.done:
        await reply(update, t("Thank you! Your answers and your latest readings went to {doctor} as a follow-up "
                              "record. You will hear back in the chat.", doctor=step.doctor_name or t("your doctor")))
        w.services.outbox.wake()
    else:
        await _ask(update, w, cycle_id, step)


# --- the doctor's side ---------------------------------------------------------------------------
def _markup(rows: list[list[list[str]]]) -> InlineKeyboardMarkup:
    return inline([[(label, data) for label, data in row] for row in rows])


async def on_doctor_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    t = w.t
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    if len(parts) != 4 or not parts[2].isdigit():
        await answer(update, t("This button has expired."))
        return
    fid, what, value = int(parts[2]), parts[1], parts[3]
    service = w.services.chat_followups
    if what == "ok":
        if value not in ("controlled", "unsatisfactory", "adverse_reaction", "complication"):
            await answer(update, t("This button has expired."))
            return
        result = await service.confirm(w.user, fid, value)
        if result is None:
            await answer(update, t("Already handled.") if await service.draft(w.user.id, fid) else t("Not found."))
            return
        w.services.outbox.wake()
        await answer(update, t("Follow-up saved. Next follow-up due: {date}.", date=result.next_due.isoformat()))
        if result.refer:
            await reply(update, t("Not controlled at two follow-ups in a row: the guideline says to refer this "
                                  "patient."))
    elif what == "way":
        if await w.services.followups.set_way(w.user.id, fid, value) is None:
            await answer(update, t("Already handled."))
            return
        await answer(update)
    else:
        await answer(update, t("This button has expired."))
        return
    draft = await service.draft(w.user.id, fid)
    message = update.callback_query.message  # type: ignore[union-attr]
    if draft is not None and message is not None:
        markup = _markup(draft_buttons(t, draft)) if draft.followup.status == "draft" else None
        try:
            await message.edit_text(draft_text(t, draft, w.user.timezone), reply_markup=markup)
        except Exception:
            pass  # a failed edit does not undo the confirmation


async def signs_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await _doctor(update, context)
    if w is None:
        return ConversationHandler.END
    await answer(update)
    raw = (update.callback_query.data or "").rsplit(":", 1)[-1]  # type: ignore[union-attr]
    if not raw.isdigit() or await w.services.chat_followups.draft(w.user.id, int(raw)) is None:
        await reply(update, w.t("Not found."))
        return ConversationHandler.END
    context.user_data["cf_signs"] = int(raw)  # type: ignore[index]
    await reply(update, w.t("Type the signs you measured, like: 138/86 pulse 72 fasting glucose 6.5 weight 65 kg "
                            "(any of them). /cancel to stop."))
    return SIGNS


async def signs_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    fid = context.user_data.get("cf_signs")  # type: ignore[union-attr]
    signs = signs_from_text(update.effective_message.text or "")  # type: ignore[union-attr]
    if fid is None:
        return ConversationHandler.END
    if signs is None:
        await reply(update, w.t("I could not read that. Please type it like: 138/86 pulse 72 weight 65 kg."))
        return SIGNS
    context.user_data.pop("cf_signs", None)  # type: ignore[union-attr]
    if await w.services.followups.add_signs(w.user.id, fid, signs) is None:
        await reply(update, w.t("Already handled."))
        return ConversationHandler.END
    draft = await w.services.chat_followups.draft(w.user.id, fid)
    assert draft is not None
    await reply(update, draft_text(w.t, draft, w.user.timezone), reply_markup=_markup(draft_buttons(w.t, draft)))
    return ConversationHandler.END


async def signs_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    context.user_data.pop("cf_signs", None)  # type: ignore[union-attr]
    await reply(update, w.t("Stopped. Nothing was changed."))
    return ConversationHandler.END


async def to_call(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    t = w.t
    rows = await w.services.chat_followups.to_call(w.user.id)
    if not rows:
        await reply(update, t("Nobody to call: every patient answered their follow-up invitation."))
        return
    lines = [t("No answer to {n} follow-up invitations — please phone or visit:", n=2)]
    for r in rows:
        line = f"📞 #{r.patient_id} {r.name}"
        if r.phone:
            line += f" {r.phone}"
        line += " — " + t("due {date}", date=r.due_date.isoformat())
        if r.away_since:
            line += ", " + t("lives away from home")
        reached = r.last_contact_at.astimezone(w.tz).strftime("%Y-%m-%d") if r.last_contact_at else t("never")
        line += ", " + t("last reached: {date}", date=reached)
        lines.append(line)
    lines.append(t("Record the call or visit with /followup <number>: it takes the patient off this list."))
    await reply(update, "\n".join(lines))


async def drafts(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/drafts: chat follow-ups waiting for a doctor of the team, each with its confirm buttons."""
    w = await _doctor(update, context)
    if w is None:
        return
    pending = await w.services.chat_followups.pending_drafts(w.user.id)
    if not pending:
        await reply(update, w.t("No follow-up answers are waiting for confirmation."))
        return
    for draft in pending:
        await reply(update, draft_text(w.t, draft, w.user.timezone), reply_markup=_markup(draft_buttons(w.t, draft)))


async def away(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/away (patient): say whether you live away from home now. /away <number> on|off (doctor)."""
    w = await who(update, context)
    t = w.t
    args = context.args or []
    if args and w.user.has_role("doctor"):
        if len(args) != 2 or not args[0].isdigit() or args[1] not in ("on", "off"):
            await reply(update, t("Usage: /away <patient number> on|off"))
            return
        found = await w.services.panel.team_patient(w.user.id, int(args[0]))
        if found is None:
            await reply(update, t("Not found."))
            return
        await w.services.chat_followups.set_away(found[0].id, args[1] == "on")
        await reply(update, t("Saved: {name} lives away from home; follow-ups in the chat count as online.",
                              name=found[0].display_name or found[0].first_name) if args[1] == "on"
                    else t("Saved: {name} lives at home.", name=found[0].display_name or found[0].first_name))
        return
    profile = await w.profile()
    if profile is None:
        await reply(update, t("This is for patients. Send /start to set up your profile first."))
        return
    state = t("You live away from home now.") if profile.away_since else t("You live at home now.")
    await reply(update, state + "\n" + t("Working or living far from home (in a city)? Tell us, and your "
                                         "follow-ups happen here in the chat."),
                reply_markup=inline([[(t("🧳 I live away from home"), "aw:on")], [(t("🏠 I am at home"), "aw:off")]]))


async def on_away_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    on = (update.callback_query.data or "") == "aw:on"  # type: ignore[union-attr]
    if not await w.services.chat_followups.set_away(w.user.id, on):
        await answer(update, w.t("This button has expired."))
        return
    await answer(update)
    await reply(update, w.t("Saved. Your doctor sees that you live away from home; your follow-ups happen here "
                            "in the chat.") if on else w.t("Saved. Welcome home!"))


def handlers() -> list[object]:
    return [
        ConversationHandler(
            entry_points=[CallbackQueryHandler(signs_start, pattern=r"^cfd:signs:")],
            states={SIGNS: [MessageHandler(filters.TEXT & ~filters.COMMAND, signs_text)]},
            fallbacks=[CommandHandler("cancel", signs_cancel)],
            name="chat_followup_signs",
            persistent=True,
            allow_reentry=True,
        ),
        CallbackQueryHandler(on_patient_button, pattern=r"^cf:"),
        CallbackQueryHandler(on_doctor_button, pattern=r"^cfd:"),
        CallbackQueryHandler(on_away_button, pattern=r"^aw:(on|off)$"),
        CommandHandler("tocall", to_call),
        CommandHandler("drafts", drafts),
        CommandHandler("away", away),
    ]
