"""The symptom check after a high or low glucose reading (GLU-HYPO / GLU-DANGER), for guided
(/glucose) and free-text readings alike: `dialogs.readings.save` calls `ask_glucose_symptoms`.

A danger sign re-assesses the stored reading (ReadingService.add_symptoms), which raises the
GLU-DANGER alert in the same transaction as the change; the patient gets the safety answer
first. Hypoglycaemia warning signs without danger get the 15-15 rule again.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler, ContextTypes

from bot.clinical import danger as d
from bot.clinical import symptom_check as sc
from bot.services.readings import NewReading
from content.render import advice_lines
from dialogs.common import Who, _, answer, inline, reply, who

SYMPTOM_LABELS = {
    sc.SWEATING: _("Sweating"),
    sc.SHAKING: _("Shaking or trembling"),
    d.PALPITATIONS: _("Fast or pounding heartbeat"),
    sc.HUNGER: _("Sudden strong hunger"),
    d.CONFUSION: _("Confusion or strange behaviour"),
    d.ALTERED_CONSCIOUSNESS: _("Very drowsy or hard to wake"),
    d.HEAVY_THIRST_URINATION: _("Very thirsty, passing a lot of urine"),
    d.NAUSEA_VOMITING: _("Nausea or vomiting"),
    d.ABDOMINAL_PAIN: _("Stomach pain"),
    d.FRUITY_BREATH: _("Breath smells fruity, like nail polish remover"),
    d.DEEP_FAST_BREATHING: _("Deep, fast breathing"),
}


async def ask_glucose_symptoms(update: Update, w: Who, reading_id: int, reading: NewReading) -> bool:
    """Ask the check when the glucose value is low or very high; True when asked."""
    check = sc.glucose_check(reading.mmol, reading.meter)
    if check is None:
        return False
    t = w.t
    rows = [[(t(SYMPTOM_LABELS[code]), f"gs:{reading_id}:{check.side}:{code}")] for code in check.choices]
    rows.append([(t("None of these"), f"gs:{reading_id}:{check.side}:none")])
    await reply(update, t("Do you have any of these right now?"), reply_markup=inline(rows))
    return True


async def on_glucose_symptom(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    t = w.t
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    if len(parts) != 4 or not parts[1].isdigit() or parts[2] not in ("low", "high") \
            or (parts[3] != "none" and parts[3] not in SYMPTOM_LABELS):
        await answer(update, t("This button has expired."))
        return
    await answer(update)
    reading_id, side, code = int(parts[1]), parts[2], parts[3]
    if code == "none":
        if side == "low":
            await reply(update, t("Good. Still take 15 g of fast sugar now and check again in 15 minutes."))
        else:
            await reply(update, t("Good. Drink some water, measure again later today, and contact your doctor "
                                  "if it stays this high."))
        return
    outcome = await w.services.readings.add_symptoms(w.user.id, reading_id, frozenset({code}))
    if not sc.is_glucose_danger(code):
        if outcome is None:
            await reply(update, t("This button has expired."))
            return
        lines = [t("These can be signs of low blood sugar.")]
        lines += advice_lines(["rule_15_15"], t)
        lines.append(t("If they get worse, or you feel confused or drowsy, call 120."))
        await reply(update, "\n".join(lines))
        return
    doctors: tuple[str, ...] = ()
    if outcome is None:  # the reading was deleted meanwhile: still alert on the symptom itself
        alert_id = await w.services.alerts.raise_symptom_alert(w.user.id, frozenset({code}), where="glucose check")
        alerted = alert_id is not None
    else:
        alerted = outcome.alert is not None
        doctors = outcome.alert.doctor_names if outcome.alert is not None else ()
    if alerted:
        w.services.outbox.wake()
    lines = [t("⚠️ With this symptom, please call 120 or go to hospital now. Do not drive yourself.")]
    if doctors:
        lines.append(t("Your doctor ({name}) is being notified now.", name=doctors[0]))
    elif alerted:
        lines.append(t("You are not linked to a doctor in CareCircle yet, so please contact your doctor yourself."))
    await reply(update, "\n".join(lines))


def handlers() -> list[object]:
    return [CallbackQueryHandler(on_glucose_symptom, pattern=r"^gs:")]
