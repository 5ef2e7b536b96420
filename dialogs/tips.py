"""/tips and the "💡 Tips" button: the next tip that fits the person now, with feedback buttons.

"Another" edits the tip message in place instead of sending a new one: reading several tips in a
row then costs no extra messages against Telegram's per-chat flood limit, and the chat stays short.
Feedback buttons carry the view id; the service only accepts a view that belongs to the presser.
"""

from __future__ import annotations

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.services.tips import ShownTip
from dialogs.common import Who, answer, inline, menu_pattern, reply, who


def tip_text(w: Who, shown: ShownTip) -> str:
    lines = []
    if shown.restarted:
        lines.append(w.t("You have read every tip that fits you right now, so here they come again."))
    lines.append("💡 " + shown.tip.text_for(w.user.language))
    lines.append("")
    lines.append(w.t("Source: {source}", source=shown.tip.source))
    return "\n".join(lines)


def tip_buttons(w: Who, view_id: int, with_feedback: bool = True):  # type: ignore[no-untyped-def]
    rows = [[(w.t("Another"), "tp:next")]]
    if with_feedback:
        rows.append([(w.t("👍 Helpful"), f"tp:fb:{view_id}:1"), (w.t("👎 Not helpful"), f"tp:fb:{view_id}:0")])
    return inline(rows)


async def tips_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    shown = await w.services.tips.next_for(w.user.id)
    if shown is None:
        await reply(update, w.t("I have no tip for you right now. Please try again later."))
        return
    await reply(update, tip_text(w, shown), reply_markup=tip_buttons(w, shown.view_id))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    w = await who(update, context)
    parts = (query.data or "").split(":")
    if parts == ["tp", "next"]:
        await answer(update)
        shown = await w.services.tips.next_for(w.user.id)
        if shown is None:
            await reply(update, w.t("I have no tip for you right now. Please try again later."))
            return
        text, markup = tip_text(w, shown), tip_buttons(w, shown.view_id)
        try:
            await query.edit_message_text(text, reply_markup=markup)
        except BadRequest:  # the message is gone or too old to edit: send the tip instead
            await reply(update, text, reply_markup=markup)
        return
    if len(parts) == 4 and parts[1] == "fb" and parts[2].isdigit() and parts[3] in ("0", "1"):
        view_id = int(parts[2])
        if await w.services.tips.feedback(w.user.id, view_id, parts[3] == "1"):
            await answer(update, w.t("Thank you for telling me."))
            try:
                await query.edit_message_reply_markup(tip_buttons(w, view_id, with_feedback=False))
            except BadRequest:
                pass  # buttons already updated by an earlier press
            return
    await answer(update, w.t("This button has expired."))


def handlers() -> list[object]:
    return [
        CommandHandler("tips", tips_command),
        MessageHandler(filters.Regex(menu_pattern("tips")), tips_command),
        CallbackQueryHandler(on_button, pattern=r"^tp:"),
    ]
