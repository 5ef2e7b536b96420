"""Which incoming updates may be dangerous: a cheap look at the text before it is handled.

Why: under overload every update waits its turn, and an urgent reading (185/115, a hypo, chest
pain) would wait behind hundreds of ordinary ones before its alert could even be written. The
processor (bot/telegram/processor.py) lets the chats this says "urgent" go first.

This runs the same pure parser and assessment the reading handler runs (bot.clinical, tens of
microseconds a message), with default targets and no database: it only orders work, it decides
nothing. A false "urgent" costs an ordinary reading a place in the queue; a missed one is handled
in arrival order as before, and the handler still raises its alert.
"""

from __future__ import annotations

import logging

from telegram import Update

from bot.clinical import assess, detect_danger_signs, parse_readings

log = logging.getLogger(__name__)
MAX_TEXT = 1000  # longer texts are not readings; do not spend time on them here


def urgent_text(text: str) -> bool:
    """True when the text holds a reading the assessment calls urgent, or a danger sign."""
    if not text or len(text) > MAX_TEXT or text.startswith("/"):
        return False
    symptoms = detect_danger_signs(text)
    if symptoms:
        return True
    for reading in parse_readings(text):
        if reading.rejected:
            continue
        try:
            result = assess(reading, symptoms=symptoms)
        except (ValueError, TypeError, AttributeError):  # a meter token ("HI") has no value to assess
            continue
        if result.urgent or result.alert_rule:
            return True
    return False


def is_urgent(update: object) -> bool:
    """The processor's classifier: a message or edited message whose text (or caption) is urgent."""
    if not isinstance(update, Update):
        return False
    message = update.message or update.edited_message
    if message is None:
        return False
    text = message.text or message.caption or ""
    try:
        return urgent_text(text)
    except Exception:  # ordering must never break handling
        log.exception("could not triage update %s", update.update_id)
        return False
