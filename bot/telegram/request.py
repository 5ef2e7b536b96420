"""A PTB request class on aiohttp: one shared ClientSession with a connection pool.

PTB's default (httpx) is fine for one bot; we already run aiohttp for the webhook and the
dashboard, so reusing one event-loop-native client avoids a second HTTP stack and lets us
keep more connections alive for bursts of alert deliveries. `bench/throughput.py` compares
the two.
"""

from __future__ import annotations

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.telegram.retry import note_request

_HEADERS = {"User-Agent": BaseRequest.USER_AGENT}
_FORM_HEADERS = {**_HEADERS, "Content-Type": "application/x-www-form-urlencoded"}


class AiohttpRequest(BaseRequest):
    def __init__(
        self,
        *,
        connection_pool_size: int = 64,
        read_timeout: float | None = 10.0,
        connect_timeout: float | None = 5.0,
        write_timeout: float | None = 10.0,
        media_write_timeout: float | None = 30.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._write_timeout = write_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(connector=connector)

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: float | DefaultValue[None] | None = BaseRequest.DEFAULT_NONE,
        write_timeout: float | DefaultValue[None] | None = BaseRequest.DEFAULT_NONE,
        connect_timeout: float | DefaultValue[None] | None = BaseRequest.DEFAULT_NONE,
        pool_timeout: float | DefaultValue[None] | None = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        note_request(url)  # an update that sent something is never handled twice (bot/telegram/retry.py)
        files = request_data.multipart_data if request_data else None
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        write = self._write_timeout if isinstance(write_timeout, DefaultValue) else write_timeout
        if files and isinstance(write_timeout, DefaultValue):
            write = self._media_write_timeout
        total = None if read is None else read + (write or 0) + (connect or 0)
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)

        body: aiohttp.FormData | bytes | None = None
        headers = _HEADERS
        if request_data is not None:
            if files:
                form = aiohttp.FormData()
                for key, value in request_data.json_parameters.items():
                    form.add_field(key, value)
                for key, (filename, content, mimetype) in files.items():
                    form.add_field(key, content, filename=filename, content_type=mimetype)
                body = form
            else:
                # The same urlencoded body aiohttp builds from a dict, encoded here: given a dict,
                # aiohttp makes a FormData, and with it a multipart writer and a uuid4 boundary it
                # never uses (issue 4: ~3 % of the bot's CPU per reply).
                body = request_data.url_encoded_parameters().encode()
                headers = _FORM_HEADERS
        try:
            async with self._session.request(
                method, url, data=body, timeout=timeout, headers=headers
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{exc.__class__.__name__}: {exc}") from exc
