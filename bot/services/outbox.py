"""The outbox worker: delivers every message the bot starts on its own (alerts, notices,
reminders, relays) at least once, in order of creation, through the shared rate limiter.

Rows are claimed with a lease (`status='sending'`, `next_attempt_at` = lease end); on
PostgreSQL the claim uses FOR UPDATE SKIP LOCKED so several workers share the table without
doubling a send. A crash after Telegram accepted a message but before we marked it sent is
the one window where a message can go out twice; it is a few milliseconds wide.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.services.alerts import alert_buttons
from bot.services.clock import Clock
from bot.services.db import with_retry
from content.i18n import translator
from storage.models import Alert, AlertEvent, Outbox, PatientProfile, TeamMember, User

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=30)  # longer than one send can take (10 s read timeout + limiter waits)
MAX_BACKOFF = timedelta(minutes=10)
GIVE_UP_AFTER = timedelta(hours=24)


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    unreachable: int = 0
    failed: int = 0


def keyboard(buttons: list[list[list[str]]] | None) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in buttons]
    )


class OutboxWorker:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, *, batch: int = 50,
                 postgres: bool = False):
        self._sessions = sessions
        self._clock = clock
        self._batch = batch
        self._postgres = postgres
        self.stats = DeliveryStats()
        self._wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}

    def wake(self) -> None:
        """Called after a commit that queued messages, so delivery does not wait for the poll."""
        self._wake.set()

    async def claim(self, busy_chats: frozenset[int] = frozenset()) -> list[Outbox]:
        """Lease due rows; chats still being delivered to are skipped so their order holds."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            query = (
                select(Outbox)
                .where(Outbox.status.in_(("pending", "sending")), Outbox.next_attempt_at <= now)
                .order_by(Outbox.id)
                .limit(self._batch)
            )
            if busy_chats:
                query = query.where(Outbox.chat_id.not_in(busy_chats))
            if self._postgres:
                query = query.with_for_update(skip_locked=True)
            rows = list(await session.scalars(query))
            if rows:
                await session.execute(
                    update(Outbox).where(Outbox.id.in_([r.id for r in rows]))
                    .values(status="sending", next_attempt_at=now + LEASE, attempts=Outbox.attempts + 1)
                )
            return rows

    async def run_once(self, bot: Bot, *, wait: bool = True) -> int:
        """Claim due rows and deliver them: each chat in its own task, its rows in order.

        With wait=False (the worker loop) a slow chat (a 429 back-off, a hanging request) no
        longer holds up other chats: the loop claims again while that chat's task runs."""
        rows = await self.claim(frozenset(self._inflight))
        by_chat: dict[int, list[Outbox]] = {}
        for row in rows:
            by_chat.setdefault(row.chat_id, []).append(row)
        started = []
        for chat_id, chat_rows in by_chat.items():
            task = asyncio.create_task(self._deliver_chat(bot, chat_rows))
            self._inflight[chat_id] = task
            task.add_done_callback(lambda _t, c=chat_id: self._finished(c))
            started.append(task)
        if wait and started:
            await asyncio.gather(*started)
        return len(rows)

    def _finished(self, chat_id: int) -> None:
        self._inflight.pop(chat_id, None)
        self._wake.set()  # that chat may have more rows waiting

    async def _deliver_chat(self, bot: Bot, rows: list[Outbox]) -> None:
        for row in rows:
            try:
                await self._deliver(bot, row)
            except Exception:  # one bad row must never stop the worker
                log.exception("outbox row %s failed unexpectedly", row.id)
                await self._retry(row, "unexpected error")

    async def _deliver(self, bot: Bot, row: Outbox) -> None:
        payload: dict[str, Any] = row.payload or {}
        try:
            if row.kind == "edit":
                message = await bot.edit_message_text(
                    chat_id=row.chat_id, message_id=payload["message_id"], text=payload["text"],
                    reply_markup=keyboard(payload.get("buttons")),
                )
                message_id = getattr(message, "message_id", payload["message_id"])
            elif row.kind == "delete":  # circles: remove a relayed message (payload: outbox_id of the relay)
                target = await self._sent_message_id(payload.get("outbox_id"))
                if target is not None:
                    await bot.delete_message(chat_id=row.chat_id, message_id=target)
                message_id = None
            elif payload.get("copy_from"):  # circles: relay media with copyMessage (no sender shown)
                message = await bot.copy_message(
                    chat_id=row.chat_id, from_chat_id=payload["copy_from"][0], message_id=payload["copy_from"][1],
                    caption=payload.get("caption"), reply_markup=keyboard(payload.get("buttons")),
                    reply_parameters=await self._reply_to(payload), rate_limit_args={"bulk": True},
                )
                message_id = message.message_id
            elif payload.get("photo_png_b64"):  # a chart (weekly summary): the text is the caption
                message = await bot.send_photo(
                    chat_id=row.chat_id, photo=base64.b64decode(payload["photo_png_b64"]),
                    caption=(payload.get("text") or "")[:1024] or None,
                    reply_markup=keyboard(payload.get("buttons")), rate_limit_args={"bulk": True},
                )
                message_id = message.message_id
            else:
                message = await bot.send_message(
                    chat_id=row.chat_id, text=payload["text"], parse_mode=payload.get("parse_mode"),
                    reply_markup=keyboard(payload.get("buttons")), rate_limit_args={"bulk": True},
                    reply_parameters=await self._reply_to(payload),
                )
                message_id = message.message_id
        except RetryAfter as exc:
            delay = exc.retry_after
            seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
            await self._retry(row, "429", after=timedelta(seconds=seconds))
            return
        except ChatMigrated as exc:
            await self._migrate(row, exc.new_chat_id)
            return
        except Forbidden as exc:
            await self._unreachable(row, str(exc))
            return
        except BadRequest as exc:
            text = str(exc).lower()
            if "not modified" in text:
                await self._mark_sent(row, payload.get("message_id"))
            elif "chat not found" in text:
                await self._unreachable(row, str(exc))
            else:
                await self._fail(row, str(exc))
            return
        except (NetworkError, TelegramError) as exc:  # 5xx, timeouts, resets
            await self._retry(row, exc.__class__.__name__)
            return
        # Telegram has it: a dropped database connection now must not make us send it again.
        await with_retry(lambda: self._mark_sent(row, message_id))

    async def _sent_message_id(self, outbox_id: int | None) -> int | None:
        """The Telegram message id an earlier outbox row produced (None when not sent)."""
        if not outbox_id:
            return None
        async with self._sessions() as session:
            return await session.scalar(select(Outbox.telegram_message_id).where(Outbox.id == int(outbox_id)))

    async def _reply_to(self, payload: dict[str, Any]) -> ReplyParameters | None:
        """Reply threading for relays: `reply_to` (a message id) or `reply_to_outbox` (an earlier row in the
        same chat, delivered first because each chat's rows go in order); a deleted target is no error."""
        target = payload.get("reply_to") or await self._sent_message_id(payload.get("reply_to_outbox"))
        return ReplyParameters(message_id=int(target), allow_sending_without_reply=True) if target else None

    async def _mark_sent(self, row: Outbox, message_id: int | None) -> None:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            await session.execute(update(Outbox).where(Outbox.id == row.id).values(
                status="sent", sent_at=now, telegram_message_id=message_id, last_error=None))
            if row.alert_id and row.kind == "alert":
                session.add(AlertEvent(alert_id=row.alert_id, at=now, event="delivered", actor_id=row.recipient_id))
        self.stats.sent += 1

    async def _retry(self, row: Outbox, reason: str, after: timedelta | None = None) -> None:
        now = self._clock.now()
        if after is None:  # an urgent alert retries sooner (0.2 s, 0.4 s, ...): a 5xx is usually a blip
            base = 0.1 if row.kind == "alert" else 0.5
            after = min(MAX_BACKOFF, timedelta(seconds=base * 2 ** min(row.attempts, 12)))
        status = "pending"
        if now - row.created_at > GIVE_UP_AFTER and row.kind not in ("alert",):
            status = "failed"
        async with self._sessions.begin() as session:
            await session.execute(update(Outbox).where(Outbox.id == row.id).values(
                status=status, next_attempt_at=now + after, last_error=reason[:256]))
            if row.alert_id and row.kind == "alert":
                session.add(AlertEvent(alert_id=row.alert_id, at=now, event="send_failed", detail=reason[:256]))
        self.stats.retried += 1

    async def _fail(self, row: Outbox, reason: str) -> None:
        log.error("outbox row %s rejected by Telegram: %s", row.id, reason)
        async with self._sessions.begin() as session:
            await session.execute(update(Outbox).where(Outbox.id == row.id).values(status="failed",
                                                                                   last_error=reason[:256]))
        self.stats.failed += 1

    async def _migrate(self, row: Outbox, new_chat_id: int) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(Outbox).where(Outbox.chat_id == row.chat_id,
                                                       Outbox.status.in_(("pending", "sending")))
                                  .values(chat_id=new_chat_id, status="pending", next_attempt_at=self._clock.now()))

    async def _unreachable(self, row: Outbox, reason: str) -> None:
        """The recipient blocked the bot or never started it: stop trying, and if it was an alert
        tell the rest of the team so the patient is not left without anyone."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            await session.execute(update(Outbox).where(Outbox.id == row.id).values(
                status="unreachable", last_error=reason[:256]))
            if row.recipient_id:
                await session.execute(update(User).where(User.id == row.recipient_id).values(
                    unreachable_at=now, unreachable_reason=reason[:64]))
            if row.alert_id and row.kind == "alert":
                session.add(AlertEvent(alert_id=row.alert_id, at=now, event="unreachable", actor_id=row.recipient_id,
                                       detail=reason[:256]))
                await self._tell_team_unreachable(session, row, now)
        self.stats.unreachable += 1

    async def _tell_team_unreachable(self, session: AsyncSession, row: Outbox, now: Any) -> None:
        alert = await session.get(Alert, row.alert_id)
        doctor = await session.get(User, row.recipient_id) if row.recipient_id else None
        profile = await session.get(PatientProfile, alert.patient_id) if alert else None
        if alert is None or profile is None or profile.team_id is None:
            return
        members = await session.scalars(
            select(User).join(TeamMember, TeamMember.user_id == User.id)
            .where(TeamMember.team_id == profile.team_id, User.id != row.recipient_id, User.chat_id.is_not(None),
                   User.unreachable_at.is_(None))
        )
        for member in members:
            t = translator(member.language)
            name = (doctor.display_name or doctor.first_name) if doctor else "?"
            text = t("Dr {name} cannot be reached on Telegram (blocked or never started the bot). "
                     "The urgent alert below is for you.", name=name) + "\n\n" + row.payload.get("text", "")
            session.add(Outbox(kind="alert", recipient_id=member.id, chat_id=member.chat_id, alert_id=alert.id,
                               payload={"text": text, "buttons": alert_buttons(alert.id, member.language)},
                               dedupe_key=f"alert:{alert.id}:to:{member.id}:unreach", next_attempt_at=now))

    async def pending_count(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count(Outbox.id)).where(
                or_(Outbox.status == "pending", Outbox.status == "sending"))) or 0)

    async def run_forever(self, bot: Bot, poll_seconds: float) -> None:
        try:
            while True:
                self._wake.clear()
                try:
                    busy = await self.run_once(bot, wait=False)
                except Exception:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise  # a cancelled DB call may surface as another exception
                    log.exception("outbox worker tick failed; retrying")
                    busy = 0
                if not busy:
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=poll_seconds)
                    except TimeoutError:
                        pass
        finally:
            for task in list(self._inflight.values()):
                task.cancel()
