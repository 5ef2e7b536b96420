"""The sandbox web chat in headless Chromium: add a user, chat with an echo bot, press an inline button."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cdp import Browser, find_chromium
from webchat_support import WebChatServer

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    binary = find_chromium()
    if binary is None:
        message = "Chromium is not installed (make installs it at /usr/bin/chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + "; browser tests are required on CI")
        pytest.skip(message)
    browser = await Browser.launch(binary, width=1280, height=860)
    try:
        yield browser
    finally:
        await browser.close()


def pane(user_id: int) -> str:
    return f'.pane[data-user-id="{user_id}"]'


def bot_texts(user_id: int) -> str:
    return f"[...document.querySelectorAll('{pane(user_id)} .msg.bot .text')].map(e => e.textContent)"


async def test_chat_with_the_echo_bot(browser: Browser, webchat: WebChatServer) -> None:
    persona = webchat.personas[0]
    await browser.navigate(webchat.url + "/")
    await browser.wait_for("document.body.dataset.ready === '1'", timeout=5)
    # The seeded persona's pane is open by default.
    assert await browser.evaluate(f"!!document.querySelector('{pane(persona.id)}')")

    # Add a user from the header form.
    await browser.type("#new-name", "Alice")
    await browser.click("#add-user-btn")
    user_id = await browser.wait_for(
        "(() => { const p = [...document.querySelectorAll('.pane')].find("
        "  p => p.querySelector('.name').textContent === 'Alice'); return p && Number(p.dataset.userId); })()",
        timeout=5)
    alice = webchat.tg.users[user_id]
    assert alice.first_name == "Alice"

    # Type and press Send: the user's message appears on the right, the bot's echo on the left.
    await browser.type(f"{pane(user_id)} .composer input", "hello bot")
    await browser.click(f"{pane(user_id)} .composer .send")
    await browser.wait_for(f"{bot_texts(user_id)}.includes('echo: hello bot')", timeout=8)
    own = await browser.evaluate(
        f"[...document.querySelectorAll('{pane(user_id)} .msg.me .text')].map(e => e.textContent)")
    assert own == ["hello bot"]
    assert await browser.evaluate(f"document.querySelector('{pane(user_id)} .composer input').value") == ""

    # Click the inline button under the echo: the bot answers the callback and sends "again!".
    await browser.click(f"{pane(user_id)} .msg.bot .inline-btn")
    await browser.wait_for(f"{bot_texts(user_id)}.includes('again!')", timeout=8)
    await browser.wait_for(f"[...document.querySelectorAll('{pane(user_id)} .toast')]"
                           ".some(t => t.textContent === 'pressed again')", timeout=5)

    # Enter sends too; markup in a message is shown as text, never run as HTML.
    evil = '<img src=x onerror="window.__xss = 1">'
    await browser.type(f"{pane(user_id)} .composer input", evil)
    await browser.press_key("Enter")
    await browser.wait_for(f"{bot_texts(user_id)}.includes({json.dumps('echo: ' + evil)})", timeout=8)
    assert await browser.evaluate("window.__xss === undefined")
    assert await browser.evaluate(f"document.querySelectorAll('{pane(user_id)} .msg img').length") == 0

    # The other pane is independent: the persona saw nothing.
    assert await browser.evaluate(f"document.querySelectorAll('{pane(persona.id)} .msg').length") == 0
    assert [m.text for m in alice.messages][:2] == ["echo: hello bot", "again!"]

    # Reloading the page restores the open panes and the whole conversation.
    await browser.navigate(webchat.url + "/")
    await browser.wait_for(f"{bot_texts(user_id)}.length === 3", timeout=5)

    if os.environ.get("SCREENSHOT_DIR"):
        await browser.evaluate(f"document.querySelector('{pane(user_id)} .composer input').blur()")
        await browser.screenshot(Path(os.environ["SCREENSHOT_DIR"]) / "webchat.png")
