"""An update whose PostgreSQL connection is terminated is handled again, once, only when the first
attempt neither committed a write nor sent anything (bot/telegram/retry.py).

The fault is real: right before a chosen statement, the server is told to terminate that very
connection (`pg_terminate_backend` of its pid), so the driver sees what a restart or a network cut
gives it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.util import await_only

from bot.app import CareCircle, build
from bot.sandbox import FakeTelegram, SimUser
from bot.telegram.retry import ATTEMPT, Attempt, watch
from storage.db import create_engine
from storage.tips_models import TipView
from tests.conftest import app_settings
from tests.e2e.helpers import onboarded

SORRY = "something went wrong"
TIPS_STATEMENT = "max(tip_views.round)"  # the first query of TipService.next_for, before its INSERT


@pytest.fixture
async def pg_app(tg: FakeTelegram, pg_url: str) -> AsyncIterator[CareCircle]:
    care = build(app_settings(tg, pg_url))
    await care.start()
    yield care
    await care.stop()


class Terminator:
    """Terminates the connection about to run a statement containing `match`, `times` times."""

    def __init__(self, care: CareCircle, match: str, times: int = 1) -> None:
        self.match, self.left, self.done = match, times, 0
        self.dsn = care.settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
        event.listen(care.services.engine.sync_engine, "before_cursor_execute", self)

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.left and self.match in statement:
            self.left -= 1
            pid = conn.connection.dbapi_connection._connection.get_server_pid()
            await_only(self._terminate(pid))  # we are inside SQLAlchemy's greenlet: run the coroutine
            self.done += 1

    async def _terminate(self, pid: int) -> None:
        admin = await asyncpg.connect(self.dsn)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await asyncio.sleep(0.05)  # let the client read the server's goodbye


async def tip_views(care: CareCircle, user_id: int) -> int:
    async with care.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(TipView).where(
            TipView.user_id == user_id)) or 0)


async def settle(u: SimUser) -> list[str]:
    await asyncio.sleep(2.0)
    return [m.text or "" for m in u.drain()]


def processor(care: CareCircle) -> Any:
    return care.application.update_processor


async def test_read_only_failure_is_handled_again(tg: FakeTelegram, pg_app: CareCircle) -> None:
    u, user_id = await onboarded(tg, pg_app)
    killer = Terminator(pg_app, TIPS_STATEMENT)
    await u.send("/tips")
    tip = await u.next_message(timeout=30)
    assert killer.done == 1
    assert tip.text.startswith("💡 ") and "Source: " in tip.text, tip.text
    assert not [t for t in await settle(u) if SORRY in t]  # and no apology before or after it
    assert await tip_views(pg_app, user_id) == 1  # the first attempt's INSERT never happened
    assert processor(pg_app).retried == 1


async def test_user_data_is_put_back_before_the_retry(tg: FakeTelegram, pg_app: CareCircle) -> None:
    """A handler that pops its pending data and then fails must find it again on the retry
    (what guided/readings/questions do: pop the draft, then write)."""
    u, _user_id = await onboarded(tg, pg_app)
    await u.send("/tips")
    await u.next_message(timeout=30)
    data = pg_app.application.user_data[u.id]
    data["draft"] = {"bp": [130, 80]}
    seen: list[object] = []
    original = pg_app.services.tips.next_for

    async def popping(user_id: int) -> Any:
        seen.append(data.pop("draft", None))
        return await original(user_id)

    pg_app.services.tips.next_for = popping  # type: ignore[method-assign]
    killer = Terminator(pg_app, TIPS_STATEMENT)
    try:
        await u.send("/tips")
        assert (await u.next_message(timeout=30)).text.startswith("💡 ")
    finally:
        pg_app.services.tips.next_for = original  # type: ignore[method-assign]
    assert killer.done == 1 and processor(pg_app).retried == 1
    assert seen == [{"bp": [130, 80]}, {"bp": [130, 80]}]  # the retry found the draft again
    assert "draft" not in data


async def test_no_retry_after_a_committed_write(tg: FakeTelegram, pg_app: CareCircle) -> None:
    u, user_id = await onboarded(tg, pg_app)
    u.first_name = "Wang Wei"  # who() commits the new name before the handler runs
    killer = Terminator(pg_app, TIPS_STATEMENT)
    await u.send("/tips")
    sorry = await u.next_message(timeout=30)
    assert killer.done == 1
    assert SORRY in sorry.text, sorry.text
    assert not [t for t in await settle(u) if t.startswith("💡 ")]
    assert processor(pg_app).retried == 0 and await tip_views(pg_app, user_id) == 0


async def test_no_retry_after_a_reply_was_sent(tg: FakeTelegram, pg_app: CareCircle) -> None:
    u, user_id = await onboarded(tg, pg_app)
    await u.send("/tips")
    first = await u.next_message(timeout=30)
    killer = Terminator(pg_app, TIPS_STATEMENT)
    await u.press("Another", first.message_id)  # answerCallbackQuery goes out before the query
    sorry = await u.next_message(timeout=30)
    assert killer.done == 1
    assert SORRY in sorry.text, sorry.text
    assert await settle(u) == []
    assert processor(pg_app).retried == 0 and await tip_views(pg_app, user_id) == 1


async def test_only_one_retry(tg: FakeTelegram, pg_app: CareCircle) -> None:
    u, user_id = await onboarded(tg, pg_app)
    killer = Terminator(pg_app, TIPS_STATEMENT, times=2)
    await u.send("/tips")
    sorry = await u.next_message(timeout=30)
    assert killer.done == 2
    assert SORRY in sorry.text, sorry.text
    assert await settle(u) == []  # one apology, no tip
    assert processor(pg_app).retried == 1 and await tip_views(pg_app, user_id) == 0


async def test_only_committed_writes_mark_the_attempt(db_url: str) -> None:
    engine = create_engine(db_url)
    watch(engine)
    watch(engine)  # idempotent: one set of listeners
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        attempt = Attempt(1)
        token = ATTEMPT.set(attempt)
        try:
            async with engine.begin() as conn:  # a read-only transaction commits too: not a write
                await conn.execute(text("SELECT count(*) FROM t"))
            assert not attempt.committed
            with pytest.raises(RuntimeError):
                async with engine.begin() as conn:  # a write rolled back: nothing committed
                    await conn.execute(text("INSERT INTO t VALUES (1)"))
                    raise RuntimeError("handler failed")
            assert not attempt.committed
            async with engine.begin() as conn:
                await conn.execute(text("SELECT 1"))
            assert not attempt.committed  # the rolled-back write left no mark on the connection
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (2)"))
            assert attempt.committed
        finally:
            ATTEMPT.reset(token)
        outside = Attempt(2)
        async with engine.begin() as conn:  # a write by someone else (no current attempt) marks nothing
            await conn.execute(text("INSERT INTO t VALUES (3)"))
        assert not outside.committed
    finally:
        await engine.dispose()
