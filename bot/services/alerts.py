"""Alerts to the care team: created with the reading, delivered by the outbox, acknowledged
from buttons, escalated when nobody answers. Every step is written to `alert_events`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import clinical
from bot.services.clock import Clock
from bot.services.db import read_session
from bot.services.targets import targets_for
from content.i18n import translator
from content.render import advice_lines, category_text, reading_text
from storage.models import (
    Alert,
    AlertEvent,
    CaregiverLink,
    Outbox,
    PatientProfile,
    Reading,
    TeamMember,
    User,
)

FOLD_WINDOW = timedelta(hours=6)
SILENCE_RULE = "NO-READINGS"
SILENT_DAYS = 3  # high-risk patients: "no reading for N days" (issue 5; a design choice, not in the reference)
ACTIONS = ("ack", "called", "referred", "snooze")


@dataclass(frozen=True)
class AlertOutcome:
    alert_id: int
    folded: bool
    doctor_names: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class AlertContext:
    """What raising an alert reads: looked up before the reading's INSERT, so on SQLite the write
    transaction (one writer at a time) holds only writes. With these four SELECTs inside it, an
    urgent reading's transaction held the write lock for ~10 round trips through the event loop
    instead of ~5 (docs/benchmarks.md, issue 5)."""

    open_alert: Alert | None
    team: list[User]
    previous: list[Reading]  # the patient's last three BP/glucose readings before this one
    caregivers: list[User]


@dataclass(frozen=True)
class AckResult:
    ok: bool
    reason: str = ""  # "not_found" | "already" | ""
    alert_id: int | None = None
    action: str = ""


def _(msgid: str) -> str:
    return msgid


ACTION_LABELS = {
    "ack": _("Acknowledge"),
    "called": _("Called patient"),
    "referred": _("Referred"),
    "snooze": _("Snooze 1 h"),
}


def alert_buttons(alert_id: int, language: str) -> list[list[list[str]]]:
    t = translator(language)
    def button(action: str) -> list[str]:
        label = ACTION_LABELS[action]
        return [t(label), f"al:{action}:{alert_id}"]

    return [[button("ack"), button("called")], [button("referred"), button("snooze")]]


class AlertService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, escalation_minutes: float = 15.0):
        self._sessions = sessions
        self._clock = clock
        self._escalation = timedelta(minutes=escalation_minutes)

    async def _team_order(self, session: AsyncSession, profile: PatientProfile | None) -> list[User]:
        """The doctors to tell, in on-call order: the patient's own doctor first."""
        if profile is None:
            return []
        members: list[User] = []
        if profile.team_id is not None:
            rows = await session.execute(
                select(User)
                .join(TeamMember, TeamMember.user_id == User.id)
                .where(TeamMember.team_id == profile.team_id)
                .order_by(TeamMember.oncall_order, User.id)
            )
            members = list(rows.scalars())
        if profile.doctor_id is not None:
            own = next((m for m in members if m.id == profile.doctor_id), None) or await session.get(
                User, profile.doctor_id
            )
            if own is not None:
                members = [own, *[m for m in members if m.id != own.id]]
        return members

    async def look_up(self, session: AsyncSession, patient: User, profile: PatientProfile | None, rule: str,
                      reading_id: int | None = None) -> AlertContext:
        """The reads `raise_in` needs; call it before the reading's INSERT (`reading_id` None) to keep
        them out of the write transaction, or after it with the new reading's id."""
        open_alert = await session.scalar(
            select(Alert).where(
                Alert.patient_id == patient.id, Alert.rule == rule, Alert.status == "open",
                Alert.created_at >= self._clock.now() - FOLD_WINDOW,
            ).order_by(Alert.id.desc()).limit(1)
        )
        team = await self._team_order(session, profile)
        previous = list(await session.scalars(
            select(Reading).where(Reading.patient_id == patient.id, Reading.kind.in_(("bp", "glucose")),
                                  *([Reading.id != reading_id] if reading_id is not None else []))
            .order_by(Reading.measured_at.desc()).limit(3)
        ))
        links = await session.execute(
            select(User).join(CaregiverLink, CaregiverLink.caregiver_id == User.id).where(
                CaregiverLink.patient_id == patient.id, CaregiverLink.receive_alerts.is_(True)
            )
        )
        return AlertContext(open_alert, team, previous, list(links.scalars()))

    async def raise_in(
        self, session: AsyncSession, patient: User, profile: PatientProfile | None, reading: Reading,
        assessment: Any, age: int | None, context: AlertContext | None = None,
    ) -> AlertOutcome:
        """Inside the reading's transaction: open (or fold into) an alert and queue the messages.
        `context`: `look_up` done before the reading's INSERT (else it is done here)."""
        now = self._clock.now()
        rule = assessment.alert_rule
        if context is None:
            context = await self.look_up(session, patient, profile, rule, reading.id)
        open_alert, team = context.open_alert, context.team
        names = tuple(m.display_name or m.first_name for m in team[:1])
        if open_alert is not None:
            open_alert.repeat_count += 1
            session.add(AlertEvent(alert_id=open_alert.id, at=now, event="repeat", detail=f"reading {reading.id}"))
            await self._refresh_doctor_messages(session, open_alert, patient, profile, reading, assessment, age, now)
            return AlertOutcome(open_alert.id, True, names)
        alert = Alert(
            patient_id=patient.id, reading_id=reading.id, rule=rule, status="open", created_at=now,
            next_escalation_at=now + self._escalation if team else None,
        )
        session.add(alert)
        await session.flush()
        session.add(AlertEvent(alert_id=alert.id, at=now, event="created", detail=rule))
        if team:
            await self._queue_doctor(session, alert, team[0], patient, profile, reading, assessment, age, now, level=0,
                                     previous=context.previous)
        else:
            session.add(AlertEvent(alert_id=alert.id, at=now, event="no_team", detail="patient has no linked doctor"))
        for caregiver in context.caregivers:
            if caregiver.chat_id:
                t = translator(caregiver.language)
                text = t("{name} recorded an urgent reading: {reading}. Their doctor is being told. "
                         "Please check on them.", name=patient.display_name or patient.first_name,
                         reading=reading_text(reading, t))
                session.add(Outbox(kind="alert_copy", recipient_id=caregiver.id, chat_id=caregiver.chat_id,
                                   payload={"text": text}, alert_id=alert.id, dedupe_key=f"alert:{alert.id}:cg:{caregiver.id}",
                                   next_attempt_at=now))
        return AlertOutcome(alert.id, False, names)

    async def _doctor_text(
        self, session: AsyncSession, doctor: User, alert: Alert, patient: User, profile: PatientProfile | None,
        reading: Reading, assessment: Any, age: int | None, previous: list[Reading] | None = None,
    ) -> str:
        t = translator(doctor.language)
        if previous is None:
            previous = list(await session.scalars(
                select(Reading).where(Reading.patient_id == patient.id, Reading.id != reading.id,
                                      Reading.kind.in_(("bp", "glucose")))
                .order_by(Reading.measured_at.desc()).limit(3)
            ))
        lines = [
            "⚠️ " + t("Urgent reading ({rule})", rule=alert.rule),
            t("Patient: {name}, age {age}", name=patient.display_name or patient.first_name,
              age=age if age is not None else "?"),
            t("Reading: {reading} — {category}", reading=reading_text(reading, t),
              category=category_text(assessment.category, t)),
        ]
        if reading.symptoms:
            lines.append(t("Symptoms reported: {symptoms}", symptoms=reading.symptoms))
        last = [reading_text(r, t) for r in previous]
        lines.append(t("Last readings: {list}", list="; ".join(last) if last else t("none")))
        targets = targets_for(profile, age)
        lines.append(t("Target: BP below {bp}; fasting glucose {low}-{high} mmol/L", bp=f"{targets.bp_systolic}/"
                       f"{targets.bp_diastolic}", low=targets.fasting_low, high=targets.fasting_high))
        told = advice_lines(assessment.advice, translator(patient.language))
        if told:
            lines.append(t("The patient was told: {advice}", advice=" ".join(told)))
        if alert.repeat_count:
            lines.append(t("+{n} more readings since", n=alert.repeat_count))
        return "\n".join(lines)

    async def _queue_doctor(
        self, session: AsyncSession, alert: Alert, doctor: User, patient: User, profile: PatientProfile | None,
        reading: Reading, assessment: Any, age: int | None, now: Any, level: int,
        previous: list[Reading] | None = None,
    ) -> None:
        if not doctor.chat_id:
            session.add(AlertEvent(alert_id=alert.id, at=now, event="unreachable", actor_id=doctor.id,
                                   detail="doctor never opened the bot"))
            return
        text = await self._doctor_text(session, doctor, alert, patient, profile, reading, assessment, age, previous)
        session.add(Outbox(
            kind="alert", recipient_id=doctor.id, chat_id=doctor.chat_id, alert_id=alert.id,
            payload={"text": text, "buttons": alert_buttons(alert.id, doctor.language)},
            dedupe_key=f"alert:{alert.id}:to:{doctor.id}:l{level}", next_attempt_at=now,
        ))
        session.add(AlertEvent(alert_id=alert.id, at=now, event="queued", actor_id=doctor.id, detail=f"level {level}"))

    async def _refresh_doctor_messages(
        self, session: AsyncSession, alert: Alert, patient: User, profile: PatientProfile | None,
        reading: Reading, assessment: Any, age: int | None, now: Any,
    ) -> None:
        """A repeat folds into the open alert: rewrite the queued text, or edit the sent message."""
        rows = await session.scalars(select(Outbox).where(Outbox.alert_id == alert.id, Outbox.kind == "alert"))
        for row in rows:
            doctor = await session.get(User, row.recipient_id) if row.recipient_id else None
            if doctor is None:
                continue
            original = await session.get(Reading, alert.reading_id) if alert.reading_id else reading
            text = await self._doctor_text(session, doctor, alert, patient, profile, original or reading,
                                           assessment, age)
            payload = {"text": text, "buttons": alert_buttons(alert.id, doctor.language)}
            if row.status != "sent":
                row.payload = payload
            elif row.telegram_message_id:
                session.add(Outbox(kind="edit", recipient_id=doctor.id, chat_id=row.chat_id, alert_id=alert.id,
                                   payload={**payload, "message_id": row.telegram_message_id},
                                   dedupe_key=f"alert:{alert.id}:edit:{doctor.id}:{alert.repeat_count}",
                                   next_attempt_at=now))

    async def reading_withdrawn(self, session: AsyncSession, reading: Reading, patient: User | None, *,
                                deleted: bool) -> list[int]:
        """Inside the transaction that corrects `reading` to a value that is no longer urgent (/edit)
        or deletes it (/undo): the patient says the urgent value was entered in error.

        Why: an alert raised by a typo sends a doctor rushing and, unanswered, pages the whole team.
        For every alert this reading raised or was folded into:
        - open, and none of its other readings is still urgent: closed (no more escalation) with the
          event "closed" / "corrected by patient: entered in error" (or "deleted by ..."); each alert
          message already sent is edited to say so (buttons removed), one not sent yet is rewritten
          the same way, and whoever got it (doctors, caregivers' copies) gets a short notice.
        - open, another of its readings still urgent: stays open and now points at that reading (so an
          escalation re-sends a real urgent value); the recipients are told of the correction.
        - acknowledged: stays acknowledged (someone already acts on it); the recipients are told.
        A correction that is still urgent is no withdrawal: the caller raises it the normal way
        (`raise_in`). Returns the ids of the alerts closed."""
        now = self._clock.now()
        marker = f"reading {reading.id}"
        folded_into = select(AlertEvent.alert_id).where(AlertEvent.event == "repeat", AlertEvent.detail == marker)
        alerts = list(await session.scalars(
            select(Alert).where(Alert.patient_id == reading.patient_id, Alert.status.in_(("open", "acknowledged")),
                                or_(Alert.reading_id == reading.id, Alert.id.in_(folded_into)))
            .order_by(Alert.id)))
        closed: list[int] = []
        what = "deleted" if deleted else "corrected"
        for alert in alerts:
            still_urgent = await self._other_urgent_reading(session, alert, reading.id)
            if alert.status == "open" and still_urgent is None:
                alert.status = "closed"
                alert.next_escalation_at = None
                session.add(AlertEvent(alert_id=alert.id, at=now, event="closed",
                                       detail=f"{what} by patient: entered in error (reading {reading.id})"))
                closed.append(alert.id)
            else:
                if alert.status == "open" and still_urgent is not None:
                    alert.reading_id = still_urgent
                detail = f"reading {reading.id} {what} by patient: no longer urgent"
                session.add(AlertEvent(alert_id=alert.id, at=now, event=what, detail=detail[:256]))
            await self._tell_withdrawn(session, alert, reading, patient, deleted=deleted,
                                       closed=alert.status == "closed", now=now)
        return closed

    async def _other_urgent_reading(self, session: AsyncSession, alert: Alert, reading_id: int) -> int | None:
        """The newest other reading of `alert` (the one that raised it, or one folded in) still urgent."""
        details = await session.scalars(select(AlertEvent.detail).where(
            AlertEvent.alert_id == alert.id, AlertEvent.event == "repeat"))
        ids = {int(d.removeprefix("reading ")) for d in details
               if d.startswith("reading ") and d.removeprefix("reading ").isdigit()}
        if alert.reading_id is not None:
            ids.add(alert.reading_id)
        ids.discard(reading_id)
        if not ids:
            return None
        return await session.scalar(
            select(Reading.id).where(Reading.id.in_(ids), Reading.urgent.is_(True))
            .order_by(Reading.measured_at.desc(), Reading.id.desc()).limit(1))

    async def _tell_withdrawn(self, session: AsyncSession, alert: Alert, reading: Reading, patient: User | None, *,
                              deleted: bool, closed: bool, now: Any) -> None:
        """The messages of `reading_withdrawn`: edit or rewrite the alert messages of a closed alert,
        and a short notice (a reply to the alert message) to everyone who received one."""
        rows = list(await session.scalars(
            select(Outbox).where(Outbox.alert_id == alert.id, Outbox.kind.in_(("alert", "alert_copy")))
            .order_by(Outbox.id)))
        told: set[int] = set()
        for row in rows:
            person = await session.get(User, row.recipient_id) if row.recipient_id else None
            if person is None:
                continue
            t = translator(person.language)
            shown = reading_text(reading, t)
            if deleted:
                line = t("Reading deleted by the patient (entered in error): {reading}.", reading=shown)
            else:
                line = t("Reading corrected by the patient: {reading}, no longer urgent.", reading=shown)
            if closed and row.status in ("pending", "sent"):
                original = str((row.payload or {}).get("text", ""))
                text = "✅ " + t("Closed: {what}", what=line) + "\n\n" + original
                if row.status == "pending":  # not delivered yet: they get the closed version only
                    row.payload = {"text": text}
                    told.add(person.id)
                    continue
                if row.telegram_message_id:
                    session.add(Outbox(kind="edit", recipient_id=person.id, chat_id=row.chat_id, alert_id=alert.id,
                                       payload={"text": text, "message_id": row.telegram_message_id},
                                       next_attempt_at=now))
            if person.id in told or row.status not in ("sent", "sending"):
                continue
            told.add(person.id)
            lines = ["ℹ️ " + line]
            if patient is not None:
                lines.append(t("Patient: {name}", name=patient.display_name or patient.first_name))
            if not closed and alert.status == "open":
                lines.append(t("Another reading in this alert is still urgent: the alert stays open."))
            session.add(Outbox(kind="notice", recipient_id=person.id, chat_id=row.chat_id, alert_id=alert.id,
                               payload={"text": "\n".join(lines), "reply_to": row.telegram_message_id},
                               next_attempt_at=now))

    async def may_act(self, session: AsyncSession, alert: Alert, user_id: int) -> bool:
        """Only the patient's own doctor or a member of the patient's team may act on an alert."""
        profile = await session.get(PatientProfile, alert.patient_id)
        if profile is None:
            return False
        if profile.doctor_id == user_id:
            return True
        if profile.team_id is None:
            return False
        member = await session.get(TeamMember, (profile.team_id, user_id))
        return member is not None

    async def act(self, alert_id: int, user_id: int, action: str) -> AckResult:
        if action not in ACTIONS:
            return AckResult(False, "not_found")
        now = self._clock.now()
        async with self._sessions.begin() as session:
            alert = await session.get(Alert, alert_id)
            if alert is None or not await self.may_act(session, alert, user_id):
                return AckResult(False, "not_found")
            if alert.status != "open":
                return AckResult(False, "already", alert.id, alert.action or "")
            doctor = await session.get(User, user_id)
            assert doctor is not None
            if action == "snooze":
                alert.next_escalation_at = now + timedelta(hours=1)
                session.add(AlertEvent(alert_id=alert.id, at=now, event="snoozed", actor_id=user_id))
                return AckResult(True, "", alert.id, action)
            alert.status = "acknowledged"
            alert.action = action
            alert.acked_at = now
            alert.acked_by = user_id
            alert.next_escalation_at = None
            session.add(AlertEvent(alert_id=alert.id, at=now, event=f"acked:{action}", actor_id=user_id))
            profile = await session.get(PatientProfile, alert.patient_id)
            if profile is not None:  # after an urgent situation: follow up within 2 weeks (reference, follow-up)
                soon = (now + timedelta(days=clinical.thresholds.FOLLOWUP_RECHECK_DAYS)).date()
                if profile.next_followup_due is None or profile.next_followup_due > soon:
                    profile.next_followup_due = soon
                profile.last_contact_at = now if action == "called" else profile.last_contact_at
            patient = await session.get(User, alert.patient_id)
            name = doctor.display_name or doctor.first_name
            recipients: list[User] = [patient] if patient is not None else []
            links = await session.execute(
                select(User).join(CaregiverLink, CaregiverLink.caregiver_id == User.id).where(
                    CaregiverLink.patient_id == alert.patient_id, CaregiverLink.receive_alerts.is_(True)))
            recipients += list(links.scalars())
            for person in recipients:
                if not person.chat_id:
                    continue
                t = translator(person.language)
                session.add(Outbox(
                    kind="notice", recipient_id=person.id, chat_id=person.chat_id, alert_id=alert.id,
                    payload={"text": "✅ " + t("Dr {name} has seen the urgent reading.", name=name)},
                    dedupe_key=f"alert:{alert.id}:seen:{person.id}", next_attempt_at=now,
                ))
            return AckResult(True, "", alert.id, action)

    async def message_patient(self, doctor: User, patient: User, text: str) -> None:
        """A doctor's message to a patient, delivered through the outbox like every bot-initiated message."""
        if not patient.chat_id:
            return
        t = translator(patient.language)
        async with self._sessions.begin() as session:
            session.add(Outbox(kind="notice", recipient_id=patient.id, chat_id=patient.chat_id,
                               payload={"text": t("Message from Dr {name}:", name=doctor.display_name or doctor.first_name)
                                        + "\n" + text[:3500]},
                               next_attempt_at=self._clock.now()))

    async def silent_high_risk(self, days: int = SILENT_DAYS) -> int:
        """High-risk patients with no reading for `days` days: one alert per silence, to their doctor."""
        now = self._clock.now()
        since = now - timedelta(days=days)
        created = 0
        async with self._sessions.begin() as session:
            last = (select(Reading.patient_id, func.max(Reading.measured_at).label("at"))
                    .group_by(Reading.patient_id).subquery())
            rows = (await session.execute(
                select(User, PatientProfile, last.c.at)
                .join(PatientProfile, PatientProfile.user_id == User.id)
                .outerjoin(last, last.c.patient_id == User.id)
                .where(PatientProfile.risk == "high", PatientProfile.linked_at.is_not(None),
                       PatientProfile.linked_at < since, or_(last.c.at.is_(None), last.c.at < since))
                .limit(500))).all()
            for patient, profile, last_at in rows:
                already = await session.scalar(select(Alert.id).where(
                    Alert.patient_id == patient.id, Alert.rule == SILENCE_RULE,
                    or_(Alert.status == "open", Alert.created_at >= since)))
                if already is not None:
                    continue
                team = await self._team_order(session, profile)
                alert = Alert(patient_id=patient.id, rule=SILENCE_RULE, status="open", created_at=now)
                session.add(alert)
                await session.flush()
                session.add(AlertEvent(alert_id=alert.id, at=now, event="created", detail=SILENCE_RULE))
                for member in team[:1]:
                    if not member.chat_id:
                        continue
                    t = translator(member.language)
                    when = last_at.date().isoformat() if last_at else t("never")
                    text = "⚠️ " + t("{name} (high risk) has sent no reading for {days} days (last: {when}). "
                                     "Please check on them.", name=patient.display_name or patient.first_name,
                                     days=days, when=when)
                    session.add(Outbox(kind="alert", recipient_id=member.id, chat_id=member.chat_id,
                                       alert_id=alert.id, payload={"text": text,
                                                                   "buttons": alert_buttons(alert.id, member.language)},
                                       dedupe_key=f"alert:{alert.id}:to:{member.id}:l0", next_attempt_at=now))
                created += 1
        return created

    async def escalate_due(self) -> int:
        """Open alerts nobody acknowledged in time go to the next on call, then the whole team."""
        now = self._clock.now()
        count = 0
        async with self._sessions.begin() as session:
            due = list(await session.scalars(
                select(Alert).where(Alert.status == "open", Alert.next_escalation_at.is_not(None),
                                    Alert.next_escalation_at <= now).limit(100)
            ))
            for alert in due:
                patient = await session.get(User, alert.patient_id)
                profile = await session.get(PatientProfile, alert.patient_id)
                reading = await session.get(Reading, alert.reading_id) if alert.reading_id else None
                if patient is None or reading is None:  # e.g. a "no readings" alert: nothing to re-send
                    alert.next_escalation_at = None
                    continue
                age = None if profile is None or not profile.birth_year else now.year - profile.birth_year
                assessment = clinical.assess(reading, age=age)
                team = await self._team_order(session, profile)
                alert.escalation_level += 1
                level = alert.escalation_level
                targets = team[1:2] if level == 1 and len(team) > 1 else team
                for member in targets:
                    await self._queue_doctor(session, alert, member, patient, profile, reading, assessment, age, now,
                                             level=level)
                session.add(AlertEvent(alert_id=alert.id, at=now, event="escalated", detail=f"level {level}"))
                alert.next_escalation_at = now + self._escalation if level < 2 else None
                count += 1
        return count

    async def timelines(self, alert_ids: list[int], *, session: AsyncSession | None = None
                        ) -> dict[int, list[AlertEvent]]:
        """Each alert's events in order, for several alerts in one statement (a patient page shows ten)."""
        found: dict[int, list[AlertEvent]] = {alert_id: [] for alert_id in alert_ids}
        if not alert_ids:
            return found
        async with read_session(self._sessions, session) as session:
            for event in await session.scalars(select(AlertEvent).where(AlertEvent.alert_id.in_(alert_ids))
                                               .order_by(AlertEvent.at, AlertEvent.id)):
                found[event.alert_id].append(event)
        return found

    async def raise_symptom_alert(self, patient_id: int, symptoms: frozenset[str], where: str = "") -> int | None:
        """Danger signs written in free text with no reading (e.g. "胸痛" typed in a peer circle):
        an open alert to the patient's own doctor (first on call), with the usual buttons.

        No reading means nothing to re-assess, so it does not escalate automatically; repeats of the
        same signs inside the fold window join the open alert instead of paging again."""
        now = self._clock.now()
        rule = "SYMPTOM-TEXT"
        async with self._sessions.begin() as session:
            patient = await session.get(User, patient_id)
            if patient is None:
                return None
            profile = await session.get(PatientProfile, patient_id)
            open_alert = await session.scalar(select(Alert).where(
                Alert.patient_id == patient_id, Alert.rule == rule, Alert.status == "open",
                Alert.created_at >= now - FOLD_WINDOW).limit(1))
            if open_alert is not None:
                open_alert.repeat_count += 1
                session.add(AlertEvent(alert_id=open_alert.id, at=now, event="repeat", detail=",".join(sorted(symptoms))))
                return open_alert.id
            alert = Alert(patient_id=patient_id, rule=rule, status="open", created_at=now)
            session.add(alert)
            await session.flush()
            session.add(AlertEvent(alert_id=alert.id, at=now, event="created", detail=",".join(sorted(symptoms))[:256]))
            team = await self._team_order(session, profile)
            doctor = next((m for m in team if m.chat_id), None)
            if doctor is None:
                session.add(AlertEvent(alert_id=alert.id, at=now, event="no_team", detail="no reachable doctor"))
                return alert.id
            t = translator(doctor.language)
            text = "\n".join([
                "⚠️ " + t("Urgent: danger signs reported ({rule})", rule=rule),
                t("Patient: {name}", name=patient.display_name or patient.first_name),
                t("Symptoms reported: {symptoms}", symptoms=", ".join(sorted(symptoms))),
                t("Where: {where}", where=where) if where else "",
                t("They were told to call 120 or go to hospital now. Please contact them."),
            ]).replace("\n\n", "\n")
            session.add(Outbox(kind="alert", recipient_id=doctor.id, chat_id=doctor.chat_id, alert_id=alert.id,
                               payload={"text": text, "buttons": alert_buttons(alert.id, doctor.language)},
                               dedupe_key=f"alert:{alert.id}:to:{doctor.id}:l0", next_attempt_at=now))
            session.add(AlertEvent(alert_id=alert.id, at=now, event="queued", actor_id=doctor.id, detail="level 0"))
            return alert.id
