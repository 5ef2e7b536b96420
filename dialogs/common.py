"""What every dialog needs: the services, who is talking, their language, and keyboards."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import (
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.ext import ContextTypes

from bot.services.container import Services
from bot.services.users import StaleSender
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
    # Read with the user in the same query (see UserService.sender), for the hot reading path;
    # `profile()` still reads afresh for flows that change the profile within an update.
    loaded_profile: PatientProfile | None = None
    logs_for_others: bool = True  # unknown -> ask the database
    circle_talking: bool | None = None  # None: unknown -> ask the database
    # Not None: everything above came from the sender cache unchecked (see `with_cached_sender`); the
    # one write this update makes must check it (dialogs.readings.save -> ReadingService.record).
    revision: int | None = None

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

    async def talking_in_circle(self) -> bool:
        """Circle mode (free text goes to the peer circle), read with the user when possible."""
        if self.circle_talking is None:
            self.circle_talking = await self.services.circles.talking(self.user.id)
        return self.circle_talking

    async def profile_of(self, patient_id: int) -> PatientProfile | None:
        """The profile loaded with this update when it is the sender's own, else one query."""
        if patient_id == self.user.id and self.loaded_profile is not None:
            return self.loaded_profile
        return await self.services.users.profile(patient_id)


def services_of(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data["services"]


# Keyed by the Update object itself (PTB hands the same object to every handler of one update);
# update_ids alone repeat across bots and test runs. The stored reference keeps id() unique.
# Only updates still being handled need an entry; an evicted one just reloads. Each entry holds a
# whole Update (~13 KB), so keep the cap near the number of updates in flight (soak: 2 000 -> +26 MB).
_RECENT: OrderedDict[int, tuple[Update, Who]] = OrderedDict()
_RECENT_MAX = 256


async def who(update: Update, context: ContextTypes.DEFAULT_TYPE, *, fresh: bool = False,
              cached: bool = False) -> Who:
    """The sender, loaded once per update (several handlers of one update share it);
    `fresh=True` reloads after this update changed the user. `cached=True` may answer from the
    sender cache: only `with_cached_sender` asks for that."""
    recent = _RECENT.get(id(update))
    if not fresh and recent is not None and recent[0] is update:
        return recent[1]
    services = services_of(context)
    tg_user = update.effective_user
    chat = update.effective_chat
    assert tg_user is not None
    # A user's private chat id is their user id; a message in a group (a circle's linked group) must
    # not turn the group into the chat their reminders and alerts go to.
    private = chat.id if chat is not None and chat.type == "private" else tg_user.id
    sender = await services.users.sender(tg_user.id, private, tg_user.first_name or "", tg_user.language_code,
                                         cached=cached and not fresh)
    w = Who(services, sender.user, translator(sender.user.language), sender.profile, sender.logs_for_others,
            sender.circle_talking, sender.revision)
    _RECENT[id(update)] = (update, w)
    if len(_RECENT) > _RECENT_MAX:
        _RECENT.popitem(last=False)
    return w


async def with_cached_sender(update: Update, context: ContextTypes.DEFAULT_TYPE, allowed: bool,
                             handler: Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]) -> None:
    """Run `handler` for `update`, with the sender taken from the sender cache when `allowed`.

    THE RULE: a cached sender (UserService.sender(cached=True), Who.revision not None) may be acted on
    only by a path that sends nothing and writes nothing before ONE write that checks, inside its own
    statement, that `users.revision` is still the cached one. Today that is one path: a private free
    text that is a single reading stored straight away (dialogs.readings.stored_at_once), whose INSERT
    does the check (ReadingService.record(revision=...)). `allowed` says the update is such a text;
    every other handler and text reads the sender fresh, as `who` does by default.

    When the check fails (the user, profile, roles, caregiver links or circle mode changed since the
    answer was cached, in any process), nothing was stored or sent: forget the cached answer and
    handle the update again from the start, with the sender read fresh."""
    if allowed:
        await who(update, context, cached=True)  # the handler's own `who` calls get this one
    try:
        await handler(update, context)
    except StaleSender:
        if update.effective_user is not None:
            services_of(context).users.cache.forget(update.effective_user.id)
        _RECENT.pop(id(update), None)
        await handler(update, context)


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
        message = update.effective_message
        if kwargs.keys() <= {"reply_markup"} and _plain_private(message):
            await _send_text(message, text, kwargs.get("reply_markup"))
        else:
            await message.reply_text(text, **kwargs)  # type: ignore[arg-type]


def _plain_private(message: Message) -> bool:
    """A message for which `reply_text(text, reply_markup=...)` sends just chat_id, text and the
    markup: a private chat (PTB quotes only outside private chats), not a forum topic (no
    message_thread_id), no business connection, no channel direct-messages topic, and a bot
    without `Defaults` or arbitrary callback data (nothing for PTB to insert or rewrite)."""
    bot = message.get_bot()
    return (message.chat.type == Chat.PRIVATE and not message.is_topic_message
            and message.business_connection_id is None and message.direct_messages_topic is None
            and getattr(bot, "defaults", None) is None and getattr(bot, "callback_data_cache", None) is None)


async def _send_text(message: Message, text: str, reply_markup: object) -> None:
    """`message.reply_text` for a `_plain_private` message, minus building a `Message` out of
    Telegram's answer (issue 4: `Message.de_json` and PTB's per-call argument handling cost
    ~0.3 ms of a reading's CPU, and `reply` never used the answer). Same request, same
    `_post` -> rate limiter -> HTTP path, same errors; tests/e2e/test_reply_request.py checks
    the bytes sent are identical to `reply_text`'s."""
    await message.get_bot()._post("sendMessage", {"chat_id": message.chat_id, "text": text,
                                                  "reply_markup": reply_markup})


async def answer(update: Update, text: str | None = None) -> None:
    """Stop the button's spinner; Telegram refuses a late or second answer, which is harmless."""
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(text)
        except Exception:
            pass  # "query is too old" must not break the flow
