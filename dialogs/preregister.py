"""/preregister (doctors): name -> phone -> year of birth -> conditions -> a personal invite link
and QR code for that one patient. When the patient opens it, their account takes over the
pre-registered record (bot.services.preregister)."""

from __future__ import annotations

import re

from telegram import InputFile, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.services.preregister import INVITE_DAYS, PreRegistration, PreRegistrationService
from bot.services.qr import qr_png
from dialogs.common import Who, answer, inline, reply, who
from dialogs.doctor import _doctor
from dialogs.onboarding import CONDITION_CHOICES

PR_NAME, PR_PHONE, PR_BIRTH, PR_CONDITIONS = range(4)
PHONE = re.compile(r"^\+?[\d\s-]{5,20}$")
FULLWIDTH = str.maketrans("０１２３４５６７８９＋", "0123456789+")


def _text(update: Update) -> str:
    return (update.effective_message.text or "").translate(FULLWIDTH).strip() if update.effective_message else ""


def _skip(w: Who, step: str) -> object:
    return inline([[(w.t("Skip"), f"pr:{step}:skip")]])


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await _doctor(update, context)
    if w is None:
        return ConversationHandler.END
    context.user_data["prereg"] = {}  # type: ignore[index]
    await reply(update, w.t("Pre-register a patient. What is the patient's full name? (/cancel to stop)"))
    return PR_NAME


async def name(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    text = _text(update)
    if not 2 <= len(text) <= 64:
        await reply(update, w.t("Please type the name (2 to 64 characters)."))
        return PR_NAME
    context.user_data.setdefault("prereg", {})["name"] = text  # type: ignore[union-attr]
    await reply(update, w.t("Phone number? Type it, or press Skip."), reply_markup=_skip(w, "phone"))
    return PR_PHONE


async def phone(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    if update.callback_query is not None:
        await answer(update)
    else:
        text = _text(update)
        if not PHONE.match(text):
            await reply(update, w.t("Please type the phone number with digits only, or press Skip."),
                        reply_markup=_skip(w, "phone"))
            return PR_PHONE
        context.user_data.setdefault("prereg", {})["phone"] = re.sub(r"[\s-]", "", text)  # type: ignore[union-attr]
    await reply(update, w.t("Year of birth, like 1956? Type it, or press Skip."), reply_markup=_skip(w, "birth"))
    return PR_BIRTH


async def birth(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    if update.callback_query is not None:
        await answer(update)
    else:
        text = _text(update).rstrip("年")
        if not text.isdigit() or not 1900 <= int(text) <= w.local_now().year - 10:
            await reply(update, w.t("Please type the year with four digits, like 1956, or press Skip."),
                        reply_markup=_skip(w, "birth"))
            return PR_BIRTH
        context.user_data.setdefault("prereg", {})["birth_year"] = int(text)  # type: ignore[union-attr]
    t = w.t
    await reply(update, t("Which condition does the patient have?"), reply_markup=inline([
        [(t(CONDITION_CHOICES[k][1]), f"pr:cond:{k}") for k in ("htn", "t2d")],
        [(t(CONDITION_CHOICES[k][1]), f"pr:cond:{k}") for k in ("both", "unsure")],
    ]))
    return PR_CONDITIONS


async def conditions(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await answer(update)
    w = await who(update, context)
    data = context.user_data.pop("prereg", None)  # type: ignore[union-attr]
    key = (update.callback_query.data or "").rsplit(":", 1)[-1]  # type: ignore[union-attr]
    if data is None or "name" not in data or key not in CONDITION_CHOICES:
        return ConversationHandler.END
    service = PreRegistrationService(w.services.sessions, w.services.clock, w.services.invites)
    created = await service.create(w.user.id, PreRegistration(
        name=data["name"], phone=data.get("phone"), birth_year=data.get("birth_year"),
        conditions=frozenset(CONDITION_CHOICES[key][0])))
    if created is None:
        await reply(update, w.t("You are not in a care team yet, so I cannot pre-register patients."))
        return ConversationHandler.END
    url = f"https://t.me/{context.bot.username}?start={created.payload}"
    caption = w.t("Pre-registered #{id} {name}. Give them this personal link or QR code (works once, {days} days). "
                  "When they open it, their account joins this record:", id=created.patient_id, name=data["name"],
                  days=INVITE_DAYS) + f"\n{url}"
    await update.effective_chat.send_photo(InputFile(qr_png(url), filename="invite.png"),  # type: ignore[union-attr]
                                           caption=caption)
    return ConversationHandler.END


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    w = await who(update, context)
    context.user_data.pop("prereg", None)  # type: ignore[union-attr]
    await reply(update, w.t("Stopped. Nothing was saved."))
    return ConversationHandler.END


def handlers() -> list[object]:
    text = filters.TEXT & ~filters.COMMAND
    return [
        ConversationHandler(
            entry_points=[CommandHandler("preregister", start)],
            states={
                PR_NAME: [MessageHandler(text, name)],
                PR_PHONE: [MessageHandler(text, phone), CallbackQueryHandler(phone, pattern=r"^pr:phone:")],
                PR_BIRTH: [MessageHandler(text, birth), CallbackQueryHandler(birth, pattern=r"^pr:birth:")],
                PR_CONDITIONS: [CallbackQueryHandler(conditions, pattern=r"^pr:cond:")],
            },
            fallbacks=[CommandHandler("cancel", cancel)],
            name="preregister",
            persistent=True,
            allow_reentry=True,
        )
    ]
