"""What every dialog needs: the services, who is talking, their language, and keyboards."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot.services.container import Services
from content.i18n import Translator, translator
from storage.models import PatientProfile, User


def _(msgid: str) -> str:
    """Mark for extraction; translate later with the reader's `t`."""
    return msgid


@dataclass
class Who:
    """The person behind an update, loaded once per update."""

    services: Services
    user: User
    t: Translator

    @property
    def onboarded(self) -> bool:
        return self.user.consent_at is not None and self.user.onboarded_at is not None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.user.timezone)

    def local_now(self) -> datetime:
        return self.services.clock.now().astimezone(self.tz)

    async def profile(self) -> PatientProfile | None:
        return await self.services.users.profile(self.user.id)


def services_of(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data["services"]


# Keyed by the Update object itself (PTB hands the same object to every handler of one update);
# update_ids alone repeat across bots and test runs. The stored reference keeps id() unique.
_RECENT: OrderedDict[int, tuple[Update, Who]] = OrderedDict()


async def who(update: Update, context: ContextTypes.DEFAULT_TYPE, *, fresh: bool = False) -> Who:
    """The sender, loaded once per update (several handlers of one update share it);
    `fresh=True` reloads after this update changed the user."""
    cached = _RECENT.get(id(update))
    if not fresh and cached is not None and cached[0] is update:
        return cached[1]
    services = services_of(context)
    tg_user = update.effective_user
    chat = update.effective_chat
    assert tg_user is not None
    user = await services.users.ensure(tg_user.id, chat.id if chat else tg_user.id, tg_user.first_name or "",
                                       tg_user.language_code)
    w = Who(services, user, translator(user.language))
    _RECENT[id(update)] = (update, w)
    if len(_RECENT) > 2000:
        _RECENT.popitem(last=False)
    return w


def inline(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                                 for row in rows])


# Main menu: big reply-keyboard buttons for elderly users. Each label maps to a command.
MENU = [
    [("bp", _("🩺 Blood pressure")), ("glucose", _("🩸 Glucose"))],
    [("meds", _("💊 Medicines")), ("weight", _("⚖️ Weight"))],
    [("history", _("📈 History")), ("tips", _("💡 Tips"))],
    [("settings", _("⚙️ Settings")), ("help", _("❓ Help"))],
]


def main_menu(t: Translator) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup([[KeyboardButton(t(label)) for _cmd, label in row] for row in MENU],
                               resize_keyboard=True, is_persistent=True)


def menu_pattern(command: str) -> re.Pattern[str]:
    """A regex matching the menu button for `command` in every language we speak."""
    label = next(label for row in MENU for cmd, label in row if cmd == command)
    texts = {translator(lang)(label) for lang in ("en", "zh_CN")}
    return re.compile("^(" + "|".join(re.escape(x) for x in sorted(texts)) + ")$")


async def reply(update: Update, text: str, **kwargs: object) -> None:
    """Answer in the chat the update came from (message or button press)."""
    if update.callback_query is not None and update.callback_query.message is not None:
        await update.callback_query.message.reply_text(text, **kwargs)  # type: ignore[arg-type]
    elif update.effective_message is not None:
        await update.effective_message.reply_text(text, **kwargs)  # type: ignore[arg-type]


async def answer(update: Update, text: str | None = None) -> None:
    """Stop the button's spinner; Telegram refuses a late or second answer, which is harmless."""
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(text)
        except Exception:
            pass  # "query is too old" must not break the flow
