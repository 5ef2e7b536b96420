"""Help, unknown commands, messages without text, /cancel, /history, /export and /delete."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from telegram import InputFile, ReplyKeyboardRemove, Update
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.services.charts import render_history
from content.render import details_text, glucose_value, reading_text
from dialogs.common import answer, inline, main_menu, menu_pattern, reply, who


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    t = w.t
    lines = [
        t("Here is what I can do:"),
        t("• Send a reading any time: 135/85, 血压 150/95 心率 72, 空腹血糖 6.8, glucose 7.2 after lunch"),
        "/bp — " + t("Log blood pressure step by step"),
        "/glucose — " + t("Log blood glucose step by step"),
        "/meds — " + t("Medicines taken"),
        "/weight — " + t("Log weight"),
        "/history — " + t("My readings and chart"),
        "/tips — " + t("A tip for today"),
        "/tools — " + t("Salt, BMI and exercise tools"),
        "/quiz — " + t("Test what you know"),
        "/reminders — " + t("Reminders, quiet hours, daily tip"),
        "/family — " + t("Family contacts who help you"),
        "/ask — " + t("Ask your care team a question"),
        "/trouble — " + t("Trouble getting medicines, travelling to the clinic, or help"),
        "/circle — " + t("My peer-support circle"),
        "/undo — " + t("Delete my last reading"),
        "/edit — " + t("Correct my last reading"),
        "/settings — " + t("Language, time zone, units"),
        "/export — " + t("Download my data"),
        "/delete — " + t("Delete my account and data"),
        "/cancel — " + t("Stop what we are doing"),
        t("In an emergency call 120."),
    ]
    if w.user.has_role("doctor"):  # the care team's main tool (issue 10); the other doctor commands are in /patient
        lines.insert(-1, "/plan <number> — " + t("Set a patient's care plan"))
    else:
        lines.insert(2, "/plan — " + t("My care plan and plan card"))
    await reply(update, "\n".join(lines), reply_markup=main_menu(t) if w.onboarded else None)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    await reply(update, w.t("I don't know that command. Here is what I can do:"))
    await help_command(update, context)


async def non_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    await reply(update, w.t("I can only read text for now. Please type your reading, like 135/85."))


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    context.user_data.pop("pending", None)  # type: ignore[union-attr]
    await reply(update, w.t("Nothing to stop. Send a reading or press /help."),
                reply_markup=main_menu(w.t) if w.onboarded else ReplyKeyboardRemove())


async def history(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    t = w.t
    if not w.onboarded:
        await reply(update, t("Please press /start first."))
        return
    profile = await w.profile()
    unit = profile.glucose_unit if profile else "mmol"
    now = w.services.clock.now()
    rows = await w.services.readings.since(w.user.id, now - timedelta(days=30))
    if not rows:
        await reply(update, t("No readings in the last 30 days yet. Send one like 135/85."))
        return
    bp = [r for r in rows if r.kind == "bp"]
    glu = [r for r in rows if r.kind == "glucose"]
    lines = [t("Your last 30 days:")]
    for label, items in ((t("Blood pressure"), bp), (t("Glucose"), glu)):
        if not items:
            continue
        week = [r for r in items if r.measured_at >= now - timedelta(days=7)]
        in_target = sum(1 for r in items if r.in_target)
        if items[0].kind == "bp":
            avg30 = f"{sum(r.systolic or 0 for r in items) / len(items):.0f}/" \
                    f"{sum(r.diastolic or 0 for r in items) / len(items):.0f}"
            avg7 = (f"{sum(r.systolic or 0 for r in week) / len(week):.0f}/"
                    f"{sum(r.diastolic or 0 for r in week) / len(week):.0f}") if week else "—"
        else:
            avg30 = glucose_value(sum(r.mmol or 0 for r in items) / len(items), unit)
            avg7 = glucose_value(sum(r.mmol or 0 for r in week) / len(week), unit) if week else "—"
        lines.append(t("{label}: {n} readings; 7-day average {avg7}; 30-day average {avg30}; "
                       "in target: {pct}%", label=label, n=len(items), avg7=avg7, avg30=avg30,
                       pct=round(100 * in_target / len(items))))
    days = {r.measured_at.astimezone(w.tz).date() for r in rows}
    streak, day = 0, w.local_now().date()
    while day in days:
        streak += 1
        day -= timedelta(days=1)
    if streak:
        lines.append(t("You have measured {n} days in a row. Well done!", n=streak))
    lines.append(t("Last readings:"))
    for r in reversed(rows[-5:]):
        extra = ", ".join(x for x in (details_text(r, t), t("corrected") if r.edited_at else "") if x)
        lines.append(f"• {r.measured_at.astimezone(w.tz):%m-%d %H:%M} {reading_text(r, t, unit)}"
                     + (f" ({extra})" if extra else ""))
    await reply(update, "\n".join(lines))
    png = await render_history([(r.measured_at, r.systolic or 0, r.diastolic or 0) for r in bp],
                               [(r.measured_at, r.mmol or 0.0) for r in glu], w.user.timezone)
    await update.effective_chat.send_photo(  # type: ignore[union-attr]
        InputFile(png, filename="history.png"),
        caption=t("Your readings, last 30 days. Shaded: red = needs attention, green = target range."))


async def undo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    removed = await w.services.readings.delete_last(w.user.id)
    if removed is None:
        await reply(update, w.t("There is no reading to delete."))
        return
    w.services.outbox.wake()  # an alert the reading raised may be withdrawn: its doctor is told
    await reply(update, w.t("Deleted your last reading: {reading}. Send it again if it needs correcting.",
                            reading=reading_text(removed, w.t)))


async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    rows = await w.services.readings.recent(w.user.id, limit=100_000)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["measured_at_utc", "kind", "systolic", "diastolic", "pulse", "glucose_mmol_l", "context",
                     "weight_kg", "category", "urgent", "symptoms", "arm", "posture", "entered_by",
                     "edited_at_utc"])
    for r in reversed(rows):
        entered = "self" if r.entered_by in (None, r.patient_id) else "family"
        writer.writerow([r.measured_at.isoformat(), r.kind, r.systolic, r.diastolic, r.pulse, r.mmol, r.context,
                         r.kg, r.category, r.urgent, r.symptoms, r.arm or "", r.posture or "", entered,
                         r.edited_at.isoformat() if r.edited_at else ""])
    await update.effective_chat.send_document(  # type: ignore[union-attr]
        InputFile(buf.getvalue().encode("utf-8-sig"), filename="carecircle-readings.csv"),
        caption=w.t("Your readings ({n}).", n=len(rows)))


async def delete_account(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    t = w.t
    await reply(update, t("This deletes your account and ALL your readings, medicines and messages. It cannot be "
                          "undone. Your doctor will be told that you left. Are you sure?"),
                reply_markup=inline([[(t("Yes, delete everything"), "acct:delete:yes")],
                                     [(t("No, keep my data"), "acct:delete:no")]]))


async def delete_confirmed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await answer(update)
    w = await who(update, context)
    t = w.t
    if not (update.callback_query.data or "").endswith(":yes"):  # type: ignore[union-attr]
        await reply(update, t("Nothing was deleted."))
        return
    name = w.user.display_name or w.user.first_name
    await w.services.users.erase(w.user.id, notice=lambda tr: tr(
        "{name} deleted their CareCircle account; their data has been erased.", name=name))
    context.user_data.clear()  # type: ignore[union-attr]
    w.services.outbox.wake()
    await reply(update, t("Your account and all your data have been deleted. Goodbye, and take care."),
                reply_markup=ReplyKeyboardRemove())


def handlers() -> list[object]:
    return [
        CommandHandler("help", help_command),
        MessageHandler(filters.Regex(menu_pattern("help")), help_command),
        CommandHandler("cancel", cancel),
        CommandHandler("history", history),
        MessageHandler(filters.Regex(menu_pattern("history")), history),
        CommandHandler("undo", undo),
        CommandHandler("export", export),
        CommandHandler("delete", delete_account),
        CallbackQueryHandler(delete_confirmed, pattern=r"^acct:delete:"),
    ]


def fallback_handlers() -> list[object]:
    """Lowest priority: anything no other handler took."""
    return [
        MessageHandler(filters.COMMAND, unknown_command),
        MessageHandler(~filters.TEXT & filters.UpdateType.MESSAGE, non_text),
    ]
