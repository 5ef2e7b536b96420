"""Handle an update a second time when its database connection died, but only when that is safe.

When PostgreSQL drops a connection (a restart, `pg_terminate_backend`, a network cut) the handler
that was using it fails and the user would be told "Sorry, please try again". Doing the update
again ourselves is safe only if the first attempt left no trace anyone can see. Handlers are not
idempotent in general (a question, a circle message, an acknowledged alert), so instead of trusting
handlers we watch what the attempt did:

* no write was committed: a COMMIT of a connection that ran a writing statement (`storage.write_lock.writes`) marks the
  attempt *before* the COMMIT is sent, so a COMMIT whose outcome is unknown (the connection died
  during it) also counts as committed;
* nothing went out to Telegram: any Bot API call except the `get...` ones marks the attempt
  (a reply, a button answer, an edit: the user may have seen it);
* the conversation is where it was: PTB leaves a ConversationHandler's state unchanged when its
  callback raises, and the processor restores `user_data`/`chat_data` from a copy taken before.

Only then, and only once, is the update handled again (`ChatOrderedProcessor`); the error handler
stays silent for the first attempt. A second failure gets the usual apology.
"""

from __future__ import annotations

import copy
import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.services.db import RETRYABLE_SQLSTATES
from storage.write_lock import writes

log = logging.getLogger(__name__)
_WROTE = "carecircle_wrote"  # Connection.info key: this transaction ran a writing statement


@dataclass
class Attempt:
    """What one handling of one update has done that others could see."""

    update_id: int | None
    first: bool = True
    open: bool = True  # the processor is still awaiting it (a retry can only be claimed then)
    committed: bool = False
    sent: bool = False
    retry: bool = False  # claimed by the error handler: the processor handles the update again

    @property
    def untouched(self) -> bool:
        return not self.committed and not self.sent


ATTEMPT: ContextVar[Attempt | None] = ContextVar("carecircle_attempt", default=None)


def connection_lost(exc: BaseException) -> bool:
    """A connection-level database failure: the statement never ran, or ran in a transaction
    that died with the connection. asyncpg reports a connection terminated while idle in the pool
    as an InternalClientError ("another operation is in progress") on its next use."""
    if isinstance(exc, InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = getattr(exc, "orig", None)
        return type(orig).__name__ == "InternalClientError" and "another operation" in str(orig)
    return False


def claim_retry(exc: BaseException) -> bool:
    """Called by the error handler: True if this failure will be handled again (say nothing)."""
    attempt = ATTEMPT.get()
    if attempt is None or not attempt.first or not attempt.open or not attempt.untouched:
        return False
    if not (connection_lost(exc) or (isinstance(exc, DBAPIError)
                                     and getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES)):
        return False  # a deadlock, too, rolled the transaction back: nothing was changed
    attempt.retry = True
    return True


def note_request(url: str) -> None:
    """Every Bot API call passes here; anything but a `get...` is visible to someone."""
    attempt = ATTEMPT.get()
    if attempt is not None and not url.rsplit("/", 1)[-1].startswith("get"):
        attempt.sent = True


def watch(engine: AsyncEngine) -> None:
    """Mark the current attempt when a transaction that wrote is committed."""
    sync = engine.sync_engine
    if event.contains(sync, "commit", _on_commit):
        return

    event.listen(sync, "before_cursor_execute", _on_execute)
    event.listen(sync, "commit", _on_commit)
    event.listen(sync, "rollback", _on_rollback)


def _on_execute(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
    if writes(statement) and not conn.info.get(_WROTE):
        conn.info[_WROTE] = True


def _on_commit(conn: Connection) -> None:  # runs before the COMMIT goes to the server
    if conn.info.pop(_WROTE, False):
        attempt = ATTEMPT.get()
        if attempt is not None:
            attempt.committed = True


def _on_rollback(conn: Connection) -> None:
    if not conn.invalidated:  # an invalidated connection's info is cleared when the pool reconnects it
        conn.info.pop(_WROTE, None)


@dataclass
class Snapshot:
    """Copies of the update's user_data and chat_data, to put back before a retry."""

    saved: list[tuple[Any, Any, dict[Any, Any] | None]] = field(default_factory=list)

    @classmethod
    def take(cls, application: Any, user_id: int | None, chat_id: int | None) -> Snapshot | None:
        snap = cls()
        try:
            for store, key in ((application.user_data, user_id), (application.chat_data, chat_id)):
                if key is not None:
                    data = store.get(key)
                    snap.saved.append((store, key, None if data is None else copy.deepcopy(data)))
        except Exception:  # something in user_data cannot be copied: then we cannot retry safely
            log.debug("user/chat data not copyable; no retry for this update", exc_info=True)
            return None
        return snap

    def restore(self) -> None:
        for store, key, data in self.saved:
            current = store.get(key)
            if current is not None:  # the same dict object PTB hands to handlers: change it in place
                current.clear()
                current.update(data or {})
