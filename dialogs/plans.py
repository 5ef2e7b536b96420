"""/plan: a doctor edits a patient's care plan (一人一策); a patient (or a consenting family
member's contact) sees it in plain words and as a large-type card.

Doctor flow: /plan <patient number> -> the draft (current plan, else the reference defaults) with
buttons: defaults, add or change a medicine (one typed line, like "amlodipine 5mg 08:00,20:00 after
food"), remove a medicine, targets ("130/80 fasting 4.4-7 after 10 weight 65 bmi 24"), daily-life
goals ("salt 5 cigarettes 0 alcohol 0 exercise 150 staple 250 followup 30"), save. The draft lives
in user_data (persisted), the service checks the doctor's team on load and again on save.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Any

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
from bot.clinical.plan import CarePlan, Lifestyle, PlanTargets, parse_medicine_line
from bot.clinical.schedule import in_quiet_hours
from bot.services.plan_card import render_card
from bot.services.plans import describe
from dialogs.common import Who, answer, inline, reply, who

PL_MENU, PL_MED, PL_TARGETS, PL_GOALS = range(4)
KEY = "plan_draft"


async def _show_own(update: Update, w: Who) -> None:
    """The patient's own plan, or the plans of the people they help (when they receive the summary)."""
    t = w.t
    shown = 0
    candidates = [w.user.id] + [p.id for p, link in await w.services.users.patients_of(w.user.id)
                                if link.receive_summary]
    for patient_id in candidates:
        found = await w.services.plans.viewable(w.user.id, patient_id)
        if found is None:
            continue
        patient, plan = found
        name = patient.display_name or patient.first_name
        header = t("Your care plan") if patient.id == w.user.id else t("Care plan of {name}", name=name)
        await reply(update, "\n".join([f"📋 {header}", *describe(plan, t)]))
        png = await render_card(plan, w.user.language, name)
        await update.effective_chat.send_photo(  # type: ignore[union-attr]
            InputFile(png, filename="care-plan.png"), caption=t("Your plan card: print it or keep it on your phone."))
        shown += 1
    if not shown:
        await reply(update, t("Your doctor has not made a care plan for you yet."))


def _draft(context: ContextTypes.DEFAULT_TYPE) -> tuple[int, CarePlan] | None:
    data = (context.user_data or {}).get(KEY)
    if not data:
        return None
    return int(data["patient_id"]), CarePlan.from_dict(data["plan"])


def _keep(context: ContextTypes.DEFAULT_TYPE, patient_id: int, plan: CarePlan) -> None:
    context.user_data[KEY] = {"patient_id": patient_id, "plan": plan.to_dict()}  # type: ignore[index]


async def _menu(update: Update, w: Who, patient_id: int, plan: CarePlan, note: str = "") -> int:
    t = w.t
    rows = [[(t("↺ Start from defaults"), "pl:def")],
            [(t("💊 Add or change a medicine"), "pl:med"), (t("✖ Remove a medicine"), "pl:rm")],
            [(t("🎯 Targets"), "pl:tgt"), (t("🥗 Goals"), "pl:goal")],
            [(t("✅ Save and tell the patient"), "pl:save"), (t("Cancel"), "pl:cancel")]]
    text = "\n".join(([note] if note else []) + [t("Care plan draft for patient #{id}:", id=patient_id),
                                                  *describe(plan, t)])
    await reply(update, text, reply_markup=inline(rows))
    return PL_MENU


async def plan_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    args = context.args or []
    if not w.user.has_role("doctor") or not args:
        if w.user.has_role("doctor") and not await w.services.plans.viewable(w.user.id, w.user.id):
            await reply(update, w.t("Usage: /plan <patient number>"))
            return ConversationHandler.END
        await _show_own(update, w)
        return ConversationHandler.END
    raw = args[0].lstrip("#")
    draft = await w.services.plans.draft(w.user.id, int(raw)) if raw.isdigit() and len(raw) < 18 else None
    if draft is None:
        await reply(update, w.t("Not found."))
        return ConversationHandler.END
    patient, plan, is_new = draft
    _keep(context, patient.id, plan)
    note = w.t("No plan yet: this draft starts from the reference defaults.") if is_new else ""
    return await _menu(update, w, patient.id, plan, note)


async def on_menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await answer(update)
    w = await who(update, context)
    t = w.t
    draft = _draft(context)
    data = (update.callback_query.data or "") if update.callback_query else ""  # type: ignore[union-attr]
    if draft is None:
        return ConversationHandler.END
    patient_id, plan = draft
    action = data.split(":")[1] if ":" in data else ""
    if action == "def":
        found = await w.services.plans.draft(w.user.id, patient_id)
        profile = await w.services.users.profile(patient_id)
        if found is None or profile is None:
            await reply(update, t("Not found."))
            return ConversationHandler.END
        plan = replace(w.services.plans.defaults_for(profile), medicines=plan.medicines)
        _keep(context, patient_id, plan)
        return await _menu(update, w, patient_id, plan)
    if action == "med":
        await reply(update, t("Type one medicine per message: name, dose, times and food, like\n"
                              "amlodipine 5mg 08:00,20:00 after food"))
        return PL_MED
    if action == "rm":
        parts = data.split(":")
        if len(parts) == 3 and parts[2].isdigit() and int(parts[2]) < len(plan.medicines):
            plan = plan.without_medicine(plan.medicines[int(parts[2])].name)
            _keep(context, patient_id, plan)
            return await _menu(update, w, patient_id, plan)
        if not plan.medicines:
            return await _menu(update, w, patient_id, plan, t("There are no medicines in the plan."))
        await reply(update, t("Which medicine should be stopped?"),
                    reply_markup=inline([[(m.label, f"pl:rm:{i}")] for i, m in enumerate(plan.medicines)]))
        return PL_MENU
    if action == "tgt":
        await reply(update, t("Type the targets, like\n130/80 fasting 4.4-7 after 10 weight 65 bmi 24\n"
                              "(only the blood pressure is required)."))
        return PL_TARGETS
    if action == "goal":
        await reply(update, t("Type the goals, like\nsalt 5 cigarettes 0 alcohol 0 exercise 150 staple 250 "
                              "followup 30"))
        return PL_GOALS
    if action == "save":
        saved = await w.services.plans.save(w.user.id, patient_id, plan)
        context.user_data.pop(KEY, None)  # type: ignore[union-attr]
        if saved is None:
            await reply(update, t("Not found."))
            return ConversationHandler.END
        w.services.outbox.wake()
        await reply(update, t("Plan saved (version {n}). Reminders, targets and lessons are updated; the patient "
                              "has been told.", n=saved.version))
        return ConversationHandler.END
    context.user_data.pop(KEY, None)  # type: ignore[union-attr]
    await reply(update, t("Stopped. Nothing was saved."))
    return ConversationHandler.END


async def on_medicine(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    draft = _draft(context)
    if draft is None:
        return ConversationHandler.END
    medicine = parse_medicine_line(update.effective_message.text or "")  # type: ignore[union-attr]
    if medicine is None:
        await reply(update, w.t("I could not read that. Please type it like\namlodipine 5mg 08:00,20:00 after food"))
        return PL_MED
    plan = draft[1].with_medicine(medicine)
    _keep(context, draft[0], plan)
    prefs = await w.services.reminders.prefs(draft[0])
    quiet = [x for x in medicine.times if in_quiet_hours_local(time.fromisoformat(x), prefs.quiet_start,
                                                                 prefs.quiet_end)]
    note = w.t("Note: {times} is inside the patient's quiet hours ({start}-{end}); no reminder rings then.",
               times=", ".join(quiet), start=prefs.quiet_start.strftime("%H:%M"),
               end=prefs.quiet_end.strftime("%H:%M")) if quiet else ""
    return await _menu(update, w, draft[0], plan, note)


_NUM = r"(\d+(?:\.\d+)?)"


def in_quiet_hours_local(at: time, start: time, end: time) -> bool:
    """bot.clinical.schedule.in_quiet_hours for a bare local wall-clock time (any day, read as UTC)."""
    return in_quiet_hours(datetime.combine(date(2000, 1, 3), at, tzinfo=UTC), "UTC", start, end)


def parse_targets(text: str, old: PlanTargets) -> PlanTargets | None:
    """'130/80 fasting 4.4-7 after 10 weight 65 bmi 24' -> targets; None without a valid BP."""
    words = text.lower().replace("：", ":").split()
    parsed = clinical.parse_reading(words[0]) if words else None
    if parsed is None or parsed.kind != "bp" or parsed.problem is not None:
        return None
    values: dict[str, Any] = {"bp_systolic": parsed.systolic, "bp_diastolic": parsed.diastolic}
    rest = " ".join(words[1:])
    if m := re.search(r"fasting\s*" + _NUM + r"\s*[-~到]\s*" + _NUM, rest):
        values["fasting_low"], values["fasting_high"] = float(m.group(1)), float(m.group(2))
    for key, field in (("after", "postmeal_high"), ("weight", "weight_kg"), ("bmi", "bmi")):
        if m := re.search(key + r"\s*" + _NUM, rest):
            values[field] = float(m.group(1))
    return replace(old, **values)


def parse_goals(text: str, old: CarePlan) -> CarePlan | None:
    """'salt 5 cigarettes 0 alcohol 0 exercise 150 staple 250 followup 30' (any subset)."""
    fields = {"salt": ("salt_g_per_day", float), "cigarettes": ("cigarettes_per_day", int),
              "alcohol": ("alcohol_liang_per_day", float), "exercise": ("exercise_min_per_week", int),
              "staple": ("staple_g_per_day", int)}
    found = dict(re.findall(r"([a-z]+)\s*" + _NUM, text.lower()))
    if not found or not set(found) <= {*fields, "followup"}:
        return None
    values = {fields[k][0]: fields[k][1](float(v)) for k, v in found.items() if k in fields}
    plan = replace(old, lifestyle=replace(old.lifestyle or Lifestyle(), **values))
    if "followup" in found and 7 <= int(float(found["followup"])) <= 365:
        plan = replace(plan, followup_days=int(float(found["followup"])))
    return plan


async def on_targets(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    draft = _draft(context)
    if draft is None:
        return ConversationHandler.END
    targets = parse_targets(update.effective_message.text or "", draft[1].targets)  # type: ignore[union-attr]
    if targets is None:
        await reply(update, w.t("Please start with the blood pressure target, like 130/80."))
        return PL_TARGETS
    plan = replace(draft[1], targets=targets)
    _keep(context, draft[0], plan)
    return await _menu(update, w, draft[0], plan)


async def on_goals(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    draft = _draft(context)
    if draft is None:
        return ConversationHandler.END
    plan = parse_goals(update.effective_message.text or "", draft[1])  # type: ignore[union-attr]
    if plan is None:
        await reply(update, w.t("Please type it like: salt 5 cigarettes 0 alcohol 0 exercise 150 staple 250 "
                                "followup 30"))
        return PL_GOALS
    _keep(context, draft[0], plan)
    return await _menu(update, w, draft[0], plan)


async def on_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    context.user_data.pop(KEY, None)  # type: ignore[union-attr]
    await reply(update, w.t("Stopped. Nothing was saved."))
    return ConversationHandler.END


def handlers() -> list[object]:
    text = filters.TEXT & ~filters.COMMAND
    return [ConversationHandler(
        entry_points=[CommandHandler("plan", plan_command)],
        states={
            PL_MENU: [CallbackQueryHandler(on_menu, pattern=r"^pl:")],
            PL_MED: [MessageHandler(text, on_medicine), CallbackQueryHandler(on_menu, pattern=r"^pl:")],
            PL_TARGETS: [MessageHandler(text, on_targets), CallbackQueryHandler(on_menu, pattern=r"^pl:")],
            PL_GOALS: [MessageHandler(text, on_goals), CallbackQueryHandler(on_menu, pattern=r"^pl:")],
        },
        fallbacks=[CommandHandler("cancel", on_cancel)],
        name="care_plan",
        persistent=True,
        allow_reentry=True,
    )]
