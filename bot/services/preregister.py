"""Doctor pre-registration (issue 5): the doctor enters a patient's name, phone, year of birth
and conditions before the patient has Telegram set up, and hands over a personal invite link
(and its QR code). When the patient opens it and consents, their account takes over the
pre-registered record.

Why a real `users` row (telegram_id NULL, no consent): the patient shows up in the doctor's
/patients panel at once, and the doctor can set targets, risk or record a follow-up before the
first message. Nothing from the patient is stored before they consent; what the doctor entered
is the doctor's own record.

On joining, the pre-registered record is folded into the patient's account (their Telegram
account may already hold readings, so that row stays): the doctor's name, phone, year of birth,
conditions, targets and risk move into the account's profile, every other row that points at the
placeholder (plan versions, education prescriptions and their lessons, reminders, follow-ups, chat
follow-ups, questions, alerts, ... : every foreign key to `users.id`, found in the metadata so a
new table is never forgotten) is re-pointed to the account, the placeholder row is deleted, and
the doctor is told the patient's number in the outbox (the number changes when the account
existed before).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Table, UniqueConstraint, and_, delete, exists, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.clock import Clock
from content.i18n import translator
from storage.models import Base, Invite, Outbox, PatientProfile, TeamMember, User
from storage.plan_models import CarePlanVersion

if TYPE_CHECKING:
    from bot.services.invites import InviteService

log = logging.getLogger(__name__)

INVITE_DAYS = 30
_COPY_IF_EMPTY = ("birth_year", "target_sys", "target_dia", "target_fasting_low", "target_fasting_high",
                  "target_postmeal_high", "next_followup_due", "last_contact_at", "height_cm")


@dataclass(frozen=True)
class PreRegistration:
    name: str
    phone: str | None = None
    birth_year: int | None = None
    conditions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PreRegistered:
    patient_id: int
    payload: str  # the /start payload: p-<code>


class PreRegistrationService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, invites: InviteService):
        self._sessions = sessions
        self._clock = clock
        self._invites = invites

    async def create(self, doctor_id: int, data: PreRegistration) -> PreRegistered | None:
        """The record in the doctor's (first) team and a single-use invite for it; None when the
        doctor has no team."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            team_id = await session.scalar(select(TeamMember.team_id).where(TeamMember.user_id == doctor_id)
                                           .order_by(TeamMember.team_id).limit(1))
            if team_id is None:
                return None
            user = User(telegram_id=None, chat_id=None, first_name=data.name[:128], display_name=data.name[:128],
                        phone=data.phone, created_at=now)
            session.add(user)
            await session.flush()
            session.add(PatientProfile(user_id=user.id, conditions=",".join(sorted(data.conditions)),
                                       birth_year=data.birth_year, team_id=team_id, doctor_id=doctor_id))
            patient_id = user.id
        payload = await self._invites.create("patient", team_id=team_id, created_by=doctor_id, patient_id=patient_id,
                                             days=INVITE_DAYS, single_use=True)
        return PreRegistered(patient_id, payload)


async def fold_in(session: AsyncSession, invite: Invite, user: User, profile: PatientProfile, now: datetime) -> bool:
    """Inside InviteService.redeem: move the pre-registered record `invite.patient_id` into the
    joining patient's account. False when the record is gone or already joined."""
    record = await session.get(User, invite.patient_id)
    if record is None or record.telegram_id is not None or record.consent_at is not None:
        return False
    pre = await session.get(PatientProfile, record.id)
    user.display_name = record.display_name or user.display_name
    user.phone = user.phone or record.phone
    if pre is not None:
        profile.conditions = ",".join(sorted(profile.condition_set | pre.condition_set))
        for name in _COPY_IF_EMPTY:
            if getattr(profile, name) is None:
                setattr(profile, name, getattr(pre, name))
        if pre.risk != "standard":
            profile.risk = pre.risk
    await session.flush()  # the profile and name changes above first: the moves below are plain SQL
    await move_user_rows(session, record.id, user.id)
    invite.patient_id = user.id  # the row is moved already; keep the loaded object in step
    if pre is not None:
        await session.delete(pre)
    await session.flush()
    await session.execute(delete(User).where(User.id == record.id))
    doctor = await session.get(User, invite.created_by) if invite.created_by else None
    if doctor is not None and doctor.chat_id:
        t = translator(doctor.language)
        text = t("{name} opened their personal link and joined CareCircle. Their patient number is #{id} "
                 "(pre-registered as #{old}).", name=user.display_name, id=user.id, old=record.id)
        session.add(Outbox(kind="notice", recipient_id=doctor.id, chat_id=doctor.chat_id, payload={"text": text},
                           dedupe_key=f"prereg:{invite.code}", next_attempt_at=now, created_at=now))
    return True


def user_foreign_keys() -> list[tuple[Table, str]]:
    """Every (table, column) that references `users.id`, from the metadata: a table added later is
    carried over by the merge without anyone remembering to list it here."""
    found: list[tuple[Table, str]] = []
    for table in Base.metadata.sorted_tables:
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            if fk.column.table.name == "users" and fk.column.name == "id":
                found.append((table, fk.parent.name))
    return found


# The placeholder's profile is merged field by field in `fold_in`, then deleted.
_MERGED_BY_HAND = {("patient_profiles", "user_id")}


async def move_user_rows(session: AsyncSession, old_id: int, new_id: int) -> None:
    """Re-point every row that references user `old_id` to `new_id` (see `user_foreign_keys`).

    Where a key allows one row per person (a primary key or unique constraint holding the column,
    e.g. reminder settings, roles, circle membership, one chat follow-up per due date) and the new
    user already has that row, the new user's row wins and the placeholder's duplicate is dropped
    (counted in the log). Plan versions are not duplicates: the placeholder's versions are numbered
    after the account's own ones, so the doctor's pre-registration plan becomes the current one and
    the history keeps both."""
    newest = await session.scalar(select(func.max(CarePlanVersion.version))
                                  .where(CarePlanVersion.patient_id == new_id)) or 0
    await session.execute(update(CarePlanVersion).where(CarePlanVersion.patient_id == old_id)
                          .values(patient_id=new_id, version=CarePlanVersion.version + newest)
                          .execution_options(synchronize_session=False))
    for table, column in user_foreign_keys():
        if (table.name, column) in _MERGED_BY_HAND:
            continue
        for key in _unique_keys(table, column):
            twin = table.alias()
            same = [twin.c[name] == table.c[name] for name in key if name != column]
            duplicate = exists(select(literal(1)).select_from(twin).where(twin.c[column] == new_id, *same))
            dropped = (await session.execute(delete(table).where(and_(table.c[column] == old_id, duplicate))
                                             .execution_options(synchronize_session=False))).rowcount
            if dropped:
                log.info("merge %s -> %s: %s duplicate row(s) of %s kept the account's own", old_id, new_id,
                         dropped, table.name)
        await session.execute(update(table).where(table.c[column] == old_id).values({column: new_id})
                              .execution_options(synchronize_session=False))


def _unique_keys(table: Table, column: str) -> list[list[str]]:
    """The primary key and unique constraints of `table` that include `column`."""
    keys = [[c.name for c in table.primary_key.columns]]
    keys += [[c.name for c in constraint.columns] for constraint in table.constraints
             if isinstance(constraint, UniqueConstraint)]
    keys += [[c.name for c in index.columns] for index in table.indexes if index.unique]
    return [key for key in keys if column in key]
