"""On SQLite and PostgreSQL (migrated schema): correcting an urgent reading to a value that is no longer
urgent (/edit), or deleting it (/undo), withdraws the alert it raised (AlertService.reading_withdrawn)."""

from __future__ import annotations

from sqlalchemy import select, update

from bot.services.container import Services
from bot.services.corrections import CorrectionService
from bot.services.readings import NewReading
from bot.services.users import Onboarding
from storage.models import Alert, AlertEvent, Outbox, Team, TeamMember, User


async def _linked(services: Services) -> tuple[User, User]:
    """A doctor (chat 2001, own team) and a hypertensive patient of theirs."""
    doctor = await services.users.ensure(2001, 2001, "Dr Li", "en")
    async with services.sessions.begin() as session:
        team = Team(name="Qingshan")
        session.add(team)
        await session.flush()
        session.add(TeamMember(team_id=team.id, user_id=doctor.id, oncall_order=0))
        team_id = team.id
    user = await services.users.ensure(1001, 1001, "Wang", "en")
    await services.users.complete_onboarding(user.id, Onboarding("en", "Asia/Shanghai", frozenset({"hypertension"}),
                                                                 1950))
    await services.users.update_profile(user.id, team_id=team_id, doctor_id=doctor.id)
    return doctor, user


async def _alert(services: Services, alert_id: int) -> tuple[Alert, list[AlertEvent], list[Outbox]]:
    async with services.sessions() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        events = list(await session.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id)
                                            .order_by(AlertEvent.id)))
        rows = list(await session.scalars(select(Outbox).where(Outbox.alert_id == alert_id).order_by(Outbox.id)))
    return alert, events, rows


async def _delivered(services: Services, alert_id: int, message_id: int = 77) -> None:
    """What the outbox worker does once Telegram took the alert message."""
    async with services.sessions.begin() as session:
        await session.execute(update(Outbox).where(Outbox.alert_id == alert_id, Outbox.kind == "alert")
                              .values(status="sent", telegram_message_id=message_id))


async def test_correction_to_a_non_urgent_value_closes_the_alert_and_tells_the_doctor(services: Services) -> None:
    corrections = CorrectionService(services.sessions, services.clock, services.alerts)
    _doctor, user = await _linked(services)
    first = await services.readings.record(user.id, NewReading("bp", systolic=185, diastolic=115))
    assert first.alert is not None
    await _delivered(services, first.alert.alert_id)
    result = await corrections.correct(user.id, first.reading_id, NewReading("bp", systolic=150, diastolic=95))
    assert result is not None and not result.assessment.urgent and result.alert is None
    alert, events, rows = await _alert(services, first.alert.alert_id)
    assert alert.status == "closed" and alert.next_escalation_at is None
    assert events[-1].event == "closed"
    assert events[-1].detail.startswith("corrected by patient: entered in error")
    edit = next(r for r in rows if r.kind == "edit")
    assert edit.payload["message_id"] == 77 and "buttons" not in edit.payload
    assert edit.payload["text"].startswith("✅ Closed: Reading corrected by the patient: BP 150/95 mmHg, no longer urgent.")
    assert "185/115" in edit.payload["text"]  # the original alert text stays below
    notice = next(r for r in rows if r.kind == "notice")
    assert notice.chat_id == 2001 and notice.payload["reply_to"] == 77
    assert "Reading corrected by the patient: BP 150/95 mmHg, no longer urgent." in notice.payload["text"]
    assert "Wang" in notice.payload["text"]
    assert await services.alerts.escalate_due() == 0  # nothing left to escalate


async def test_alert_not_yet_delivered_is_rewritten_and_escalation_stops(services: Services, clock) -> None:  # type: ignore[no-untyped-def]
    corrections = CorrectionService(services.sessions, services.clock, services.alerts)
    await _linked(services)
    user = await services.users.by_telegram(1001)
    assert user is not None
    first = await services.readings.record(user.id, NewReading("bp", systolic=185, diastolic=115))
    assert first.alert is not None
    await corrections.correct(user.id, first.reading_id, NewReading("bp", systolic=150, diastolic=95))
    alert, _events, rows = await _alert(services, first.alert.alert_id)
    assert alert.status == "closed"
    assert [r.kind for r in rows] == ["alert"]  # no edit, no notice: the doctor gets the closed version only
    assert rows[0].payload["text"].startswith("✅ Closed:") and "buttons" not in rows[0].payload
    clock.advance(minutes=60)
    assert await services.alerts.escalate_due() == 0


async def test_still_urgent_correction_keeps_the_alert_open(services: Services) -> None:
    corrections = CorrectionService(services.sessions, services.clock, services.alerts)
    _doctor, user = await _linked(services)
    first = await services.readings.record(user.id, NewReading("bp", systolic=185, diastolic=115))
    assert first.alert is not None
    result = await corrections.correct(user.id, first.reading_id, NewReading("bp", systolic=182, diastolic=112))
    assert result is not None and result.alert is not None and result.alert.alert_id == first.alert.alert_id
    alert, events, rows = await _alert(services, first.alert.alert_id)
    assert alert.status == "open"
    assert not {"closed", "corrected"} & {e.event for e in events}
    assert not [r for r in rows if r.kind == "notice"]


async def test_folded_alert_stays_open_while_another_reading_is_urgent(services: Services) -> None:
    corrections = CorrectionService(services.sessions, services.clock, services.alerts)
    _doctor, user = await _linked(services)
    first = await services.readings.record(user.id, NewReading("bp", systolic=185, diastolic=115))
    second = await services.readings.record(user.id, NewReading("bp", systolic=190, diastolic=120))
    assert first.alert is not None and second.alert is not None and second.alert.folded
    alert_id = first.alert.alert_id
    await _delivered(services, alert_id)
    await corrections.correct(user.id, first.reading_id, NewReading("bp", systolic=150, diastolic=95))
    alert, events, rows = await _alert(services, alert_id)
    assert alert.status == "open" and alert.reading_id == second.reading_id  # escalation re-sends a real one
    assert events[-1].event == "corrected"
    notice = next(r for r in rows if r.kind == "notice")
    assert "still urgent" in notice.payload["text"]
    assert not [r for r in rows if r.kind == "edit"]
    removed = await services.readings.delete_last(user.id)  # /undo: the second (still urgent) one goes too
    assert removed is not None and removed.id == second.reading_id
    alert, events, rows = await _alert(services, alert_id)
    assert alert.status == "closed"
    assert events[-1].event == "closed" and events[-1].detail.startswith("deleted by patient: entered in error")
    notices = [r.payload["text"] for r in rows if r.kind == "notice"]
    assert "Reading deleted by the patient (entered in error): BP 190/120 mmHg." in notices[-1]
    assert [r.kind for r in rows].count("edit") == 1


async def test_acknowledged_alert_stays_acknowledged_and_the_doctor_is_told(services: Services) -> None:
    corrections = CorrectionService(services.sessions, services.clock, services.alerts)
    doctor, user = await _linked(services)
    first = await services.readings.record(user.id, NewReading("bp", systolic=185, diastolic=115))
    assert first.alert is not None
    await _delivered(services, first.alert.alert_id)
    assert (await services.alerts.act(first.alert.alert_id, doctor.id, "called")).ok
    await corrections.correct(user.id, first.reading_id, NewReading("bp", systolic=150, diastolic=95))
    alert, events, rows = await _alert(services, first.alert.alert_id)
    assert (alert.status, alert.action) == ("acknowledged", "called")
    assert events[-1].event == "corrected"
    assert not [r for r in rows if r.kind == "edit"]
    doctor_notices = [r for r in rows if r.kind == "notice" and r.chat_id == 2001]
    assert len(doctor_notices) == 1
    assert "Reading corrected by the patient: BP 150/95 mmHg, no longer urgent." in doctor_notices[0].payload["text"]
    assert "stays open" not in doctor_notices[0].payload["text"]


async def test_deleting_a_non_urgent_reading_touches_no_alert(services: Services) -> None:
    _doctor, user = await _linked(services)
    urgent = await services.readings.record(user.id, NewReading("bp", systolic=185, diastolic=115))
    await services.readings.record(user.id, NewReading("bp", systolic=130, diastolic=80))
    assert urgent.alert is not None
    assert await services.readings.delete_last(user.id) is not None
    alert, events, _rows = await _alert(services, urgent.alert.alert_id)
    assert alert.status == "open" and events[-1].event != "closed"
