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
    circles,
    dashboard,
    doctor,
    education,
    family,
    guided,
    onboarding,
    quiz,
    readings,
    reminders,
    settings,
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
        *tips.handlers(), *quiz.handlers(), *tools.handlers(),  # before basics: /cancel inside a tool
        *settings.handlers(),
        *reminders.handlers(),  # a conversation (typed times): before the free-text handlers
        *basics.handlers(),
        *readings.handlers(),
        *doctor.handlers(),
        *family.handlers(),
        *dashboard.handlers(),
        *circles.handlers(),  # circle mode: its free text and media; otherwise hands text to readings
        *education.handlers(),
        readings.text_handler(),
        *basics.fallback_handlers(),
        CallbackQueryHandler(_stale_button),
    ]
    for handler in ordered:
        application.add_handler(handler)  # type: ignore[arg-type]
