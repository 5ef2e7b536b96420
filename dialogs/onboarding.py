"""/start: language -> consent -> conditions -> year of birth -> time zone -> glucose unit.

Nothing clinical is stored before consent. A deep-link payload (`/start p-<code>`) is kept in
the conversation and redeemed once the profile exists. Restartable: /start again begins anew;
/cancel leaves; states are persisted, so a restart of the bot resumes where the user was.
"""

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

from bot.services.invites import parse_payload
from bot.services.users import Onboarding
from content.i18n import normalize_language, translator
from content.timezones import resolve_timezone
from dialogs.common import Who, _, answer, inline, main_menu, reply, who

LANG, CONSENT, CONDITIONS, BIRTH, TZ, UNIT = range(6)
CONDITION_CHOICES = {
    "htn": ({"hypertension"}, _("High blood pressure")),
    "t2d": ({"diabetes"}, _("Type 2 diabetes")),
    "both": ({"hypertension", "diabetes"}, _("Both")),
    "unsure": (set(), _("Not sure")),
}


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    payload = context.args[0] if context.args else None
    invite = parse_payload(payload)
    ud = context.user_data
    assert ud is not None
    if payload and invite is None:
        await reply(update, w.t("This invite link is not valid. Please ask for a new one."))
    if invite and invite[0] == "circle":  # g-<code>: peer-support circle, its own flow (dialogs.circles)
        from dialogs.circles import start_join

        await start_join(update, context, w, invite[1])
        return ConversationHandler.END
    if invite and invite[0] == "doctor":
        await redeem_and_tell(update, w, invite)
        return ConversationHandler.END
    if w.onboarded:
        if invite:
            await redeem_and_tell(update, w, invite)
        await reply(update, w.t("Welcome back, {name}! Type a reading like 135/85 or use the buttons below.",
                                name=w.user.first_name or ""), reply_markup=main_menu(w.t))
        return ConversationHandler.END
    ud["onboarding"] = {"invite": list(invite) if invite else None}
    await reply(
        update,
        w.t("Welcome to CareCircle! I help you keep track of blood pressure and blood sugar between clinic "
            "visits, and keep your family doctor in the loop.\n\nWhich language do you prefer?"),
        reply_markup=inline([[("中文", "ob:lang:zh_CN"), ("English", "ob:lang:en")]]),
    )
    return LANG


async def choose_language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await answer(update)
    w = await who(update, context)
    lang = normalize_language((update.callback_query.data or "").rsplit(":", 1)[-1])  # type: ignore[union-attr]
    await w.services.users.set_language(w.user.id, lang)
    context.user_data.setdefault("onboarding", {})["language"] = lang  # type: ignore[union-attr]
    t = translator(lang)
    await reply(
        update,
        t("Before we start, please read this:\n"
          "• I store the readings, medicines and answers you send me, to show you your progress.\n"
          "• Your family doctor's team sees them if you join their team. Family members see only what you "
          "allow. Other patients never see them.\n"
          "• I give general advice, not a diagnosis. In an emergency call 120.\n"
          "• You can download your data with /export and delete everything with /delete at any time.\n\n"
          "Do you agree?"),
        reply_markup=inline([[(t("I agree"), "ob:consent:yes"), (t("Not now"), "ob:consent:no")]]),
    )
    return CONSENT


async def consent(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await answer(update)
    w = await who(update, context)
    if (update.callback_query.data or "").endswith(":no"):  # type: ignore[union-attr]
        context.user_data.pop("onboarding", None)  # type: ignore[union-attr]
        await reply(update, w.t("All right. Nothing has been stored. Send /start whenever you are ready."))
        return ConversationHandler.END
    context.user_data["onboarding"]["consent"] = True  # type: ignore[index]
    await reply(
        update,
        w.t("Which condition do you manage?"),
        reply_markup=inline([
            [_condition_button(w, "htn"), _condition_button(w, "t2d")],
            [_condition_button(w, "both"), _condition_button(w, "unsure")],
        ]),
    )
    return CONDITIONS


def _condition_button(w: Who, key: str) -> tuple[str, str]:
    label = CONDITION_CHOICES[key][1]
    return w.t(label), f"ob:cond:{key}"


async def conditions(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await answer(update)
    w = await who(update, context)
    key = (update.callback_query.data or "").rsplit(":", 1)[-1]  # type: ignore[union-attr]
    chosen = CONDITION_CHOICES.get(key, CONDITION_CHOICES["unsure"])[0]
    context.user_data["onboarding"]["conditions"] = sorted(chosen)  # type: ignore[index]
    await reply(update, w.t("In which year were you born? (for example 1956). Targets differ from age 65."),
                reply_markup=inline([[(w.t("Skip"), "ob:birth:skip")]]))
    return BIRTH


async def birth_year(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    year: int | None = None
    if update.callback_query is not None:
        await answer(update)
    else:
        text = (update.effective_message.text or "").strip()  # type: ignore[union-attr]
        text = text.translate(str.maketrans("０１２３４５６７８９", "0123456789")).rstrip("年")
        this_year = w.local_now().year
        if not text.isdigit() or not 1900 <= int(text) <= this_year - 10:
            await reply(update, w.t("Please type the year with four digits, like 1956, or press Skip."),
                        reply_markup=inline([[(w.t("Skip"), "ob:birth:skip")]]))
            return BIRTH
        year = int(text)
    context.user_data["onboarding"]["birth_year"] = year  # type: ignore[index]
    now = w.local_now()
    await reply(
        update,
        w.t("Your time zone is {tz} (your time now: {time}). Is that right?", tz=w.user.timezone,
            time=now.strftime("%H:%M")),
        reply_markup=inline([[(w.t("Yes"), "ob:tz:keep"), (w.t("Change"), "ob:tz:change")]]),
    )
    return TZ


async def timezone(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    ob = context.user_data["onboarding"]  # type: ignore[index]
    if update.callback_query is not None:
        await answer(update)
        if (update.callback_query.data or "").endswith(":change"):
            await reply(update, w.t("Type your city (for example 乌鲁木齐 or London) or your UTC offset like +8."))
            return TZ
        ob["timezone"] = w.user.timezone
    else:
        tz = resolve_timezone(update.effective_message.text or "")  # type: ignore[union-attr]
        if tz is None:
            await reply(update, w.t("I don't know that place. Please type a big city nearby or an offset like +8."))
            return TZ
        ob["timezone"] = tz
    if "diabetes" in ob.get("conditions", []):
        await reply(update, w.t("Which unit does your glucose meter show?"),
                    reply_markup=inline([[("mmol/L", "ob:unit:mmol"), ("mg/dL", "ob:unit:mgdl")]]))
        return UNIT
    return await finish(update, context, w)


async def unit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await answer(update)
    w = await who(update, context)
    context.user_data["onboarding"]["glucose_unit"] = (  # type: ignore[index]
        "mgdl" if (update.callback_query.data or "").endswith("mgdl") else "mmol")  # type: ignore[union-attr]
    return await finish(update, context, w)


async def finish(update: Update, context: ContextTypes.DEFAULT_TYPE, w: Who) -> int:
    ob = context.user_data.pop("onboarding", {})  # type: ignore[union-attr]
    language = ob.get("language") or w.user.language
    data = Onboarding(
        language=language,
        timezone=ob.get("timezone") or w.user.timezone,
        conditions=frozenset(ob.get("conditions", [])),
        birth_year=ob.get("birth_year"),
        glucose_unit=ob.get("glucose_unit", "mmol"),
    )
    await w.services.users.complete_onboarding(w.user.id, data)
    t = translator(language)
    w = Who(w.services, (await w.services.users.get(w.user.id)) or w.user, t)
    await reply(
        update,
        t("All set! Send me a reading any time, just as you would write it:\n"
          "• 135/85 or 血压 135/85 心率 72\n• 空腹血糖 6.8 or glucose 7.2 after lunch\n"
          "Or use the buttons below. /help shows everything I can do."),
        reply_markup=main_menu(t),
    )
    if ob.get("invite"):
        await redeem_and_tell(update, w, tuple(ob["invite"]))  # type: ignore[arg-type]
    return ConversationHandler.END


async def redeem_and_tell(update: Update, w: Who, invite: tuple[str, str]) -> None:
    kind, code = invite
    result = await w.services.invites.redeem(kind, code, w.user.id)
    t = w.t
    if result.ok:
        if kind == "doctor":
            await reply(update, t("Welcome, Dr {name}. You are now a member of team {team}. You will receive urgent "
                                  "alerts for your patients here. /patients lists them.",
                                  name=result.doctor_name, team=result.team_name))
        elif kind == "patient":
            await reply(update, t("You are now linked to {team} (Dr {doctor}). They will see your readings and "
                                  "be told about urgent ones.", team=result.team_name, doctor=result.doctor_name))
        else:
            await reply(update, t("You are now a family contact for {name}. You will receive what they chose "
                                  "to share with you.", name=result.patient_name))
        return
    messages = {
        "expired": t("This invite link has expired. Please ask for a new one."),
        "used": t("This invite link has already been used. Please ask for a new one."),
        "already": t("You have already used this invite."),
        "self": t("You cannot be your own family contact."),
    }
    await reply(update, messages.get(result.reason, t("This invite link is not valid. Please ask for a new one.")))


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    context.user_data.pop("onboarding", None)  # type: ignore[union-attr]
    await reply(update, w.t("Stopped. Send /start to begin again."))
    return ConversationHandler.END


def handlers() -> list[object]:
    return [
        ConversationHandler(
            entry_points=[CommandHandler("start", start)],
            states={
                LANG: [CallbackQueryHandler(choose_language, pattern=r"^ob:lang:")],
                CONSENT: [CallbackQueryHandler(consent, pattern=r"^ob:consent:")],
                CONDITIONS: [CallbackQueryHandler(conditions, pattern=r"^ob:cond:")],
                BIRTH: [CallbackQueryHandler(birth_year, pattern=r"^ob:birth:"),
                        MessageHandler(filters.TEXT & ~filters.COMMAND, birth_year)],
                TZ: [CallbackQueryHandler(timezone, pattern=r"^ob:tz:"),
                     MessageHandler(filters.TEXT & ~filters.COMMAND, timezone)],
                UNIT: [CallbackQueryHandler(unit, pattern=r"^ob:unit:")],
            },
            fallbacks=[CommandHandler("cancel", cancel), CommandHandler("start", start)],
            name="onboarding",
            persistent=True,
            allow_reentry=True,
        )
    ]
