"""The outbox worker: delivers every message the bot starts on its own (alerts, notices,
reminders, relays) at least once, in order of creation, through the shared rate limiter.

Leases and fencing. Rows are claimed with a lease (`status='sending'`, `next_attempt_at` = lease
end, `attempts` + 1); on PostgreSQL the claim uses FOR UPDATE SKIP LOCKED so several senders share
the table. The `attempts` value our claim wrote is the row's lease token: every later write of ours
(renew, mark sent, retry, give up) matches `status='sending' AND attempts=<token>`, so once another
sender has claimed the row again (its lease had run out) none of our writes lands. `attempts` only
ever grows, so an old token never matches again.

Right before the Telegram call (after every limiter wait, through the `before_send` hook of
bot.telegram.ratelimit) a row whose lease has less than SEND_BUDGET left is renewed with one UPDATE
matching the token; when nothing matched, another sender owns it and we skip it without sending. A
fresh claim costs no statement there. Marking sent retries through a dropped connection for as long
as the lease lasts. On a step-down (the sender task is cancelled) nothing new is claimed or started,
rows not yet at the Telegram call are handed back at once, and requests already on the wire finish
and are marked (bounded by DRAIN_SECONDS) instead of being cancelled mid-request.

What is left (at-least-once is inherent: Telegram has no idempotency key):
* a process that dies (SIGKILL, power) between Telegram's answer and the commit of "sent": the row
  is sent again when its lease ends;
* a timed-out or reset request that Telegram did perform: we cannot tell it from one it did not, and
  retry it;
* a request that takes longer than SEND_BUDGET after its lease check and whose lease another sender
  then claims (the HTTP timeouts add up to 25 s, the check leaves at least SEND_BUDGET), or a
  "mark sent" that cannot reach the database for a whole lease.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.services.alerts import alert_buttons
from bot.services.clock import Clock
from bot.services.db import being_cancelled, is_transient, with_retry
from content.i18n import translator
from storage.models import Alert, AlertEvent, Outbox, PatientProfile, TeamMember, User
from storage.write_lock import urgent_writes

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=30)  # how long a claim (or a renewal) keeps other senders off a row
# The longest one send request can take (connect 5 + write 10 + read 10 s, bot.telegram.request): a
# row is renewed right before its request unless at least this much of its lease is left.
SEND_BUDGET = timedelta(seconds=25)
DRAIN_SECONDS = LEASE.total_seconds()  # a stepping-down sender waits this long for requests on the wire
MAX_BACKOFF = timedelta(minutes=10)
GIVE_UP_AFTER = timedelta(hours=24)


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    unreachable: int = 0
    failed: int = 0
    lease_lost: int = 0  # rows skipped (or marked too late) because another sender had claimed them again
    released: int = 0  # rows handed back unsent on a step-down


class LeaseLost(Exception):
    """Another sender claimed the row again (our lease ran out) or the lease could not be renewed:
    do not send it, and write nothing to it."""


class SteppingDown(Exception):
    """The sender is stopping (no longer the leader): do not start this request; hand the row back."""


@dataclass
class Term:
    """One run of the sender loop (one leadership term). Once `stopping`, its chat tasks start no new
    request; the requests already on the wire finish and are marked."""

    stopping: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _transient(exc: Exception) -> bool:
    """A dropped connection, a locked SQLite file, a deadlock: worth another try (bot.services.db)."""
    return isinstance(exc, DBAPIError) and is_transient(exc)


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
        """Lease due rows; chats still being delivered to are skipped so their order holds.

        The UPDATE repeats the due condition and returns what it leased, so two claims that read the
        same row (SQLite has no SKIP LOCKED) cannot both own it. Each returned row carries our lease:
        `attempts` is the token, `next_attempt_at` the lease end (the objects are detached copies)."""
        now = self._clock.now()
        ends = now + LEASE
        async with self._sessions.begin() as session:
            query = (
                select(Outbox)
                .where(Outbox.status.in_(("pending", "sending")), Outbox.next_attempt_at <= now)
                # Alerts first (a backlog of reminders must not delay one), then in order of creation;
                # within a chat an alert may overtake an earlier non-alert row, never another alert.
                .order_by(Outbox.kind != "alert", Outbox.id)
                .limit(self._batch)
            )
            if busy_chats:
                query = query.where(Outbox.chat_id.not_in(busy_chats))
            if self._postgres:
                query = query.with_for_update(skip_locked=True)
            rows = list(await session.scalars(query))
            if not rows:
                return []
            tokens = dict((await session.execute(
                update(Outbox)
                .where(Outbox.id.in_([r.id for r in rows]), Outbox.status.in_(("pending", "sending")),
                       Outbox.next_attempt_at <= now)
                .values(status="sending", next_attempt_at=ends, attempts=Outbox.attempts + 1)
                .returning(Outbox.id, Outbox.attempts)
                .execution_options(synchronize_session=False)
            )).tuples().all())
        claimed = [r for r in rows if r.id in tokens]
        for row in claimed:  # after the session closed: these writes go nowhere
            row.status, row.attempts, row.next_attempt_at = "sending", tokens[row.id], ends
        return claimed

    async def run_once(self, bot: Bot, *, wait: bool = True, term: Term | None = None) -> int:
        """Claim due rows and deliver them: each chat in its own task, its rows in order.

        With wait=False (the worker loop) a slow chat (a 429 back-off, a hanging request) no
        longer holds up other chats: the loop claims again while that chat's task runs."""
        term = term or Term()
        # On SQLite the claim is on every alert's path: it goes first in the one-writer queue
        # (storage/write_lock.py); one short transaction per claim, so ordinary writers lose little.
        with urgent_writes():
            rows = await self.claim(frozenset(self._inflight))
        by_chat: dict[int, list[Outbox]] = {}
        for row in rows:
            by_chat.setdefault(row.chat_id, []).append(row)
        started = []
        for chat_id, chat_rows in by_chat.items():
            task = asyncio.create_task(self._deliver_chat(bot, chat_rows, term))
            self._inflight[chat_id] = task
            term.tasks.add(task)
            task.add_done_callback(lambda t, c=chat_id: self._finished(c, t, term))
            started.append(task)
        if wait and started:
            await asyncio.gather(*started)
        return len(rows)

    def _finished(self, chat_id: int, task: asyncio.Task[None], term: Term) -> None:
        term.tasks.discard(task)
        if self._inflight.get(chat_id) is task:
            del self._inflight[chat_id]
        self._wake.set()  # that chat may have more rows waiting

    async def _deliver_chat(self, bot: Bot, rows: list[Outbox], term: Term) -> None:
        for i, row in enumerate(rows):
            try:
                if term.stopping:
                    raise SteppingDown
                with urgent_writes(row.kind == "alert"):  # its retry or "sent" goes first on SQLite
                    await self._deliver(bot, row, term)
            except SteppingDown:
                await self._release(rows[i:])
                return
            except Exception:  # one bad row must never stop the worker
                log.exception("outbox row %s failed unexpectedly", row.id)
                await self._retry(row, "unexpected error")

    async def _hold(self, row: Outbox, term: Term) -> None:
        """Called right before the Telegram request (by the limiter, after its waits): the row must
        still be ours for as long as a request can take. A fresh claim passes without a statement;
        an older one is renewed with one UPDATE matching our token."""
        if term.stopping:
            raise SteppingDown
        now = self._clock.now()
        if row.next_attempt_at - now >= SEND_BUDGET:
            return
        ends = now + LEASE

        async def renew() -> int:
            async with self._sessions.begin() as session:
                result = await session.execute(self._ours(row).values(next_attempt_at=ends))
                return int(result.rowcount or 0)  # type: ignore[attr-defined]

        try:
            renewed = await with_retry(renew, attempts=3)
        except (OperationalError, DBAPIError) as exc:  # unknown owner: not sending is the safe side
            raise LeaseLost(f"lease renewal failed ({exc.__class__.__name__})") from exc
        if not renewed:
            raise LeaseLost("another sender claimed it again")
        row.next_attempt_at = ends

    def _ours(self, row: Outbox) -> Any:
        """UPDATE of this row that only lands while our lease token still holds."""
        return update(Outbox).where(Outbox.id == row.id, Outbox.status == "sending",
                                    Outbox.attempts == row.attempts).execution_options(synchronize_session=False)

    async def _deliver(self, bot: Bot, row: Outbox, term: Term | None = None) -> None:
        payload: dict[str, Any] = row.payload or {}
        term = term or Term()

        async def hold() -> None:
            await self._hold(row, term)

        limits: dict[str, Any] = {"before_send": hold}
        bulk = {**limits, "bulk": True, "urgent": row.kind == "alert"}  # alerts: the limiter's first lane
        try:
            await hold()  # the limiter calls it again after its waits; fresh by then costs nothing
            if row.kind == "edit":
                message = await bot.edit_message_text(
                    chat_id=row.chat_id, message_id=payload["message_id"], text=payload["text"],
                    reply_markup=keyboard(payload.get("buttons")), rate_limit_args=limits,
                )
                message_id = getattr(message, "message_id", payload["message_id"])
            elif row.kind == "delete":  # circles: remove a relayed message (payload: outbox_id of the relay)
                target = await self._sent_message_id(payload.get("outbox_id"))
                if target is not None:
                    await bot.delete_message(chat_id=row.chat_id, message_id=target, rate_limit_args=limits)
                message_id = None
            elif payload.get("copy_from"):  # circles: relay media with copyMessage (no sender shown)
                message = await bot.copy_message(
                    chat_id=row.chat_id, from_chat_id=payload["copy_from"][0], message_id=payload["copy_from"][1],
                    caption=payload.get("caption"), reply_markup=keyboard(payload.get("buttons")),
                    reply_parameters=await self._reply_to(payload), rate_limit_args=bulk,
                )
                message_id = message.message_id
            elif payload.get("photo_png_b64"):  # a chart (weekly summary): the text is the caption
                message = await bot.send_photo(
                    chat_id=row.chat_id, photo=base64.b64decode(payload["photo_png_b64"]),
                    caption=(payload.get("text") or "")[:1024] or None,
                    reply_markup=keyboard(payload.get("buttons")), rate_limit_args=bulk,
                )
                message_id = message.message_id
            else:
                message = await bot.send_message(
                    chat_id=row.chat_id, text=payload["text"], parse_mode=payload.get("parse_mode"),
                    reply_markup=keyboard(payload.get("buttons")), rate_limit_args=bulk,
                    reply_parameters=await self._reply_to(payload),
                )
                message_id = message.message_id
        except LeaseLost as exc:
            log.warning("outbox row %s not sent: %s", row.id, exc)
            self.stats.lease_lost += 1
            return
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
        await self._mark_sent(row, message_id)

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
        """Telegram has it: record that, through dropped connections, for as long as our lease lasts
        (after that another sender may claim the row, and our token no longer matches anyway)."""
        now = self._clock.now()

        async def mark() -> bool:
            async with self._sessions.begin() as session:
                result = await session.execute(self._ours(row).values(
                    status="sent", sent_at=now, telegram_message_id=message_id, last_error=None))
                if not result.rowcount:  # type: ignore[attr-defined]
                    return False
                if row.alert_id and row.kind == "alert":
                    session.add(AlertEvent(alert_id=row.alert_id, at=now, event="delivered",
                                           actor_id=row.recipient_id))
                return True

        self.stats.sent += 1
        if await self._while_leased(row, mark) or await self._marked_by_us(row, message_id):
            return
        log.warning("outbox row %s was sent after another sender claimed it again: it may arrive twice", row.id)
        self.stats.lease_lost += 1

    async def _marked_by_us(self, row: Outbox, message_id: int | None) -> bool:
        """Nothing matched our token: was it our own earlier try, whose COMMIT went through although
        the connection died before we heard back? (Rare; only then is this read made.)"""
        async with self._sessions() as session:
            found = (await session.execute(select(Outbox.status, Outbox.attempts, Outbox.telegram_message_id)
                                           .where(Outbox.id == row.id))).first()
        return found is not None and tuple(found) == ("sent", row.attempts, message_id)

    async def _while_leased(self, row: Outbox, operation: Callable[[], Awaitable[bool]]) -> bool:
        """Run a token-matched write, retrying transient database errors until the lease ends
        (at least a few seconds, so a lease renewed just before is not cut short by a slow clock)."""
        left = max(5.0, (row.next_attempt_at - self._clock.now()).total_seconds())
        deadline = time.monotonic() + left
        delay = 0.05
        while True:
            try:
                return await operation()
            except (OperationalError, DBAPIError) as exc:
                if not _transient(exc) or time.monotonic() + delay > deadline:
                    raise
                log.warning("outbox row %s: transient database error (%s); retrying", row.id,
                            exc.__class__.__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _release(self, rows: list[Outbox]) -> None:
        """Hand rows we will not send now (stepping down) back to whoever sends next, at once rather
        than when their lease ends. Best effort: if the database is away, the lease ends anyway."""
        now = self._clock.now()

        async def release() -> int:
            count = 0
            async with self._sessions.begin() as session:
                for row in rows:
                    result = await session.execute(self._ours(row).values(status="pending", next_attempt_at=now))
                    count += int(result.rowcount or 0)  # type: ignore[attr-defined]
            return count

        try:
            self.stats.released += await with_retry(release, attempts=3)
        except Exception as exc:
            log.warning("could not hand back %d outbox rows (%s); their leases will end", len(rows),
                        exc.__class__.__name__)

    async def _retry(self, row: Outbox, reason: str, after: timedelta | None = None) -> None:
        now = self._clock.now()
        if after is None:  # an urgent alert retries sooner (0.2 s, 0.4 s, ...): a 5xx is usually a blip
            base = 0.1 if row.kind == "alert" else 0.5
            after = min(MAX_BACKOFF, timedelta(seconds=base * 2 ** min(row.attempts, 12)))
        status = "pending"
        if now - row.created_at > GIVE_UP_AFTER and row.kind not in ("alert",):
            status = "failed"
        async with self._sessions.begin() as session:
            result = await session.execute(self._ours(row).values(
                status=status, next_attempt_at=now + after, last_error=reason[:256]))
            if result.rowcount and row.alert_id and row.kind == "alert":  # type: ignore[attr-defined]
                session.add(AlertEvent(alert_id=row.alert_id, at=now, event="send_failed", detail=reason[:256]))
        self.stats.retried += 1

    async def _fail(self, row: Outbox, reason: str) -> None:
        log.error("outbox row %s rejected by Telegram: %s", row.id, reason)
        async with self._sessions.begin() as session:
            await session.execute(self._ours(row).values(status="failed", last_error=reason[:256]))
        self.stats.failed += 1

    async def _migrate(self, row: Outbox, new_chat_id: int) -> None:
        """The group became a supergroup: this row is due again at once under the new chat id, and the
        chat's waiting rows follow it. Like every write of ours, only while our lease token holds: a
        sender whose lease ran out must not reset a row another sender has claimed since (that one
        meets the same answer and moves it itself). Rows other senders hold are not touched either;
        each is moved by its holder when Telegram answers it the same."""
        async with self._sessions.begin() as session:
            moved = await session.execute(self._ours(row).values(
                chat_id=new_chat_id, status="pending", next_attempt_at=self._clock.now()))
            if not moved.rowcount:  # type: ignore[attr-defined]
                log.warning("outbox row %s: chat migrated, but another sender claimed the row again", row.id)
                self.stats.lease_lost += 1
                return
            await session.execute(update(Outbox).where(Outbox.chat_id == row.chat_id, Outbox.status == "pending")
                                  .values(chat_id=new_chat_id).execution_options(synchronize_session=False))

    async def _unreachable(self, row: Outbox, reason: str) -> None:
        """The recipient blocked the bot or never started it: stop trying, and if it was an alert
        tell the rest of the team so the patient is not left without anyone."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            result = await session.execute(self._ours(row).values(status="unreachable", last_error=reason[:256]))
            if not result.rowcount:  # type: ignore[attr-defined]
                return  # another sender owns the row now: it decides
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
        """The sender loop; cancelling it (shutdown, or a leader stepping down) stops the claiming at
        once but lets requests already on the wire finish and be marked (see `_drain`)."""
        term = Term()
        try:
            while True:
                self._wake.clear()
                try:
                    busy = await self.run_once(bot, wait=False, term=term)
                except Exception:
                    if being_cancelled():
                        raise
                    log.exception("outbox worker tick failed; retrying")
                    busy = 0
                if not busy:
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=poll_seconds)
                    except TimeoutError:
                        pass
        finally:
            term.stopping = True
            await self._drain(term)

    async def _drain(self, term: Term) -> None:
        """Wait (at most DRAIN_SECONDS) for this term's chat tasks: each finishes the request it has
        on the wire and hands its other rows back. Cancelling a request mid-way could leave a message
        Telegram has accepted looking unsent, to be sent again by the next leader. Cancelled again
        while waiting (a hard stop), or past the bound, the rest is cancelled."""
        pending = set(term.tasks)
        try:
            if pending:
                _done, pending = await asyncio.wait(pending, timeout=DRAIN_SECONDS)
                if pending:
                    log.warning("%d outbox deliveries still running after %.0f s; cancelling them",
                                len(pending), DRAIN_SECONDS)
        finally:
            for task in pending:
                task.cancel()
