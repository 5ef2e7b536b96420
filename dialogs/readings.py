"""Readings typed as free text anywhere ("150/95", "空腹血糖 6.8"), and the short questions
that make an unclear reading storable: which context, is this mg/dL, is this value right.

Pending readings wait in user_data (persisted, JSON) under a short token that goes into the
button's callback data; a button from another user, an old message or forged data finds no
pending entry and gets a polite "expired" answer, changing nothing.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from telegram import Update
from telegram.ext import CallbackQueryHandler, ContextTypes, MessageHandler, filters

from bot import clinical
from bot.services.proxy import tell_patient
from bot.services.readings import NewReading, RecordResult
from content.render import (
    CONTEXT_LABELS,
    advice_lines,
    category_text,
    glucose_value,
    reading_text,
)
from dialogs.common import Who, _, answer, inline, reply, who
from dialogs.symptoms import ask_glucose_symptoms

MAX_PENDING = 10
SYMPTOM_CHOICES = [
    ("chest_pain", _("Chest pain or tightness")),
    ("severe_headache", _("Severe headache or dizziness")),
    ("blurred_vision", _("Blurred vision")),
    ("breathless", _("Short of breath")),
    ("vomiting", _("Nausea or vomiting")),
    ("confusion", _("Confusion")),
]

PROBLEM_TEXT = {
    "out_of_range": _("{reading} is outside what a home meter can show, so I have not saved it. "
                      "Please check the numbers and send them again."),
    "systolic_not_above_diastolic": _("The first (upper) number must be bigger than the second. "
                                      "Please check and send it again, like 135/85."),
}


def _token() -> str:
    return secrets.token_hex(4)


def _pending(context: ContextTypes.DEFAULT_TYPE) -> dict[str, Any]:
    return context.user_data.setdefault("pending", {})  # type: ignore[union-attr]


def _store_pending(context: ContextTypes.DEFAULT_TYPE, item: dict[str, Any]) -> str:
    pending = _pending(context)
    while len(pending) >= MAX_PENDING:
        pending.pop(next(iter(pending)))
    token = _token()
    pending[token] = item
    return token


def _reading_dict(reading: NewReading) -> dict[str, Any]:
    return {k: v for k, v in reading.__dict__.items() if v is not None}


def stored_at_once(text: str) -> bool:
    """Does `on_text` store this text's reading straight away, sending and asking nothing first: one
    reading, nothing to confirm, a glucose with its context? Only then may the sender come from the
    cache (dialogs.common.with_cached_sender): `save` is the update's one write and checks it."""
    found = clinical.parse_readings(text)
    return (len(found) == 1 and found[0].problem is None
            and not (found[0].kind == "glucose" and found[0].context is None))


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None or not message.text:
        return
    w = await who(update, context)
    text = message.text
    readings = clinical.parse_readings(text)
    danger = clinical.detect_danger_signs(text)
    if not readings:
        if danger:
            await reply(update, w.t(
                "That sounds serious. If you have chest pain, trouble breathing, a severe headache, "
                "blurred vision or confusion, call 120 or go to hospital now."))
            return
        await reply(update, w.t(
            "I did not find a reading in that. You can send, for example:\n• 135/85\n• 血压 150/95 心率 72\n"
            "• 空腹血糖 6.8\nor press /help."))
        return
    helped = []
    if w.logs_for_others:  # known from the sender query: most people help nobody, so no query
        helped = [(p, link) for p, link in await w.services.users.patients_of(w.user.id) if link.can_log]
    if helped:
        # A family member may log for the person they help: ask whose reading it is.
        token = _store_pending(context, {"text": text, "update_id": update.update_id})
        rows = [[(p.display_name or p.first_name, f"rd:for:{token}:{p.id}")] for p, _link in helped]
        if w.onboarded:
            rows.append([(w.t("Mine"), f"rd:for:{token}:{w.user.id}")])
        await reply(update, w.t("Whose reading is this?"), reply_markup=inline(rows))
        return
    if not w.onboarded:
        await reply(update, w.t("I can save your readings once you have agreed to how I keep them. "
                                "Please press /start first."))
        return
    await handle_text(update, context, w, text, update.update_id, w.user.id, readings, danger)


async def handle_text(update: Update, context: ContextTypes.DEFAULT_TYPE, w: Who, text: str, update_id: int,
                      patient_id: int, readings: list[Any] | None = None, danger: frozenset[str] | None = None) -> None:
    """Store (or ask about) every reading in `text`; `readings`/`danger` when already parsed."""
    when = clinical.parse_when(text, w.local_now())
    if danger is None:
        danger = clinical.detect_danger_signs(text)
    for seq, parsed in enumerate(readings if readings is not None else clinical.parse_readings(text)):
        await handle_parsed(update, context, w, parsed, seq, when, danger, patient_id=patient_id,
                            update_id=update_id)


async def handle_parsed(update: Update, context: ContextTypes.DEFAULT_TYPE, w: Who, parsed: Any, seq: int,
                        when: datetime | None, symptoms: frozenset[str] = frozenset(), *,
                        patient_id: int | None = None, update_id: int | None = None,
                        details: dict[str, str] | None = None) -> None:
    reading = NewReading.from_parsed(parsed, **(details or {}))  # details: arm/posture from /bp
    t = w.t
    patient_id = patient_id or w.user.id
    profile = await w.profile_of(patient_id)
    unit = profile.glucose_unit if profile else "mmol"
    problem = parsed.problem
    if problem in clinical.REJECT_PROBLEMS:
        template = PROBLEM_TEXT.get(problem, PROBLEM_TEXT["out_of_range"])
        await reply(update, t(template, reading=reading_text(reading, t, unit)))
        return
    item = {"reading": _reading_dict(reading), "when": when.isoformat() if when else None,
            "update_id": update_id or update.update_id, "seq": seq, "symptoms": sorted(symptoms),
            "patient_id": patient_id}
    if problem == "unit_unclear":
        token = _store_pending(context, item)
        mgdl = round((reading.mmol or 0) * 18)
        await reply(update, t("Is {value} a blood glucose in mg/dL? That is {mmol} mmol/L.", value=mgdl,
                              mmol=f"{reading.mmol:.1f}"),
                    reply_markup=inline([[(t("Yes, glucose {value} mg/dL", value=mgdl), f"rd:ok:{token}")],
                                         [(t("No, don't save"), f"rd:no:{token}")]]))
        return
    if problem is not None:  # needs_confirmation / ambiguous
        token = _store_pending(context, item)
        await reply(update, t("{reading} is unusual. Is it right?", reading=reading_text(reading, t, unit)),
                    reply_markup=inline([[(t("Yes, save it"), f"rd:ok:{token}"),
                                          (t("No, don't save"), f"rd:no:{token}")]]))
        return
    if reading.kind == "glucose" and reading.context is None:
        token = _store_pending(context, item)
        await ask_context(update, t, token, reading, unit)
        return
    await save(update, context, w, item)


async def ask_context(update: Update, t: Any, token: str, reading: NewReading, unit: str) -> None:
    def button(context: str) -> tuple[str, str]:
        label = CONTEXT_LABELS[context]
        return t(label), f"rd:ctx:{token}:{context}"

    rows = [[button("fasting"), button("before_meal")], [button("after_meal"), button("bedtime")],
            [button("random")]]
    await reply(update, t("When did you measure {value}?", value=glucose_value(reading.mmol, unit, reading.meter)),
                reply_markup=inline(rows))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    w = await who(update, context)
    parts = (query.data or "").split(":")
    token = parts[2] if len(parts) > 2 else ""
    item = _pending(context).get(token)
    if item is None:
        await answer(update, w.t("This button has expired. Please send the reading again."))
        return
    await answer(update)
    action = parts[1]
    if action == "for":
        _pending(context).pop(token, None)
        chosen = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else 0
        allowed = chosen == w.user.id and w.onboarded
        if not allowed:
            link = await w.services.users.caregiver_link(chosen, w.user.id)
            allowed = link is not None and link.can_log
        if not allowed:
            await reply(update, w.t("This button has expired. Please send the reading again."))
            return
        await handle_text(update, context, w, item["text"], item["update_id"], chosen)
        return
    if action == "no":
        _pending(context).pop(token, None)
        await reply(update, w.t("OK, not saved."))
        return
    reading = NewReading(**item["reading"])
    if action == "ctx" and len(parts) > 3 and parts[3] in CONTEXT_LABELS:
        item["reading"]["context"] = parts[3]
        reading = NewReading(**item["reading"])
    elif action == "ok" and reading.kind == "glucose" and reading.context is None:
        profile = await w.profile_of(item.get("patient_id") or w.user.id)
        await ask_context(update, w.t, token, reading, profile.glucose_unit if profile else "mmol")
        return
    _pending(context).pop(token, None)
    await save(update, context, w, item)


async def save(update: Update, context: ContextTypes.DEFAULT_TYPE, w: Who, item: dict[str, Any]) -> None:
    reading = NewReading(**item["reading"])
    when = datetime.fromisoformat(item["when"]) if item.get("when") else None
    patient_id = item.get("patient_id") or w.user.id
    result = await w.services.readings.record(
        patient_id, reading, entered_by=w.user.id, measured_at=when,
        source_update_id=item.get("update_id"), seq=int(item.get("seq", 0)),
        symptoms=frozenset(item.get("symptoms", [])),
        known=(w.user, w.loaded_profile) if patient_id == w.user.id else None,  # read with the sender
        revision=w.revision,  # a cached sender: stored only if still current, else StaleSender
    )
    if result.alert is not None:
        w.services.outbox.wake()
    profile = await w.profile_of(patient_id)
    unit = profile.glucose_unit if profile else "mmol"
    text = feedback_text(w, reading, result, unit, when)
    if patient_id != w.user.id:
        patient = await w.services.users.get(patient_id)
        text = w.t("For {name}:", name=(patient.display_name or patient.first_name) if patient else "?") + "\n" + text
        if not result.duplicate and await tell_patient(w.services, patient, w.user, result.reading_id, reading):
            w.services.outbox.wake()
    await reply(update, text)
    a = result.assessment
    if not result.duplicate and reading.kind == "bp" and (a.urgent or a.category in ("grade2", "low")) \
            and not item.get("symptoms") and patient_id == w.user.id:
        await ask_symptoms(update, w, result.reading_id)
    elif not result.duplicate and reading.kind == "glucose" and not item.get("symptoms") and patient_id == w.user.id:
        await ask_glucose_symptoms(update, w, result.reading_id, reading)  # low or very high only


async def ask_symptoms(update: Update, w: Who, reading_id: int) -> None:
    t = w.t
    rows = [[(t(label), f"sy:{reading_id}:{code}")] for code, label in SYMPTOM_CHOICES]
    rows.append([(t("None of these"), f"sy:{reading_id}:none")])
    await reply(update, t("Do you have any of these right now?"), reply_markup=inline(rows))


async def on_symptom(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    if len(parts) != 3 or not parts[1].isdigit():
        await answer(update, w.t("This button has expired."))
        return
    await answer(update)
    if parts[2] == "none":
        await reply(update, w.t("Good. Rest, and measure again in a while."))
        return
    outcome = await w.services.readings.add_symptoms(w.user.id, int(parts[1]), frozenset({parts[2]}))
    if outcome is None:
        await reply(update, w.t("This button has expired."))
        return
    if outcome.alert is not None:
        w.services.outbox.wake()
    lines = [w.t("⚠️ With this symptom, please call 120 or go to hospital now. Do not drive yourself.")]
    lines.append(_doctor_line(w, outcome))
    await reply(update, "\n".join(line for line in lines if line))


def _doctor_line(w: Who, result: RecordResult) -> str:
    if result.alert is None:
        return ""
    if result.alert.doctor_names:
        return w.t("Your doctor ({name}) is being notified now.", name=result.alert.doctor_names[0])
    return w.t("You are not linked to a doctor in CareCircle yet, so please contact your doctor yourself.")


def feedback_text(w: Who, reading: NewReading, result: RecordResult, unit: str, when: datetime | None) -> str:
    """Safety first for urgent readings; then what was saved, what it means, and the trend."""
    t = w.t
    a = result.assessment
    lines: list[str] = []
    advice = advice_lines(a.advice, t)
    if a.urgent:
        lines.append("⚠️ " + t("This reading needs attention now."))
        lines.extend(advice)
        lines.append(_doctor_line(w, result))
        lines.append("")
    saved = t("Saved: {reading}", reading=reading_text(reading, t, unit))
    if when is not None:
        saved += " (" + t.datetime(when) + ")"
    if result.duplicate:
        saved = t("Already saved: {reading}", reading=reading_text(reading, t, unit))
    lines.append("✅ " + saved)
    if reading.kind in ("bp", "glucose"):
        lines.append(t("This reading is {category}.", category=category_text(a.category, t)))
    avg = result.average7
    if reading.kind == "bp" and avg.count >= 2 and avg.systolic and avg.diastolic:
        diff = (reading.systolic or 0) - avg.systolic
        word = t("higher than") if diff > 5 else t("lower than") if diff < -5 else t("about the same as")
        lines.append(t("It is {word} your 7-day average of {avg}.", word=word,
                       avg=f"{avg.systolic:.0f}/{avg.diastolic:.0f}"))
    elif reading.kind == "glucose" and avg.count >= 2 and avg.mmol:
        lines.append(t("Your 7-day average is {avg}.", avg=glucose_value(avg.mmol, unit)))
    if not a.urgent:
        lines.extend(advice)
    return "\n".join(line for line in lines if line is not None).strip()


def handlers() -> list[object]:
    return [
        CallbackQueryHandler(on_button, pattern=r"^rd:"),
        CallbackQueryHandler(on_symptom, pattern=r"^sy:"),
    ]


def text_handler() -> MessageHandler:  # type: ignore[type-arg]
    """Registered last: free text that no conversation claimed."""
    return MessageHandler(filters.TEXT & ~filters.COMMAND & (filters.UpdateType.MESSAGE), on_text)
