"""The sender cache (UserService.sender(cached=True), issue 4) end to end, on SQLite and PostgreSQL.

A typed reading may be handled with the sender answer cached by the previous update, because the
reading's INSERT stores it only if `users.revision` did not move since (migration 0008_sender_revision).
Each test changes what the cached answer holds from OUTSIDE the bot process's code (plain SQL on
another connection pool, or another process's services) between two readings, and checks the second
reading is handled as a fresh read would: graded against the new target, not stored for a patient who
is gone or withdrew consent, relayed to the circle for a patient now in circle mode. Each also checks
the cache was really used (the entry is there, at the revision it was read at), so the test is about
the check and not about a cache miss."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import CareCircle, build
from bot.config import Settings
from bot.sandbox import FakeTelegram, SimUser
from bot.services.container import Services
from storage.circle_models import CircleMessage
from storage.db import create_engine
from storage.models import Reading
from tests.conftest import app_settings
from tests.e2e.helpers import onboarded, until


@pytest.fixture
async def care(tg: FakeTelegram, db_url: str) -> AsyncIterator[CareCircle]:
    application = build(app_settings(tg, db_url))
    await application.start(serve_http=False)
    yield application
    await application.stop()


@pytest.fixture
async def raw(care: CareCircle) -> AsyncIterator[AsyncEngine]:
    """Another connection pool on the same database: what another process (the web dashboard, a
    scale-out worker, an operator's psql) writes through."""
    engine = create_engine(care.settings.database_url)
    yield engine
    await engine.dispose()


async def _sql(raw: AsyncEngine, statement: str, **params: object) -> None:
    async with raw.begin() as conn:
        await conn.execute(text(statement), params)


async def _readings(care: CareCircle) -> list[Reading]:
    async with care.services.sessions() as session:
        return list(await session.scalars(select(Reading).order_by(Reading.id)))


async def _first_reading_warms_the_cache(care: CareCircle, u: SimUser, user_id: int) -> int:
    """Fasting 6.8 is in the default target (4.4-7.0); afterwards the sender is cached."""
    await u.send("空腹血糖 6.8")
    assert "in your target range" in (await until(u, "Saved")).text
    cached = care.services.users.cache.get(u.id)
    assert cached is not None and cached.user.id == user_id and cached.revision is not None
    return cached.revision


async def _quiet(u: SimUser) -> list[str]:
    """What else reached the patient's chat (nothing may go out twice or before the check)."""
    await asyncio.sleep(0.5)
    return [m.text or "" for m in u.drain()]


async def test_a_target_changed_elsewhere_grades_the_next_reading(tg: FakeTelegram, care: CareCircle,
                                                                  raw: AsyncEngine) -> None:
    u, user_id = await onboarded(tg, care)
    read_at = await _first_reading_warms_the_cache(care, u, user_id)
    # The doctor tightens the fasting target from the dashboard (another process): plain SQL.
    await _sql(raw, "UPDATE patient_profiles SET target_fasting_high = 6.0 WHERE user_id = :id", id=user_id)
    assert care.services.users.cache.get(u.id).revision == read_at  # type: ignore[union-attr]  # still cached
    await u.send("空腹血糖 6.8")
    saved = await until(u, "Saved")
    assert "above your target" in saved.text, saved.text
    assert await _quiet(u) == []
    rows = await _readings(care)
    assert [(r.category, r.in_target) for r in rows] == [("in_target", True), ("above_target", False)]


async def test_a_patient_who_withdrew_consent_elsewhere_gets_nothing_stored(tg: FakeTelegram, care: CareCircle,
                                                                            raw: AsyncEngine) -> None:
    u, user_id = await onboarded(tg, care)
    await _first_reading_warms_the_cache(care, u, user_id)
    await _sql(raw, "UPDATE users SET consent_at = NULL WHERE id = :id", id=user_id)
    await u.send("135/85")
    answer = await u.next_message()
    assert "/start" in (answer.text or ""), answer.text
    assert await _quiet(u) == []
    assert len(await _readings(care)) == 1


async def test_a_patient_erased_by_another_process_gets_nothing_stored(tg: FakeTelegram, care: CareCircle) -> None:
    u, user_id = await onboarded(tg, care)
    await _first_reading_warms_the_cache(care, u, user_id)
    other = Services.build(Settings(database_url=care.settings.database_url))  # a second worker process
    try:
        await other.users.erase(user_id)
    finally:
        await other.engine.dispose()
    await u.send("135/85")
    answer = await u.next_message()
    assert "/start" in (answer.text or ""), answer.text  # a new, unknown user: asked to start first
    assert await _quiet(u) == []
    assert await _readings(care) == []
    # On SQLite the new account even gets the erased one's id back: only its revision tells them apart.
    assert (await care.services.users.by_telegram(u.id)).consent_at is None  # type: ignore[union-attr]


async def _circle_mode_elsewhere(raw: AsyncEngine, user_id: int, peer_id: int) -> None:
    """Another process puts both patients in a circle, the first one in circle mode."""
    await _sql(raw, "INSERT INTO circles (name, topic, language, max_members, locked, timezone, session_minutes, "
                    "created_at) VALUES ('Sunrise', 'hypertension', 'en', 30, false, 'Asia/Shanghai', 45, "
                    "CURRENT_TIMESTAMP)")
    for member, alias, talking in ((user_id, "Lotus", True), (peer_id, "Pine", False)):
        await _sql(raw, "INSERT INTO circle_members (circle_id, user_id, alias, role, status, talking, joined_at) "
                        "SELECT max(id), :u, :alias, 'member', 'active', :talking, CURRENT_TIMESTAMP FROM circles",
                   u=member, alias=alias, talking=talking)


async def _circle_messages(care: CareCircle) -> int:
    async with care.services.sessions() as session:
        return int(await session.scalar(select(func.count(CircleMessage.id))) or 0)


async def test_a_patient_now_in_circle_mode_talks_to_the_circle(tg: FakeTelegram, care: CareCircle,
                                                               raw: AsyncEngine) -> None:
    u, user_id = await onboarded(tg, care)
    peer, peer_id = await onboarded(tg, care, "Zhang")
    await _first_reading_warms_the_cache(care, u, user_id)
    await _circle_mode_elsewhere(raw, user_id, peer_id)
    await u.send("135/85")
    relayed = await until(peer, "Lotus: 135/85")
    assert relayed.text == "Lotus: 135/85"
    assert not any("Saved" in m for m in await _quiet(u))
    assert len(await _readings(care)) == 1  # the first reading only
    assert await _circle_messages(care) == 1


async def test_a_text_that_is_no_plain_reading_never_uses_the_cache(tg: FakeTelegram, care: CareCircle,
                                                                    raw: AsyncEngine) -> None:
    """Chatter has no checked write to catch a stale answer: its sender is read fresh, cache or not."""
    u, user_id = await onboarded(tg, care)
    peer, peer_id = await onboarded(tg, care, "Zhang")
    await _first_reading_warms_the_cache(care, u, user_id)
    await _circle_mode_elsewhere(raw, user_id, peer_id)
    assert care.services.users.cache.get(u.id) is not None
    await u.send("good morning everyone")
    assert (await until(peer, "Lotus:")).text == "Lotus: good morning everyone"
    assert await _quiet(u) == []
    assert await _circle_messages(care) == 1


async def test_an_alias_that_looks_like_a_reading_is_typed_with_the_sender_read_fresh(
        tg: FakeTelegram, care: CareCircle, raw: AsyncEngine) -> None:
    """While a patient types a circle alias, "135/85" is an alias, not a reading, and the join it leads
    to checks no revision: so it never uses the cached sender. The patient's language is changed
    elsewhere after the cache was warmed; the answer comes in the new language, and nothing is stored."""
    u, user_id = await onboarded(tg, care)
    _peer, peer_id = await onboarded(tg, care, "Zhang")
    await _first_reading_warms_the_cache(care, u, user_id)
    await _sql(raw, "INSERT INTO circles (name, topic, language, max_members, locked, timezone, session_minutes, "
                    "created_at) VALUES ('Sunrise', 'hypertension', 'en', 30, false, 'Asia/Shanghai', 45, "
                    "CURRENT_TIMESTAMP)")
    await _sql(raw, "INSERT INTO circle_members (circle_id, user_id, alias, role, status, talking, joined_at) "
                    "SELECT max(id), :u, 'Pine', 'leader', 'active', false, CURRENT_TIMESTAMP FROM circles", u=peer_id)
    invited = await care.services.circles.invite(peer_id)
    assert invited.ok, invited
    await u.send(f"/start {invited.extra['payload']}")
    assert "Your alias" in (await until(u, "Sunrise")).text
    await u.press("Choose another alias")
    assert "Type the alias" in (await until(u, "alias")).text
    await _sql(raw, "UPDATE users SET language = 'zh_CN', revision = revision + 1 WHERE id = :id", id=user_id)
    cached = care.services.users.cache.get(u.id)
    assert cached is not None and cached.user.language == "en"  # the cache still holds the old answer
    await u.send("135/85")
    asked = await until(u, "Sunrise")
    assert "邀请您加入互助小组" in asked.text and "135/85" in asked.text, asked.text  # read fresh: Chinese
    assert await _quiet(u) == []
    assert len(await _readings(care)) == 1  # the first reading only
