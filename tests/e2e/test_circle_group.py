"""Issue 7: a circle linked to a real Telegram group (announcements, session topics, summaries by
count, challenges, events; never a member's message or alias), and the doctor's /event to several
circles. FakeTelegram with several simulated people and the ManualClock."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.sandbox import FakeTelegram
from storage.circle_models import Circle
from storage.models import User
from tests.e2e.helpers import doctor
from tests.e2e.test_circles import NAMES, _linked, setup_circle, uid, until


async def _group_chat(app, circle_id: int) -> int | None:  # type: ignore[no-untyped-def]
    async with app.services.sessions() as session:
        return await session.scalar(select(Circle.group_chat_id).where(Circle.id == circle_id))


def _texts(group) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.text or "" for m in group.messages]


async def test_linked_group_gets_announcements_and_never_members_messages(tg: FakeTelegram, care_clock) -> None:  # type: ignore[no-untyped-def]
    app, clock = care_clock
    c = await setup_circle(tg, app, NAMES[:3])
    wang, zhang, liu = c["people"]
    doc = c["doc"]
    group = tg.group("Sunrise Club (real)", [wang, zhang, liu])
    await zhang.send("/circle_group")  # not a moderator
    assert (await until(zhang, lambda m: bool(m.text))).text == "Not found."
    await wang.send("/circle_group")
    card = await until(wang, lambda m: "/circle_link" in (m.text or ""))
    code = card.text.split("/circle_link ")[1].split()[0]
    await group.send(zhang, f"/circle_link {code}")  # a code is only good in its owner's hands
    assert "not valid" in (await group.next_message()).text
    assert await _group_chat(app, c["circle_id"]) is None
    await group.send(wang, f"/circle_link {code}")
    assert "now linked" in (await group.next_message()).text
    assert await _group_chat(app, c["circle_id"]) == group.id
    await group.send(wang, f"/circle_link {code}")  # one-time code
    assert "not valid" in (await group.next_message()).text
    await group.send(wang, "/circle")  # private only: the card (aliases) never shows in the group
    await group.send(wang, "/help")  # a command in the group must not move Wang's private chat there
    await asyncio.sleep(0.5)
    assert not any("Leader:" in text for text in _texts(group))
    group.drain()
    async with app.services.sessions() as session:
        chats = dict((await session.execute(select(User.id, User.chat_id).where(User.id.in_(c["ids"])))).all())
    assert chats[c["ids"][0]] == wang.id

    await zhang.send("my private words")  # relayed to the members only
    await until(liu, lambda m: "my private words" in (m.text or ""))
    await wang.send("/circle_schedule wed 19:30")
    await until(wang, lambda m: "Sessions every week" in (m.text or ""))
    clock.advance(hours=9, minutes=31)  # Tuesday 19:31 local
    await app.tick()
    await until(group, lambda m: "meets tomorrow at 19:30" in (m.text or ""))
    clock.advance(hours=23, minutes=44)  # Wednesday 19:15
    await app.tick()
    await until(group, lambda m: "15 minutes" in (m.text or ""))
    clock.advance(minutes=15)
    await app.tick()
    start = await until(group, lambda m: "session starts now" in (m.text or ""))
    assert "session starts now" in start.text and "To talk about" in start.text
    assert start.buttons == []  # attendance and quizzes stay in the private chats
    member_start = await until(zhang, lambda m: "session starts now" in (m.text or ""))
    await zhang.press("🙋 I'm here", member_start.message_id)
    await asyncio.sleep(0.3)
    await wang.send("/close")
    ended = await until(group, lambda m: "session has ended" in (m.text or ""))
    assert "session has ended" in ended.text and "1 of 4 members took part" in ended.text
    await wang.send("/challenge walk")
    await until(group, lambda m: "Walk 30 minutes" in (m.text or ""))
    await doc.send(f"/event {c['circle_id']} Health day on Saturday 9:00 at the clinic")
    await until(group, lambda m: "Health day on Saturday" in (m.text or ""))
    for text in _texts(group):  # privacy: no member message and no alias ever reaches the real group
        assert "my private words" not in text
        assert not any(alias in text for alias in c["aliases"].values()), text
    assert tg.stats.too_many_requests_real == 0

    group.kick_bot()  # removed from the group: the link is forgotten, nothing is sent there any more
    await asyncio.sleep(0.3)
    assert await _group_chat(app, c["circle_id"]) is None
    before = len(group.messages)
    await doc.send(f"/event {c['circle_id']} Second event")
    await until(liu, lambda m: "Second event" in (m.text or ""))
    await asyncio.sleep(0.3)
    assert len(group.messages) == before and tg.stats.errors.get(403, 0) == 0


async def test_unlink_and_supergroup_migration_keep_the_link_right(tg: FakeTelegram, care_clock) -> None:  # type: ignore[no-untyped-def]
    app, _clock = care_clock
    c = await setup_circle(tg, app, NAMES[:2])
    wang = c["people"][0]
    group = tg.group("Sunrise", [wang])
    await wang.send("/circle_group")
    code = (await until(wang, lambda m: "/circle_link" in (m.text or ""))).text.split("/circle_link ")[1].split()[0]
    await group.send(wang, f"/circle_link {code}")
    await group.next_message()
    new_id = group.migrate()
    await asyncio.sleep(0.3)
    assert await _group_chat(app, c["circle_id"]) == new_id
    await c["doc"].send(f"/event {c['circle_id']} After the upgrade")
    await until(group, lambda m: "After the upgrade" in (m.text or ""))
    await wang.send("/circle_unlink")
    assert "no longer linked" in (await until(wang, lambda m: "linked" in (m.text or ""))).text
    assert await _group_chat(app, c["circle_id"]) is None


async def test_event_reaches_every_member_of_the_named_circles_only(tg: FakeTelegram, care_clock) -> None:  # type: ignore[no-untyped-def]
    app, _clock = care_clock
    c = await setup_circle(tg, app, NAMES[:3])
    doc, (wang, zhang, liu) = c["doc"], c["people"]
    doc_user = await app.services.users.by_telegram(doc.id)
    assert doc_user is not None
    team = (await app.services.panel.teams_of(doc_user.id))[0]
    sun = await _linked(tg, app, await app.services.invites.create("patient", team_id=team, created_by=doc_user.id),
                        "Sun")
    await doc.send("/circle_new Evening Walkers mixed")
    second = int((await until(doc, lambda m: "Circle #" in (m.text or ""))).text.split("#")[1].split()[0])
    await doc.send(f"/circle_leader {second} {await uid(app, sun)}")
    await until(doc, lambda m: "Leader of" in (m.text or ""))
    outsider = await _linked(tg, app, await app.services.invites.create("patient", team_id=team,
                                                                         created_by=doc_user.id), "Ma")
    await doc.send("/event")
    assert "Usage: /event" in (await until(doc, lambda m: bool(m.text))).text
    await doc.send(f"/event {c['circle_id']},{second} Health club: BP check day, Saturday 9:00")
    assert "Announced to 2 circles" in (await until(doc, lambda m: "Announced" in (m.text or ""))).text
    for u in (wang, zhang, liu, sun):
        got = await until(u, lambda m: "Health club event" in (m.text or ""))
        assert "Dr Li" in got.text and "BP check day" in got.text
    await asyncio.sleep(0.3)
    assert not any("BP check day" in (m.text or "") for m in outsider.messages)
    other = await doctor(tg, app, name="Dr Zhao", team="Hillside")
    await other.send(f"/event {c['circle_id']} Not my circle")
    assert (await other.next_message()).text == "Not found."
    await asyncio.sleep(0.3)
    assert not any("Not my circle" in (m.text or "") for m in wang.messages)
