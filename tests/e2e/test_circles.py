"""Peer-support circles through FakeTelegram with several simulated people: joining by link under an
alias, relaying in order to everyone else, reply threading, privacy, moderation, the emergency path,
sessions (ManualClock), challenges and flood limits."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select, update

from bot.app import CareCircle
from bot.sandbox import FakeTelegram, SimUser
from bot.sandbox.fake.models import BotMessage
from storage.circle_models import CircleAttendance, CircleMember, CircleSession
from storage.models import Alert, User
from tests.e2e.helpers import doctor, join_by_link, until

NAMES = ["Wang", "Zhang", "Liu", "Chen", "Yang"]
# `care_clock` (tests/e2e/conftest.py) starts on Tuesday 2026-11-24 10:00 in Shanghai: a "wed 19:30" session is
# next day.


async def _linked(tg: FakeTelegram, app: CareCircle, payload: str, name: str) -> SimUser:
    u = tg.user(name, language_code="en", username=f"{name.lower()}_real", last_name="Secretname")
    await join_by_link(u, payload)
    u.drain()
    return u


async def uid(app: CareCircle, u: SimUser) -> int:
    user = await app.services.users.by_telegram(u.id)
    assert user is not None
    return user.id


async def setup_circle(tg: FakeTelegram, app: CareCircle, names: list[str] = NAMES) -> dict[str, Any]:
    """A doctor, a circle, a leader (first name) and members joined by the leader's link."""
    doc = await doctor(tg, app)
    doc_user = await app.services.users.by_telegram(doc.id)
    assert doc_user is not None
    team = (await app.services.panel.teams_of(doc_user.id))[0]
    payloads = [await app.services.invites.create("patient", team_id=team, created_by=doc_user.id) for _ in names]
    people = list(await asyncio.gather(*(_linked(tg, app, p, n) for p, n in zip(payloads, names, strict=True))))
    ids = [await uid(app, u) for u in people]
    async with app.services.sessions.begin() as session:  # phone numbers the circle must never see
        for i, user_id in enumerate(ids):
            await session.execute(update(User).where(User.id == user_id).values(phone=f"+86 139 0000 00{i:02d}"))
    await doc.send("/circle_new Sunrise Club hypertension")
    created = await doc.next_message()
    assert "Circle #" in created.text
    circle_id = int(created.text.split("#")[1].split()[0])
    await doc.send(f"/circle_leader {circle_id} {ids[0]}")
    assert "Leader of" in (await doc.next_message()).text
    leader = people[0]
    appointed = await until(leader, lambda m: "leader" in (m.text or ""))
    assert "Circle rules" in appointed.text
    await leader.send("/circle_invite")
    link = await leader.next_message()
    payload = link.text.split("start=")[1].split()[0]
    assert payload.startswith("g-")
    aliases = {}
    for u in people[1:]:
        await u.send(f"/start {payload}")
        invited = await u.next_message()
        assert "Circle rules" in invited.text and "Sunrise Club" in invited.text
        label = next(b for b in invited.buttons if b.startswith("I agree"))
        await u.press(label)
        welcome = await until(u, lambda m: "Welcome to" in (m.text or ""))
        aliases[u.first_name] = welcome.text.split(", ")[1].split("!")[0]
    view = await app.services.circles.view(ids[0])
    assert view is not None
    aliases[leader.first_name] = view.member.alias
    await leader.send("/circle")
    card = await until(leader, lambda m: "Sunrise Club" in (m.text or ""))
    await leader.press("💬 Talk in circle", card.message_id)
    await until(leader, lambda m: "Circle mode" in (m.text or ""))
    await asyncio.sleep(0.3)
    for u in [*people, doc]:
        u.drain()
    return {"doc": doc, "people": people, "ids": ids, "aliases": aliases, "circle_id": circle_id}


def _relays(u: SimUser) -> list[BotMessage]:
    return [m for m in u.messages if m.text and ":" in m.text and not m.deleted]


async def test_join_relay_order_threading_privacy_media_and_leave(tg: FakeTelegram, care_clock) -> None:  # type: ignore[no-untyped-def]
    app, _clock = care_clock
    c = await setup_circle(tg, app)
    people, aliases, doc = c["people"], c["aliases"], c["doc"]
    wang, zhang, liu, chen, yang = people
    assert len(set(aliases.values())) == 5

    # relay in order to everyone else (and to the adviser), under the alias only
    for text in ("first", "second", "third"):
        await zhang.send(f"hello {text}")
    for u in (wang, liu, chen, yang, doc):
        got = [await until(u, lambda m: "hello" in (m.text or "")) for _ in range(3)]
        assert [m.text for m in got] == [f"{aliases['Zhang']}: hello {x}" for x in ("first", "second", "third")]
        assert got[0].buttons == (["🗑 Delete", "🔇 Mute 24 h"] if u in (wang, doc) else ["⚑ Report"])
    assert not [m for m in zhang.messages if "hello" in (m.text or "")], "the sender gets no copy"

    # reply threading: Liu replies to Zhang's relayed message; each recipient sees a reply to their own copy
    liu_copy = next(m for m in liu.messages if m.text and m.text.endswith("hello second"))
    await liu.reply(liu_copy.message_id, "welcome!")
    for u in (zhang, chen, wang):
        threaded = await until(u, lambda m: "welcome!" in (m.text or ""))
        assert threaded.text == f"{aliases['Liu']}: welcome!"
        target = {m.message_id: m for m in u.chat_messages} if hasattr(u, "chat_messages") else None
        assert threaded.reply_to_message_id is not None
        if u is zhang:  # Zhang's own original message
            originals = [m for m in tg._chats[zhang.id].messages.values() if not m.from_bot and m.text == "hello second"]
            assert threaded.reply_to_message_id == originals[0].message_id
        else:
            mine = next(m for m in u.messages if m.text and m.text.endswith("hello second"))
            assert threaded.reply_to_message_id == mine.message_id
        del target

    # media by copyMessage, alias as caption; a sticker gets the alias as a line before it
    await chen.send_photo(caption="my low-salt lunch")
    photo = await until(yang, lambda m: m.photo)
    assert photo.text == f"{aliases['Chen']}: my low-salt lunch"
    await chen.send_sticker()
    header = await until(yang, lambda m: "sent:" in (m.text or ""))
    assert header.text == f"{aliases['Chen']} sent:"
    await chen.send_voice()
    voice = await until(yang, lambda m: (m.text or "") == aliases["Chen"])
    assert voice.raw.get("voice")

    # share my week: averages only, under the alias, on purpose
    await yang.send("/circle")
    card = await until(yang, lambda m: "Sunrise Club" in (m.text or ""))
    await yang.press("📔 Back to my diary", card.message_id)
    await until(yang, lambda m: "Diary mode" in (m.text or ""))
    await yang.send("132/84")
    assert "Saved" in (await until(yang, lambda m: "Saved" in (m.text or ""))).text
    await yang.send("/share")
    shared = await until(wang, lambda m: "7-day averages" in (m.text or ""))
    assert aliases["Yang"] in shared.text and "132/84" in shared.text

    # PRIVACY: nothing relayed to anyone carries another member's name, username, Telegram id or phone
    await asyncio.sleep(0.5)
    for u in people:
        for other in people:
            if other is u:
                continue
            secrets = [other.first_name, other.username, str(other.id), "Secretname", "139 0000"]
            for m in u.messages:
                shown = (m.text or "") + str(m.raw.get("caption", ""))
                if m.raw.get("forward_origin"):
                    raise AssertionError("a relay must never be a forward (it shows the sender)")
                for secret in secrets:
                    assert secret not in shown, (u, secret, shown)

    # leave: one command; no more relays to the leaver
    await liu.send("/leave")
    assert "You left the circle" in (await until(liu, lambda m: "left" in (m.text or ""))).text
    await asyncio.sleep(0.3)
    liu.drain()
    await zhang.send("after liu left")
    await until(chen, lambda m: "after liu left" in (m.text or ""))
    await asyncio.sleep(0.5)
    assert not [m for m in liu.messages if "after liu left" in (m.text or "")]
    assert tg.stats.too_many_requests_real == 0


async def test_report_mute_delete_remove_and_lock(tg: FakeTelegram, care_clock) -> None:  # type: ignore[no-untyped-def]
    app, _clock = care_clock
    c = await setup_circle(tg, app)
    wang, zhang, liu, chen, yang = c["people"]
    aliases, doc = c["aliases"], c["doc"]

    await zhang.send("stop your pills, herbs are better")
    copy = await until(liu, lambda m: "herbs" in (m.text or ""))
    assert "leader will look" in await liu.answer_to(await liu.press("⚑ Report", copy.message_id))
    report = await until(wang, lambda m: "reported a message" in (m.text or ""))
    assert aliases["Liu"] in report.text and aliases["Zhang"] in report.text and "herbs" in report.text
    assert "Liu" not in report.text.replace(aliases["Liu"], "")

    # the leader deletes it in every chat
    await wang.press("🗑 Delete", report.message_id)

    def relayed_herbs(u: SimUser) -> list[BotMessage]:
        return [m for m in u.messages if "herbs" in (m.text or "") and "reported" not in (m.text or "")]

    for _ in range(100):  # deletions go out through the rate-limited outbox: wait for them, up to 5 s
        if all(relayed_herbs(u) and all(m.deleted for m in relayed_herbs(u)) for u in (liu, chen, yang, doc)):
            break
        await asyncio.sleep(0.05)
    for u in (liu, chen, yang, doc):
        assert relayed_herbs(u) and all(m.deleted for m in relayed_herbs(u)), u

    # mute from the button: Zhang's next messages are not relayed
    await zhang.send("sorry")
    sorry = await until(wang, lambda m: "sorry" in (m.text or ""))
    await wang.press("🔇 Mute 24 h", sorry.message_id)
    await until(zhang, lambda m: "paused your messages" in (m.text or ""))
    await zhang.send("muted text")
    assert "paused until" in (await until(zhang, lambda m: "paused until" in (m.text or ""))).text
    await asyncio.sleep(0.3)
    assert not [m for m in chen.messages if "muted text" in (m.text or "")]

    # a member cannot moderate; forged data changes nothing
    chen.drain()
    await chen.send(f"/circle_remove {aliases['Yang']}")
    assert (await until(chen, lambda m: (m.text or "") == "Not found.")).text == "Not found."
    assert await chen.answer_to(await chen.press_data(copy.message_id, "gr:del:999999")) == "Not found."

    # remove by alias, and lock
    await wang.send(f"/circle_remove {aliases['Yang']}")
    assert "was removed" in (await until(wang, lambda m: "removed" in (m.text or ""))).text
    await until(yang, lambda m: "You were removed" in (m.text or ""))
    await wang.send("/circle_lock")
    await until(chen, lambda m: "locked" in (m.text or ""))
    await chen.send("can I post?")
    assert "locked" in (await until(chen, lambda m: "locked" in (m.text or "") and "only" in (m.text or ""))).text
    await wang.send("leader message")
    await until(chen, lambda m: "leader message" in (m.text or ""))
    async with app.services.sessions() as session:
        yang_member = await session.get(CircleMember, (c["circle_id"], c["ids"][4]))
        assert yang_member is not None and yang_member.status == "removed"


async def test_emergency_phrase_and_urgent_reading_are_not_relayed(tg: FakeTelegram, care_clock) -> None:  # type: ignore[no-untyped-def]
    app, _clock = care_clock
    c = await setup_circle(tg, app, NAMES[:3])
    wang, zhang, liu = c["people"]
    doc = c["doc"]
    await zhang.send("I have chest pain right now")
    safety = await until(zhang, lambda m: "call 120" in (m.text or ""))
    assert "go to hospital" in safety.text
    assert "not sent to the circle" in (await until(zhang, lambda m: "not sent" in (m.text or ""))).text
    alert = await until(doc, lambda m: "Urgent" in (m.text or ""))
    assert "Zhang" in alert.text and "chest_pain" in alert.text and "Acknowledge" in alert.buttons
    await zhang.send("胸痛")
    await until(zhang, lambda m: "not sent" in (m.text or ""))
    await zhang.send("my bp 192/121 now")
    urgent = await until(zhang, lambda m: "needs attention now" in (m.text or ""))
    assert "notified" in urgent.text
    await until(doc, lambda m: "192/121" in (m.text or ""))
    await asyncio.sleep(0.5)
    for u in (wang, liu):
        assert not [m for m in u.messages if any(x in (m.text or "") for x in ("chest", "胸痛", "192"))]
    async with app.services.sessions() as session:
        rules = sorted(a.rule for a in await session.scalars(select(Alert)))
    assert len(rules) == 2 and "SYMPTOM-TEXT" in rules


async def test_session_reminders_start_attendance_close_and_summary(tg: FakeTelegram, care_clock) -> None:  # type: ignore[no-untyped-def]
    app, clock = care_clock
    c = await setup_circle(tg, app, NAMES[:4])
    wang, zhang, liu, chen = c["people"]
    doc = c["doc"]
    await wang.send("/circle_schedule wed 19:30")
    assert "next one starts" in (await until(wang, lambda m: "Sessions every week" in (m.text or ""))).text
    await app.tick()  # Tuesday 10:00 local: too early for the day-before reminder
    clock.advance(hours=9, minutes=31)  # Tuesday 19:31 local
    await app.tick()
    assert "meets tomorrow at 19:30" in (await until(zhang, lambda m: "tomorrow" in (m.text or ""))).text
    await app.tick()  # no second reminder
    clock.advance(hours=23, minutes=44)  # Wednesday 19:15
    await app.tick()
    await until(liu, lambda m: "15 minutes" in (m.text or ""))
    clock.advance(minutes=15)  # 19:30
    await app.tick()
    start = await until(chen, lambda m: "session starts now" in (m.text or ""))
    assert "salt" in start.text.lower() and "To talk about" in start.text
    assert "🙋 I'm here" in start.buttons and any(d.startswith("qz:start:") for row in start.inline for _l, d in row)
    await chen.press("🙋 I'm here", start.message_id)
    await zhang.send("I use the salt spoon now")
    await until(liu, lambda m: "salt spoon" in (m.text or ""))
    await wang.send("/poll Did you measure salt?|Yes|Not yet")
    poll = await until(liu, lambda m: "Did you measure salt" in (m.text or ""))
    assert "Your vote: Yes" in await liu.answer_to(await liu.press("Yes", poll.message_id))
    await wang.send("/next")
    assert "Next topic posted" in (await until(wang, lambda m: "Next topic" in (m.text or ""))).text
    await wang.send("/close")
    summary = await until(doc, lambda m: "Session summary" in (m.text or ""))
    async with app.services.sessions() as session:
        row = await session.scalar(select(CircleSession))
        assert row is not None and row.status == "closed"
        present = set(await session.scalars(select(CircleAttendance.user_id)))
    assert present == {c["ids"][1], c["ids"][2], c["ids"][3]}
    assert "3 of 5 members" in summary.text  # 4 patients + the adviser
    assert "Zhang" not in summary.text and c["aliases"]["Zhang"] in summary.text


async def test_challenge_checkins_and_leaderboard(tg: FakeTelegram, care_clock) -> None:  # type: ignore[no-untyped-def]
    app, clock = care_clock
    c = await setup_circle(tg, app, NAMES[:3])
    wang, zhang, liu = c["people"]
    aliases = c["aliases"]
    await wang.send("/challenge walk")
    card = await until(zhang, lambda m: "challenge" in (m.text or ""))
    assert "Walk 30 minutes" in card.text
    assert "Well done! 1 of 5 days" in await zhang.answer_to(await zhang.press("✅ Done today", card.message_id))
    assert "Already counted today" in await zhang.answer_to(await zhang.press("✅ Done today", card.message_id))
    clock.advance(days=1)
    assert "2 of 5 days" in await zhang.answer_to(await zhang.press("✅ Done today", card.message_id))
    liu_card = await until(liu, lambda m: "challenge" in (m.text or ""))
    assert "Well done" in await liu.answer_to(await liu.press("✅ Done today", liu_card.message_id))
    assert await app.services.circles.leaderboard(c["circle_id"]) == [(aliases["Zhang"], 2), (aliases["Liu"], 1)]
    await liu.send("/circle")
    view = await until(liu, lambda m: "Sunrise Club" in (m.text or ""))
    assert f"{aliases['Zhang']} 2, {aliases['Liu']} 1" in view.text


async def test_burst_from_several_members_gives_zero_429_and_flood_is_slowed(tg: FakeTelegram, care_clock) -> None:  # type: ignore[no-untyped-def]
    app, _clock = care_clock
    c = await setup_circle(tg, app)
    people = c["people"]
    tg.reset_stats()
    await asyncio.gather(*(u.send(f"burst {i} from {n}") for i in range(3) for n, u in enumerate(people[:3])))
    for u in people[3:]:
        got = [await until(u, lambda m: "burst" in (m.text or ""), timeout=20) for _ in range(9)]
        for n in range(3):  # per sender, in order
            mine = [m.text for m in got if m.text and m.text.endswith(f"from {n}")]
            assert [t.split(": ")[1] for t in mine] == [f"burst {i} from {n}" for i in range(3)]
    assert tg.stats.too_many_requests_real == 0
    # flood control: the 6th message inside 10 s is refused politely (ManualClock: all at once)
    sender = people[4]
    for i in range(6):
        await sender.send(f"flood {i}")
    assert "slow down" in (await until(sender, lambda m: "slow down" in (m.text or ""), timeout=10)).text


async def test_foreign_doctor_and_bad_links(tg: FakeTelegram, care_clock) -> None:  # type: ignore[no-untyped-def]
    app, _clock = care_clock
    c = await setup_circle(tg, app, NAMES[:2])
    other = await doctor(tg, app, name="Dr Zhao", team="Hillside")
    await other.send(f"/circle_leader {c['circle_id']} {c['ids'][1]}")
    assert (await other.next_message()).text == "Not found."
    await other.send(f"/circle_invite {c['circle_id']}")
    assert (await other.next_message()).text == "Not found."
    stranger = tg.user("Stranger", language_code="en")
    await stranger.send("/start g-AAAAAAAAAAAAAAAA")
    assert "not valid" in (await until(stranger, lambda m: "not valid" in (m.text or ""))).text
    await c["people"][1].send("/circle_new Foo hypertension")
    await until(c["people"][1], lambda m: "don't know that command" in (m.text or ""))


async def test_unreachable_member_is_skipped_and_shown_to_leader(tg: FakeTelegram, care_clock) -> None:  # type: ignore[no-untyped-def]
    app, _clock = care_clock
    c = await setup_circle(tg, app, NAMES[:3])
    wang, zhang, liu = c["people"]
    liu.block()
    await zhang.send("anyone there?")
    await until(wang, lambda m: "anyone there" in (m.text or ""))
    await asyncio.sleep(0.5)
    await wang.send("/circle")
    card = await until(wang, lambda m: "Sunrise Club" in (m.text or ""))
    assert c["aliases"]["Liu"] in card.text.split("Cannot be reached")[1]
    await zhang.send("second")
    await until(wang, lambda m: "second" in (m.text or ""))
    assert tg.stats.errors[403] == 1  # skipped after the first 403
