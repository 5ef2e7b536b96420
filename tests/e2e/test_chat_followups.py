"""Follow-ups in the chat end to end: FakeTelegram users, the real app on SQLite, a ManualClock and
`await care.tick()` instead of waiting days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app import CareCircle
from bot.sandbox import FakeTelegram, SimUser
from bot.services.chat_followups import START_EVERY
from bot.services.clock import ManualClock
from storage.chat_followup_models import ChatFollowUp
from storage.models import FollowUp
from tests.e2e.helpers import doctor, linked_patient, until

START = datetime(2026, 3, 2, 2, 30, tzinfo=UTC)  # Monday 10:30 in Shanghai: inside the invitation hours
TODAY = date(2026, 3, 2)


@pytest.fixture
def mclock() -> ManualClock:
    return ManualClock(START)


async def due_today(care: CareCircle, u: SimUser) -> int:
    """Make the patient's follow-up due today; the clock moves past START_EVERY (newly due patients are
    looked for every 10 minutes), still inside the invitation hours."""
    user = await care.services.users.by_telegram(u.id)
    assert user is not None
    await care.services.users.update_profile(user.id, next_followup_due=TODAY)
    clock = care.services.clock
    assert isinstance(clock, ManualClock)
    clock.advance(seconds=START_EVERY.total_seconds() + 1)
    return user.id


async def answer_questionnaire(u: SimUser) -> None:
    """A hypertension patient's answers: headache, no smoking or alcohol, exercise 3-4 times of 30-60 min,
    light salt, good mood and advice, regular medicines, no side effects."""
    await u.press("📝 Start the follow-up")
    assert "have you had any of these" in (await u.next_message()).text
    await u.press("Headache or dizziness")
    edited = await u.next_edit()
    assert "✅ Headache or dizziness" in edited.buttons  # the selection shows on the same message
    await u.press("Done ✔")
    for prompt, choice in (("cigarettes", "None"), ("alcohol", "None"), ("exercise", "3-4"),
                           ("How long", "30-60"), ("salty", "Light"), ("mood", "Good"),
                           ("doctor's advice", "Good"), ("medicines", "Every day as prescribed"),
                           ("side effects", "None of these")):
        question = await u.next_message()
        assert prompt in question.text, (prompt, question.text)
        await u.press(choice, message_id=question.message_id)


async def test_due_followup_invitation_questionnaire_draft_and_doctor_confirms(
        tg: FakeTelegram, care: CareCircle, mclock: ManualClock) -> None:
    doc = await doctor(tg, care)
    u = await linked_patient(tg, doc)
    await u.send("138/86 pulse 72")
    await u.next_message()
    patient_id = await due_today(care, u)
    u.drain()
    await care.tick()
    invitation = await until(u, "time for your regular follow-up")
    assert "Dr Li" in invitation.text and invitation.buttons == ["📝 Start the follow-up"]
    await care.tick()  # no second invitation the same day
    with pytest.raises(AssertionError):
        await until(u, "follow-up", timeout=0.4)

    await answer_questionnaire(u)
    thanks = await u.next_message()
    assert "went to Dr Li" in thanks.text

    draft = await until(doc, "Follow-up answered in the chat")
    assert "138/86" in draft.text and "heart rate 72" in draft.text  # latest readings filled in
    assert "Headache or dizziness" in draft.text and "Light" in draft.text and "30-60" in draft.text
    assert "✅ Unsatisfactory" in draft.buttons and "Clinic" in draft.buttons  # at home: other ways offered
    async with care.services.sessions() as session:
        row = await session.scalar(select(FollowUp).where(FollowUp.patient_id == patient_id))
        assert row is not None and row.status == "draft" and row.source == "chat" and row.way == "online"
        assert row.details["symptoms"] == ["headache_dizziness"] and row.med_adherence == "regular"

    # The doctor adds the signs measured on a call, then confirms with one press.
    await doc.press("➕ Add signs (BP, heart rate, glucose, weight)")
    assert "Type the signs" in (await doc.next_message()).text
    await doc.send("152/96 pulse 80 weight 66 kg")
    updated = await doc.next_message()
    assert "152/96" in updated.text and "heart rate 80" in updated.text and "weight 66 kg" in updated.text
    await doc.press("✅ Unsatisfactory", message_id=updated.message_id)
    confirmed = await doc.next_edit()
    due = (TODAY + timedelta(days=14)).isoformat()  # BP-UNCONTROLLED: recheck within 2 weeks
    assert "Confirmed: Unsatisfactory" in confirmed.text and due in confirmed.text and confirmed.buttons == []
    told = await until(u, "has read your follow-up answers")
    assert due in told.text
    profile = await care.services.users.profile(patient_id)
    assert profile is not None and profile.next_followup_due == TODAY + timedelta(days=14)
    assert profile.last_contact_at is not None
    async with care.services.sessions() as session:
        row = await session.scalar(select(FollowUp).where(FollowUp.patient_id == patient_id))
        cycle = await session.scalar(select(ChatFollowUp).where(ChatFollowUp.patient_id == patient_id))
    assert row is not None and row.status == "confirmed" and row.outcome == "unsatisfactory"
    assert (row.systolic, row.diastolic, row.heart_rate, row.weight_kg) == (152, 96, 80, 66.0)
    assert cycle is not None and cycle.status == "confirmed" and cycle.followup_id == row.id
    # A second press on the old draft changes nothing.
    await doc.press("✅ Controlled", message_id=draft.message_id)
    profile = await care.services.users.profile(patient_id)
    assert profile is not None and profile.next_followup_due == TODAY + timedelta(days=14)


async def test_two_unanswered_invitations_list_the_patient_for_a_call(
        tg: FakeTelegram, care: CareCircle, mclock: ManualClock) -> None:
    doc = await doctor(tg, care)
    u = await linked_patient(tg, doc)
    patient_id = await due_today(care, u)
    await care.tick()
    await until(u, "time for your regular follow-up")
    mclock.advance(days=2, hours=23)
    await care.tick()
    with pytest.raises(AssertionError):
        await until(u, "waiting for your follow-up", timeout=0.4)  # not before 3 days
    mclock.advance(hours=1)
    await care.tick()
    await until(u, "waiting for your follow-up")
    await doc.send("/tocall")
    assert "Nobody to call" in (await doc.next_message()).text  # 2 invitations, but only just sent
    mclock.advance(days=3)
    await care.tick()
    await doc.send("/tocall")
    listed = await doc.next_message()
    assert f"#{patient_id} Wang" in listed.text and "last reached: never" in listed.text
    # A phone follow-up recorded the usual way takes the patient off the list.
    await doc.send(f"/followup {patient_id}")
    await doc.next_message()
    await doc.press("Phone")
    await doc.next_message()
    await doc.press("Controlled")
    await doc.next_message()
    await doc.send("128/80 pulse 66 weight 60 kg")  # /followup takes the other signs too
    assert "Follow-up saved" in (await doc.next_message()).text
    await doc.send("/tocall")
    assert "Nobody to call" in (await doc.next_message()).text
    async with care.services.sessions() as session:
        row = await session.scalar(select(FollowUp).where(FollowUp.patient_id == patient_id))
        cycle = await session.scalar(select(ChatFollowUp).where(ChatFollowUp.patient_id == patient_id))
    assert row is not None and (row.way, row.systolic, row.heart_rate, row.weight_kg) == ("phone", 128, 66, 60.0)
    assert cycle is not None and cycle.status == "closed"


async def test_away_patient_shows_on_panel_and_chat_followup_is_online(
        tg: FakeTelegram, care: CareCircle, mclock: ManualClock) -> None:
    doc = await doctor(tg, care)
    u = await linked_patient(tg, doc)
    await u.send("/away")
    assert "You live at home now" in (await u.next_message()).text
    await u.press("🧳 I live away from home")
    assert "live away from home" in (await u.next_message()).text
    await doc.send("/patients")
    panel = await doc.next_message()
    assert "Wang" in panel.text and "away, last reached never" in panel.text
    user = await care.services.users.by_telegram(u.id)
    assert user is not None
    await doc.send(f"/patient {user.id}")
    assert f"Lives away from home since {TODAY.isoformat()}" in (await doc.next_message()).text

    patient_id = await due_today(care, u)
    await care.tick()
    await until(u, "time for your regular follow-up")
    await answer_questionnaire(u)
    await until(u, "went to Dr Li")
    draft = await until(doc, "Follow-up answered in the chat")
    assert "lives away from home" in draft.text and "Online chat" in draft.text
    assert "Clinic" not in draft.buttons  # away: the chat follow-up is the online follow-up
    await doc.send("/drafts")  # the waiting drafts again, e.g. for a colleague
    again = await doc.next_message()
    assert again.text == draft.text and again.buttons == draft.buttons
    await doc.press("✅ Controlled", message_id=again.message_id)
    assert "Confirmed: Controlled" in (await doc.next_edit()).text
    await doc.send("/drafts")
    assert "No follow-up answers are waiting" in (await doc.next_message()).text
    async with care.services.sessions() as session:
        row = await session.scalar(select(FollowUp).where(FollowUp.patient_id == patient_id))
    assert row is not None and row.way == "online" and row.status == "confirmed"
    await doc.send("/patients")
    panel = await doc.next_message()
    assert f"away, last reached {TODAY.isoformat()}" in panel.text
    # The doctor can set it too.
    await doc.send(f"/away {patient_id} off")
    assert "lives at home" in (await doc.next_message()).text
    await doc.send("/patients")
    assert "away" not in (await doc.next_message()).text


async def test_dashboard_panel_shows_away_patients_and_the_to_call_list(
        tg: FakeTelegram, care: CareCircle, mclock: ManualClock) -> None:
    import aiohttp

    doc = await doctor(tg, care)
    away = await linked_patient(tg, doc, name="Zhao")
    silent = await linked_patient(tg, doc, name="Sun")
    away_id = (await care.services.users.by_telegram(away.id)).id  # type: ignore[union-attr]
    silent_id = await due_today(care, silent)
    assert await care.services.chat_followups.set_away(away_id, True)
    for _step in range(3):  # invitation, second invitation, listed
        await care.tick()
        mclock.advance(days=3)
    doctor_id = (await care.services.users.by_telegram(doc.id)).id  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{care.settings.http_port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        token = await care.services.dashboard.create_login(doctor_id)
        assert (await http.post(base + "/dashboard/login", data={"token": token}, allow_redirects=False)).status == 303
        html = await (await http.get(base + "/dashboard/")).text()
    row = html.split(f'data-patient="{away_id}"')[1].split("</tr>")[0]
    assert "Away from home" in row and "last reached" in row and "never" in row
    assert 'id="to-call"' in html
    to_call = html.split('id="to-call"')[1].split("</section>")[0]
    assert f'data-patient="{silent_id}"' in to_call and "Sun" in to_call and "Zhao" not in to_call


async def test_dashboard_followup_form_saves_every_field(tg: FakeTelegram, care: CareCircle) -> None:
    import re

    import aiohttp

    doc = await doctor(tg, care)
    u = await linked_patient(tg, doc)
    pid = (await care.services.users.by_telegram(u.id)).id  # type: ignore[union-attr]
    doctor_id = (await care.services.users.by_telegram(doc.id)).id  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{care.settings.http_port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        token = await care.services.dashboard.create_login(doctor_id)
        assert (await http.post(base + "/dashboard/login", data={"token": token}, allow_redirects=False)).status == 303
        page = await (await http.get(base + f"/dashboard/patient/{pid}")).text()
        assert 'name="hba1c"' in page and 'name="med_adherence"' in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        saved = await http.post(base + f"/dashboard/patient/{pid}/followup", allow_redirects=False, data={
            "csrf": csrf, "way": "clinic", "outcome": "controlled", "systolic": "132", "diastolic": "82",
            "heart_rate": "70", "hba1c": "6.9", "foot_pulse": "weak", "salt": "medium", "mood": "good",
            "med_adherence": "regular", "hypo_reactions": "rare-typo", "cigarettes_per_day": "0",
            "referral_reason": "eye check", "referral_to": "county hospital"})
        assert saved.status == 303
    async with care.services.sessions() as session:
        row = await session.scalar(select(FollowUp).where(FollowUp.patient_id == pid))
    assert row is not None and row.source == "dashboard" and row.confirmed_at is not None
    assert (row.heart_rate, row.hba1c, row.med_adherence, row.hypo_reactions) == (70, 6.9, "regular", None)
    assert row.details["foot_pulse"] == "weak" and row.details["salt"] == "medium"
    assert row.details["cigarettes_per_day"] == "0" and row.referral == "eye check -> county hospital"


async def test_followups_csv_has_the_form_columns_and_defuses_formulas(tg: FakeTelegram, care: CareCircle) -> None:
    import csv
    import io

    from bot.services.followups import FollowUpForm
    from bot.services.indicators import Scope

    doc = await doctor(tg, care)
    u = await linked_patient(tg, doc)
    pid = (await care.services.users.by_telegram(u.id)).id  # type: ignore[union-attr]
    doctor_id = (await care.services.users.by_telegram(doc.id)).id  # type: ignore[union-attr]
    form = FollowUpForm(heart_rate=71, hba1c=7.1, med_adherence="regular", referral_reason="=HYPERLINK(1)")
    assert await care.services.followups.record(doctor_id, pid, way="clinic", outcome="controlled", form=form)
    team_ids = await care.services.panel.teams_of(doctor_id)
    chunks = [c async for c in care.services.exports.csv_rows("followups", Scope(team_ids=tuple(team_ids)))]
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))
    assert len(rows) == 1 and rows[0]["heart_rate"] == "71" and rows[0]["hba1c"] == "7.1"
    assert rows[0]["med_adherence"] == "regular" and not rows[0]["referral"].startswith("=")
