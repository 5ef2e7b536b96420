"""The web chat's JSON API over real HTTP (no browser): users, send, press, the events long poll, errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from webchat_support import PNG, WebChatServer

import bot.sandbox.webchat as webchat_module

API = "/sandbox/api"


@pytest.fixture
async def http(webchat: WebChatServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=webchat.url, timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    data = await response.json()
    assert isinstance(data, dict)
    return data


async def create_user(http: aiohttp.ClientSession, name: str = "Alice", language: str = "en") -> dict[str, Any]:
    async with http.post(f"{API}/users", json={"first_name": name, "language": language}) as r:
        assert r.status == 201, await r.text()
        return (await _json(r))["user"]


async def snapshot(http: aiohttp.ClientSession, user_id: int) -> dict[str, Any]:
    async with http.get(f"{API}/users/{user_id}/events") as r:
        assert r.status == 200
        return await _json(r)


async def wait_event(http: aiohttp.ClientSession, user_id: int, cursor: int,
                     match: Callable[[dict[str, Any]], bool], timeout: float = 8.0) -> tuple[dict[str, Any], int]:
    """Long-poll from ``cursor`` until an event matches; return it and the cursor after it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with http.get(f"{API}/users/{user_id}/events", params={"cursor": cursor, "timeout": 5}) as r:
            assert r.status == 200
            data = await _json(r)
        assert data["reset"] is False
        for event in data["events"]:
            if match(event):
                return event, data["cursor"]
        cursor = data["cursor"]
    raise AssertionError("no matching event")


def bot_text(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["type"] == "message" and e["message"]["from_bot"] and e["message"]["text"] == text


async def send(http: aiohttp.ClientSession, user_id: int, text: str) -> int:
    async with http.post(f"{API}/users/{user_id}/send", json={"text": text}) as r:
        assert r.status == 200, await r.text()
        return (await _json(r))["message_id"]


async def test_users_list_create_and_personas(http: aiohttp.ClientSession, webchat: WebChatServer) -> None:
    async with http.get(f"{API}/users") as r:
        data = await _json(r)
    assert data["personas"] == [webchat.personas[0].id]
    assert [u["first_name"] for u in data["users"]] == ["Demo patient"]

    user = await create_user(http, "王阿姨", "zh_CN")
    assert user["first_name"] == "王阿姨" and user["persona"] is False
    sim = webchat.tg.users[user["id"]]
    assert sim.language_code == "zh-hans"  # what a Chinese Telegram client sends
    async with http.get(f"{API}/users") as r:
        assert {u["id"] for u in (await _json(r))["users"]} == {webchat.personas[0].id, user["id"]}


async def test_send_and_long_poll_returns_the_reply(http: aiohttp.ClientSession) -> None:
    user = await create_user(http)
    start = await snapshot(http, user["id"])
    assert start["events"] == [] and start["reset"] is True

    # A long poll that is already waiting returns as soon as something happens.
    poll = asyncio.create_task(http.get(f"{API}/users/{user['id']}/events",
                                        params={"cursor": start["cursor"], "timeout": 20}))
    await asyncio.sleep(0.2)
    assert not poll.done()
    began = time.monotonic()
    message_id = await send(http, user["id"], "hello")
    async with await poll as r:
        first = await _json(r)
    assert time.monotonic() - began < 2
    own = first["events"][0]
    assert own["type"] == "message" and own["message"]["from_bot"] is False
    assert own["message"]["text"] == "hello" and own["message"]["message_id"] == message_id

    event, cursor = await wait_event(http, user["id"], first["cursor"], bot_text("echo: hello"))
    reply = event["message"]
    assert reply["inline_keyboard"] == [[{"text": "Again", "data": "again"}]]

    # Press the inline button: the callback answer and the new message arrive as events.
    async with http.post(f"{API}/users/{user['id']}/press", json={"message_id": reply["message_id"],
                                                                  "data": "again"}) as r:
        assert r.status == 200, await r.text()
        assert (await _json(r))["query_id"]
    event, cursor = await wait_event(http, user["id"], cursor, lambda e: e["type"] == "callback_answer")
    assert event["text"] == "pressed again"
    await wait_event(http, user["id"], cursor, bot_text("again!"))

    # Reloading the page (no cursor) restores the whole conversation, own messages included.
    history = await snapshot(http, user["id"])
    texts = [(e["message"]["from_bot"], e["message"]["text"]) for e in history["events"]]
    assert texts == [(False, "hello"), (True, "echo: hello"), (True, "again!")]


async def test_idle_long_poll_times_out_empty(http: aiohttp.ClientSession) -> None:
    user = await create_user(http)
    cursor = (await snapshot(http, user["id"]))["cursor"]
    began = time.monotonic()
    async with http.get(f"{API}/users/{user['id']}/events", params={"cursor": cursor, "timeout": 0.3}) as r:
        data = await _json(r)
    assert data["events"] == [] and data["cursor"] == cursor
    assert 0.25 < time.monotonic() - began < 3
    # A cursor the server never gave out (e.g. from before a restart) gets a full snapshot.
    async with http.get(f"{API}/users/{user['id']}/events", params={"cursor": 5}) as r:
        assert (await _json(r))["reset"] is True


async def test_identical_labels_are_pressed_by_callback_data(http: aiohttp.ClientSession) -> None:
    user = await create_user(http)
    cursor = (await snapshot(http, user["id"]))["cursor"]
    await send(http, user["id"], "/twins")
    event, cursor = await wait_event(http, user["id"], cursor, bot_text("twins"))
    message_id = event["message"]["message_id"]
    assert [b["data"] for b in event["message"]["inline_keyboard"][0]] == ["left", "right"]
    async with http.post(f"{API}/users/{user['id']}/press", json={"message_id": message_id, "data": "right"}) as r:
        assert r.status == 200
    await wait_event(http, user["id"], cursor, bot_text("got right"))


async def test_reply_keyboard_html_edit_delete_photo_document(http: aiohttp.ClientSession) -> None:
    user = await create_user(http)
    uid = user["id"]
    cursor = (await snapshot(http, uid))["cursor"]

    await send(http, uid, "/kb")
    _, cursor = await wait_event(http, uid, cursor, bot_text("pick one"))
    assert (await snapshot(http, uid))["reply_keyboard"] == [["Yes", "No"], ["Later"]]

    await send(http, uid, "/html")
    event, cursor = await wait_event(http, uid, cursor, bot_text("bold & it"))
    assert event["message"]["parse_mode"] == "HTML"
    assert {e["type"] for e in event["message"]["entities"]} == {"bold", "italic"}

    await send(http, uid, "/edit")
    _, cursor = await wait_event(http, uid, cursor,
                                 lambda e: e["type"] == "message" and e["message"]["text"] == "final"
                                 and e["message"]["edited"])

    await send(http, uid, "/del")
    event, cursor = await wait_event(http, uid, cursor, bot_text("soon gone"))
    gone = event["message"]["message_id"]
    event, cursor = await wait_event(http, uid, cursor, lambda e: e["type"] == "delete")
    assert event["message_id"] == gone
    deleted = [e["message"] for e in (await snapshot(http, uid))["events"] if e["message"]["message_id"] == gone]
    assert deleted[0]["deleted"] is True

    await send(http, uid, "/photo")
    event, cursor = await wait_event(http, uid, cursor, bot_text("chart"))
    assert event["message"]["photo"] is True
    async with http.get(f"{API}/users/{uid}/messages/{event['message']['message_id']}/photo") as r:
        assert r.status == 200 and r.content_type == "image/png"
        assert await r.read() == PNG

    await send(http, uid, "/doc")
    event, cursor = await wait_event(http, uid, cursor,
                                     lambda e: e["type"] == "message" and bool(e["message"]["document"]))
    assert event["message"]["document"]["name"] == "readings.csv"
    async with http.get(f"{API}/users/{uid}/messages/{event['message']['message_id']}/document") as r:
        assert r.status == 200 and "attachment" in r.headers["Content-Disposition"]
        assert await r.read() == b"date,sys\n2024-01-01,150\n"
    # A message without a photo has no photo route.
    async with http.get(f"{API}/users/{uid}/messages/{gone}/photo") as r:
        assert r.status == 404


async def test_script_text_travels_as_data(http: aiohttp.ClientSession) -> None:
    user = await create_user(http, "<script>alert('name')</script>")
    assert user["first_name"] == "<script>alert('name')</script>"
    cursor = (await snapshot(http, user["id"]))["cursor"]
    payload = "<script>alert(1)</script>"
    await send(http, user["id"], payload)
    event, _ = await wait_event(http, user["id"], cursor, bot_text(f"echo: {payload}"))
    assert event["message"]["entities"] == []
    # The page builds DOM from text nodes only, never HTML strings.
    script = (Path(webchat_module.__file__).with_name("static") / "webchat.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script


async def test_page_and_static_files(http: aiohttp.ClientSession) -> None:
    async with http.get("/") as r:
        assert r.status == 200 and r.content_type == "text/html"
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        html = await r.text()
    assert "/sandbox/static/webchat.js" in html and "http" not in html.replace("http-equiv", "")
    for name, ctype in (("webchat.js", "text/javascript"), ("webchat.css", "text/css")):
        async with http.get(f"/sandbox/static/{name}") as r:
            assert r.status == 200 and r.content_type == ctype
    async with http.get("/sandbox/static/..%2Fwebchat.py") as r:
        assert r.status == 404


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("post", "/users/999/send", {"text": "hi"}, 404),
    ("post", "/users/abc/send", {"text": "hi"}, 404),
    ("get", "/users/999/events", None, 404),
    ("post", "/users/999/press", {"message_id": 1, "data": "x"}, 404),
    ("get", "/users/999/messages/1/photo", None, 404),
    ("post", "/users", {}, 400),
    ("post", "/users", {"first_name": "   "}, 400),
    ("post", "/users", {"first_name": "A", "language": "not a language!"}, 400),
    ("post", "/users", ["not", "an", "object"], 400),
    ("post", "/users", "{broken json", 400),
])
async def test_bad_input_gets_json_errors(http: aiohttp.ClientSession, method: str, path: str, body: Any,
                                          status: int) -> None:
    kwargs: dict[str, Any] = {}
    if isinstance(body, str):
        kwargs = {"data": body, "headers": {"Content-Type": "application/json"}}
    elif body is not None:
        kwargs = {"json": body}
    async with http.request(method, API + path, **kwargs) as r:
        assert r.status == status
        data = await _json(r)
    assert data["ok"] is False and data["error"]


async def test_bad_input_for_an_existing_user(http: aiohttp.ClientSession) -> None:
    uid = (await create_user(http))["id"]
    cases: list[tuple[str, dict[str, Any] | None, str, int]] = [
        ("send", {}, "post", 400),
        ("send", {"text": 5}, "post", 400),
        ("send", {"text": "x" * 5000}, "post", 400),
        ("press", {"data": "again"}, "post", 400),
        ("press", {"message_id": 1}, "post", 400),
        ("press", {"message_id": 424242, "data": "again"}, "post", 404),
        ("events?cursor=abc", None, "get", 400),
        ("events?timeout=nan&cursor=1", None, "get", 400),
        ("messages/77/document", None, "get", 404),
        ("messages/x/photo", None, "get", 404),
    ]
    for path, body, method, status in cases:
        async with http.request(method, f"{API}/users/{uid}/{path}", json=body) as r:
            assert r.status == status, (path, body, await r.text())
            assert (await _json(r))["ok"] is False
    # The user's own message cannot be "pressed", nor data the message has no button for.
    cursor = (await snapshot(http, uid))["cursor"]
    own = await send(http, uid, "hi")
    event, _ = await wait_event(http, uid, cursor, bot_text("echo: hi"))
    for message_id, data, status in ((own, "again", 404), (event["message"]["message_id"], "forged", 400)):
        async with http.post(f"{API}/users/{uid}/press", json={"message_id": message_id, "data": data}) as r:
            assert r.status == status


async def test_blocked_user_gets_409(http: aiohttp.ClientSession, webchat: WebChatServer) -> None:
    uid = (await create_user(http))["id"]
    webchat.tg.users[uid].block()
    async with http.post(f"{API}/users/{uid}/send", json={"text": "hi"}) as r:
        assert r.status == 409
        assert "blocked" in (await _json(r))["error"]
    async with http.get(f"{API}/users") as r:
        assert r.status == 200
