"""The care team's side in the chat: alert buttons, /patients, /patient, /invite, /followup,
/target, /risk and /msg.

Doctor commands answer a non-doctor exactly like an unknown command, and every patient id is
checked against the doctor's teams in the service: another team's patient is "not found".
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from telegram import InputFile, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot import clinical
from bot.services.alerts import ACTION_LABELS
from bot.services.followups import OUTCOMES, WAYS, FollowUpForm, Signs, signs_from_text
from bot.services.panel import PanelRow
from bot.services.qr import qr_png
from content.i18n import Translator
from content.render import reading_text
from dialogs.basics import unknown_command
from dialogs.common import Who, _, answer, inline, reply, who
from dialogs.patient_chart import send_patient_chart
from dialogs.questions import care_lines, trouble_suffix

STATUS_LABELS = {
    "open_alert": _("open alert"),
    "overdue": _("follow-up overdue"),
    "uncontrolled": _("not in target"),
    "silent": _("no recent readings"),
    "ok": _("fine"),
}
WAY_LABELS = {"clinic": _("Clinic"), "home": _("Home visit"), "phone": _("Phone"), "online": _("Online chat")}
OUTCOME_LABELS = {
    "controlled": _("Controlled"),
    "unsatisfactory": _("Unsatisfactory"),
    "adverse_reaction": _("Adverse reaction"),
    "complication": _("Complication"),
}
FU_WAY, FU_OUTCOME, FU_BP = range(3)


async def _doctor(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Who | None:
    w = await who(update, context)
    if not w.user.has_role("doctor"):
        await unknown_command(update, context)
        return None
    return w


async def on_alert_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    t = w.t
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    if len(parts) != 3 or not parts[2].isdigit():
        await answer(update, t("This button has expired."))
        return
    result = await w.services.alerts.act(int(parts[2]), w.user.id, parts[1])
    if not result.ok:
        await answer(update, t("Already handled.") if result.reason == "already" else t("Not found."))
        return
    w.services.outbox.wake()
    action_label = ACTION_LABELS[result.action]
    label = t(action_label)
    await answer(update, t("Done: {action}", action=label))
    message = update.callback_query.message  # type: ignore[union-attr]
    if message is not None and getattr(message, "text", None):
        stamp = w.local_now().strftime("%H:%M")
        name = w.user.display_name or w.user.first_name
        if result.action == "snooze":
            note, markup = t("Snoozed for 1 h by {name} at {time}", name=name, time=stamp), message.reply_markup
        else:
            note, markup = t("{action} by {name} at {time}", action=label, name=name, time=stamp), None
        try:
            await message.edit_text(f"{message.text}\n\n✅ {note}", reply_markup=markup)
        except Exception:
            pass  # an edit that fails (message too old) must not undo the acknowledgement


def away_suffix(t: Translator, row: PanelRow, tz: ZoneInfo) -> str:
    """" 🧳 away, last reached 03-01" for a patient living away from home (issue 10)."""
    if row.away_since is None:
        return ""
    reached = row.last_contact_at.astimezone(tz).strftime("%Y-%m-%d") if row.last_contact_at else t("never")
    return " 🧳 " + t("away, last reached {date}", date=reached)


async def patients(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    page, condition, risk = 0, "", ""
    if update.callback_query is not None:
        await answer(update)
        parts = (update.callback_query.data or "").split(":")
        if len(parts) == 4 and parts[1].isdigit():
            page, condition, risk = int(parts[1]), parts[2], parts[3]
    elif context.args:
        page = int(context.args[0]) - 1 if context.args[0].isdigit() else 0
    result = await w.services.panel.panel(w.user.id, page=page, condition=condition or None, risk=risk or None)
    t = w.t
    counts = ", ".join(f"{t(STATUS_LABELS[k])}: {v}" for k, v in result.counts.items() if v)
    lines = [t("Your patients ({n}). {counts}", n=result.total, counts=counts)]
    troubles = await w.services.questions.troubles_for(r.patient_id for r in result.rows)
    for row in result.rows:
        flag = {"open_alert": "🔴", "overdue": "🟠", "uncontrolled": "🟡", "silent": "⚪", "ok": "🟢"}[row.status]
        lines.append(f"{flag} #{row.patient_id} {row.name} — {t(STATUS_LABELS[row.status])}"
                     + trouble_suffix(t, troubles.get(row.patient_id, [])) + away_suffix(t, row, w.tz))
    waiting = await w.services.questions.open_count(w.user.id)
    if waiting:
        lines.append("❓ " + t("Unanswered questions: {n}. /questions lists them.", n=waiting))
    if not result.rows:
        lines.append(t("No patients yet. Send /invite to get a link and QR code for your patients."))
    lines.append(t("Page {page} of {pages}. /patient <number> opens one.", page=result.page + 1, pages=result.pages))
    nav = []
    if result.page > 0:
        nav.append(("◀", f"pn:{result.page - 1}:{condition}:{risk}"))
    if result.page + 1 < result.pages:
        nav.append(("▶", f"pn:{result.page + 1}:{condition}:{risk}"))
    filters_row = [(t("Hypertension"), f"pn:0:hypertension:{risk}"), (t("Diabetes"), f"pn:0:diabetes:{risk}"),
                   (t("High risk"), f"pn:0:{condition}:high"), (t("All"), "pn:0::")]
    await reply(update, "\n".join(lines), reply_markup=inline([r for r in (nav, filters_row) if r]))


async def patient(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    t = w.t
    query = " ".join(context.args or []).strip().lstrip("#")
    if not query:
        await reply(update, t("Send /patient followed by the number or part of the name, like /patient 12."))
        return
    matches = await w.services.panel.find(w.user.id, query)
    if not matches:
        await reply(update, t("Not found."))
        return
    if len(matches) > 1:
        await reply(update, "\n".join([t("Several patients match:")] +
                                      [f"#{u.id} {u.display_name or u.first_name}" for u, _p in matches]))
        return
    user, profile = matches[0]
    now = w.services.clock.now()
    readings = await w.services.readings.recent(user.id, limit=10)
    taken, scheduled = await w.services.medicines.adherence(user.id)
    followups = await w.services.followups.history(user.id, limit=3)
    age = now.year - profile.birth_year if profile.birth_year else "?"
    lines = [f"#{user.id} {user.display_name or user.first_name}, " + t("age {age}", age=age) + ", "
             + ", ".join(t(c.capitalize()) for c in sorted(profile.condition_set)) + " (" + t("risk: {risk}", risk=profile.risk) + ")"]
    unit = profile.glucose_unit
    lines.append(t("Last readings:"))
    for r in readings[:5]:
        lines.append(f"• {r.measured_at.astimezone(w.tz):%m-%d %H:%M} {reading_text(r, t, unit)}"
                     + (" ⚠️" if r.urgent else ""))
    week = [r for r in readings if r.kind == "bp" and r.measured_at >= now - timedelta(days=7)]
    if week:
        lines.append(t("7-day BP average: {avg}", avg=f"{sum(r.systolic or 0 for r in week) / len(week):.0f}/"
                                                       f"{sum(r.diastolic or 0 for r in week) / len(week):.0f}"))
    if scheduled:
        lines.append(t("Medicines taken (30 days): {pct}%", pct=round(100 * taken / scheduled)))
    if profile.next_followup_due:
        lines.append(t("Next follow-up due: {date}", date=profile.next_followup_due.isoformat()))
    if profile.away_since:  # issue 10: follow-ups in the chat count as online
        lines.append("🧳 " + t("Lives away from home since {date}; follow-ups in the chat count as online.",
                              date=profile.away_since.astimezone(w.tz).strftime("%Y-%m-%d")))
    for f in followups:
        lines.append(f"• {f.visit_date.isoformat()} {t(WAY_LABELS.get(f.way, f.way))}: "
                     f"{t(OUTCOME_LABELS.get(f.outcome or '', f.outcome or ''))}")
    target = f"{profile.target_sys or '-'}/{profile.target_dia or '-'}"
    lines.append(t("BP target set by doctor: {target}", target=target))
    lines.extend(await care_lines(w, user.id))
    if user.telegram_id is None:  # pre-registered (/preregister), has not opened the personal link yet
        lines.append(t("Pre-registered: has not joined CareCircle yet."))
    lines.append(t("Commands: /followup {id}  /target {id} 135/85  /risk {id} high  /msg {id} text", id=user.id))
    lines.append(t("Also: /away {id} on|off (lives away from home), /tocall (no answer to follow-up invitations)",
                   id=user.id))
    lines.append(t("Care plan: /plan {id} (targets, medicines, goals, follow-up interval)", id=user.id))
    await reply(update, "\n".join(lines))
    await send_patient_chart(update, w, user.id, user.display_name or user.first_name, w.user.timezone)


async def invite(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    campaign = bool(context.args and context.args[0].lower() in ("campaign", "poster", "活动"))
    team_ids = await w.services.panel.teams_of(w.user.id)
    payload = await w.services.invites.create("patient", team_id=team_ids[0] if team_ids else None,
                                              created_by=w.user.id, single_use=not campaign,
                                              days=90 if campaign else 14)
    url = f"https://t.me/{context.bot.username}?start={payload}"
    caption = (w.t("Campaign link for posters (many patients, 90 days):") if campaign
               else w.t("One-time link for one patient (14 days):")) + f"\n{url}"
    await update.effective_chat.send_photo(InputFile(qr_png(url), filename="invite.png"),  # type: ignore[union-attr]
                                           caption=caption)


async def set_target(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    args = context.args or []
    parsed = clinical.parse_reading(args[1]) if len(args) == 2 and args[0].isdigit() else None
    if parsed is None or parsed.kind != "bp" or parsed.problem is not None:
        await reply(update, w.t("Usage: /target <patient number> 135/85"))
        return
    if await w.services.panel.team_patient(w.user.id, int(args[0])) is None:
        await reply(update, w.t("Not found."))
        return
    await w.services.users.update_profile(int(args[0]), target_sys=parsed.systolic, target_dia=parsed.diastolic)
    await reply(update, w.t("BP target set to below {target}.", target=f"{parsed.systolic}/{parsed.diastolic}"))


async def set_risk(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    args = context.args or []
    if len(args) != 2 or not args[0].isdigit() or args[1] not in ("high", "standard"):
        await reply(update, w.t("Usage: /risk <patient number> high|standard"))
        return
    if await w.services.panel.team_patient(w.user.id, int(args[0])) is None:
        await reply(update, w.t("Not found."))
        return
    await w.services.users.update_profile(int(args[0]), risk=args[1])
    await reply(update, w.t("Risk level saved."))


async def message_patient(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    args = context.args or []
    if len(args) < 2 or not args[0].isdigit():
        await reply(update, w.t("Usage: /msg <patient number> your message"))
        return
    found = await w.services.panel.team_patient(w.user.id, int(args[0]))
    if found is None:
        await reply(update, w.t("Not found."))
        return
    if not found[0].chat_id:  # pre-registered, not joined yet: there is no chat to send to
        await reply(update, w.t("This patient has not joined CareCircle yet."))
        return
    await w.services.alerts.message_patient(w.user, found[0], " ".join(args[1:]))
    w.services.outbox.wake()
    await reply(update, w.t("Sent to {name}.", name=found[0].display_name or found[0].first_name))


# --- follow-up record: /followup <id> -> way -> outcome -> BP (optional) -> saved ----------------
async def followup_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await _doctor(update, context)
    if w is None:
        return ConversationHandler.END
    args = context.args or []
    found = await w.services.panel.team_patient(w.user.id, int(args[0])) if args and args[0].isdigit() else None
    if found is None:
        await reply(update, w.t("Not found.") if args else w.t("Usage: /followup <patient number>"))
        return ConversationHandler.END
    context.user_data["followup"] = {"patient_id": found[0].id}  # type: ignore[index]
    await reply(update, w.t("Follow-up for {name}. How did it happen?", name=found[0].display_name),
                reply_markup=inline([[(w.t(WAY_LABELS[k]), f"fu:way:{k}") for k in WAYS]]))
    return FU_WAY


async def followup_way(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await answer(update)
    w = await who(update, context)
    way = (update.callback_query.data or "").rsplit(":", 1)[-1]  # type: ignore[union-attr]
    if way not in WAYS or "followup" not in context.user_data:  # type: ignore[operator]
        return ConversationHandler.END
    context.user_data["followup"]["way"] = way  # type: ignore[index]
    await reply(update, w.t("Result of this follow-up?"),
                reply_markup=inline([[(w.t(OUTCOME_LABELS[k]), f"fu:out:{k}")] for k in OUTCOMES]))
    return FU_OUTCOME


async def followup_outcome(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await answer(update)
    w = await who(update, context)
    outcome = (update.callback_query.data or "").rsplit(":", 1)[-1]  # type: ignore[union-attr]
    if outcome not in OUTCOMES or "followup" not in context.user_data:  # type: ignore[operator]
        return ConversationHandler.END
    context.user_data["followup"]["outcome"] = outcome  # type: ignore[index]
    await reply(update, w.t("Blood pressure measured at the visit (like 138/86), or press Skip."),
                reply_markup=inline([[(w.t("Skip"), "fu:bp:skip")]]))
    return FU_BP


async def followup_bp(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    data = context.user_data.pop("followup", None)  # type: ignore[union-attr]
    if data is None:
        return ConversationHandler.END
    signs = Signs()
    if update.callback_query is not None:
        await answer(update)
    else:  # BP, and optionally pulse, fasting glucose and weight: "138/86 pulse 72 glucose 6.5 65kg"
        parsed = signs_from_text(update.effective_message.text or "")  # type: ignore[union-attr]
        if parsed is None or parsed.systolic is None:
            context.user_data["followup"] = data  # type: ignore[index]
            await reply(update, w.t("Please type it like 138/86, or press Skip."),
                        reply_markup=inline([[(w.t("Skip"), "fu:bp:skip")]]))
            return FU_BP
        signs = parsed
    result = await w.services.followups.record(w.user.id, data["patient_id"], way=data["way"], outcome=data["outcome"],
                                               systolic=signs.systolic, diastolic=signs.diastolic,
                                               fasting_mmol=signs.fasting_mmol, weight_kg=signs.weight_kg,
                                               form=FollowUpForm(heart_rate=signs.heart_rate), source="bot")
    if result is None:
        await reply(update, w.t("Not found."))
        return ConversationHandler.END
    lines = [w.t("Follow-up saved. Next follow-up due: {date}.", date=result.next_due.isoformat())]
    if result.refer:
        lines.append(w.t("Not controlled at two follow-ups in a row: the guideline says to refer this patient."))
    await reply(update, "\n".join(lines))
    return ConversationHandler.END


async def followup_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    context.user_data.pop("followup", None)  # type: ignore[union-attr]
    await reply(update, w.t("Stopped. Nothing was saved."))
    return ConversationHandler.END


def handlers() -> list[object]:
    return [
        ConversationHandler(
            entry_points=[CommandHandler("followup", followup_start)],
            states={
                FU_WAY: [CallbackQueryHandler(followup_way, pattern=r"^fu:way:")],
                FU_OUTCOME: [CallbackQueryHandler(followup_outcome, pattern=r"^fu:out:")],
                FU_BP: [CallbackQueryHandler(followup_bp, pattern=r"^fu:bp:"),
                        MessageHandler(filters.TEXT & ~filters.COMMAND, followup_bp)],
            },
            fallbacks=[CommandHandler("cancel", followup_cancel)],
            name="followup",
            persistent=True,
            allow_reentry=True,
        ),
        CallbackQueryHandler(on_alert_button, pattern=r"^al:"),
        CommandHandler("patients", patients),
        CallbackQueryHandler(patients, pattern=r"^pn:"),
        CommandHandler("patient", patient),
        CommandHandler("invite", invite),
        CommandHandler("target", set_target),
        CommandHandler("risk", set_risk),
        CommandHandler("msg", message_patient),
    ]



