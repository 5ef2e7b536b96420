"""/settings: language, time zone and glucose unit, each one tap away."""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from content.i18n import normalize_language, translator
from content.timezones import resolve_timezone
from dialogs.common import answer, inline, main_menu, menu_pattern, reply, who

TZ_TEXT = 0


async def settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    t = w.t
    profile = await w.profile()
    unit = "mg/dL" if profile and profile.glucose_unit == "mgdl" else "mmol/L"
    await reply(update, t("Your settings:\n• Language: {lang}\n• Time zone: {tz}\n• Glucose unit: {unit}",
                          lang="中文" if w.user.language == "zh_CN" else "English", tz=w.user.timezone, unit=unit),
                reply_markup=inline([
                    [("中文", "st:lang:zh_CN"), ("English", "st:lang:en")],
                    [("mmol/L", "st:unit:mmol"), ("mg/dL", "st:unit:mgdl")],
                    [(t("Change time zone"), "st:tz:change")],
                ]))
    return ConversationHandler.END


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    await answer(update)
    if len(parts) != 3:
        return ConversationHandler.END
    if parts[1] == "lang":
        lang = normalize_language(parts[2])
        await w.services.users.set_language(w.user.id, lang)
        t = translator(lang)
        await reply(update, t("Language changed."), reply_markup=main_menu(t) if w.onboarded else None)
    elif parts[1] == "unit" and parts[2] in ("mmol", "mgdl"):
        await w.services.users.update_profile(w.user.id, glucose_unit=parts[2])
        await reply(update, w.t("Glucose unit changed."))
    elif parts[1] == "tz":
        await reply(update, w.t("Type your city (for example 乌鲁木齐 or London) or your UTC offset like +8."))
        return TZ_TEXT
    return ConversationHandler.END


async def tz_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    tz = resolve_timezone(update.effective_message.text or "")  # type: ignore[union-attr]
    if tz is None:
        await reply(update, w.t("I don't know that place. Please type a big city nearby or an offset like +8."))
        return TZ_TEXT
    await w.services.users.set_timezone(w.user.id, tz)
    await w.services.reminders.reschedule_user(w.user.id)  # reminders follow the new local time
    await reply(update, w.t("Time zone set to {tz}.", tz=tz))
    return ConversationHandler.END


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    await reply(update, w.t("Stopped. Nothing was changed."))
    return ConversationHandler.END


def handlers() -> list[object]:
    return [
        ConversationHandler(
            entry_points=[CommandHandler("settings", settings),
                          MessageHandler(filters.Regex(menu_pattern("settings")), settings),
                          CallbackQueryHandler(on_button, pattern=r"^st:")],
            states={TZ_TEXT: [MessageHandler(filters.TEXT & ~filters.COMMAND, tz_text)]},
            fallbacks=[CommandHandler("cancel", cancel)],
            name="settings",
            persistent=True,
            allow_reentry=True,
        )
    ]
