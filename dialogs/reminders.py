"""/reminders: list, add (measure BP / glucose / a medicine at local times on chosen weekdays),
delete, quiet hours and the daily tip; plus the Done / Snooze 30 min / Skip buttons under every
reminder message and the "sub:tip:on|off" buttons (also shown under /tips replies).

Thin on purpose: times are parsed by bot.clinical.schedule, everything is stored by
ReminderService. A reminder id in callback data is checked against the presser in the service,
so a forged or foreign button changes nothing and answers "This button has expired."
"""

from __future__ import annotations

import re
from datetime import time

from telegram import Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.clinical.schedule import (
    EVERY_DAY,
    WEEKDAYS_MON_FRI,
    format_times,
    in_quiet_hours,
    local_instant,
    parse_times,
    times_from_str,
    weekdays_from_str,
    zone,
)
from dialogs.common import Who, _, answer, inline, reply, who

TIMES, QUIET, TIP_TIME = range(3)
KIND_LABELS = {"bp": _("Measure blood pressure"), "glucose": _("Measure blood glucose"), "medicine": _("Medicine")}
DAY_LABELS = (_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun"))


def _days_text(w: Who, days: frozenset[int]) -> str:
    if days == EVERY_DAY:
        return w.t("every day")
    if days == WEEKDAYS_MON_FRI:
        return w.t("Mon-Fri")
    return ", ".join(_day(w, d) for d in sorted(days))


def _day(w: Who, d: int) -> str:
    label = DAY_LABELS[d]
    return w.t(label)


def _what(w: Who, kind: str, medicine_name: str | None) -> str:
    if kind == "medicine":
        return "💊 " + (medicine_name or "?")
    label = KIND_LABELS[kind]
    return w.t(label)


async def show(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    await answer(update)
    if not w.onboarded:
        await reply(update, w.t("Please press /start first."))
        return ConversationHandler.END
    t = w.t
    items = await w.services.reminders.list(w.user.id)
    prefs = await w.services.reminders.prefs(w.user.id)
    lines = [t("Your reminders:")]
    rows: list[list[tuple[str, str]]] = []
    for rem, medicine in items:
        what = _what(w, rem.kind, medicine.name if medicine else None)
        lines.append(f"• {what} — {rem.times.replace(',', ', ')} ({_days_text(w, weekdays_from_str(rem.weekdays))})")
        rows.append([("🗑 " + what + " " + rem.times.split(",")[0], f"rm:del:{rem.id}")])
    if not items:
        lines.append(t("No reminders yet."))
    lines.append(t("Quiet hours: {start}-{end} (nothing but urgent messages then).",
                   start=prefs.quiet_start.strftime("%H:%M"), end=prefs.quiet_end.strftime("%H:%M")))
    if prefs.tip_on and prefs.tip_at:
        lines.append(t("Daily tip: on, at {time}.", time=prefs.tip_at.strftime("%H:%M")))
    rows.insert(0, [(t("➕ Add a reminder"), "rm:add")])
    rows.append([(t("🌙 Quiet hours"), "rm:quiet"),
                 (t("Stop daily tips"), "sub:tip:off") if prefs.tip_on else (t("💡 Daily tip"), "rm:tip")])
    await reply(update, "\n".join(lines), reply_markup=inline(rows))
    return ConversationHandler.END


async def on_config(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """rm:add, rm:kind:*, rm:wd:*, rm:del:*, rm:quiet, rm:tip — the settings buttons."""
    w = await who(update, context)
    t = w.t
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    action = parts[1] if len(parts) > 1 else ""
    draft = context.user_data.setdefault("rem_new", {})  # type: ignore[union-attr]
    if action == "add":
        await answer(update)
        rows = [[(_what(w, "bp", None), "rm:kind:bp")], [(_what(w, "glucose", None), "rm:kind:glucose")]]
        for medicine in await w.services.medicines.list(w.user.id):
            rows.append([("💊 " + medicine.name, f"rm:kind:medicine:{medicine.id}")])
        await reply(update, t("What should I remind you of?"), reply_markup=inline(rows))
        return ConversationHandler.END
    if action == "kind" and len(parts) >= 3 and parts[2] in KIND_LABELS:
        await answer(update)
        medicine_id = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else None
        context.user_data["rem_new"] = {"kind": parts[2], "medicine_id": medicine_id}  # type: ignore[index]
        await reply(update, t("At what time? Type one or more local times, like 08:00, 20:00"))
        return TIMES
    if action == "wd" and len(parts) == 3 and draft.get("times"):
        return await _weekdays(update, w, context, draft, parts[2])
    if action == "del" and len(parts) == 3 and parts[2].isdigit():
        if not await w.services.reminders.delete(w.user.id, int(parts[2])):
            await answer(update, t("This button has expired."))
            return ConversationHandler.END
        await answer(update, t("Deleted."))
        return await show(update, context)
    if action == "quiet":
        await answer(update)
        await reply(update, t("Type your quiet hours like 22:00-07:00. I send nothing but urgent messages then."))
        return QUIET
    if action == "tip":
        await answer(update)
        await reply(update, t("At what time would you like a daily tip? Type a local time, like 09:00"))
        return TIP_TIME
    await answer(update, t("This button has expired."))
    return ConversationHandler.END


async def _weekdays(update: Update, w: Who, context: ContextTypes.DEFAULT_TYPE, draft: dict, choice: str) -> int:
    t = w.t
    days = set(draft.get("days", []))
    if choice in ("all", "wk", "save"):
        chosen = EVERY_DAY if choice == "all" else WEEKDAYS_MON_FRI if choice == "wk" else frozenset(days)
        if not chosen:
            await answer(update, t("Pick at least one day."))
            return ConversationHandler.END
        await answer(update)
        times = times_from_str(draft["times"])
        rem = await w.services.reminders.add(w.user.id, draft["kind"], times, sorted(chosen), draft.get("medicine_id"))
        context.user_data.pop("rem_new", None)  # type: ignore[union-attr]
        if rem is None:
            await reply(update, t("This button has expired."))
            return ConversationHandler.END
        found = await w.services.reminders.get_own(w.user.id, rem.id)
        name = found[1].name if found and found[1] else None
        await reply(update, t("Reminder saved: {what} at {times}, {days}.", what=_what(w, rem.kind, name),
                              times=rem.times.replace(",", ", "), days=_days_text(w, frozenset(chosen))))
        return ConversationHandler.END
    if choice == "pick" or (choice.startswith("t") and choice[1:].isdigit() and int(choice[1:]) < 7):
        await answer(update)
        if choice != "pick":
            days ^= {int(choice[1:])}
        draft["days"] = sorted(days)
        rows = [[((("✅ " if d in days else "") + _day(w, d)), f"rm:wd:t{d}") for d in range(0, 4)],
                [((("✅ " if d in days else "") + _day(w, d)), f"rm:wd:t{d}") for d in range(4, 7)],
                [(t("Save"), "rm:wd:save")]]
        message = update.callback_query.message if update.callback_query else None  # type: ignore[union-attr]
        if choice != "pick" and message is not None:
            try:
                await message.edit_reply_markup(inline(rows))  # type: ignore[union-attr]
            except Exception:
                pass  # identical markup or an old message: harmless
        else:
            await reply(update, t("Tap the days, then Save."), reply_markup=inline(rows))
        return ConversationHandler.END
    await answer(update, t("This button has expired."))
    return ConversationHandler.END


def _inside_quiet(w: Who, times: tuple[time, ...], start: time, end: time) -> list[time]:
    tz = zone(w.user.timezone)
    today = w.local_now().date()
    return [x for x in times if in_quiet_hours(local_instant(today, x, tz), tz, start, end)]


async def on_times(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    t = w.t
    draft = context.user_data.get("rem_new") or {}  # type: ignore[union-attr]
    times = parse_times(update.effective_message.text or "")  # type: ignore[union-attr]
    if not draft.get("kind"):
        return ConversationHandler.END
    if times is None:
        await reply(update, t("Please type times like 08:00, 20:00 (or /cancel)."))
        return TIMES
    prefs = await w.services.reminders.prefs(w.user.id)
    quiet = _inside_quiet(w, times, prefs.quiet_start, prefs.quiet_end)
    if quiet:
        await reply(update, t("{time} is inside your quiet hours ({start}-{end}). Please choose another time, "
                              "or change quiet hours in /reminders.", time=format_times(quiet),
                              start=prefs.quiet_start.strftime("%H:%M"), end=prefs.quiet_end.strftime("%H:%M")))
        return TIMES
    draft["times"] = format_times(times)
    await reply(update, t("On which days?"), reply_markup=inline([
        [(t("Every day"), "rm:wd:all"), (t("Mon-Fri"), "rm:wd:wk")], [(t("Pick days"), "rm:wd:pick")]]))
    return ConversationHandler.END


QUIET_RE = re.compile(r"^\s*(\S+)\s*[-–~至到]\s*(\S+)\s*$")


async def on_quiet(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    m = QUIET_RE.match(update.effective_message.text or "")  # type: ignore[union-attr]
    start = parse_times(m.group(1)) if m else None
    end = parse_times(m.group(2)) if m else None
    if not start or not end or len(start) != 1 or len(end) != 1:
        await reply(update, w.t("Please type it like 22:00-07:00 (or /cancel)."))
        return QUIET
    await w.services.reminders.set_quiet_hours(w.user.id, start[0], end[0])
    await reply(update, w.t("Quiet hours set: {start}-{end}.", start=start[0].strftime("%H:%M"),
                            end=end[0].strftime("%H:%M")))
    return ConversationHandler.END


async def on_tip_time(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    times = parse_times(update.effective_message.text or "")  # type: ignore[union-attr]
    if not times or len(times) != 1:
        await reply(update, w.t("Please type one time, like 09:00 (or /cancel)."))
        return TIP_TIME
    prefs = await w.services.reminders.prefs(w.user.id)
    if _inside_quiet(w, times, prefs.quiet_start, prefs.quiet_end):
        await reply(update, w.t("That is inside your quiet hours. Please choose another time."))
        return TIP_TIME
    await w.services.reminders.set_tip(w.user.id, True, times[0])
    await reply(update, w.t("Daily tip on, every day at {time}. One tap on \"Stop daily tips\" stops it.",
                            time=times[0].strftime("%H:%M")))
    return ConversationHandler.END


async def on_subscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """sub:tip:on / sub:tip:off — one tap from a tip (or /reminders) to start or stop daily tips."""
    w = await who(update, context)
    data = update.callback_query.data if update.callback_query else ""  # type: ignore[union-attr]
    if data == "sub:tip:off":
        await w.services.reminders.set_tip(w.user.id, False)
        await answer(update, w.t("Daily tips stopped."))
        await reply(update, w.t("Daily tips stopped. You can turn them on again in /reminders."))
        return
    if not w.onboarded:
        await answer(update, w.t("Please press /start first."))
        return
    await w.services.reminders.set_tip(w.user.id, True)
    await answer(update, w.t("Daily tip on."))
    await reply(update, w.t("Daily tip on, every day at {time}. You can change the time in /reminders.",
                            time="09:00"))


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    context.user_data.pop("rem_new", None)  # type: ignore[union-attr]
    await reply(update, w.t("Stopped. Nothing was changed."))
    return ConversationHandler.END


async def on_action(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Done / Snooze 30 min / Skip under a reminder message."""
    w = await who(update, context)
    t = w.t
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    found = await w.services.reminders.get_own(w.user.id, int(parts[2])) \
        if len(parts) == 3 and parts[2].isdigit() else None
    if found is None:
        await answer(update, t("This button has expired."))
        return
    rem, medicine = found
    action = parts[1]
    follow_up = None
    if action == "done":
        if rem.kind == "medicine" and medicine is not None:
            await w.services.medicines.log(w.user.id, medicine.id, "taken", source_update_id=update.update_id)
            note = t("✅ Taken")
        else:
            note = t("✅ Done")
            follow_up = t("Please type your reading, like 135/85.") if rem.kind == "bp" else \
                t("Please type your reading, like 6.8 fasting.")
    elif action == "snz":
        await w.services.reminders.snooze(w.user.id, rem.id)
        note = t("⏰ I will remind you again in 30 minutes.")
    else:
        if rem.kind == "medicine" and medicine is not None:
            await w.services.medicines.log(w.user.id, medicine.id, "missed", source_update_id=update.update_id)
        note = t("Skipped.")
    await answer(update, note)
    message = update.callback_query.message  # type: ignore[union-attr]
    if message is not None and getattr(message, "text", None):
        try:
            await message.edit_text(f"{message.text}\n\n{note}", reply_markup=None)  # type: ignore[union-attr]
        except Exception:
            pass  # too old to edit: the answer above already confirmed it
    if follow_up:
        await reply(update, follow_up)


def handlers() -> list[object]:
    config = CallbackQueryHandler(on_config, pattern=r"^rm:(add|kind|wd|del|quiet|tip)")
    return [
        CallbackQueryHandler(on_action, pattern=r"^rm:(done|snz|skip):"),
        CallbackQueryHandler(on_subscribe, pattern=r"^sub:tip:(on|off)$"),
        ConversationHandler(
            entry_points=[CommandHandler("reminders", show), config],
            states={TIMES: [MessageHandler(filters.TEXT & ~filters.COMMAND, on_times)],
                    QUIET: [MessageHandler(filters.TEXT & ~filters.COMMAND, on_quiet)],
                    TIP_TIME: [MessageHandler(filters.TEXT & ~filters.COMMAND, on_tip_time)]},
            fallbacks=[CommandHandler("cancel", cancel)],
            name="reminders",
            persistent=True,
            allow_reentry=True,
        ),
    ]
