"""PTB persistence in our own database, so a half-finished conversation survives a restart.

Only conversation states and user_data are kept (user_data must hold JSON values only).
Clinical facts never live here: they are written by services in their own tables.
"""

from __future__ import annotations

import json
from copy import deepcopy
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.ext import BasePersistence, PersistenceInput

from storage.models import ConversationState, utcnow

USER_DATA = "user_data"


class SqlPersistence(BasePersistence[dict[str, Any], dict[str, Any], dict[str, Any]]):
    def __init__(self, sessions: async_sessionmaker[AsyncSession], update_interval: float = 1.0):
        super().__init__(
            store_data=PersistenceInput(bot_data=False, chat_data=False, user_data=True, callback_data=False),
            update_interval=update_interval,
        )
        self._sessions = sessions
        # Last written JSON per row, so PTB's "every user touched" flush writes only real changes.
        self._written: dict[tuple[str, str], str] = {}

    async def _load(self, namespace: str) -> dict[str, Any]:
        async with self._sessions() as session:
            rows = await session.scalars(select(ConversationState).where(ConversationState.namespace == namespace))
            result = {}
            for row in rows:
                result[row.key] = row.value.get("v")
                self._written[(namespace, row.key)] = json.dumps(row.value, sort_keys=True)
            return result

    async def _store(self, namespace: str, key: str, value: Any) -> None:
        wrapped = {"v": value}
        text = json.dumps(wrapped, sort_keys=True, default=str)
        if value is None or value == {}:
            if (namespace, key) not in self._written:
                return
            self._written.pop((namespace, key), None)
            async with self._sessions.begin() as session:
                await session.execute(
                    delete(ConversationState).where(
                        ConversationState.namespace == namespace, ConversationState.key == key
                    )
                )
            return
        if self._written.get((namespace, key)) == text:
            return
        self._written[(namespace, key)] = text
        async with self._sessions.begin() as session:
            await session.merge(
                ConversationState(namespace=namespace, key=key, value=json.loads(text), updated_at=utcnow())
            )

    async def get_user_data(self) -> dict[int, dict[str, Any]]:
        return {int(k): v for k, v in (await self._load(USER_DATA)).items() if isinstance(v, dict)}

    async def update_user_data(self, user_id: int, data: dict[str, Any]) -> None:
        await self._store(USER_DATA, str(user_id), deepcopy(data))

    async def drop_user_data(self, user_id: int) -> None:
        await self._store(USER_DATA, str(user_id), None)

    async def refresh_user_data(self, user_id: int, user_data: dict[str, Any]) -> None:
        return None

    async def get_conversations(self, name: str) -> dict[tuple[int | str, ...], object]:
        return {tuple(json.loads(k)): v for k, v in (await self._load(f"conv:{name}")).items()}

    async def update_conversation(self, name: str, key: tuple[int | str, ...], new_state: object | None) -> None:
        await self._store(f"conv:{name}", json.dumps(list(key)), new_state)

    # Not persisted: chat data, bot data and callback data.
    async def get_chat_data(self) -> dict[int, dict[str, Any]]:
        return {}

    async def update_chat_data(self, chat_id: int, data: dict[str, Any]) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[str, Any]) -> None:
        return None

    async def get_bot_data(self) -> dict[str, Any]:
        return {}

    async def update_bot_data(self, data: dict[str, Any]) -> None:
        return None

    async def refresh_bot_data(self, bot_data: dict[str, Any]) -> None:
        return None

    async def get_callback_data(self) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        return None

    async def flush(self) -> None:
        return None
