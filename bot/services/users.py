"""Who is talking to us: users, roles, patient profiles, consent, erase."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload

from bot.services.clock import Clock
from content.i18n import Translator, normalize_language, translator
from storage.circle_models import CircleMember
from storage.models import (
    CaregiverLink,
    Outbox,
    PatientProfile,
    TeamMember,
    User,
    UserRole,
)
from storage.question_models import CareTrouble, Question


@dataclass(frozen=True)
class Onboarding:
    """What the patient told us during /start; stored only once they consented."""

    language: str
    timezone: str
    conditions: frozenset[str]
    birth_year: int | None
    glucose_unit: str = "mmol"


@dataclass(frozen=True)
class Sender:
    """What every update needs about its sender, read in ONE query (the per-update hot path)."""

    user: User
    profile: PatientProfile | None
    logs_for_others: bool  # a family member allowed to log for someone: readings ask "whose?"
    circle_talking: bool = False  # in "circle mode": free text goes to the peer circle
    # Not None: this answer came from the sender cache, NOT read now. It is `users.revision` as it
    # was read; whoever acts on the answer must check, in the transaction that acts, that it is
    # still current (ReadingService.record(revision=...)) and raise StaleSender if not.
    revision: int | None = None


class StaleSender(Exception):
    """A cached sender answer was found out of date by the write that relied on it; that write did
    nothing (its transaction rolled back). Forget the cached answer and handle the update again."""


class SenderCache:
    """The last `size` sender answers of this process, by Telegram id: the "plain patient" kind only.

    Why: reading the sender is the largest single cost of a typed reading (its own session: pool
    checkout, pre-ping, BEGIN, SELECT, ROLLBACK, ORM load; docs/benchmarks.md, issue 4).

    Why it is safe: an entry is never trusted on its own. It is kept with the `users.revision` it was
    read at; database triggers (migration 0008_sender_revision) give the user a new revision on any
    change of the user, roles, profile, caregiver links or circle memberships, whoever makes it (this
    process, another worker, the web dashboard, plain SQL, a cascade). Only a path whose one write
    checks that revision in that same write may act on a cached answer (the rule and the one such path:
    dialogs.common.with_cached_sender); every other path reads the sender afresh.

    Only consenting, onboarded patients with a profile, who log for nobody and are not in circle mode,
    are kept: the people whose plain typed reading is stored straight away. An entry (detached User,
    roles and PatientProfile) holds ~5.6 KB: 2 000 entries ~11 MB; a miss costs one fresh read."""

    def __init__(self, size: int = 2000):
        self._size = size
        self._entries: OrderedDict[int, Sender] = OrderedDict()

    def get(self, telegram_id: int) -> Sender | None:
        sender = self._entries.get(telegram_id)
        if sender is not None:
            self._entries.move_to_end(telegram_id)
        return sender

    def keep(self, telegram_id: int, sender: Sender) -> None:
        user = sender.user
        if (user.consent_at is None or user.onboarded_at is None or sender.profile is None
                or sender.logs_for_others or sender.circle_talking):
            self._entries.pop(telegram_id, None)
            return
        self._entries[telegram_id] = replace(sender, revision=user.revision)
        self._entries.move_to_end(telegram_id)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self, telegram_id: int) -> None:
        self._entries.pop(telegram_id, None)


# Built once: a prebuilt statement keeps its cache key, so each update skips SQLAlchemy's
# statement construction and cache-key generation (measured: about a third of this call).
_SENDER = (
    select(
        User, PatientProfile,
        select(CaregiverLink.patient_id)
        .where(CaregiverLink.caregiver_id == User.id, CaregiverLink.can_log.is_(True)).exists(),
        select(CircleMember.circle_id)
        .where(CircleMember.user_id == User.id, CircleMember.status == "active", CircleMember.talking.is_(True))
        .exists(),
    )
    .outerjoin(PatientProfile, PatientProfile.user_id == User.id)
    .options(joinedload(User.roles))
    .where(User.telegram_id == bindparam("telegram_id"))
)


class UserService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, default_timezone: str,
                 default_language: str):
        self._sessions = sessions
        self._clock = clock
        self._tz = default_timezone
        self._lang = default_language
        self.cache = SenderCache()

    async def ensure(self, telegram_id: int, chat_id: int, first_name: str, language_code: str | None) -> User:
        """Get or create the user for a Telegram account; a message from them proves reachability."""
        async with self._sessions.begin() as session:
            user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
            if user is None:
                user = User(
                    telegram_id=telegram_id,
                    chat_id=chat_id,
                    first_name=first_name[:128],
                    display_name=first_name[:128],
                    language=normalize_language(language_code, self._lang),
                    timezone=self._tz,
                    created_at=self._clock.now(),
                )
                session.add(user)
                await session.flush()
                await session.refresh(user, ["roles"])
            else:
                if user.chat_id != chat_id or user.unreachable_at is not None or user.first_name != first_name[:128]:
                    user.chat_id = chat_id
                    user.first_name = first_name[:128]
                    user.unreachable_at = None
                    user.unreachable_reason = None
            return user

    async def sender(self, telegram_id: int, chat_id: int, first_name: str, language_code: str | None, *,
                     cached: bool = False) -> Sender:
        """`ensure` plus the patient profile and the caregiver flag, in one SELECT (user, roles,
        profile, EXISTS can_log, EXISTS circle mode); writes only when something changed, which is rare.

        `cached=True`: the answer may come from `self.cache` without reading, marked by its
        `revision` (see Sender.revision and SenderCache for who may ask and what they must check)."""
        name = first_name[:128]
        if cached:
            hit = self.cache.get(telegram_id)
            if hit is not None and hit.user.chat_id == chat_id and hit.user.first_name == name \
                    and hit.user.unreachable_at is None:  # else the read below also writes
                return hit
        async with self._sessions() as session:
            row = (await session.execute(_SENDER, {"telegram_id": telegram_id})).unique().first()
        if row is None:
            return Sender(await self.ensure(telegram_id, chat_id, first_name, language_code), None, False)
        user, profile, logs_for_others, circle_talking = row
        sender = Sender(user, profile, bool(logs_for_others), bool(circle_talking))
        if user.chat_id != chat_id or user.unreachable_at is not None or user.first_name != name:
            await self._update(user.id, chat_id=chat_id, first_name=name, unreachable_at=None,
                               unreachable_reason=None)
            user.chat_id, user.first_name, user.unreachable_at, user.unreachable_reason = chat_id, name, None, None
            self.cache.forget(telegram_id)  # the write gave the user a new revision: read it next time
        else:
            self.cache.keep(telegram_id, sender)
        return sender

    async def get(self, user_id: int) -> User | None:
        async with self._sessions() as session:
            return await session.get(User, user_id)

    async def by_telegram(self, telegram_id: int) -> User | None:
        async with self._sessions() as session:
            return await session.scalar(select(User).where(User.telegram_id == telegram_id))

    async def profile(self, user_id: int) -> PatientProfile | None:
        async with self._sessions() as session:
            return await session.get(PatientProfile, user_id)

    async def set_language(self, user_id: int, language: str) -> None:
        await self._update(user_id, language=normalize_language(language, self._lang))

    async def set_display_name(self, user_id: int, name: str) -> None:
        await self._update(user_id, display_name=name[:128])

    async def set_timezone(self, user_id: int, timezone: str) -> None:
        await self._update(user_id, timezone=timezone)

    async def _update(self, user_id: int, **values: object) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(User).where(User.id == user_id).values(**values))

    async def update_profile(self, user_id: int, **values: object) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(PatientProfile).where(PatientProfile.user_id == user_id).values(**values))

    async def complete_onboarding(self, user_id: int, data: Onboarding) -> PatientProfile:
        """Consent given: from now on clinical data may be stored for this user."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            user = await session.get(User, user_id)
            assert user is not None
            user.language = data.language
            user.timezone = data.timezone
            user.consent_at = user.consent_at or now
            user.onboarded_at = now
            if not user.has_role("patient"):
                session.add(UserRole(user_id=user_id, role="patient"))
            profile = await session.get(PatientProfile, user_id)
            if profile is None:
                profile = PatientProfile(user_id=user_id)
                session.add(profile)
            profile.conditions = ",".join(sorted(data.conditions))
            profile.birth_year = data.birth_year
            profile.glucose_unit = data.glucose_unit
            return profile

    async def add_role(self, user_id: int, role: str) -> None:
        async with self._sessions.begin() as session:
            if await session.get(UserRole, (user_id, role)) is None:
                session.add(UserRole(user_id=user_id, role=role))

    async def mark_unreachable(self, user_id: int, reason: str) -> None:
        await self._update(user_id, unreachable_at=self._clock.now(), unreachable_reason=reason[:64])

    async def mark_reachable(self, user_id: int) -> None:
        await self._update(user_id, unreachable_at=None, unreachable_reason=None)

    async def is_team_member(self, user_id: int) -> bool:
        async with self._sessions() as session:
            return (await session.scalar(select(TeamMember.team_id).where(TeamMember.user_id == user_id))) is not None

    async def caregivers_of(self, patient_id: int) -> list[tuple[User, CaregiverLink]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(User, CaregiverLink)
                .join(CaregiverLink, CaregiverLink.caregiver_id == User.id)
                .where(CaregiverLink.patient_id == patient_id)
            )
            return [(u, link) for u, link in rows.all()]

    async def patients_of(self, caregiver_id: int) -> list[tuple[User, CaregiverLink]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(User, CaregiverLink).join(CaregiverLink, CaregiverLink.patient_id == User.id)
                .where(CaregiverLink.caregiver_id == caregiver_id, User.consent_at.is_not(None)))
            return [(u, link) for u, link in rows.all()]

    async def caregiver_link(self, patient_id: int, caregiver_id: int) -> CaregiverLink | None:
        async with self._sessions() as session:
            return await session.get(CaregiverLink, (patient_id, caregiver_id))

    async def set_caregiver_prefs(self, patient_id: int, caregiver_id: int, **prefs: bool) -> bool:
        async with self._sessions.begin() as session:
            link = await session.get(CaregiverLink, (patient_id, caregiver_id))
            if link is None:
                return False
            for key, value in prefs.items():
                if key in ("receive_alerts", "receive_summary", "can_log"):
                    setattr(link, key, value)
            return True

    async def revoke_caregiver(self, patient_id: int, caregiver_id: int) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(delete(CaregiverLink).where(
                CaregiverLink.patient_id == patient_id, CaregiverLink.caregiver_id == caregiver_id))
            return bool(result.rowcount)

    async def erase(self, user_id: int, notice: Callable[[Translator], str] | None = None) -> None:
        """Erase a user and, through ON DELETE CASCADE, every row of their data.

        The linked doctor gets a short notice (written before the delete, addressed to the
        doctor, so it survives the cascade) that the patient left and their data is gone.
        """
        async with self._sessions.begin() as session:
            profile = await session.get(PatientProfile, user_id)
            if profile is not None and profile.doctor_id and notice is not None:
                doctor = await session.get(User, profile.doctor_id)
                if doctor is not None and doctor.chat_id:
                    session.add(
                        Outbox(kind="notice", recipient_id=doctor.id, chat_id=doctor.chat_id,
                               payload={"text": notice(translator(doctor.language))},
                               next_attempt_at=self._clock.now())
                    )
            await _drop_pending_copies(session, user_id)
            await session.execute(delete(User).where(User.id == user_id))


async def _drop_pending_copies(session: AsyncSession, patient_id: int) -> None:
    """Unsent copies of the patient's questions and care-trouble notices sit in other people's
    outbox rows (addressed to the team), so the cascade does not reach them: drop them here,
    or an erased patient's words could still be delivered after the erase."""
    keys = [f"q:{qid}:%" for qid in await session.scalars(
        select(Question.id).where(Question.patient_id == patient_id))]
    keys += [f"trouble:{fid}" for fid in await session.scalars(
        select(CareTrouble.id).where(CareTrouble.patient_id == patient_id))]
    for key in keys:
        await session.execute(delete(Outbox).where(Outbox.status == "pending", Outbox.dedupe_key.like(key)))
