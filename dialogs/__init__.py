"""Conversation handlers, one module per flow.

All handlers sit in ONE group, in priority order: PTB runs the first matching handler of each
group, so a second group would handle a text twice (once in a flow, once as free text).
Order: open conversations, commands and buttons, free text, then the catch-alls.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from dialogs import basics, doctor, family, guided, onboarding, readings, settings
from dialogs.common import answer, who


async def _stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button from an old message, another flow, or forged data: say so, change nothing."""
    w = await who(update, context)
    await answer(update, w.t("This button has expired."))


def register(application: Application) -> None:  # type: ignore[type-arg]
    ordered = [
        *onboarding.handlers(),
        *guided.handlers(),
        *settings.handlers(),
        *basics.handlers(),
        *readings.handlers(),
        *doctor.handlers(),
        *family.handlers(),
        readings.text_handler(),
        *basics.fallback_handlers(),
        CallbackQueryHandler(_stale_button),
    ]
    for handler in ordered:
        application.add_handler(handler)  # type: ignore[arg-type]
