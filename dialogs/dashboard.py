"""/dashboard: a doctor gets a one-time link (10 minutes) that logs them into the web dashboard.

A non-doctor gets the unknown-command answer, like every doctor command."""

from __future__ import annotations

from telegram import LinkPreviewOptions, Update
from telegram.ext import CommandHandler, ContextTypes

from bot.config import Settings
from dialogs.common import reply
from dialogs.doctor import _doctor


def dashboard_base_url(settings: Settings) -> str:
    """PUBLIC_BASE_URL when the dashboard sits behind a proxy, else the bot's own web server."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    return f"http://{settings.http_host}:{settings.http_port}"


async def dashboard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    token = await w.services.dashboard.create_login(w.user.id)
    link = f"{dashboard_base_url(w.services.settings)}/dashboard/login?token={token}"
    # No link preview: a preview fetch must not even see the page (the login itself needs a button press).
    await reply(update, w.t("Your dashboard login link (works once, for 10 minutes; do not forward it):\n{link}",
                            link=link), link_preview_options=LinkPreviewOptions(is_disabled=True))


def handlers() -> list[CommandHandler]:  # type: ignore[type-arg]
    return [CommandHandler("dashboard", dashboard)]
