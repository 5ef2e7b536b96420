"""Browser and web chat fixtures (defined in webchat_support.py so test modules can import its helpers)."""

from webchat_support import echo_bot, webchat

__all__ = ["echo_bot", "webchat"]
