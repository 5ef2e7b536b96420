"""Dashboard login: one-time links sent in the chat, signed session cookies, CSRF tokens.

Why a link from the bot instead of passwords: doctors already proved who they are to Telegram and to
the admin invite; a link that works once, for 10 minutes, adds nothing to remember. Only the SHA-256
of the token is stored. The session is a signed cookie (HMAC-SHA256 with a per-install secret); the
CSRF token is derived from the session's nonce. Logout records that nonce in `dashboard_revocations`
and every request checks it (one primary-key lookup), so a copied cookie is useless after logout.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload

from bot.services.clock import Clock
from storage.dashboard_models import DashboardLogin, DashboardRevocation, DashboardSecret
from storage.models import User

LOGIN_VALID = timedelta(minutes=10)
SESSION_VALID = timedelta(hours=8)
COOKIE_NAME = "cc_dash"


@dataclass(frozen=True)
class DashboardSession:
    doctor_id: int
    expires_at: int  # unix seconds
    nonce: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DashboardAuth:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, secret: str = ""):
        self._sessions = sessions
        self._clock = clock
        self._secret = secret.encode() if secret else b""

    async def secret(self) -> bytes:
        """DASHBOARD_SECRET, else the one generated at first use and kept in the database."""
        if self._secret:
            return self._secret
        async with self._sessions() as session:
            value = await session.scalar(select(DashboardSecret.value).where(DashboardSecret.name == "session"))
        if value is None:
            try:
                async with self._sessions.begin() as session:
                    session.add(DashboardSecret(name="session", value=secrets.token_hex(32),
                                                created_at=self._clock.now()))
            except IntegrityError:
                pass  # another process created it first: use theirs
            async with self._sessions() as session:
                value = await session.scalar(select(DashboardSecret.value).where(DashboardSecret.name == "session"))
        assert value is not None
        self._secret = value.encode()
        return self._secret

    async def create_login(self, doctor_id: int) -> str:
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        async with self._sessions.begin() as session:
            session.add(DashboardLogin(token_hash=_hash(token), doctor_id=doctor_id, created_at=now,
                                       expires_at=now + LOGIN_VALID))
        return token

    async def consume_login(self, token: str) -> int | None:
        """The doctor's id when the token is known, unused and not expired; it is then spent.

        The UPDATE ... WHERE used_at IS NULL makes two simultaneous uses impossible: one wins."""
        if not token or len(token) > 100:
            return None
        now = self._clock.now()
        async with self._sessions.begin() as session:
            row = await session.get(DashboardLogin, _hash(token))
            if row is None or row.used_at is not None or row.expires_at <= now:
                return None
            result = await session.execute(
                update(DashboardLogin).where(DashboardLogin.token_hash == row.token_hash,
                                             DashboardLogin.used_at.is_(None)).values(used_at=now))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            doctor = await session.get(User, row.doctor_id)
            if doctor is None or not doctor.has_role("doctor"):
                return None
            return row.doctor_id

    async def _sign(self, payload: str) -> str:
        return hmac.new(await self.secret(), payload.encode(), hashlib.sha256).hexdigest()

    async def session_cookie(self, doctor_id: int) -> str:
        expires = int((self._clock.now() + SESSION_VALID).timestamp())
        payload = f"{doctor_id}.{expires}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{await self._sign(payload)}"

    async def _parse(self, value: str | None) -> DashboardSession | None:
        """The session a cookie names when its signature is ours and it has not expired (no database)."""
        if not value or value.count(".") != 3:
            return None
        payload, signature = value.rsplit(".", 1)
        if not hmac.compare_digest(signature, await self._sign(payload)):
            return None
        doctor, expires, nonce = payload.split(".")
        if not doctor.isdigit() or not expires.isdigit() or int(expires) <= self._clock.now().timestamp():
            return None
        return DashboardSession(int(doctor), int(expires), nonce)

    async def read_cookie(self, value: str | None) -> DashboardSession | None:
        parsed = await self._parse(value)
        if parsed is None:
            return None
        async with self._sessions() as session:
            if await session.get(DashboardRevocation, parsed.nonce) is not None:
                return None  # logged out
        return parsed

    async def session_doctor(self, value: str | None) -> tuple[DashboardSession, User] | None:
        """The session and its doctor (roles loaded) when the cookie is valid and not logged out.

        Every dashboard request starts here, so it is one connection checkout and one user query (the
        revocation check and the roles inside it), instead of a session for each lookup."""
        parsed = await self._parse(value)
        if parsed is None:
            return None
        revoked = select(DashboardRevocation.nonce).where(DashboardRevocation.nonce == parsed.nonce).exists()
        async with self._sessions() as session:
            # roles joined into the same statement (selectin would be a second round trip)
            user = (await session.scalars(select(User).where(User.id == parsed.doctor_id, ~revoked)
                                          .options(joinedload(User.roles)))).unique().first()
        if user is None or not user.has_role("doctor"):
            return None
        return parsed, user

    async def revoke(self, dashboard_session: DashboardSession) -> None:
        """Logout: this session's cookie stops working now, on every server sharing the database.

        Rows are only needed until the cookie would have expired anyway; older ones are purged here."""
        now = self._clock.now()
        try:
            async with self._sessions.begin() as session:
                await session.execute(delete(DashboardRevocation).where(DashboardRevocation.expires_at <= now))
                if await session.get(DashboardRevocation, dashboard_session.nonce) is None:
                    session.add(DashboardRevocation(
                        nonce=dashboard_session.nonce, doctor_id=dashboard_session.doctor_id,
                        expires_at=self.expires_at(dashboard_session), revoked_at=now))
        except IntegrityError:
            pass  # a simultaneous logout of the same session recorded it first

    async def csrf_token(self, session: DashboardSession) -> str:
        return (await self._sign(f"csrf.{session.doctor_id}.{session.nonce}"))[:32]

    async def check_csrf(self, session: DashboardSession, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token or "", await self.csrf_token(session))

    def expires_at(self, session: DashboardSession) -> datetime:
        return datetime.fromtimestamp(session.expires_at, tz=self._clock.now().tzinfo)
