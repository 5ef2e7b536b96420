"""A tiny Chrome DevTools Protocol client for browser tests (no selenium/playwright needed).

    browser = await Browser.launch()          # headless Chromium on a free debugging port
    try:
        await browser.navigate("http://127.0.0.1:8080/")
        await browser.wait_for("document.body.dataset.ready === '1'")
        await browser.type("#new-name", "Alice")
        await browser.click("#add-user-btn")
        title = await browser.evaluate("document.title")
        await browser.screenshot("page.png")
    finally:
        await browser.close()

Errors: :class:`CDPError` (the protocol or a page script failed), ``TimeoutError`` (a wait ran out).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class CDPError(RuntimeError):
    """A DevTools command failed or a page script threw."""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary: ``$CHROMIUM`` or the first one on PATH, else None."""
    env = os.environ.get("CHROMIUM")
    if env and Path(env).exists():
        return env
    return next((p for p in map(shutil.which, CHROMIUM_CANDIDATES) if p), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """One headless Chromium process driven through one page target."""

    def __init__(self, process: asyncio.subprocess.Process, profile: str, session: aiohttp.ClientSession,
                 ws: aiohttp.ClientWebSocketResponse, timeout: float) -> None:
        self.process = process
        self.timeout = timeout
        self._profile = profile
        self._session = session
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def launch(cls, binary: str | None = None, *, width: int = 1280, height: int = 900,
                     timeout: float = 10.0) -> Browser:
        binary = binary or find_chromium()
        if binary is None:
            raise FileNotFoundError("Chromium not found (apt-get install chromium, or set $CHROMIUM)")
        port = _free_port()
        profile = tempfile.mkdtemp(prefix="cdp-profile-")
        process = await asyncio.create_subprocess_exec(
            binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--window-size={width},{height}", f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}", "--remote-allow-origins=*", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        session = aiohttp.ClientSession()
        try:
            ws_url = await cls._page_ws_url(session, process, port, timeout)
            ws = await asyncio.wait_for(session.ws_connect(ws_url, max_msg_size=0), timeout)
        except BaseException:
            await session.close()
            await cls._kill(process, profile)
            raise
        browser = cls(process, profile, session, ws, timeout)
        try:
            await browser.send("Page.enable")
            await browser.send("Runtime.enable")
        except BaseException:
            await browser.close()
            raise
        return browser

    @staticmethod
    async def _page_ws_url(session: aiohttp.ClientSession, process: asyncio.subprocess.Process, port: int,
                           timeout: float) -> str:
        base = f"http://127.0.0.1:{port}"
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if process.returncode is not None:
                raise CDPError(f"Chromium exited with status {process.returncode} at start-up")
            try:
                async with session.get(f"{base}/json/version", timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"Chromium's DevTools did not answer on port {port} within {timeout}s")
            await asyncio.sleep(0.1)
        http_timeout = aiohttp.ClientTimeout(total=timeout)
        async with session.get(f"{base}/json/list", timeout=http_timeout) as response:
            targets = await response.json()
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        async with session.put(f"{base}/json/new?about:blank", timeout=http_timeout) as response:
            return (await response.json())["webSocketDebuggerUrl"]

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                future = self._pending.pop(data["id"], None) if "id" in data else None
                if future is not None and not future.done():
                    if "error" in data:
                        future.set_exception(CDPError(f"{data['error'].get('message')}: {data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
                for method, waiter in list(self._waiters):
                    if data.get("method") == method and not waiter.done():
                        waiter.set_result(data.get("params", {}))
        finally:
            for future in [*self._pending.values(), *(w for _, w in self._waiters)]:
                if not future.done():
                    future.set_exception(CDPError("the DevTools connection closed"))

    async def send(self, method: str, params: dict[str, Any] | None = None, *,
                   timeout: float | None = None) -> dict[str, Any]:
        """Send one DevTools command and return its result."""
        message_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self._ws.send_str(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        try:
            return await asyncio.wait_for(future, timeout or self.timeout)
        finally:
            self._pending.pop(message_id, None)

    async def navigate(self, url: str, *, timeout: float | None = None) -> None:
        """Open ``url`` and wait for its load event."""
        loaded: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiter = ("Page.loadEventFired", loaded)
        self._waiters.append(waiter)
        try:
            result = await self.send("Page.navigate", {"url": url})
            if result.get("errorText"):
                raise CDPError(f"navigation to {url} failed: {result['errorText']}")
            await asyncio.wait_for(loaded, timeout or self.timeout)
        finally:
            self._waiters.remove(waiter)

    async def evaluate(self, expression: str, *, timeout: float | None = None) -> Any:
        """Value of a JS expression (promises awaited); raises CDPError when it throws."""
        result = await self.send("Runtime.evaluate", {
            "expression": expression, "awaitPromise": True, "returnByValue": True, "userGesture": True,
        }, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = (details.get("exception") or {}).get("description") or details.get("text")
            raise CDPError(f"JS error in {expression[:80]!r}: {text}")
        return result.get("result", {}).get("value")

    async def wait_for(self, condition: str, timeout: float = 10.0, interval: float = 0.05) -> Any:
        """Poll the JS ``condition`` until it is truthy; return its value or raise TimeoutError."""
        deadline = asyncio.get_running_loop().time() + timeout
        last_error: Exception | None = None
        while True:
            try:
                value = await self.evaluate(condition)
                if value:
                    return value
            except CDPError as exc:
                last_error = exc
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{condition!r} still false after {timeout}s"
                                   + (f" (last error: {last_error})" if last_error else ""))
            await asyncio.sleep(interval)

    async def _element(self, selector: str, action: str) -> None:
        found = await self.evaluate(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            if (!el) return false;
            el.scrollIntoView({{block: "center"}});
            {action}
            return true;
        }})()""")
        if not found:
            raise CDPError(f"no element matches {selector!r}")

    async def click(self, selector: str) -> None:
        """Click the first element matching a CSS selector (a real mouse click at its centre)."""
        await self._element(selector, "")
        box = await self.evaluate(f"""(() => {{
            const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2];
        }})()""")
        x, y = box
        for event in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent",
                            {"type": event, "x": x, "y": y, "button": "left", "clickCount": 1})

    async def type(self, selector: str, text: str) -> None:
        """Focus the element matching ``selector`` and type ``text`` into it (as keyboard input)."""
        await self._element(selector, "el.focus();")
        await self.send("Input.insertText", {"text": text})

    async def press_key(self, key: str = "Enter") -> None:
        """Press a key (``Enter``, ``Tab``, ...) in the focused element."""
        codes = {"Enter": 13, "Tab": 9, "Escape": 27, "Backspace": 8}
        params = {"key": key, "code": key, "windowsVirtualKeyCode": codes.get(key, 0)}
        if key == "Enter":
            params["text"] = "\r"
        await self.send("Input.dispatchKeyEvent", {"type": "keyDown", **params})
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", **params})

    async def screenshot(self, path: str | os.PathLike[str]) -> Path:
        """Save a PNG of the viewport to ``path``."""
        result = await self.send("Page.captureScreenshot", {"format": "png"}, timeout=max(self.timeout, 20))
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(result["data"]))
        return target

    async def close(self) -> None:
        """Close the connection, kill Chromium and remove its profile."""
        with contextlib.suppress(Exception):
            await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self._session.close()
        await self._kill(self.process, self._profile)

    @staticmethod
    async def _kill(process: asyncio.subprocess.Process, profile: str) -> None:
        if process.returncode is None:
            # Chromium forks zygote/renderer/GPU helpers: kill its whole process group (its own session).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 5)
        shutil.rmtree(profile, ignore_errors=True)

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
