"""Hypothesis-generated input against the whole app through FakeTelegram: random text (any
unicode, huge, zero-width and RTL characters, SQL and HTML), forged callback data, edits,
stickers. The bot must never hit its error handler and must keep answering."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import CareCircle
from bot.sandbox import FakeTelegram
from storage.models import Alert, Reading
from tests.e2e.helpers import doctor, linked_patient

NASTY = [
    "", " ", "\u200b", "\u202e150/95", "١٥٠/٩٥", "１５０／９５", "'; DROP TABLE readings; --", "<b>150/95",
    "<script>alert(1)</script>", "150/95" * 700, "x" * 4096, "🩸🩸🩸 6.8", "\x00", "/start " + "A" * 70,
    "/start p-" + "x" * 60, "/patient 1 OR 1=1", "HI", "LO", "300/200", "60/59", "血糖 999", "体重 0",
]


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


actions = st.one_of(
    st.tuples(st.just("text"), st.one_of(st.sampled_from(NASTY), st.text(max_size=300))),
    st.tuples(st.just("data"), st.one_of(st.text(min_size=1, max_size=64).filter(lambda s: len(s.encode()) <= 64),
                                         st.sampled_from(["al:ack:1", "al:ack:999999", "rd:ok:zz", "sy:1:none",
                                                          "md:taken:1", "fam:rm:1", "pn:0::", "ob:lang:xx"]))),
    st.tuples(st.just("edit"), st.text(max_size=50)),
    st.tuples(st.just("sticker"), st.just("")),
)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(actions, min_size=1, max_size=4))
async def test_random_updates_never_crash_and_never_change_others_state(tg: FakeTelegram, app: CareCircle,
                                                                        steps) -> None:  # type: ignore[no-untyped-def]
    errors = _Errors()
    logging.getLogger("bot.app").addHandler(errors)
    try:
        if "victim" not in app.application.bot_data:
            doc = await doctor(tg, app)
            victim = await linked_patient(tg, doc)
            await victim.send("186/112")
            await doc.next_message(timeout=3)
            app.application.bot_data["victim"] = victim
        tg.reset_rate_limits()
        stranger = tg.user("Fuzz \u202e\u200b🙂", language_code="en")
        mine = await stranger.send("/help")
        last = (await stranger.next_message()).message_id
        for kind, value in steps:
            if kind == "text":
                if value.strip():
                    await stranger.send(value)
            elif kind == "data":
                await stranger.press_data(last, value)
            elif kind == "edit":
                await stranger.edit(mine, value or "x")
            else:
                await stranger.send_sticker()
        tg.reset_rate_limits()
        await stranger.send("/help")
        while "/bp" not in (await stranger.next_message(timeout=5)).text:
            pass
        assert errors.records == [], [r.getMessage() for r in errors.records]
        async with app.services.sessions() as session:
            # The victim's urgent alert is still open: forged "al:ack:<id>" from a stranger changed nothing.
            assert await session.scalar(select(func.count(Alert.id)).where(Alert.status == "open")) == 1
            # A stranger who never consented stored nothing.
            stranger_user = await app.services.users.by_telegram(stranger.id)
            assert stranger_user is not None
            assert await session.scalar(select(func.count(Reading.id))
                                        .where(Reading.patient_id == stranger_user.id)) == 0
    finally:
        logging.getLogger("bot.app").removeHandler(errors)
