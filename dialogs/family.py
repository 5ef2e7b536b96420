"""Family contacts (家庭责任人): the patient invites them with /family and can remove them at any
time; the family member chooses what to receive and may log readings for the patient."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from dialogs.common import answer, inline, reply, who


async def family(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    t = w.t
    lines: list[str] = []
    rows: list[list[tuple[str, str]]] = []
    if w.onboarded:
        payload = await w.services.invites.create("caregiver", patient_id=w.user.id, created_by=w.user.id, days=7)
        url = f"https://t.me/{context.bot.username}?start={payload}"
        lines.append(t("Send this link to a family member who helps you. They will get copies of urgent alerts "
                       "and your weekly summary, and can log readings for you. The link works once, for 7 days:"))
        lines.append(url)
        for caregiver, _link in await w.services.users.caregivers_of(w.user.id):
            name = caregiver.display_name or caregiver.first_name
            rows.append([(t("Remove {name}", name=name), f"fam:rm:{caregiver.id}")])
    for patient, link in await w.services.users.patients_of(w.user.id):
        name = patient.display_name or patient.first_name
        lines.append(t("You help {name}. You receive:", name=name))
        rows.append([
            ((("✅ " if link.receive_alerts else "⬜ ") + t("urgent alerts")), f"fam:al:{patient.id}"),
            ((("✅ " if link.receive_summary else "⬜ ") + t("weekly summary")), f"fam:su:{patient.id}"),
        ])
    if not lines:
        lines.append(t("Please press /start first."))
    await reply(update, "\n".join(lines), reply_markup=inline(rows) if rows else None)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    if len(parts) != 3 or not parts[2].isdigit():
        await answer(update, w.t("This button has expired."))
        return
    other = int(parts[2])
    if parts[1] == "rm":
        ok = await w.services.users.revoke_caregiver(w.user.id, other)
        await answer(update, w.t("Removed. They no longer receive anything about you.") if ok
                     else w.t("This button has expired."))
        return
    link = await w.services.users.caregiver_link(other, w.user.id)
    if link is None:
        await answer(update, w.t("This button has expired."))
        return
    if parts[1] == "al":
        await w.services.users.set_caregiver_prefs(other, w.user.id, receive_alerts=not link.receive_alerts)
    elif parts[1] == "su":
        await w.services.users.set_caregiver_prefs(other, w.user.id, receive_summary=not link.receive_summary)
    await answer(update, w.t("Saved."))
    await family(update, context)


def handlers() -> list[object]:
    return [CommandHandler("family", family), CallbackQueryHandler(on_button, pattern=r"^fam:")]
