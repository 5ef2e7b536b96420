"""Invites behind deep links: `/start d-<code>` (doctor), `p-<code>` (patient), `c-<code>` (caregiver).

Codes are random, URL-safe and fit Telegram's 64-character start payload. Redeeming checks
kind, expiry and single use inside one transaction, so a code used twice links only once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.clock import Clock
from bot.services.preregister import fold_in
from storage.models import CaregiverLink, Invite, PatientProfile, Team, TeamMember, User, UserRole

PAYLOAD_RE = re.compile(r"^(?P<prefix>[dpcg])-(?P<code>[A-Za-z0-9_-]{8,40})$")
PREFIX = {"doctor": "d", "patient": "p", "caregiver": "c", "circle": "g"}  # g-: peer-support circle (issue 7)
KIND = {v: k for k, v in PREFIX.items()}


@dataclass(frozen=True)
class Redeemed:
    ok: bool
    reason: str = ""  # invalid|expired|used|wrong_kind|self
    kind: str = ""
    team_name: str = ""
    patient_name: str = ""
    doctor_name: str = ""


def parse_payload(payload: str | None) -> tuple[str, str] | None:
    if not payload:
        return None
    match = PAYLOAD_RE.match(payload.strip())
    if not match:
        return None
    return KIND[match["prefix"]], match["code"]


class InviteService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock):
        self._sessions = sessions
        self._clock = clock

    async def create(self, kind: str, *, team_id: int | None = None, created_by: int | None = None,
                     patient_id: int | None = None, days: float = 7, single_use: bool = True,
                     payload: dict | None = None) -> str:
        code = secrets.token_urlsafe(12)
        async with self._sessions.begin() as session:
            session.add(Invite(code=code, kind=kind, team_id=team_id, created_by=created_by, patient_id=patient_id,
                               single_use=single_use, payload=payload or {},
                               expires_at=self._clock.now() + timedelta(days=days), created_at=self._clock.now()))
        return f"{PREFIX[kind]}-{code}"

    async def create_doctor_invite(self, name: str, team_name: str, role: str = "gp") -> str:
        """Admin CLI: a team (created if new) and a one-time doctor invite valid 7 days."""
        async with self._sessions.begin() as session:
            team = await session.scalar(select(Team).where(Team.name == team_name))
            if team is None:
                team = Team(name=team_name, created_at=self._clock.now())
                session.add(team)
                await session.flush()
            team_id = team.id
        return await self.create("doctor", team_id=team_id, payload={"name": name, "role": role})

    async def redeem(self, kind: str, code: str, user_id: int) -> Redeemed:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            invite = await session.get(Invite, code, with_for_update=True)
            if invite is None:
                return Redeemed(False, "invalid")
            if invite.kind != kind:
                return Redeemed(False, "invalid")
            if invite.expires_at < now:
                return Redeemed(False, "expired")
            if invite.single_use and invite.used_at is not None:
                return Redeemed(False, "already" if invite.used_by == user_id else "used")
            user = await session.get(User, user_id)
            assert user is not None
            team = await session.get(Team, invite.team_id) if invite.team_id else None
            result: Redeemed
            if kind == "doctor":
                if team is None:
                    return Redeemed(False, "invalid")
                name = str(invite.payload.get("name") or user.first_name)
                user.display_name = name[:128]
                if not user.has_role("doctor"):
                    session.add(UserRole(user_id=user.id, role="doctor"))
                if await session.get(TeamMember, (team.id, user.id)) is None:
                    order = await session.scalar(select(func.count()).where(TeamMember.team_id == team.id)) or 0
                    session.add(TeamMember(team_id=team.id, user_id=user.id, role=str(invite.payload.get("role", "gp")),
                                           oncall_order=int(order), is_lead=order == 0))
                result = Redeemed(True, kind=kind, team_name=team.name, doctor_name=name)
            elif kind == "patient":
                profile = await session.get(PatientProfile, user.id)
                if profile is None:  # consent first; the caller keeps the code and retries after onboarding
                    return Redeemed(False, "needs_consent")
                # A personal link for a record the doctor pre-registered: the account takes it over.
                if invite.patient_id is not None and invite.patient_id != user.id \
                        and not await fold_in(session, invite, user, profile, now):
                    return Redeemed(False, "used")
                profile.team_id = invite.team_id
                profile.doctor_id = invite.created_by
                profile.linked_at = now
                doctor = await session.get(User, invite.created_by) if invite.created_by else None
                result = Redeemed(True, kind=kind, team_name=team.name if team else "",
                                  doctor_name=(doctor.display_name or doctor.first_name) if doctor else "")
            else:  # caregiver
                if invite.patient_id is None or invite.patient_id == user.id:
                    return Redeemed(False, "self" if invite.patient_id == user.id else "invalid")
                patient = await session.get(User, invite.patient_id)
                if patient is None:
                    return Redeemed(False, "invalid")
                if await session.get(CaregiverLink, (patient.id, user.id)) is None:
                    session.add(CaregiverLink(patient_id=patient.id, caregiver_id=user.id, created_at=now))
                if not user.has_role("caregiver"):
                    session.add(UserRole(user_id=user.id, role="caregiver"))
                result = Redeemed(True, kind=kind, patient_name=patient.display_name or patient.first_name)
            invite.uses += 1
            invite.used_at = invite.used_at or now
            invite.used_by = invite.used_by or user.id
            return result
