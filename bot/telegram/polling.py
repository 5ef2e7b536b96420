"""Long polling that loses nothing on a crash.

PTB's Updater confirms a batch (by asking for the next offset) as soon as it has queued it, so
a process killed mid-batch loses the updates it fetched but had not handled. Here each batch
is first committed to the inbox (`UpdateLedgerService.receive`), and only then is the next
offset requested; updates left in the inbox are replayed at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

from bot.services.db import with_retry
from bot.services.updates import UpdateLedgerService
from storage.write_lock import urgent_writes

log = logging.getLogger(__name__)


async def replay_unhandled(application: Application, ledger: UpdateLedgerService) -> int:  # type: ignore[type-arg]
    pending = await ledger.unhandled()
    for data in pending:
        await application.update_queue.put(Update.de_json(data, application.bot))
    if pending:
        log.info("replaying %d updates received before the restart", len(pending))
    return len(pending)


async def fetch_updates(bot: Bot, offset: int | None, timeout: int) -> list[dict[str, Any]]:
    """getUpdates as Telegram's JSON: the inbox stores exactly what Telegram sent (as the webhook
    does), instead of a PTB `Update.to_dict()` rebuilt from the parsed objects (issue 4: that
    second walk over every update cost about as much as half of parsing it). Same request, read
    timeout and errors as `Bot.get_updates`, which does this and then `Update.de_list`."""
    data = {"timeout": timeout, "offset": offset, "allowed_updates": Update.ALL_TYPES}
    result = await bot._post("getUpdates", data, read_timeout=(timeout + 10) + timeout)
    return list(result) if isinstance(result, list) else []


def parse_update(data: dict[str, Any], bot: Bot) -> Update:
    update = Update.de_json(data, bot)
    insert = getattr(bot, "insert_callback_data", None)  # ExtBot: a no-op without arbitrary callback data
    if insert is not None:
        insert(update)
    return update


async def poll_forever(application: Application, ledger: UpdateLedgerService,  # type: ignore[type-arg]
                       timeout: int = 10) -> None:
    bot = application.bot
    offset: int | None = None
    backoff = 0.5
    while True:
        try:
            raw = await fetch_updates(bot, offset, timeout)
        except InvalidToken:
            log.error("Telegram rejected the token; polling stops")
            return
        except RetryAfter as exc:
            delay = exc.retry_after
            await asyncio.sleep(delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay))
            continue
        except Conflict as exc:
            log.warning("getUpdates conflict (another instance or a webhook?): %s", exc)
            await asyncio.sleep(min(backoff, 30))
            backoff *= 2
            continue
        except (TimedOut, NetworkError) as exc:
            log.warning("getUpdates failed: %s", exc.__class__.__name__)
            await asyncio.sleep(min(backoff, 30))
            backoff *= 2
            continue
        backoff = 0.5
        if not raw:
            continue
        updates = [parse_update(data, bot) for data in raw]
        try:  # "database is locked", a dropped PostgreSQL connection: store them or fetch them again
            # Every update, urgent or not, waits for this commit: on SQLite it goes first in the
            # one-writer queue (storage/write_lock.py); one short transaction per batch.
            with urgent_writes():
                fresh = await with_retry(lambda: ledger.receive(raw))  # noqa: B023 - awaited right here
        except Exception as exc:
            log.warning("could not store received updates (%s); fetching them again", exc.__class__.__name__)
            await asyncio.sleep(min(backoff, 30))
            backoff *= 2
            continue
        for update in updates:
            if update.update_id in fresh:
                await application.update_queue.put(update)
        offset = updates[-1].update_id + 1
