"""Sandbox tools: :class:`FakeTelegram` (an in-process Bot API server with simulated users)."""

from bot.sandbox.fake_telegram import (
    BotMessage,
    ChatEvent,
    FakeTelegram,
    NoMessageError,
    SimGroup,
    SimUser,
)

__all__ = ["BotMessage", "ChatEvent", "FakeTelegram", "NoMessageError", "SimGroup", "SimUser"]
