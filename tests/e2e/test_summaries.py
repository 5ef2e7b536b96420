"""Issue 6: the weekly summaries end to end (FakeTelegram, ManualClock, `care.tick()`): the patient's
Sunday summary, the caregiver's short version only where the patient's consent (the link) and the
caregiver's own choice allow it, and the doctor's Monday digest of their own team's panel only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.app import CareCircle
from bot.sandbox import FakeTelegram, SimUser
from bot.services.clock import ManualClock
from tests.e2e.helpers import doctor, linked_patient, patient
from tests.e2e.helpers import until_text as until

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # Monday 08:00 in Shanghai
SUNDAY_EVENING = datetime(2026, 3, 8, 11, 0, 5, tzinfo=UTC)  # Sunday 19:00 local: the weekly summary
# Monday 08:00 local, the first one at least 7 days after the doctor joined (Monday 08:00 + 7 days is
# not strictly after itself, so a doctor who joined on Monday morning gets the first digest in 2 weeks).
MONDAY_MORNING = datetime(2026, 3, 16, 0, 0, 5, tzinfo=UTC)


@pytest.fixture
def mclock() -> ManualClock:
    return ManualClock(START)


async def caregiver_of(tg: FakeTelegram, who: SimUser, name: str) -> SimUser:
    """`who` sends /family, `name` (an onboarded user) opens the one-time link."""
    await who.send("/family")
    link = await until(who, "start=")
    payload = link.split("start=")[1].split()[0]
    carer = await patient(tg, name, condition="High blood pressure")
    await carer.send(f"/start {payload}")
    assert "family contact for" in await until(carer, "family contact")
    carer.drain()
    return carer


async def user_id(care: CareCircle, u: SimUser) -> int:
    user = await care.services.users.by_telegram(u.id)
    assert user is not None
    return user.id


def texts(u: SimUser) -> list[str]:
    return [m.text or "" for m in u.messages]


async def test_weekly_caregiver_summary_follows_consent_and_digest_shows_own_team(
        tg: FakeTelegram, care: CareCircle, mclock: ManualClock) -> None:
    li = await doctor(tg, care)
    wang = await linked_patient(tg, li, "Wang")
    zhang = await linked_patient(tg, li, "Zhang")
    zhao = await doctor(tg, care, name="Dr Zhao", team="Hillside")
    sun = await linked_patient(tg, zhao, "Sun")
    mei = await caregiver_of(tg, wang, "Mei")  # receives the summary (the default)
    hua = await caregiver_of(tg, wang, "Hua")  # turns the weekly summary off herself
    bo = await caregiver_of(tg, wang, "Bo")  # Wang removes him
    await hua.send("/family")
    await until(hua, "You help Wang")
    await hua.press("✅ weekly summary")
    await until(hua, "You help Wang")
    await wang.send("/family")
    await until(wang, "Send this link")
    await wang.press("Remove Bo")
    await asyncio.sleep(0.3)
    await care.tick()  # creates the weekly rows (first one after 5 days) and the digest rows (after 7)
    for value in ("150/95", "138/86", "132/84"):
        await wang.send(value)
        await until(wang, "Saved")
    await zhang.send("185/115")  # urgent: an open alert on Dr Li's panel
    await until(zhang, "120")
    await sun.send("185/115")  # urgent: an open alert on Dr Zhao's panel, never on Dr Li's
    await until(sun, "120")
    tg.reset_rate_limits()
    for u in (wang, mei, hua, bo, li, zhao):
        u.drain()

    mclock.advance(seconds=(SUNDAY_EVENING - START).total_seconds())
    await care.tick()
    summary = await until(wang, "Your week")
    assert "Readings this week: 3" in summary and "140/88" in summary and "💡" in summary
    short = await until(mei, "Wang's week")
    assert short.startswith("📅") and "3 readings" in short and "BP average 140/88" in short
    assert "💡" not in short and "target" not in short  # the short version: no tip, no clinical detail
    await asyncio.sleep(0.5)
    assert not any(m.photo for m in mei.messages)  # the chart is the patient's only
    assert not any("Wang's week" in t for t in texts(hua))  # she turned it off
    assert not any("Wang's week" in t for t in texts(bo))  # no longer linked
    assert not any("Zhang" in t or "Sun" in t for t in texts(mei))  # only the patient who invited her
    assert not any("digest" in t for t in texts(li))  # the digest is Monday morning's, not Sunday's

    mclock.advance(seconds=(MONDAY_MORNING - SUNDAY_EVENING).total_seconds())
    await care.tick()
    digest = await until(li, "weekly panel digest")
    assert "2 patients" in digest and "open alert: 1" in digest and "/patients" in digest
    assert f"#{await user_id(care, zhang)} Zhang — open alert" in digest.split("Please call:")[1]
    assert "Sun" not in digest  # another team's patient never shows
    other = await until(zhao, "weekly panel digest")
    assert "1 patients" in other and "Sun — open alert" in other.split("Please call:")[1]
    assert "Wang" not in other and "Zhang" not in other
