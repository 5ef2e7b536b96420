"""Step-by-step logging for people who prefer buttons: /bp, /glucose, /weight, /meds.

Each flow only collects values; the checks, questions and saving are the same as for free
text (dialogs.readings), so a reading entered either way is treated alike.
"""

from __future__ import annotations

import re

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
from dialogs.common import Who, _, answer, inline, menu_pattern, reply, who
from dialogs.readings import handle_parsed, save

BP_VALUE, BP_PULSE, GLU_VALUE, WEIGHT_VALUE, HEIGHT_VALUE, MED_NAME, MED_NOTE, BP_ARM, BP_POSTURE = range(9)
# Optional /bp details, stored on the reading (readings.arm / readings.posture); both skippable.
ARMS = {"left": _("Left arm"), "right": _("Right arm")}  # keys: content.render.ARM_LABELS
POSTURES = {"sitting": _("Sitting"), "lying": _("Lying down"), "standing": _("Standing")}  # POSTURE_LABELS
NUMBER = re.compile(r"^\s*(\d{2,3}(?:[.,]\d)?)\s*(?:kg|公斤|千克|cm|厘米)?\s*$", re.IGNORECASE)
FULLWIDTH = str.maketrans("０１２３４５６７８９．／", "0123456789./")


def _text(update: Update) -> str:
    return (update.effective_message.text or "").translate(FULLWIDTH) if update.effective_message else ""


async def _must_be_onboarded(update: Update, context: ContextTypes.DEFAULT_TYPE):  # type: ignore[no-untyped-def]
    w = await who(update, context)
    if not w.onboarded:
        await reply(update, w.t("Please press /start first."))
        return None
    return w


# --- blood pressure ---------------------------------------------------------------------
async def bp_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await _must_be_onboarded(update, context)
    if w is None:
        return ConversationHandler.END
    await reply(update, w.t("Type your blood pressure: the upper and lower number, like 135/85. "
                            "You can add the pulse: 135/85 72."))
    return BP_VALUE


async def bp_value(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    parsed = clinical.parse_reading(_text(update))
    if parsed is None or parsed.kind != "bp":
        await reply(update, w.t("Please type two numbers like 135/85, or /cancel."))
        return BP_VALUE
    if parsed.problem is not None:  # impossible or unusual: the free-text checks explain or confirm
        await handle_parsed(update, context, w, parsed, 0, None)
        return ConversationHandler.END
    values = {"systolic": parsed.systolic, "diastolic": parsed.diastolic, "pulse": parsed.pulse}
    context.user_data["bp"] = values  # type: ignore[index]
    if parsed.pulse is not None:
        return await _ask_arm(update, w)
    await reply(update, w.t("And your pulse (heart rate)? Type it, or press Skip."),
                reply_markup=inline([[(w.t("Skip"), "gd:pulse:skip")]]))
    return BP_PULSE


async def bp_pulse(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    values = context.user_data.get("bp")  # type: ignore[union-attr]
    if values is None:
        return ConversationHandler.END
    if update.callback_query is not None:
        await answer(update)
    else:
        pulse = _text(update).strip()
        if not pulse.isdigit():
            await reply(update, w.t("Please type the pulse as a number, or press Skip."),
                        reply_markup=inline([[(w.t("Skip"), "gd:pulse:skip")]]))
            return BP_PULSE
        values["pulse"] = int(pulse)
    return await _ask_arm(update, w)


async def _ask_arm(update: Update, w: Who) -> int:
    t = w.t
    await reply(update, t("Which arm did you measure on?"),
                reply_markup=inline([[(t(label), f"gd:arm:{key}") for key, label in ARMS.items()],
                                     [(t("Skip"), "gd:arm:skip")]]))
    return BP_ARM


async def bp_arm(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    t = w.t
    values = context.user_data.get("bp")  # type: ignore[union-attr]
    if values is None:
        await answer(update, t("This button has expired."))
        return ConversationHandler.END
    if update.callback_query is None:
        await reply(update, t("Please press a button, or Skip."))
        return BP_ARM
    await answer(update)
    arm = (update.callback_query.data or "").rsplit(":", 1)[-1]
    values["arm"] = arm if arm in ARMS else None
    await reply(update, t("And were you sitting, lying down or standing?"),
                reply_markup=inline([[(t(label), f"gd:pos:{key}") for key, label in POSTURES.items()],
                                     [(t("Skip"), "gd:pos:skip")]]))
    return BP_POSTURE


async def bp_posture(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    if update.callback_query is None:
        await reply(update, w.t("Please press a button, or Skip."))
        return BP_POSTURE
    values = context.user_data.pop("bp", None)  # type: ignore[union-attr]
    if values is None:
        await answer(update, w.t("This button has expired."))
        return ConversationHandler.END
    await answer(update)
    posture = (update.callback_query.data or "").rsplit(":", 1)[-1]
    text = f"{values['systolic']}/{values['diastolic']}"
    if values.get("pulse") is not None:
        text += f" {values['pulse']}"
    parsed = clinical.parse_reading(text)
    assert parsed is not None
    details = {"arm": values.get("arm"), "posture": posture if posture in POSTURES else None}
    await handle_parsed(update, context, w, parsed, 0, None,
                        details={k: v for k, v in details.items() if v is not None})
    return ConversationHandler.END


# --- glucose ------------------------------------------------------------------------------
async def glucose_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await _must_be_onboarded(update, context)
    if w is None:
        return ConversationHandler.END
    await reply(update, w.t("Type your blood glucose, like 6.8 (mmol/L) or 126 mg/dL."))
    return GLU_VALUE


async def glucose_value(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    text = _text(update)
    parsed = clinical.parse_reading(text)
    if parsed is not None and parsed.kind != "glucose":
        parsed = clinical.parse_reading("血糖 " + text)
    if parsed is None or parsed.kind != "glucose":
        await reply(update, w.t("Please type the number from your meter, like 6.8, or /cancel."))
        return GLU_VALUE
    await handle_parsed(update, context, w, parsed, 0, None)
    return ConversationHandler.END


# --- weight -------------------------------------------------------------------------------
async def weight_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await _must_be_onboarded(update, context)
    if w is None:
        return ConversationHandler.END
    await reply(update, w.t("Type your weight in kg, like 68.5."))
    return WEIGHT_VALUE


async def weight_value(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    text = _text(update)
    match = NUMBER.match(text)
    parsed = clinical.parse_reading(text) if match is None else clinical.parse_reading(f"{match[1]} kg")
    if parsed is None or parsed.kind != "weight" or parsed.problem in clinical.REJECT_PROBLEMS:
        await reply(update, w.t("Please type your weight in kg as a number between 20 and 300, or /cancel."))
        return WEIGHT_VALUE
    profile = await w.profile()
    context.user_data["weight"] = parsed.kg  # type: ignore[index]
    if profile is None or not profile.height_cm:
        await reply(update, w.t("What is your height in cm? (for BMI; asked only once)"),
                    reply_markup=inline([[(w.t("Skip"), "gd:height:skip")]]))
        return HEIGHT_VALUE
    return await _save_weight(update, context, profile.height_cm)


async def height_value(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    height: float | None = None
    if update.callback_query is not None:
        await answer(update)
    else:
        match = NUMBER.match(_text(update))
        if match is None or not 100 <= float(match[1].replace(",", ".")) <= 230:
            await reply(update, w.t("Please type your height in cm, like 165, or press Skip."),
                        reply_markup=inline([[(w.t("Skip"), "gd:height:skip")]]))
            return HEIGHT_VALUE
        height = float(match[1].replace(",", "."))
        await w.services.users.update_profile(w.user.id, height_cm=height)
    return await _save_weight(update, context, height)


async def _save_weight(update: Update, context: ContextTypes.DEFAULT_TYPE, height: float | None) -> int:
    w = await who(update, context)
    kg = context.user_data.pop("weight", None)  # type: ignore[union-attr]
    if kg is None:
        return ConversationHandler.END
    await save(update, context, w, {"reading": {"kind": "weight", "kg": kg}, "when": None,
                                    "update_id": update.update_id, "seq": 0})
    if height:
        bmi = clinical.bmi(kg, height)
        await reply(update, w.t("Your BMI is {bmi:.1f}. A healthy range for Chinese adults is 18.5 to 23.9.",
                                bmi=bmi))
    return ConversationHandler.END


# --- medicines ------------------------------------------------------------------------------
async def meds_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await _must_be_onboarded(update, context)
    if w is None:
        return ConversationHandler.END
    t = w.t
    medicines = await w.services.medicines.list(w.user.id)
    if not medicines:
        await reply(update, t("You have not listed any medicines yet. Type the name and dose of one, like "
                              "\"amlodipine 5 mg\", or /cancel."))
        return MED_NAME
    rows = []
    for m in medicines:
        label = f"{m.name} {m.dose}".strip()
        rows.append([(f"✅ {label}", f"md:taken:{m.id}"), (t("❌ missed"), f"md:missed:{m.id}")])
    rows.append([(t("Side effects"), "md:side:0"), (t("➕ Add a medicine"), "md:add:0")])
    await reply(update, t("Which medicines did you take today?"), reply_markup=inline(rows))
    return ConversationHandler.END


async def med_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    if len(parts) != 3 or not parts[2].isdigit():
        await answer(update, w.t("This button has expired."))
        return ConversationHandler.END
    action, medicine_id = parts[1], int(parts[2])
    if action == "add":
        await answer(update)
        await reply(update, w.t("Type the name and dose, like \"metformin 500 mg\"."))
        return MED_NAME
    if action == "side":
        await answer(update)
        await reply(update, w.t("What did you notice? Type it in a few words; your doctor will see it."))
        return MED_NOTE
    ok = await w.services.medicines.log(w.user.id, medicine_id, action, source_update_id=update.update_id)
    await answer(update, w.t("Noted. Thank you!") if ok else w.t("This button has expired."))
    return ConversationHandler.END


async def med_name(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    text = _text(update).strip()
    if not 2 <= len(text) <= 120:
        await reply(update, w.t("Please type the medicine name, like \"amlodipine 5 mg\"."))
        return MED_NAME
    dose_match = re.search(r"(\d+(?:\.\d+)?\s*(?:mg|g|ml|iu|u|片|粒|毫克|单位))\s*$", text, re.IGNORECASE)
    name = text[: dose_match.start()].strip() if dose_match else text
    await w.services.medicines.add(w.user.id, name or text, dose_match[1] if dose_match else "")
    await reply(update, w.t("Added {name}. Press /meds to record a dose.", name=text))
    return ConversationHandler.END


async def med_note(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    await w.services.medicines.log(w.user.id, None, "side_effect", note=_text(update),
                                   source_update_id=update.update_id)
    await reply(update, w.t("Thank you, noted for your doctor. If it is severe (rash with swelling, trouble "
                            "breathing, fainting), call 120 or go to hospital now."))
    return ConversationHandler.END


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    for key in ("bp", "weight"):
        context.user_data.pop(key, None)  # type: ignore[union-attr]
    await reply(update, w.t("Stopped. Nothing was saved."))
    return ConversationHandler.END


def handlers() -> list[object]:
    text = filters.TEXT & ~filters.COMMAND
    return [
        ConversationHandler(
            entry_points=[
                CommandHandler("bp", bp_start), MessageHandler(filters.Regex(menu_pattern("bp")), bp_start),
                CommandHandler("glucose", glucose_start),
                MessageHandler(filters.Regex(menu_pattern("glucose")), glucose_start),
                CommandHandler("weight", weight_start),
                MessageHandler(filters.Regex(menu_pattern("weight")), weight_start),
                CommandHandler("meds", meds_start), MessageHandler(filters.Regex(menu_pattern("meds")), meds_start),
                CallbackQueryHandler(med_button, pattern=r"^md:"),
            ],
            states={
                BP_VALUE: [MessageHandler(text, bp_value)],
                BP_PULSE: [MessageHandler(text, bp_pulse), CallbackQueryHandler(bp_pulse, pattern=r"^gd:pulse:")],
                BP_ARM: [CallbackQueryHandler(bp_arm, pattern=r"^gd:arm:"), MessageHandler(text, bp_arm)],
                BP_POSTURE: [CallbackQueryHandler(bp_posture, pattern=r"^gd:pos:"), MessageHandler(text, bp_posture)],
                GLU_VALUE: [MessageHandler(text, glucose_value)],
                WEIGHT_VALUE: [MessageHandler(text, weight_value)],
                HEIGHT_VALUE: [MessageHandler(text, height_value),
                               CallbackQueryHandler(height_value, pattern=r"^gd:height:")],
                MED_NAME: [MessageHandler(text, med_name)],
                MED_NOTE: [MessageHandler(text, med_note)],
            },
            fallbacks=[CommandHandler("cancel", cancel)],
            name="guided",
            persistent=True,
            allow_reentry=True,
        )
    ]
