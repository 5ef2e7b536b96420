"""Public entry point of the fake Bot API server (implementation in :mod:`bot.sandbox.fake`).

``async with FakeTelegram() as tg:`` starts an aiohttp server on 127.0.0.1 (random port) that speaks the
Bot API to a real PTB bot (``base_url=tg.base_url``), and gives tests simulated users (``tg.user(...)``)
who write, press buttons, block the bot, and see exactly what the bot managed to send.  It answers errors
and flood limits as ``telegram-facts.md`` lists them, and ``tg.fail_next(...)`` injects failures.
"""

from bot.sandbox.fake import (
    ApiError,
    BotMessage,
    CallbackAnswer,
    ChatEvent,
    FakeTelegram,
    NoMessageError,
    RateLimitEvent,
    SimGroup,
    SimUser,
    Stats,
)

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
