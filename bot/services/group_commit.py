"""Group commit: concurrent one-statement write transactions share one transaction (issue 4).

Why: under a burst, hundreds of typed readings each ran their own transaction for ONE statement
(ReadingService's INSERT .. RETURNING): a pool checkout, BEGIN, the statement, COMMIT, and on SQLite
a hand-over of the one write lock (storage/write_lock.py) and its thread trips. Here callers that
arrive while a batch is being written queue up, and the next batch writes all of them, in arrival
order, in one transaction: one checkout, one BEGIN/COMMIT and one write-lock hold for up to `limit`
statements. Nobody waits for a timer: a caller that finds no batch running writes at once (alone),
so an idle bot answers as fast as before; batches grow only while the database is busy.

What a caller gets is exactly what its own transaction would have given, or nothing:

* Statements run one after the other in the one transaction, so each sees the rows of the
  statements before it (a second reading of the same patient counts the first in its average),
  as if the callers had run one after the other in that order. With two lanes (PostgreSQL), two
  batches may be in flight at once; a caller's `key` (the patient) keeps each patient's statements
  in one lane, so a patient's reading still sees the patient's readings queued before it.
* A row is handed out only after the COMMIT succeeded. If the batch fails in any way (an error in
  any statement, a lost connection, a deadlock, the writing caller being cancelled), it rolled back
  as a whole and every caller in it gets None: it runs its statement again on its own, the way it
  would have without this class (with its own retries and its own error), so one bad row costs the
  others a second try, never their row.
* None also when the statement returned no row: the caller finds out why on its own path.

The batch is written in the task of the caller that got the turn (as UpdateLedgerService.mark
does): no background task to start or stop. A caller cancelled while it waits for its turn takes
its statement back; one whose statement is in a batch being written cannot: that row may commit
without its caller learning so (write only what is safe to find already there when the work is
done again, e.g. an INSERT .. ON CONFLICT DO NOTHING keyed by the Telegram update).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Entry:
    statement: Any
    params: dict[str, Any]
    done: bool = False
    row: Row[Any] | None = None


@dataclass(eq=False)
class _Lane:
    """One writer: its queue, and the lock whose holder writes the next batch."""

    queue: list[_Entry] = field(default_factory=list)
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)  # FIFO: the head of the queue gets the next turn


class GroupCommit:
    """Runs single-statement write transactions of concurrent callers together; see the module."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], limit: int = 64, lanes: int = 1) -> None:
        """`lanes`: batches written at the same time, each caller's statement in the lane of its
        `key` (a patient's readings always in the same one, in arrival order). One on SQLite, whose
        writes take turns anyway; two on PostgreSQL, where a batch spends most of its time waiting
        for the server (its statements' round trips, the COMMIT's WAL flush) and a second one can
        be written meanwhile (issue 4)."""
        self._sessions = sessions
        self._limit = limit
        self._lanes = [_Lane() for _ in range(lanes)]

    @property
    def waiting(self) -> int:
        """Statements queued for a batch not started yet."""
        return sum(len(lane.queue) for lane in self._lanes)

    async def first_row(self, statement: Any, params: dict[str, Any], key: int = 0) -> Row[Any] | None:
        """Execute `statement` with `params` in a shared transaction; its first row once committed.

        None: not known to be written (no row came back, or the batch failed and rolled back):
        run the statement again on your own."""
        entry = _Entry(statement, params)
        lane = self._lanes[key % len(self._lanes)]
        lane.queue.append(entry)
        try:
            async with lane.turn:
                while not entry.done:  # by FIFO order it is in the first batch; the loop is a safety net
                    batch = lane.queue[:self._limit]
                    del lane.queue[:self._limit]
                    await self._write(batch)
        except BaseException:
            if entry in lane.queue:  # cancelled before its turn: nobody writes it now
                lane.queue.remove(entry)
            raise
        return entry.row

    async def _write(self, batch: list[_Entry]) -> None:
        rows: list[Row[Any] | None] = [None] * len(batch)
        try:
            async with self._sessions.begin() as session:
                written = await session.run_sync(_first_rows, batch)
            rows = written  # committed
        except Exception as exc:
            log.warning("a group commit of %d statements rolled back (%s); each runs again on its own",
                        len(batch), exc.__class__.__name__)
        finally:  # cancelled, too: the others run theirs on their own
            for entry, row in zip(batch, rows, strict=True):
                entry.row, entry.done = row, True


def _first_rows(session: Session, batch: list[_Entry]) -> list[Row[Any] | None]:
    """The batch's statements in order, in ONE hop into SQLAlchemy's synchronous side (AsyncSession
    .execute makes one per statement: a greenlet started and switched to, each time), on the
    session's connection: they are Core statements, with nothing for the ORM layer to do."""
    connection = session.connection()
    return [connection.execute(entry.statement, entry.params).first() for entry in batch]
