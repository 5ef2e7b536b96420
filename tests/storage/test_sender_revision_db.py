"""`users.revision` (migration 0008_sender_revision) on SQLite and PostgreSQL: every INSERT, UPDATE and
DELETE of the five tables the sender answer is read from gives the user(s) concerned a new revision, in
the writing statement; a value is never handed out twice (not even to a re-created user with the same
id); and the reading INSERT that trusts a cached sender stores nothing once the revision moved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.services.container import Services
from bot.services.readings import NewReading
from bot.services.users import Onboarding, SenderCache, StaleSender
from storage.db import create_engine
from storage.models import Reading

NOW = datetime(2026, 11, 24, 2, 0)  # naive UTC: what the columns store (plain SQL skips UTCDateTime)


@pytest.fixture
async def raw(services: Services, db_url: str) -> AsyncIterator[AsyncEngine]:
    """Another connection pool on the same database: plain SQL, as another process would write."""
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


async def _user(services: Services, tg_id: int) -> int:
    user = await services.users.ensure(tg_id, tg_id, f"u{tg_id}", "en")
    return user.id


async def _revisions(raw: AsyncEngine) -> dict[int, int]:
    async with raw.connect() as conn:
        return {uid: rev for uid, rev in (await conn.execute(text("SELECT id, revision FROM users"))).all()}


async def _sql(raw: AsyncEngine, statement: str, **params: object) -> None:
    async with raw.begin() as conn:
        await conn.execute(text(statement), params)


# (table, INSERT, UPDATE, DELETE): :a is the user the row belongs to, :b a second user (the caregiver of a
# link; the other member of a circle). Each statement touches rows of :a (and :b for caregiver_links) only.
CASES = {
    "users": (None, "UPDATE users SET display_name = 'x' WHERE id = :a", None),
    "patient_profiles": ("INSERT INTO patient_profiles (user_id, conditions, glucose_unit, risk) "
                         "VALUES (:a, 'hypertension', 'mmol', 'standard')",
                         "UPDATE patient_profiles SET target_sys = 130 WHERE user_id = :a",
                         "DELETE FROM patient_profiles WHERE user_id = :a"),
    "user_roles": ("INSERT INTO user_roles (user_id, role) VALUES (:a, 'patient')",
                   "UPDATE user_roles SET role = 'caregiver' WHERE user_id = :a",
                   "DELETE FROM user_roles WHERE user_id = :a"),
    "caregiver_links": ("INSERT INTO caregiver_links (patient_id, caregiver_id, receive_alerts, receive_summary, "
                        "can_log, created_at) VALUES (:a, :b, true, true, false, :now)",
                        "UPDATE caregiver_links SET can_log = true WHERE patient_id = :a",
                        "DELETE FROM caregiver_links WHERE patient_id = :a"),
    "circle_members": ("INSERT INTO circle_members (circle_id, user_id, alias, role, status, talking, joined_at) "
                       "VALUES (:c, :a, 'Lotus', 'member', 'active', false, :now)",
                       "UPDATE circle_members SET talking = true WHERE user_id = :a",
                       "DELETE FROM circle_members WHERE user_id = :a"),
}


@pytest.mark.parametrize("table", list(CASES))
async def test_every_write_of_the_five_tables_gives_a_new_revision(services: Services, raw: AsyncEngine,
                                                                    table: str) -> None:
    a, b, bystander = [await _user(services, t) for t in (11, 12, 13)]
    await _sql(raw, "INSERT INTO circles (name, topic, language, max_members, locked, timezone, session_minutes, "
                    "created_at) VALUES ('Sunrise', 'hypertension', 'en', 30, false, 'Asia/Shanghai', 45, :now)",
               now=NOW)
    async with raw.connect() as conn:
        circle = (await conn.execute(text("SELECT max(id) FROM circles"))).scalar()
    # Who must get a new revision: the row's user; for a caregiver link both people.
    changed = {a, b} if table == "caregiver_links" else {a}
    insert, change, remove = CASES[table]
    if table == "users":
        before = await _revisions(raw)
        b2 = await _user(services, 14)  # INSERT: a new user starts above every revision handed out so far
        assert (await _revisions(raw))[b2] > max(before.values())
    for statement in (insert, change, remove):
        if statement is None:
            continue
        before = await _revisions(raw)
        await _sql(raw, statement, a=a, b=b, c=circle, now=NOW)
        after = await _revisions(raw)
        moved = {uid for uid in before if after.get(uid) != before[uid]}
        assert moved == changed, (statement, before, after)
        assert min(after[uid] for uid in changed) > max(before.values())  # never a value used before
        assert after[bystander] == before[bystander]


async def test_a_recreated_user_never_gets_an_old_revision_back(services: Services, raw: AsyncEngine) -> None:
    """SQLite hands the highest user id out again after a delete: the new user must not be able to
    reach the old one's revision (that would pass the reading INSERT's check with the old profile)."""
    old = await _user(services, 21)
    await services.users.complete_onboarding(old, Onboarding("en", "Asia/Shanghai", frozenset({"hypertension"}), 1950))
    seen = set((await _revisions(raw)).values())
    await services.users.erase(old)
    new = await _user(services, 22)
    taken = [(await _revisions(raw))[new]]
    await services.users.complete_onboarding(new, Onboarding("en", "Asia/Shanghai", frozenset({"diabetes"}), 1980))
    taken.append((await _revisions(raw))[new])
    for n in range(5):
        await _sql(raw, "UPDATE users SET display_name = :n WHERE id = :a", a=new, n=str(n))
        taken.append((await _revisions(raw))[new])
    assert not seen & set(taken), (seen, taken)


async def test_the_checked_insert_stores_nothing_once_the_revision_moved(services: Services,
                                                                         raw: AsyncEngine) -> None:
    uid = await _user(services, 31)
    await services.users.complete_onboarding(uid, Onboarding("en", "Asia/Shanghai", frozenset({"hypertension"}), 1950))
    sender = await services.users.sender(31, 31, "u31", "en")
    read_at = sender.user.revision
    assert read_at == (await _revisions(raw))[uid]
    known = (sender.user, sender.profile)
    stored = await services.readings.record(uid, NewReading("bp", 130, 80), entered_by=uid, known=known,
                                            revision=read_at, source_update_id=1)
    assert not stored.duplicate
    await _sql(raw, "UPDATE patient_profiles SET target_sys = 120 WHERE user_id = :a", a=uid)
    with pytest.raises(StaleSender):
        await services.readings.record(uid, NewReading("bp", 131, 81), entered_by=uid, known=known,
                                       revision=read_at, source_update_id=2)
    with pytest.raises(StaleSender):  # a redelivery of a stored update checks too
        await services.readings.record(uid, NewReading("bp", 130, 80), entered_by=uid, known=known,
                                       revision=read_at, source_update_id=1)
    async with services.sessions() as session:
        assert await session.scalar(select(func.count(Reading.id))) == 1


async def test_only_plain_patients_are_cached_and_the_cache_is_bounded(services: Services, raw: AsyncEngine) -> None:
    users = services.users
    users.cache = SenderCache(size=2)
    patients = []
    for tg_id in (41, 42, 43):
        uid = await _user(services, tg_id)
        await users.complete_onboarding(uid, Onboarding("en", "Asia/Shanghai", frozenset({"hypertension"}), 1950))
        patients.append(uid)
    helper = await _user(services, 44)  # logs for patient 41: readings ask "whose?", never cached
    await users.complete_onboarding(helper, Onboarding("en", "Asia/Shanghai", frozenset({"diabetes"}), 1960))
    await _sql(raw, "INSERT INTO caregiver_links (patient_id, caregiver_id, receive_alerts, receive_summary, can_log, "
                    "created_at) VALUES (:a, :b, true, true, true, :now)", a=patients[0], b=helper, now=NOW)
    await _user(services, 45)  # never onboarded
    for tg_id in (41, 44, 45):
        fresh = await users.sender(tg_id, tg_id, f"u{tg_id}", "en", cached=True)
        assert fresh.revision is None  # read now: nothing to check
    assert users.cache.get(44) is None and users.cache.get(45) is None
    hit = await users.sender(41, 41, "u41", "en", cached=True)
    assert hit.revision == (await _revisions(raw))[patients[0]]
    assert (await users.sender(41, 41, "u41", "en")).revision is None  # not asked for: read fresh
    await users.sender(42, 42, "u42", "en")
    await users.sender(43, 43, "u43", "en")  # the third plain patient evicts the least recently used (41)
    assert users.cache.get(41) is None and users.cache.get(42) is not None and users.cache.get(43) is not None
    # A changed Telegram name or chat is written by a fresh read, never answered from the cache.
    moved = await users.sender(43, 9043, "u43", "en", cached=True)
    assert moved.revision is None and moved.user.chat_id == 9043
