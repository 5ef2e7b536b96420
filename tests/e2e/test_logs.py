"""At the production log level, a whole session of patient and doctor traffic leaves neither the
bot token nor any health value in the logs."""

from __future__ import annotations

import logging

import pytest
from telegram import Update
from telegram.ext import ContextTypes, MessageHandler, filters

from bot.app import CareCircle
from bot.sandbox import FakeTelegram
from tests.e2e.helpers import doctor, linked_patient


async def test_logs_hold_no_token_and_no_health_values(tg: FakeTelegram, app: CareCircle,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def boom(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        raise RuntimeError("simulated failure")  # the error path must log without message contents

    app.application.add_handler(MessageHandler(filters.Regex("心率"), boom), group=-1)
    doc = await doctor(tg, app)
    u = await linked_patient(tg, doc)
    await u.send("血压 186/112 心率 97")
    await doc.next_message(timeout=3)
    await u.send("空腹血糖 2.7")
    await u.next_message()
    await doc.press("Acknowledge")
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert any("error while handling update" in r.getMessage() for r in caplog.records)
    for secret in (tg.token, tg.token.split(":")[1], "186/112", "186", "2.7", "心率"):
        assert secret not in text, f"{secret!r} leaked into the logs"
