"""Peer-support circles (issue 7): a small group of patients who talk under aliases, in their own
private chats with the bot. The bot relays each message to the other members through the outbox,
so per-chat order, the rate limiter and "blocked the bot" handling are the same as for alerts.

Privacy is structural: a relayed message carries only the member's alias; the Telegram identity,
name, username, phone and readings never leave this module (a member may share their 7-day
averages on purpose, and then only under the alias). One transaction per use case.

Size: a circle may start with fewer than 5 members (it grows by invite link); it never exceeds
`max_members` (30) active members, counting the leader and the adviser.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clinical import moderation
from bot.services.clock import Clock
from content.catalog import Catalog, default_catalog
from content.i18n import Translator, translator
from storage.circle_models import (
    Circle,
    CircleAttendance,
    CircleChallenge,
    CircleCheckin,
    CircleDelivery,
    CircleMember,
    CircleMessage,
    CirclePoll,
    CirclePollVote,
    CircleReport,
    CircleSession,
)
from storage.models import Invite, Outbox, Reading, TeamMember, User

TOPICS = ("hypertension", "diabetes", "mixed")
MIN_MEMBERS, MAX_MEMBERS = 5, 30
INVITE_DAYS = 30
MODERATORS = ("leader", "adviser")
REMIND_DAY_BEFORE = timedelta(days=1)
REMIND_SOON = timedelta(minutes=15)
LESSON_SET = {"hypertension": "low-salt", "diabetes": "diabetes-diet", "mixed": "low-salt"}
CHALLENGE_KINDS = ("measure_bp", "walk", "no_pickles")
GROUP_CODE_TTL = timedelta(days=1)


def _(msgid: str) -> str:
    return msgid


ALIAS_WORDS = [("Pine", "青松"), ("Bamboo", "翠竹"), ("Plum", "红梅"), ("Orchid", "兰花"), ("Lotus", "荷花"),
               ("Willow", "杨柳"), ("Maple", "枫叶"), ("Peony", "牡丹"), ("Cloud", "白云"), ("River", "长河")]
CHALLENGE_LABELS = {
    "measure_bp": _("Measure blood pressure on 5 days this week"),
    "walk": _("Walk 30 minutes on 5 days this week"),
    "no_pickles": _("No pickles this week"),
}
RULES = _("Circle rules:\n1. Be kind. Everyone here is learning.\n2. No medical advice that contradicts your "
          "doctor. Share experience, not prescriptions.\n3. Privacy: what is said here stays here. Others see "
          "only your alias, never your name, phone or readings.\nIn an emergency call 120; do not wait for "
          "the circle.")


@dataclass(frozen=True)
class Outcome:
    """Result of a use case: `ok`, or a short `reason` code the dialog turns into words."""

    ok: bool
    reason: str = ""
    circle_id: int | None = None
    name: str = ""
    alias: str = ""
    count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RelayInput:
    text: str = ""  # text, or the media caption
    media: bool = False
    sticker: bool = False  # stickers take no caption: the alias goes first as its own line
    source_chat_id: int | None = None
    source_message_id: int | None = None
    reply_to_telegram_id: int | None = None


@dataclass(frozen=True)
class CircleView:
    circle: Circle
    member: CircleMember
    members: int
    leader_alias: str
    unreachable: tuple[str, ...] = ()
    challenge: CircleChallenge | None = None


def suggest_alias(language: str, taken: set[str], rng: random.Random | None = None) -> str:
    """A friendly generated alias ("Pine 7" / "青松7") not yet used in the circle."""
    rng = rng or random.Random()
    for _attempt in range(200):
        en, zh = rng.choice(ALIAS_WORDS)
        number = rng.randint(1, 99)
        alias = f"{zh}{number}" if language.startswith("zh") else f"{en} {number}"
        if alias.lower() not in {a.lower() for a in taken}:
            return alias
    return f"#{secrets.token_hex(3)}"


def clean_alias(text: str) -> str | None:
    """A chosen alias: 2-20 visible characters, no @ (usernames) and no digits-only (phone numbers)."""
    alias = " ".join(text.split())[:20]
    if len(alias) < 2 or "@" in alias or alias.replace(" ", "").replace("+", "").isdigit() or alias.startswith("/"):
        return None
    return alias


class CircleService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, catalog: Catalog | None = None):
        self._sessions = sessions
        self._clock = clock
        self._catalog = catalog

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = default_catalog()
        return self._catalog

    # ------------------------------------------------------------------ helpers (inside a transaction)
    async def _doctor_circle(self, session: AsyncSession, doctor_id: int, circle_id: int) -> Circle | None:
        """A circle of one of the doctor's teams; another team's circle is "not found"."""
        circle = await session.get(Circle, circle_id)
        if circle is None or circle.team_id is None:
            return None
        member = await session.get(TeamMember, (circle.team_id, doctor_id))
        return circle if member is not None else None

    async def _active(self, session: AsyncSession, user_id: int, circle_id: int | None = None) -> CircleMember | None:
        """The member's current circle: the one they talk in, else the most recent active one."""
        query = select(CircleMember).where(CircleMember.user_id == user_id, CircleMember.status == "active")
        if circle_id is not None:
            query = query.where(CircleMember.circle_id == circle_id)
        return await session.scalar(query.order_by(CircleMember.talking.desc(), CircleMember.joined_at.desc()).limit(1))

    async def _moderator(self, session: AsyncSession, user_id: int, circle_id: int) -> CircleMember | None:
        member = await self._active(session, user_id, circle_id)
        return member if member is not None and member.role in MODERATORS else None

    async def _count(self, session: AsyncSession, circle_id: int) -> int:
        return int(await session.scalar(select(func.count()).select_from(CircleMember).where(
            CircleMember.circle_id == circle_id, CircleMember.status == "active")) or 0)

    async def _aliases(self, session: AsyncSession, circle_id: int) -> set[str]:
        return set(await session.scalars(select(CircleMember.alias).where(CircleMember.circle_id == circle_id)))

    async def _recipients(self, session: AsyncSession, circle_id: int, exclude: int | None) -> list[tuple[User, CircleMember]]:
        """Active members who can receive: reachable, with a chat. Unreachable ones are skipped."""
        rows = await session.execute(
            select(User, CircleMember).join(CircleMember, CircleMember.user_id == User.id).where(
                CircleMember.circle_id == circle_id, CircleMember.status == "active", User.chat_id.is_not(None),
                User.unreachable_at.is_(None), User.id != (exclude or 0)).order_by(User.id))
        return [(u, m) for u, m in rows.all()]

    def _buttons(self, t: Translator, message_id: int, moderator: bool) -> list[list[list[str]]]:
        if moderator:
            return [[[t("🗑 Delete"), f"gr:del:{message_id}"], [t("🔇 Mute 24 h"), f"gr:mute:{message_id}"]]]
        return [[[t("⚑ Report"), f"gr:rep:{message_id}"]]]

    async def _fan_out(self, session: AsyncSession, circle: Circle, message: CircleMessage,
                       build: Any, *, exclude: int | None = None, buttons: bool = True,
                       reply_to: int | None = None) -> int:
        """Queue one outbox row per recipient. `build(t, member)` -> payload without buttons.

        Every row gets a dedupe key (message, recipient) so a retried transaction cannot double it."""
        now = self._clock.now()
        recipients = await self._recipients(session, circle.id, exclude)
        originals: dict[int, CircleDelivery] = {}
        if reply_to is not None:
            originals = {d.recipient_id: d for d in await session.scalars(
                select(CircleDelivery).where(CircleDelivery.message_id == reply_to))}
        rows: list[tuple[int, Outbox]] = []
        for user, member in recipients:
            t = translator(user.language)
            payloads: list[dict[str, Any]] = build(t, member)
            for index, payload in enumerate(payloads):
                last = index == len(payloads) - 1
                if last and buttons:
                    payload["buttons"] = self._buttons(t, message.id, member.role in MODERATORS)
                original = originals.get(user.id)
                if last and original is not None:
                    if original.telegram_message_id:
                        payload["reply_to"] = original.telegram_message_id
                    elif original.outbox_id:
                        payload["reply_to_outbox"] = original.outbox_id
                row = Outbox(kind="relay", recipient_id=user.id, chat_id=user.chat_id, payload=payload,
                             dedupe_key=f"gr:{message.id}:{user.id}:{index}", next_attempt_at=now, created_at=now)
                session.add(row)
                if last:
                    rows.append((user.id, row))
        await session.flush()
        for user_id, row in rows:
            session.add(CircleDelivery(message_id=message.id, recipient_id=user_id, outbox_id=row.id))
        return len(rows)

    async def _system(self, session: AsyncSession, circle: Circle, text_for: Any, *, kind: str = "system",
                      buttons_for: Any = None, group: Any = None) -> int:
        """A bot message to every member, each in their own language. `group` (True, or its own
        `text_for`) also posts it, without buttons, to the circle's linked Telegram group."""
        message = CircleMessage(circle_id=circle.id, sender_id=None, kind=kind, created_at=self._clock.now())
        session.add(message)
        await session.flush()
        if group and circle.group_chat_id:
            text = (text_for if group is True else group)(translator(circle.language))
            session.add(Outbox(kind="notice", recipient_id=None, chat_id=circle.group_chat_id, payload={"text": text},
                               dedupe_key=f"grg:{message.id}", next_attempt_at=self._clock.now()))

        def build(t: Translator, member: CircleMember) -> list[dict[str, Any]]:
            payload: dict[str, Any] = {"text": text_for(t)}
            if buttons_for is not None:
                payload["buttons"] = buttons_for(t)
            return [payload]

        return await self._fan_out(session, circle, message, build, buttons=False)

    def _notice(self, session: AsyncSession, user: User | None, text: str, buttons: Any = None) -> None:
        if user is None or not user.chat_id:
            return
        payload: dict[str, Any] = {"text": text}
        if buttons:
            payload["buttons"] = buttons
        session.add(Outbox(kind="notice", recipient_id=user.id, chat_id=user.chat_id, payload=payload,
                           next_attempt_at=self._clock.now()))

    # ------------------------------------------------------------------ circles, leader, invites
    async def create(self, doctor_id: int, name: str, topic: str) -> Outcome:
        """A doctor creates a circle for their team and is its adviser."""
        if topic not in TOPICS or not name.strip():
            return Outcome(False, "usage")
        now = self._clock.now()
        async with self._sessions.begin() as session:
            doctor = await session.get(User, doctor_id)
            team_id = await session.scalar(select(TeamMember.team_id).where(TeamMember.user_id == doctor_id).limit(1))
            if doctor is None or team_id is None:
                return Outcome(False, "not_found")
            circle = Circle(name=name.strip()[:64], topic=topic, language=doctor.language, team_id=team_id,
                            created_by=doctor_id, adviser_id=doctor_id, timezone=doctor.timezone,
                            max_members=MAX_MEMBERS, created_at=now)
            session.add(circle)
            await session.flush()
            alias = doctor.display_name or doctor.first_name  # the adviser speaks as the doctor, openly
            session.add(CircleMember(circle_id=circle.id, user_id=doctor_id, alias=("Dr " + alias)[:32],
                                     role="adviser", agreed_at=now, joined_at=now))
            return Outcome(True, circle_id=circle.id, name=circle.name)

    async def set_leader(self, doctor_id: int, circle_id: int, patient_id: int, team_patient: bool) -> Outcome:
        """`team_patient`: the caller checked PanelService.team_patient (a foreign patient is not found)."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            circle = await self._doctor_circle(session, doctor_id, circle_id)
            patient = await session.get(User, patient_id)
            if circle is None or patient is None or not team_patient:
                return Outcome(False, "not_found")
            other = await self._active(session, patient_id)
            if other is not None and other.circle_id != circle.id:
                return Outcome(False, "in_other_circle")
            member = await session.get(CircleMember, (circle.id, patient_id))
            if member is None or member.status != "active":
                if await self._count(session, circle.id) >= circle.max_members:
                    return Outcome(False, "full")
                alias = suggest_alias(patient.language, await self._aliases(session, circle.id))
                if member is None:
                    member = CircleMember(circle_id=circle.id, user_id=patient_id, alias=alias, joined_at=now)
                    session.add(member)
                member.status, member.agreed_at, member.joined_at = "active", now, now
            old = circle.leader_id
            if old and old != patient_id:
                await session.execute(update(CircleMember).where(
                    CircleMember.circle_id == circle.id, CircleMember.user_id == old, CircleMember.role == "leader")
                    .values(role="member"))
            member.role = "leader"
            circle.leader_id = patient_id
            t = translator(patient.language)
            self._notice(session, patient, t("Your doctor made you the leader of the circle \"{name}\". Your alias "
                                             "there is {alias}. Send /circle to see it and get the invite link.",
                                             name=circle.name, alias=member.alias) + "\n\n" + t(RULES))
            return Outcome(True, circle_id=circle.id, name=circle.name, alias=member.alias)

    async def circles_of_doctor(self, doctor_id: int) -> list[tuple[Circle, int]]:
        async with self._sessions() as session:
            teams = select(TeamMember.team_id).where(TeamMember.user_id == doctor_id)
            circles = list(await session.scalars(select(Circle).where(Circle.team_id.in_(teams)).order_by(Circle.id)))
            return [(c, await self._count(session, c.id)) for c in circles]

    async def invite(self, user_id: int, circle_id: int | None = None) -> Outcome:
        """An invite link for the leader, the adviser or a doctor of the circle's team."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            circle: Circle | None = None
            if circle_id is not None:
                circle = await self._doctor_circle(session, user_id, circle_id)
            if circle is None:
                member = await self._active(session, user_id, circle_id)
                if member is not None and member.role in MODERATORS:
                    circle = await session.get(Circle, member.circle_id)
            if circle is None:
                return Outcome(False, "not_found")
            code = secrets.token_urlsafe(12)
            session.add(Invite(code=code, kind="circle", team_id=circle.team_id, created_by=user_id, single_use=False,
                               payload={"circle_id": circle.id}, expires_at=now + timedelta(days=INVITE_DAYS),
                               created_at=now))
            return Outcome(True, circle_id=circle.id, name=circle.name, extra={"payload": f"g-{code}"})

    async def _invited_circle(self, session: AsyncSession, code: str) -> Circle | None:
        invite = await session.get(Invite, code)
        if invite is None or invite.kind != "circle" or invite.expires_at < self._clock.now():
            return None
        return await session.get(Circle, int(invite.payload.get("circle_id", 0)))

    async def preview(self, user_id: int, code: str) -> Outcome:
        """What the joining person sees before agreeing: the circle's name and a suggested alias."""
        async with self._sessions() as session:
            circle = await self._invited_circle(session, code)
            user = await session.get(User, user_id)
            if circle is None or user is None:
                return Outcome(False, "invalid")
            mine = await session.get(CircleMember, (circle.id, user_id))
            if mine is not None and mine.status == "active":
                return Outcome(False, "already", circle.id, circle.name, mine.alias)
            if mine is not None and mine.status == "removed":
                return Outcome(False, "removed", circle.id, circle.name)
            other = await self._active(session, user_id)
            if other is not None:
                return Outcome(False, "in_other_circle", circle.id, circle.name)
            if await self._count(session, circle.id) >= circle.max_members:
                return Outcome(False, "full", circle.id, circle.name)
            alias = suggest_alias(user.language, await self._aliases(session, circle.id))
            return Outcome(True, circle_id=circle.id, name=circle.name, alias=alias)

    async def join(self, user_id: int, code: str, alias: str) -> Outcome:
        """Join after agreeing to the rules. Checks everything again: the circle may have filled up."""
        now = self._clock.now()
        alias = clean_alias(alias) or ""
        async with self._sessions.begin() as session:
            circle = await self._invited_circle(session, code)
            user = await session.get(User, user_id)
            if circle is None or user is None:
                return Outcome(False, "invalid")
            if not alias:
                return Outcome(False, "bad_alias")
            mine = await session.get(CircleMember, (circle.id, user_id))
            if mine is not None and mine.status == "active":
                return Outcome(False, "already", circle.id, circle.name, mine.alias)
            if mine is not None and mine.status == "removed":
                return Outcome(False, "removed", circle.id, circle.name)
            if await self._active(session, user_id) is not None:
                return Outcome(False, "in_other_circle", circle.id, circle.name)
            if await self._count(session, circle.id) >= circle.max_members:
                return Outcome(False, "full", circle.id, circle.name)
            taken = {a.lower() for a in await self._aliases(session, circle.id)} - ({mine.alias.lower()} if mine else set())
            names = {user.first_name.lower(), (user.display_name or "").lower()}
            if alias.lower() in taken:
                return Outcome(False, "alias_taken", circle.id, circle.name, alias)
            if alias.lower() in names:
                return Outcome(False, "alias_is_name", circle.id, circle.name, alias)
            if mine is None:
                mine = CircleMember(circle_id=circle.id, user_id=user_id)
                session.add(mine)
            mine.alias, mine.role, mine.status, mine.talking = alias, "member", "active", True
            mine.agreed_at, mine.joined_at, mine.muted_until = now, now, None
            await session.flush()
            await self._system(session, circle, lambda t: "👋 " + t("{alias} joined the circle.", alias=alias))
            return Outcome(True, circle_id=circle.id, name=circle.name, alias=alias)

    async def leave(self, user_id: int) -> Outcome:
        async with self._sessions.begin() as session:
            member = await self._active(session, user_id)
            if member is None:
                return Outcome(False, "not_member")
            circle = await session.get(Circle, member.circle_id)
            assert circle is not None
            member.status, member.talking = "left", False
            if circle.leader_id == user_id:
                circle.leader_id = None
            member.role = "member" if member.role == "leader" else member.role
            alias = member.alias
            await self._system(session, circle, lambda t: t("{alias} left the circle.", alias=alias))
            return Outcome(True, circle_id=circle.id, name=circle.name, alias=alias)

    async def view(self, user_id: int) -> CircleView | None:
        async with self._sessions() as session:
            member = await self._active(session, user_id)
            if member is None:
                return None
            circle = await session.get(Circle, member.circle_id)
            assert circle is not None
            leader = await session.get(CircleMember, (circle.id, circle.leader_id)) if circle.leader_id else None
            unreachable: tuple[str, ...] = ()
            if member.role in MODERATORS:
                unreachable = tuple(await session.scalars(
                    select(CircleMember.alias).join(User, User.id == CircleMember.user_id).where(
                        CircleMember.circle_id == circle.id, CircleMember.status == "active",
                        or_(User.unreachable_at.is_not(None), User.chat_id.is_(None)))))
            challenge = await self._current_challenge(session, circle)
            return CircleView(circle, member, await self._count(session, circle.id),
                              leader.alias if leader else "", unreachable, challenge)

    async def set_talking(self, user_id: int, on: bool) -> Outcome:
        """Circle mode on: free text goes to the circle. Persisted, one circle at a time."""
        async with self._sessions.begin() as session:
            member = await self._active(session, user_id)
            if member is None:
                return Outcome(False, "not_member")
            await session.execute(update(CircleMember).where(CircleMember.user_id == user_id).values(talking=False))
            member.talking = on
            return Outcome(True, circle_id=member.circle_id, alias=member.alias)

    async def talking(self, user_id: int) -> bool:
        async with self._sessions() as session:
            return bool(await session.scalar(select(CircleMember.circle_id).where(
                CircleMember.user_id == user_id, CircleMember.status == "active", CircleMember.talking.is_(True))
                .limit(1)))

    # ------------------------------------------------------------------ relay
    async def relay(self, user_id: int, message: RelayInput, *, kind: str = "text") -> Outcome:
        """Relay a member's message to every other member under the alias (one transaction)."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            member = await self._active(session, user_id)
            if member is None:
                return Outcome(False, "not_member")
            circle = await session.get(Circle, member.circle_id)
            assert circle is not None
            if member.muted_until is not None and member.muted_until > now:
                return Outcome(False, "muted", circle.id, extra={"until": member.muted_until})
            if circle.locked and member.role not in MODERATORS:
                return Outcome(False, "locked", circle.id)
            recent = list(await session.scalars(select(CircleMessage.created_at).where(
                CircleMessage.sender_id == user_id, CircleMessage.created_at > now - moderation.FLOOD_WINDOW)))
            if moderation.is_flooding(recent, now):
                return Outcome(False, "flood", circle.id)
            reply_to = None
            if message.reply_to_telegram_id is not None:
                reply_to = await self._message_by_telegram_id(session, circle.id, user_id, message.reply_to_telegram_id)
            row = CircleMessage(circle_id=circle.id, sender_id=user_id, kind=kind, text=message.text[:4000],
                                reply_to_id=reply_to, source_chat_id=message.source_chat_id,
                                source_message_id=message.source_message_id, created_at=now)
            session.add(row)
            await session.flush()
            if message.source_message_id is not None:
                session.add(CircleDelivery(message_id=row.id, recipient_id=user_id,
                                           telegram_message_id=message.source_message_id))
            alias, text = member.alias, message.text

            def build(t: Translator, _recipient: CircleMember) -> list[dict[str, Any]]:
                if kind == "share":  # numbers only; the words in the reader's language
                    return [{"text": "📊 " + t("{alias} shares their 7-day averages:", alias=alias) + f"\n{text}"}]
                if not message.media:
                    return [{"text": f"{alias}: {text}"[:4096]}]
                source = [message.source_chat_id, message.source_message_id]
                if message.sticker:
                    return [{"text": t("{alias} sent:", alias=alias)}, {"copy_from": source}]
                return [{"copy_from": source, "caption": (f"{alias}: {text}" if text else alias)[:1024]}]

            count = await self._fan_out(session, circle, row, build, exclude=user_id, reply_to=reply_to)
            await self._attend(session, circle.id, user_id, now)
            return Outcome(True, circle_id=circle.id, alias=alias, count=count, extra={"message_id": row.id})

    async def _message_by_telegram_id(self, session: AsyncSession, circle_id: int, user_id: int,
                                      telegram_id: int) -> int | None:
        """Which circle message is `telegram_id` in this member's chat (their own or a relayed copy)."""
        return await session.scalar(
            select(CircleDelivery.message_id).join(CircleMessage, CircleMessage.id == CircleDelivery.message_id)
            .outerjoin(Outbox, Outbox.id == CircleDelivery.outbox_id).where(
                CircleMessage.circle_id == circle_id, CircleDelivery.recipient_id == user_id,
                or_(CircleDelivery.telegram_message_id == telegram_id, Outbox.telegram_message_id == telegram_id))
            .limit(1))

    async def share_week(self, user_id: int) -> Outcome:
        """On purpose only: the member's 7-day averages, under the alias."""
        now = self._clock.now()
        async with self._sessions() as session:
            member = await self._active(session, user_id)
            if member is None:
                return Outcome(False, "not_member")
            bp = (await session.execute(select(func.count(Reading.id), func.avg(Reading.systolic),
                                               func.avg(Reading.diastolic)).where(
                Reading.patient_id == user_id, Reading.kind == "bp", Reading.measured_at >= now - timedelta(days=7)))).one()
            glu = (await session.execute(select(func.count(Reading.id), func.avg(Reading.mmol)).where(
                Reading.patient_id == user_id, Reading.kind == "glucose", Reading.measured_at >= now - timedelta(days=7)))).one()
        if not bp[0] and not glu[0]:
            return Outcome(False, "no_readings")
        parts = []
        if bp[0]:
            parts.append(f"🩺 {float(bp[1]):.0f}/{float(bp[2]):.0f} mmHg (n={bp[0]})")
        if glu[0]:
            parts.append(f"🩸 {float(glu[1]):.1f} mmol/L (n={glu[0]})")
        return await self.relay(user_id, RelayInput(text="\n".join(parts)), kind="share")

    # ------------------------------------------------------------------ moderation
    async def report(self, reporter_id: int, message_id: int) -> Outcome:
        """A member flags a relayed message: the leader and adviser see it (with the alias, no identity)."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            message = await session.get(CircleMessage, message_id)
            if message is None or message.deleted_at is not None:
                return Outcome(False, "not_found")
            reporter = await self._active(session, reporter_id, message.circle_id)
            delivered = await session.get(CircleDelivery, (message_id, reporter_id))
            if reporter is None or delivered is None:
                return Outcome(False, "not_found")
            if await session.get(CircleReport, (message_id, reporter_id)) is not None:
                return Outcome(True, "already")
            session.add(CircleReport(message_id=message_id, reporter_id=reporter_id, created_at=now))
            sender = await session.get(CircleMember, (message.circle_id, message.sender_id)) if message.sender_id else None
            circle = await session.get(Circle, message.circle_id)
            assert circle is not None
            for uid in {circle.leader_id, circle.adviser_id} - {None}:
                mod = await session.get(User, uid)
                if mod is None:
                    continue
                t = translator(mod.language)
                self._notice(session, mod, "⚑ " + t("{reporter} reported a message from {alias} in \"{name}\":",
                                                    reporter=reporter.alias, alias=sender.alias if sender else "?",
                                                    name=circle.name) + f"\n«{message.text[:500]}»",
                             self._buttons(t, message.id, True))
            return Outcome(True)

    async def delete_message(self, actor_id: int, message_id: int) -> Outcome:
        """deleteMessage in every recipient's chat; copies not sent yet are cancelled."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            message = await session.get(CircleMessage, message_id)
            if message is None or await self._moderator(session, actor_id, message.circle_id) is None:
                return Outcome(False, "not_found")
            if message.deleted_at is not None:
                return Outcome(True, "already")
            message.deleted_at = now
            deliveries = list(await session.execute(
                select(CircleDelivery, Outbox).join(Outbox, Outbox.id == CircleDelivery.outbox_id)
                .where(CircleDelivery.message_id == message_id)))
            count = 0
            for delivery, row in deliveries:
                if row.status == "pending":
                    row.status = "cancelled"
                    continue
                session.add(Outbox(kind="delete", recipient_id=delivery.recipient_id, chat_id=row.chat_id,
                                   payload={"outbox_id": row.id}, dedupe_key=f"grdel:{message_id}:{delivery.recipient_id}",
                                   next_attempt_at=now))
                count += 1
            return Outcome(True, count=count)

    async def _target(self, session: AsyncSession, actor_id: int, *, message_id: int | None = None,
                      alias: str | None = None) -> tuple[Circle, CircleMember] | None:
        """The member a moderator acts on, by a message of theirs or by alias, in the actor's circle."""
        circle_id: int | None = None
        member: CircleMember | None = None
        if message_id is not None:
            message = await session.get(CircleMessage, message_id)
            if message is None or message.sender_id is None:
                return None
            circle_id = message.circle_id
            member = await session.get(CircleMember, (circle_id, message.sender_id))
        else:
            mine = await self._active(session, actor_id)
            if mine is None or not alias:
                return None
            circle_id = mine.circle_id
            member = await session.scalar(select(CircleMember).where(
                CircleMember.circle_id == circle_id, func.lower(CircleMember.alias) == alias.strip().lower()))
        if circle_id is None or member is None or await self._moderator(session, actor_id, circle_id) is None:
            return None
        if member.role in MODERATORS or member.status != "active":
            return None
        circle = await session.get(Circle, circle_id)
        return (circle, member) if circle else None

    async def mute(self, actor_id: int, hours: float, *, message_id: int | None = None,
                   alias: str | None = None) -> Outcome:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            found = await self._target(session, actor_id, message_id=message_id, alias=alias)
            if found is None or not 0 < hours <= 24 * 30:
                return Outcome(False, "not_found")
            circle, member = found
            member.muted_until = now + timedelta(hours=hours)
            user = await session.get(User, member.user_id)
            if user is not None:
                t = translator(user.language)
                self._notice(session, user, t("The circle leader paused your messages to \"{name}\" for {hours} h. "
                                              "Please remember the circle rules.", name=circle.name, hours=f"{hours:g}"))
            return Outcome(True, alias=member.alias, count=int(hours))

    async def remove(self, actor_id: int, alias: str) -> Outcome:
        async with self._sessions.begin() as session:
            found = await self._target(session, actor_id, alias=alias)
            if found is None:
                return Outcome(False, "not_found")
            circle, member = found
            member.status, member.talking = "removed", False
            user = await session.get(User, member.user_id)
            if user is not None:
                t = translator(user.language)
                self._notice(session, user, t("You were removed from the circle \"{name}\" by its leader. Your diary "
                                              "and your doctor are not affected.", name=circle.name))
            gone = member.alias
            await self._system(session, circle, lambda t: t("{alias} is no longer in the circle.", alias=gone))
            return Outcome(True, alias=gone)

    async def lock(self, actor_id: int, locked: bool) -> Outcome:
        async with self._sessions.begin() as session:
            mine = await self._active(session, actor_id)
            if mine is None or mine.role not in MODERATORS:
                return Outcome(False, "not_found")
            circle = await session.get(Circle, mine.circle_id)
            assert circle is not None
            circle.locked = locked
            await self._system(session, circle, lambda t: "🔒 " + t("The circle is locked: only the leader and the "
                                                                   "adviser can post for now.") if locked
                               else "🔓 " + t("The circle is open again. Everyone can post."))
            return Outcome(True, circle_id=circle.id)

    # ------------------------------------------------------------------ sessions
    async def schedule(self, actor_id: int, weekday: int, at: str, minutes: int = 45) -> Outcome:
        async with self._sessions.begin() as session:
            mine = await self._active(session, actor_id)
            if mine is None or mine.role not in MODERATORS or not 0 <= weekday <= 6:
                return Outcome(False, "not_found")
            circle = await session.get(Circle, mine.circle_id)
            assert circle is not None
            circle.session_weekday, circle.session_time, circle.session_minutes = weekday, at, minutes
            await session.execute(update(CircleSession).where(CircleSession.circle_id == circle.id,
                                                              CircleSession.status == "scheduled")
                                  .values(status="cancelled"))
            starts = next_session_start(circle, self._clock.now())
            return Outcome(True, circle_id=circle.id, extra={"starts_at": starts})

    def _lesson(self, circle: Circle, index: int) -> Any:
        lessons = sorted(self.catalog.lesson_set(LESSON_SET.get(circle.topic, "low-salt")).lessons,
                         key=lambda lesson: lesson.order)
        return lessons[index % len(lessons)]

    async def tick(self) -> int:
        """Session reminders (the day before, 15 min before), start and automatic close.
        One indexed query when there is nothing to do; returns the messages queued."""
        now = self._clock.now()
        queued = 0
        async with self._sessions.begin() as session:
            circles = list(await session.scalars(select(Circle).where(Circle.session_weekday.is_not(None))))
            for circle in circles:
                starts = next_session_start(circle, now - timedelta(minutes=circle.session_minutes))
                if starts is None or starts - now > REMIND_DAY_BEFORE + timedelta(hours=1):
                    continue
                row = await session.scalar(select(CircleSession).where(CircleSession.circle_id == circle.id,
                                                                       CircleSession.starts_at == starts))
                if row is None:
                    past = int(await session.scalar(select(func.count()).select_from(CircleSession).where(
                        CircleSession.circle_id == circle.id, CircleSession.status == "closed")) or 0)
                    row = CircleSession(circle_id=circle.id, starts_at=starts, topic_index=past,
                                        ends_at=starts + timedelta(minutes=circle.session_minutes),
                                        lesson_id=self._lesson(circle, past).id, reminded="")
                    session.add(row)
                    await session.flush()
                queued += await self._advance(session, circle, row, now)
        return queued

    async def _advance(self, session: AsyncSession, circle: Circle, row: CircleSession, now: datetime) -> int:
        lesson = self.catalog.lesson(row.lesson_id)
        local = row.starts_at.astimezone(ZoneInfo(circle.timezone))
        if row.status == "scheduled":
            if now >= row.starts_at:
                row.status, row.reminded = "open", "day,soon"
                return await self._post_topic(session, circle, row, lesson)
            if now >= row.starts_at - REMIND_SOON and "soon" not in row.reminded:
                row.reminded = "day,soon"
                return await self._system(session, circle, lambda t: "⏰ " + t(
                    "The circle meets in 15 minutes ({time}). Topic: {title}.", time=f"{local:%H:%M}",
                    title=lesson.title_for(t.language)), group=True)
            if now >= row.starts_at - REMIND_DAY_BEFORE and not row.reminded:
                row.reminded = "day"
                return await self._system(session, circle, lambda t: "📅 " + t(
                    "Reminder: the circle meets tomorrow at {time} for {minutes} minutes. Topic: {title}.",
                    time=f"{local:%H:%M}", minutes=circle.session_minutes, title=lesson.title_for(t.language)),
                    group=True)
        elif row.status == "open" and now >= row.ends_at:
            return await self._close(session, circle, row, now)
        return 0

    async def _post_topic(self, session: AsyncSession, circle: Circle, row: CircleSession, lesson: Any) -> int:
        def text(t: Translator) -> str:
            return "\n".join([
                "🟢 " + t("The circle session starts now ({minutes} minutes).", minutes=circle.session_minutes),
                "", f"📖 {lesson.title_for(t.language)}", lesson.body_for(t.language), "",
                "💬 " + t("To talk about: what is one small thing you tried, or want to try, about \"{title}\"?",
                         title=lesson.title_for(t.language))])

        # The lesson's own quiz, else the first quiz of its set (the quiz flow is dialogs.quiz's).
        lessons = self.catalog.lesson_set(lesson.set_id).lessons
        quiz_id = lesson.quiz_id or next((item.quiz_id for item in lessons if item.quiz_id), None)

        def buttons(t: Translator) -> list[list[list[str]]]:
            rows = [[[t("🙋 I'm here"), f"gr:here:{row.id}"]]]
            if quiz_id:
                rows[0].append([t("📝 Short quiz"), f"qz:start:{quiz_id}"])
            return rows

        return await self._system(session, circle, text, kind="session", buttons_for=buttons, group=True)

    async def next_topic(self, actor_id: int) -> Outcome:
        async with self._sessions.begin() as session:
            found = await self._open_session(session, actor_id)
            if found is None:
                return Outcome(False, "no_session")
            circle, row = found
            row.topic_index += 1
            lesson = self._lesson(circle, row.topic_index)
            row.lesson_id = lesson.id
            await self._post_topic(session, circle, row, lesson)
            return Outcome(True, name=lesson.title_for(circle.language))

    async def _open_session(self, session: AsyncSession, actor_id: int) -> tuple[Circle, CircleSession] | None:
        mine = await self._active(session, actor_id)
        if mine is None or mine.role not in MODERATORS:
            return None
        circle = await session.get(Circle, mine.circle_id)
        row = await session.scalar(select(CircleSession).where(CircleSession.circle_id == mine.circle_id,
                                                               CircleSession.status == "open").limit(1))
        return (circle, row) if circle is not None and row is not None else None

    async def close_session(self, actor_id: int) -> Outcome:
        async with self._sessions.begin() as session:
            found = await self._open_session(session, actor_id)
            if found is None:
                return Outcome(False, "no_session")
            circle, row = found
            count = await self._close(session, circle, row, self._clock.now())
            return Outcome(True, count=count)

    async def _close(self, session: AsyncSession, circle: Circle, row: CircleSession, now: datetime) -> int:
        """Close: thank everyone, and send the leader and adviser the attendance by alias."""
        row.status, row.closed_at = "closed", now
        present = list(await session.scalars(
            select(CircleMember.alias).join(CircleAttendance, and_(CircleAttendance.user_id == CircleMember.user_id,
                                                                   CircleAttendance.session_id == row.id))
            .where(CircleMember.circle_id == circle.id).order_by(CircleMember.alias)))
        total = await self._count(session, circle.id)
        messages = await session.scalar(select(func.count(CircleMessage.id)).where(
            CircleMessage.circle_id == circle.id, CircleMessage.sender_id.is_not(None),
            CircleMessage.created_at >= row.starts_at, CircleMessage.created_at <= now)) or 0
        # The linked group (real names there) gets counts only: no alias is tied to a face.
        queued = await self._system(session, circle, lambda t: "🔴 " + t(
            "The circle session has ended. Thank you for taking part!"), group=lambda t: "🔴 " + t(
            "The circle session has ended. Thank you for taking part!") + "\n" + t(
            "{present} of {total} members took part; {messages} messages.", present=len(present), total=total,
            messages=messages))
        lesson = self.catalog.lesson(row.lesson_id)
        for uid in {circle.leader_id, circle.adviser_id} - {None}:
            mod = await session.get(User, uid)
            if mod is None:
                continue
            t = translator(mod.language)
            self._notice(session, mod, "📋 " + t(
                "Session summary for \"{name}\": topic {title}; {present} of {total} members took part ({aliases}); "
                "{messages} messages.", name=circle.name, title=lesson.title_for(t.language), present=len(present),
                total=total, aliases=", ".join(present) or "-", messages=messages))
            queued += 1
        return queued

    async def _attend(self, session: AsyncSession, circle_id: int, user_id: int, now: datetime) -> bool:
        row = await session.scalar(select(CircleSession).where(CircleSession.circle_id == circle_id,
                                                               CircleSession.status == "open").limit(1))
        if row is None or now < row.starts_at:
            return False
        if await session.get(CircleAttendance, (row.id, user_id)) is None:
            session.add(CircleAttendance(session_id=row.id, user_id=user_id, at=now))
        return True

    async def here(self, user_id: int, session_id: int) -> Outcome:
        async with self._sessions.begin() as session:
            row = await session.get(CircleSession, session_id)
            if row is None or row.status != "open" or await self._active(session, user_id, row.circle_id) is None:
                return Outcome(False, "not_found")
            await self._attend(session, row.circle_id, user_id, self._clock.now())
            return Outcome(True)

    async def attendance(self, session_id: int) -> list[int]:
        async with self._sessions() as session:
            return list(await session.scalars(select(CircleAttendance.user_id).where(
                CircleAttendance.session_id == session_id).order_by(CircleAttendance.user_id)))

    async def poll(self, actor_id: int, question: str, options: list[str]) -> Outcome:
        options = [o.strip()[:40] for o in options if o.strip()][:6]
        if not question.strip() or len(options) < 2:
            return Outcome(False, "usage")
        async with self._sessions.begin() as session:
            mine = await self._active(session, actor_id)
            if mine is None or mine.role not in MODERATORS:
                return Outcome(False, "not_found")
            circle = await session.get(Circle, mine.circle_id)
            assert circle is not None
            poll = CirclePoll(circle_id=circle.id, question=question.strip()[:256], options=options,
                              created_at=self._clock.now())
            session.add(poll)
            await session.flush()
            await self._system(session, circle, lambda t: "🗳 " + poll.question,
                               buttons_for=lambda t: [[[o, f"gr:pv:{poll.id}:{i}"]] for i, o in enumerate(options)])
            return Outcome(True, extra={"poll_id": poll.id})

    async def vote(self, user_id: int, poll_id: int, option: int) -> Outcome:
        async with self._sessions.begin() as session:
            poll = await session.get(CirclePoll, poll_id)
            if poll is None or not 0 <= option < len(poll.options) or \
                    await self._active(session, user_id, poll.circle_id) is None:
                return Outcome(False, "not_found")
            vote = await session.get(CirclePollVote, (poll_id, user_id))
            if vote is None:
                session.add(CirclePollVote(poll_id=poll_id, user_id=user_id, option=option))
            else:
                vote.option = option
            await session.flush()
            await self._attend(session, poll.circle_id, user_id, self._clock.now())
            counts = dict((await session.execute(select(CirclePollVote.option, func.count()).where(
                CirclePollVote.poll_id == poll_id).group_by(CirclePollVote.option))).all())
            return Outcome(True, name=poll.options[option],
                           extra={"results": [(o, int(counts.get(i, 0))) for i, o in enumerate(poll.options)]})

    # ------------------------------------------------------------------ challenges
    async def _current_challenge(self, session: AsyncSession, circle: Circle) -> CircleChallenge | None:
        week = week_start(self._clock.now(), circle.timezone)
        return await session.scalar(select(CircleChallenge).where(
            CircleChallenge.circle_id == circle.id, CircleChallenge.week_start == week)
            .order_by(CircleChallenge.id.desc()).limit(1))

    async def start_challenge(self, actor_id: int, kind: str) -> Outcome:
        if kind not in CHALLENGE_KINDS:
            return Outcome(False, "usage")
        now = self._clock.now()
        async with self._sessions.begin() as session:
            mine = await self._active(session, actor_id)
            if mine is None or mine.role not in MODERATORS:
                return Outcome(False, "not_found")
            circle = await session.get(Circle, mine.circle_id)
            assert circle is not None
            challenge = CircleChallenge(circle_id=circle.id, kind=kind, week_start=week_start(now, circle.timezone),
                                        target_days=7 if kind == "no_pickles" else 5, created_at=now)
            session.add(challenge)
            await session.flush()
            label = CHALLENGE_LABELS[kind]
            await self._system(session, circle, lambda t: "🏁 " + t("This week's challenge: {goal}. Tap the button "
                                                                   "each day you did it.", goal=t(label)),
                               buttons_for=lambda t: [[[t("✅ Done today"), f"gr:ck:{challenge.id}"]]],
                               group=lambda t: "🏁 " + t("This week's challenge: {goal}. Check in each day with the "
                                                        "button in your private chat with the bot.", goal=t(label)))
            return Outcome(True, extra={"challenge_id": challenge.id})

    async def checkin(self, user_id: int, challenge_id: int) -> Outcome:
        """One tap a day; answers the member's days so far (encouragement is the dialog's words)."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            challenge = await session.get(CircleChallenge, challenge_id)
            if challenge is None or await self._active(session, user_id, challenge.circle_id) is None:
                return Outcome(False, "not_found")
            circle = await session.get(Circle, challenge.circle_id)
            assert circle is not None
            today = now.astimezone(ZoneInfo(circle.timezone)).date()
            if not challenge.week_start <= today < challenge.week_start + timedelta(days=7):
                return Outcome(False, "over")
            already = await session.get(CircleCheckin, (challenge_id, user_id, today)) is not None
            if not already:
                session.add(CircleCheckin(challenge_id=challenge_id, user_id=user_id, day=today))
                await session.flush()
            days = int(await session.scalar(select(func.count()).select_from(CircleCheckin).where(
                CircleCheckin.challenge_id == challenge_id, CircleCheckin.user_id == user_id)) or 0)
            return Outcome(True, "already" if already else "", count=days, extra={"target": challenge.target_days})

    async def leaderboard(self, circle_id: int, challenge_id: int | None = None) -> list[tuple[str, int]]:
        """Aliases with their check-in days this week, most first (members with none are left out)."""
        async with self._sessions() as session:
            if challenge_id is None:
                circle = await session.get(Circle, circle_id)
                challenge = await self._current_challenge(session, circle) if circle else None
                if challenge is None:
                    return []
                challenge_id = challenge.id
            rows = await session.execute(
                select(CircleMember.alias, func.count(CircleCheckin.day)).join(
                    CircleCheckin, CircleCheckin.user_id == CircleMember.user_id)
                .where(CircleCheckin.challenge_id == challenge_id, CircleMember.circle_id == circle_id,
                       CircleMember.status == "active")
                .group_by(CircleMember.alias).order_by(func.count(CircleCheckin.day).desc(), CircleMember.alias))
            return [(alias, int(n)) for alias, n in rows.all()]

    # ------------------------------------------------------------------ the linked Telegram group
    async def group_code(self, user_id: int) -> Outcome:
        """A one-time code (1 day) the leader or adviser sends in the group with /circle_link."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            mine = await self._active(session, user_id)
            if mine is None or mine.role not in MODERATORS:
                return Outcome(False, "not_found")
            circle = await session.get(Circle, mine.circle_id)
            assert circle is not None
            code = secrets.token_hex(4)
            session.add(Invite(code=f"grp-{code}", kind="circle_group", team_id=circle.team_id, created_by=user_id,
                               single_use=True, payload={"circle_id": circle.id}, expires_at=now + GROUP_CODE_TTL,
                               created_at=now))
            return Outcome(True, circle_id=circle.id, name=circle.name, extra={"code": code})

    async def link_group(self, user_id: int, code: str, chat_id: int) -> Outcome:
        """Sent in the group by the leader or adviser who asked for the code (a code seen by someone
        else is useless to them); a group serves one circle."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            invite = await session.get(Invite, f"grp-{code.strip().lower()}")
            if invite is None or invite.kind != "circle_group" or invite.expires_at < now \
                    or invite.created_by != user_id:
                return Outcome(False, "invalid")
            circle = await session.get(Circle, int(invite.payload.get("circle_id", 0)))
            if circle is None or await self._moderator(session, user_id, circle.id) is None:
                return Outcome(False, "invalid")
            await session.execute(update(Circle).where(Circle.group_chat_id == chat_id).values(group_chat_id=None))
            circle.group_chat_id = chat_id
            await session.delete(invite)
            return Outcome(True, circle_id=circle.id, name=circle.name)

    async def unlink_group(self, user_id: int) -> Outcome:
        async with self._sessions.begin() as session:
            mine = await self._active(session, user_id)
            circle = await session.get(Circle, mine.circle_id) if mine and mine.role in MODERATORS else None
            if circle is None or circle.group_chat_id is None:
                return Outcome(False, "not_found")
            circle.group_chat_id = None
            return Outcome(True, circle_id=circle.id, name=circle.name)

    async def group_gone(self, chat_id: int, new_chat_id: int | None = None) -> int:
        """The bot left the group (None) or the group became a supergroup (its new id)."""
        async with self._sessions.begin() as session:
            result = await session.execute(update(Circle).where(Circle.group_chat_id == chat_id)
                                           .values(group_chat_id=new_chat_id))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ events
    async def announce(self, doctor_id: int, circle_ids: list[int], text: str) -> Outcome:
        """A "health club" event announced by a doctor to several circles of their team."""
        async with self._sessions.begin() as session:
            doctor = await session.get(User, doctor_id)
            circles = [c for c in [await self._doctor_circle(session, doctor_id, cid) for cid in circle_ids] if c]
            if doctor is None or not circles or not text.strip():
                return Outcome(False, "not_found")
            name = doctor.display_name or doctor.first_name
            count = 0
            for circle in circles:
                count += await self._system(session, circle, lambda t: "📣 " + t(
                    "Health club event from Dr {name}:", name=name) + "\n" + text.strip()[:3000], kind="event",
                    group=True)
            return Outcome(True, count=count, extra={"circles": len(circles)})


def next_session_start(circle: Circle, after: datetime) -> datetime | None:
    """The first scheduled start (UTC) at or after `after`, from the circle's local weekday and time."""
    if circle.session_weekday is None or not circle.session_time:
        return None
    zone = ZoneInfo(circle.timezone)
    hour, minute = (int(x) for x in circle.session_time.split(":"))
    local = after.astimezone(zone)
    for days in range(8):
        day = (local + timedelta(days=days)).date()
        if day.weekday() != circle.session_weekday:
            continue
        start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        if start >= after:
            return start.astimezone(after.tzinfo)
    return None


def week_start(now: datetime, timezone: str) -> date:
    local = now.astimezone(ZoneInfo(timezone)).date()
    return local - timedelta(days=local.weekday())
