"""Circle services on SQLite and PostgreSQL: membership limits, relay rows and the delivery map,
reply mapping, deletion, flood control, erase, and the pure moderation rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from bot.clinical.moderation import is_flooding, safety_check
from bot.services.circles import RelayInput, clean_alias, next_session_start, suggest_alias
from bot.services.container import Services
from bot.services.users import Onboarding
from storage.circle_models import Circle, CircleDelivery, CircleMember, CircleMessage
from storage.models import Outbox, Team, TeamMember, User


async def _people(services: Services, n: int) -> tuple[int, list[int]]:
    doctor = await services.users.ensure(9000, 9000, "Dr Li", "en")
    async with services.sessions.begin() as session:
        team = Team(name="Qingshan")
        session.add(team)
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=doctor.id))
    ids = []
    for i in range(n):
        user = await services.users.ensure(1000 + i, 1000 + i, f"Name{i}", "en")
        await services.users.complete_onboarding(user.id, Onboarding("en", "Asia/Shanghai",
                                                                     frozenset({"hypertension"}), 1950))
        ids.append(user.id)
    return doctor.id, ids


async def _circle(services: Services, n: int) -> tuple[int, int, list[int], str]:
    doctor_id, ids = await _people(services, n)
    created = await services.circles.create(doctor_id, "Sunrise", "hypertension")
    assert created.ok and created.circle_id
    assert (await services.circles.set_leader(doctor_id, created.circle_id, ids[0], True)).ok
    code = (await services.circles.invite(ids[0])).extra["payload"][2:]
    for i, user_id in enumerate(ids[1:]):
        joined = await services.circles.join(user_id, code, f"Alias {i}")
        assert joined.ok, joined
    return created.circle_id, doctor_id, ids, code


async def test_relay_writes_one_outbox_row_and_delivery_per_other_member(services: Services) -> None:
    _circle_id, doctor_id, ids, _code = await _circle(services, 5)
    async with services.sessions.begin() as session:
        await session.execute(update(Outbox).values(status="sent"))  # join notices out of the way
        await session.execute(update(User).where(User.id == ids[4]).values(unreachable_at=datetime.now(UTC)))
    sent = await services.circles.relay(ids[1], RelayInput(text="hello", source_chat_id=1001, source_message_id=77))
    assert sent.ok and sent.count == 4  # 3 reachable members + the adviser; the unreachable one is skipped
    async with services.sessions() as session:
        rows = list(await session.scalars(select(Outbox).where(Outbox.status == "pending").order_by(Outbox.id)))
        assert [r.payload["text"] for r in rows] == ["Alias 0: hello"] * 4
        assert {r.recipient_id for r in rows} == {ids[0], ids[2], ids[3], doctor_id}
        deliveries = list(await session.scalars(select(CircleDelivery).where(
            CircleDelivery.message_id == sent.extra["message_id"])))
        assert len(deliveries) == 5  # + the sender's own message
        # the relay's telegram id arrives when sent: a reply to it maps back to the same circle message
        row = next(r for r in rows if r.recipient_id == ids[2])
        await session.execute(update(Outbox).where(Outbox.id == row.id).values(status="sent", telegram_message_id=555))
        await session.commit()
    answer = await services.circles.relay(ids[2], RelayInput(text="hi back", reply_to_telegram_id=555,
                                                             source_chat_id=1002, source_message_id=88))
    async with services.sessions() as session:
        message = await session.get(CircleMessage, answer.extra["message_id"])
        assert message is not None and message.reply_to_id == sent.extra["message_id"]
        to_sender = await session.scalar(select(Outbox).where(Outbox.recipient_id == ids[1],
                                                              Outbox.payload.is_not(None)).order_by(Outbox.id.desc()))
        assert to_sender is not None and to_sender.payload["reply_to"] == 77  # their own original message


async def test_delete_cancels_pending_and_queues_deletes_for_sent(services: Services) -> None:
    _circle_id, _doctor_id, ids, _code = await _circle(services, 3)
    sent = await services.circles.relay(ids[1], RelayInput(text="oops"))
    async with services.sessions.begin() as session:
        first = await session.scalar(select(Outbox).where(Outbox.recipient_id == ids[0], Outbox.kind == "relay")
                                     .order_by(Outbox.id.desc()))
        assert first is not None
        first.status, first.telegram_message_id = "sent", 12
    assert not (await services.circles.delete_message(ids[2], sent.extra["message_id"])).ok  # a member cannot
    done = await services.circles.delete_message(ids[0], sent.extra["message_id"])
    assert done.ok and done.count == 1
    async with services.sessions() as session:
        deletes = list(await session.scalars(select(Outbox).where(Outbox.kind == "delete")))
        assert [d.payload["outbox_id"] for d in deletes] == [first.id]
        cancelled = await session.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "cancelled"))
        assert cancelled == 2  # the other member and the adviser had not received it yet


async def test_max_members_and_one_circle_at_a_time(services: Services) -> None:
    doctor_id, ids = await _people(services, 31)
    created = await services.circles.create(doctor_id, "Big", "mixed")
    assert created.circle_id is not None
    await services.circles.set_leader(doctor_id, created.circle_id, ids[0], True)
    code = (await services.circles.invite(ids[0])).extra["payload"][2:]
    results = [await services.circles.join(user_id, code, f"A{i}") for i, user_id in enumerate(ids[1:])]
    assert [r.ok for r in results].count(True) == 28  # 30 = adviser + leader + 28
    assert results[-1].reason == "full"
    other = await services.circles.create(doctor_id, "Other", "diabetes")
    assert other.circle_id is not None
    code2 = (await services.circles.invite(doctor_id, other.circle_id)).extra["payload"][2:]
    assert (await services.circles.join(ids[1], code2, "Again")).reason == "in_other_circle"
    assert (await services.circles.leave(ids[1])).ok
    assert (await services.circles.join(ids[1], code2, "Again")).ok
    assert (await services.circles.join(ids[30], code, "Name30")).reason == "alias_is_name"
    assert (await services.circles.join(ids[30], code, "Zed")).ok  # a place was freed by leaving


async def test_alias_rules_and_flood_control(services: Services, clock) -> None:  # type: ignore[no-untyped-def]
    _circle_id, _doctor_id, ids, code = await _circle(services, 3)
    await services.circles.leave(ids[2])
    assert (await services.circles.join(ids[2], code, "alias 0")).reason == "alias_taken"
    assert (await services.circles.join(ids[2], code, "Name2")).reason == "alias_is_name"
    assert (await services.circles.join(ids[2], code, "13900001111")).reason == "bad_alias"
    assert (await services.circles.join(ids[2], code, "Rejoined")).ok
    results = [await services.circles.relay(ids[1], RelayInput(text=f"m{i}")) for i in range(6)]
    assert [r.reason for r in results] == [""] * 5 + ["flood"]
    clock.advance(seconds=11)
    assert (await services.circles.relay(ids[1], RelayInput(text="later"))).ok


async def test_erasing_a_member_erases_their_circle_data(services: Services) -> None:
    circle_id, _doctor_id, ids, _code = await _circle(services, 3)
    await services.circles.relay(ids[1], RelayInput(text="personal"))
    await services.users.erase(ids[1])
    async with services.sessions() as session:
        assert await session.get(CircleMember, (circle_id, ids[1])) is None
        assert await session.scalar(select(func.count()).select_from(CircleMessage).where(
            CircleMessage.sender_id == ids[1])) == 0
        assert await session.get(Circle, circle_id) is not None


def test_pure_rules() -> None:
    assert safety_check("胸痛").hold and safety_check("chest pain since morning").hold
    assert safety_check("BP 185/115 today").hold and safety_check("glucose 2.8").hold
    assert not safety_check("130/80, walked 30 min").hold and not safety_check("no chest pain").hold
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert not is_flooding([now - timedelta(seconds=s) for s in (1, 2, 3, 4)], now)
    assert is_flooding([now - timedelta(seconds=s) for s in (1, 2, 3, 4, 5)], now)
    assert not is_flooding([now - timedelta(seconds=s) for s in (11, 12, 13, 14, 15)], now)
    assert suggest_alias("zh_CN", set())[-1].isdigit() and " " in suggest_alias("en", set())
    assert clean_alias("  Lotus   Fan ") == "Lotus Fan" and clean_alias("@me") is None and clean_alias("x") is None
    circle = Circle(session_weekday=2, session_time="19:30", timezone="Asia/Shanghai")
    start = next_session_start(circle, datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # Tue 10:00 local
    assert start == datetime(2026, 11, 25, 11, 30, tzinfo=UTC)  # Wed 19:30 local
