"""FakeTelegram internals, split by concern; import the public names from :mod:`bot.sandbox`."""

from bot.sandbox.fake.errors import ApiError
from bot.sandbox.fake.models import BotMessage, CallbackAnswer, ChatEvent, RateLimitEvent, Stats
from bot.sandbox.fake.server import FakeTelegram
from bot.sandbox.fake.users import NoMessageError, SimGroup, SimUser

__all__ = [
    "ApiError",
    "BotMessage",
    "CallbackAnswer",
    "ChatEvent",
    "FakeTelegram",
    "NoMessageError",
    "RateLimitEvent",
    "SimGroup",
    "SimUser",
    "Stats",
]
