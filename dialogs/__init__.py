"""Conversation handlers, one module per flow.

All handlers sit in ONE group, in priority order: PTB runs the first matching handler of each
group, so a second group would handle a text twice (once in a flow, once as free text).
Order: open conversations, commands and buttons, free text, then the catch-alls.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from dialogs import (
    basics,
    chat_followups,
    circles,
    corrections,
    dashboard,
    doctor,
    education,
    family,
    guided,
    onboarding,
    plans,
    preregister,
    questions,
    quiz,
    readings,
    reminders,
    settings,
    symptoms,
    tips,
    tools,
)
from dialogs.common import answer, who


async def _stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button from an old message, another flow, or forged data: say so, change nothing."""
    w = await who(update, context)
    await answer(update, w.t("This button has expired."))


def register(application: Application) -> None:  # type: ignore[type-arg]
    ordered = [
        *onboarding.handlers(),
        *guided.handlers(),
        *corrections.handlers(),  # /edit: a conversation, before the free-text handlers
        *preregister.handlers(),  # /preregister (doctors): a conversation with typed name/phone/year
        *tips.handlers(), *quiz.handlers(), *tools.handlers(),  # before basics: /cancel inside a tool
        *settings.handlers(),
        *reminders.handlers(),  # a conversation (typed times): before the free-text handlers
        *plans.handlers(),  # /plan: the doctor's plan editor is a conversation (typed medicine lines)
        *questions.handlers(),  # /ask and the Answer button: conversations, before basics' /cancel
        *chat_followups.handlers(),  # follow-ups in the chat; the doctor's signs: a conversation with /cancel
        *basics.handlers(),
        *readings.handlers(),
        *symptoms.handlers(),
        *doctor.handlers(),
        *family.handlers(),
        *dashboard.handlers(),
        questions.reply_handler(),  # a doctor's reply to a question; any other reply goes to circles.on_text
        *circles.handlers(),  # circle mode: its free text and media; otherwise hands text to readings
        *education.handlers(),
        readings.text_handler(),
        *basics.fallback_handlers(),
        CallbackQueryHandler(_stale_button),
    ]
    for handler in ordered:
        application.add_handler(handler)  # type: ignore[arg-type]
