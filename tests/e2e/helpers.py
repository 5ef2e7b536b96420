"""Small steps many end-to-end tests share: onboarding a simulated patient, waiting for a message."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.app import CareCircle
from bot.sandbox import FakeTelegram, SimUser
from bot.sandbox.fake.models import BotMessage
from bot.services.users import Onboarding


async def until(u: SimUser, match: str | Callable[[BotMessage], bool], timeout: float = 5.0) -> BotMessage:
    """The next message in `u`'s chat containing `match` (or satisfying it), skipping others such as
    notices the outbox delivers meanwhile; each wait for a message is bounded by `timeout`."""
    wanted = match if callable(match) else (lambda m: match in (m.text or ""))
    while True:
        message = await u.next_message(timeout=timeout)
        if wanted(message):
            return message


async def until_true(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `condition()` holds (state in memory that has no event to wait on)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - polls plain state
            await asyncio.sleep(0.005)


async def until_text(u: SimUser, needle: str, timeout: float = 5.0) -> str:
    """`until`, for tests that only read the text."""
    return (await until(u, needle, timeout)).text or ""


async def onboard(u: SimUser, *, lang: str = "en", condition: str = "Both", year: str = "1956",
                  unit: str = "mmol/L") -> None:
    """Walk a simulated user through /start with the given answers; drains the chat afterwards."""
    await u.send("/start")
    await u.next_message()
    await u.press("English" if lang == "en" else "中文")
    await u.next_message()
    await u.press("I agree" if lang == "en" else "我同意")
    await u.next_message()
    labels = {"en": {"Both": "Both", "High blood pressure": "High blood pressure",
                     "Type 2 diabetes": "Type 2 diabetes"},
              "zh_CN": {"Both": "两种都有", "High blood pressure": "高血压", "Type 2 diabetes": "2型糖尿病"}}
    await u.press(labels[lang][condition])
    await u.next_message()
    await u.send(year)
    await u.next_message()
    await u.press("Yes" if lang == "en" else "是")
    if condition != "High blood pressure":
        await u.next_message()
        await u.press(unit)
    done = await u.next_message()
    assert "/help" in done.text
    u.drain()


async def patient(tg: FakeTelegram, name: str = "Wang", **kwargs: object) -> SimUser:
    u = tg.user(name, language_code="en")
    await onboard(u, **kwargs)  # type: ignore[arg-type]
    return u


async def doctor(tg: FakeTelegram, app: object, name: str = "Dr Li", team: str = "Qingshan",
                 role: str = "gp") -> SimUser:
    """A doctor who joined through an admin invite link (the real `/start d-<code>` path)."""
    services = app.services  # type: ignore[attr-defined]
    payload = await services.invites.create_doctor_invite(name, team, role)
    d = tg.user(name, language_code="en")
    await d.send(f"/start {payload}")
    welcome = await d.next_message()
    assert "team" in welcome.text, welcome.text
    d.drain()
    return d


async def join_by_link(u: SimUser, payload: str, *, condition: str = "High blood pressure",
                       year: str | None = "1956", unit: str = "mmol/L") -> str:
    """Open a patient invite link (`/start p-...`) as a new user and walk the onboarding in English;
    `year=None` presses Skip (the doctor may have entered it). Returns the "linked to your doctor"
    message, which comes after onboarding is done."""
    await u.send(f"/start {payload}")
    await u.next_message()
    await u.press("English")
    await u.next_message()
    await u.press("I agree")
    await u.next_message()
    await u.press(condition)
    await u.next_message()
    if year is None:
        await u.press("Skip")
    else:
        await u.send(year)
    await u.next_message()
    await u.press("Yes")
    if condition in ("Both", "Type 2 diabetes"):
        await u.next_message()
        await u.press(unit)
    done = await u.next_message()
    assert "/help" in done.text, done.text
    return await until_text(u, "linked")


async def linked_patient(tg: FakeTelegram, doc: SimUser, name: str = "Wang", **kwargs: object) -> SimUser:
    """A patient who joined through the doctor's /invite link (QR code) and finished onboarding."""
    await doc.send("/invite")
    card = await doc.next_message()
    assert card.photo, "the invite comes as a QR code photo"
    payload = card.text.split("start=")[1].split()[0]
    u = tg.user(name, language_code="en")
    await join_by_link(u, payload, condition=str(kwargs.get("condition", "High blood pressure")),
                       year=str(kwargs.get("year", "1956")))
    u.drain()
    return u


async def onboarded(tg: FakeTelegram, care: CareCircle, name: str = "Wang") -> tuple[SimUser, int]:
    """A patient who finished /start, made through the services (no chat round trips): (sim, user id)."""
    u = tg.user(name, language_code="en", started=True)
    user = await care.services.users.ensure(u.id, u.id, name, "en")
    await care.services.users.complete_onboarding(
        user.id, Onboarding("en", "Asia/Shanghai", frozenset({"hypertension", "diabetes"}), 1956))
    return u, user.id
