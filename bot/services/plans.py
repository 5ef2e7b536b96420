"""Personal care plans (一人一策): the doctor's plan drives the patient's medicines, reminders,
targets, follow-up date and lessons.

Why one transaction in `save`: a plan that is saved but whose reminders still ring at the old
time (or for a stopped medicine) is worse than no plan. The new version, every synced row and the
announcement in the outbox commit together or not at all.

Ownership rules (documented choices):
- Medicines: the plan owns the medicines it names (matched by name, case-insensitive). A medicine
  that was in the previous version and is not in the new one is stopped (inactive) and all its
  reminders are deleted. Medicines the patient added themselves and the plan never named are left alone.
- Measurement reminders: for each kind the plan has a rhythm for (bp, glucose), the plan's rows
  replace the patient's recurring rows of that kind. After a medicine change the intensive rhythm
  runs first; `tick` switches to the maintenance rhythm when it ends.
- Lessons: sets in the plan that are not running get a prescription; sets the new version drops stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import clinical
from bot.clinical.plan import CarePlan, Change, PlanMedicine, Rhythm, plan_changes, time_of_day
from bot.clinical.plan_defaults import default_plan
from bot.clinical.schedule import (
    format_times,
    next_occurrence,
    parse_times,
    times_from_str,
    weekdays_to_str,
    zone,
)
from bot.services.clock import Clock
from bot.services.db import with_retry
from bot.services.education import DEFAULT_AT, DEFAULT_EVERY_DAYS
from bot.services.reminders import not_in_quiet_hours
from content.catalog import default_catalog
from content.i18n import Translator, translator
from storage.models import CaregiverLink, FollowUp, Medicine, Outbox, PatientProfile, TeamMember, User
from storage.plan_models import CarePlanVersion
from storage.reminder_models import Prescription, Reminder


def _(msgid: str) -> str:
    return msgid


PARTS = {"morning": _("morning"), "midday": _("midday"), "evening": _("evening"), "night": _("night")}
FOOD_LABELS = {"with": _("with food"), "without": _("on an empty stomach"), "": ""}
WEEKDAY_LABELS = (_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun"))
RHYTHM_LABELS = {"bp": _("Blood pressure"), "glucose": _("Blood glucose")}
START_LABELS = {"today": _("from today"), "tomorrow": _("from tomorrow")}


@dataclass(frozen=True)
class SavedPlan:
    version: int
    plan_id: int
    changes: list[Change]
    announced: int  # outbox rows queued


def _times(values: tuple[str, ...]) -> tuple[time, ...]:
    return times_from_str(",".join(values))


def doctor_name(t: Translator, doctor: User) -> str:
    name = doctor.display_name or doctor.first_name
    return name if name.lower().startswith(("dr", "医生")) or name.endswith("医生") else t("Dr {name}", name=name)


def describe(plan: CarePlan, t: Translator) -> list[str]:
    """The plan in plain words, one line each, for /plan, the card caption and the dashboard."""
    lines: list[str] = []
    if plan.medicines:
        lines.append(t("Medicines:"))
        for med in sorted(plan.medicines, key=lambda m: m.times):
            food = t(FOOD_LABELS[med.food]) if med.food else ""
            lines.append("💊 " + t("{medicine} at {times}", medicine=med.label, times=", ".join(med.times))
                         + (f" ({food})" if food else ""))
    tg = plan.targets
    lines.append(t("Targets:"))
    lines.append("🩺 " + t("Blood pressure below {bp}", bp=f"{tg.bp_systolic}/{tg.bp_diastolic}"))
    if tg.fasting_high is not None:
        lines.append("🩸 " + t("Fasting glucose {low} to {high} mmol/L", low=tg.fasting_low or "", high=tg.fasting_high))
    if tg.postmeal_high is not None:
        lines.append("🩸 " + t("2 h after a meal below {high} mmol/L", high=tg.postmeal_high))
    if tg.weight_kg is not None:
        lines.append("⚖️ " + t("Weight {kg} kg", kg=tg.weight_kg))
    if tg.bmi is not None:
        lines.append("⚖️ " + t("BMI below {bmi}", bmi=tg.bmi))
    if plan.rhythm:
        lines.append(t("Measuring:"))
        for r in plan.rhythm:
            days = ", ".join(t(WEEKDAY_LABELS[d]) for d in r.weekdays) if r.weekdays else t("every day")
            line = t("{what}: at {times}, {days}", what=t(RHYTHM_LABELS[r.kind]), times=", ".join(r.times), days=days)
            if r.intensive_days and r.intensive_times:
                line += " " + t("(after a medicine change: {times} every day for {n} days)",
                                times=", ".join(r.intensive_times), n=r.intensive_days)
            lines.append("📏 " + line)
    ls = plan.lifestyle
    goals = []
    if ls.salt_g_per_day is not None:
        goals.append(t("salt under {g} g a day", g=f"{ls.salt_g_per_day:g}"))
    if ls.cigarettes_per_day is not None:
        goals.append(t("no smoking") if ls.cigarettes_per_day == 0
                     else t("at most {n} cigarettes a day", n=ls.cigarettes_per_day))
    if ls.alcohol_liang_per_day is not None:
        goals.append(t("no alcohol") if ls.alcohol_liang_per_day == 0
                     else t("at most {n} liang of alcohol a day", n=f"{ls.alcohol_liang_per_day:g}"))
    if ls.exercise_min_per_week is not None:
        goals.append(t("exercise {n} minutes a week", n=ls.exercise_min_per_week))
    if ls.staple_g_per_day is not None:
        goals.append(t("staple food about {g} g a day", g=ls.staple_g_per_day))
    if goals:
        lines.append(t("Daily life:"))
        lines.extend("🥗 " + g for g in goals)
    lines.append("📅 " + t("Follow-up with your doctor every {n} days.", n=plan.followup_days))
    return lines


def _announcement(t: Translator, doctor: User, changes: list[Change], when: dict[str, str]) -> list[str]:
    """Plain words for the patient: 'Dr Li changed your evening medicine: amlodipine 5 mg at 20:00
    from tomorrow'."""
    who = doctor_name(t, doctor)
    lines: list[str] = []
    for change in changes:
        med = change.medicine
        if change.what == "medicine_changed" and med is not None and change.before is not None:
            new_times = [x for x in med.times if x not in change.before.times] or list(med.times)
            parts = {time_of_day(x) for x in new_times}
            start = t(START_LABELS[when.get(med.name.lower(), "today")])
            if len(parts) == 1:
                lines.append(t("{doctor} changed your {part} medicine: {medicine} at {times} {start}.",
                               doctor=who, part=t(PARTS[parts.pop()]), medicine=med.label,
                               times=", ".join(new_times), start=start))
            else:
                lines.append(t("{doctor} changed your medicine: {medicine} at {times} {start}.", doctor=who,
                               medicine=med.label, times=", ".join(med.times), start=start))
        elif change.what == "medicine_added" and med is not None:
            lines.append(t("{doctor} added a medicine: {medicine} at {times} {start}.", doctor=who,
                           medicine=med.label, times=", ".join(med.times),
                           start=t(START_LABELS[when.get(med.name.lower(), "today")])))
        elif change.what == "medicine_stopped" and med is not None:
            lines.append(t("{doctor} stopped {medicine}. Its reminders are switched off.", doctor=who,
                           medicine=med.label))
        elif change.what == "targets":
            lines.append(t("{doctor} set your targets.", doctor=who))
        elif change.what == "rhythm":
            lines.append(t("{doctor} changed when you measure.", doctor=who))
        elif change.what == "lifestyle":
            lines.append(t("{doctor} changed your daily-life goals.", doctor=who))
        elif change.what == "followup":
            lines.append(t("{doctor} changed how often you have a follow-up.", doctor=who))
    return lines


class PlanService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock):
        self._sessions = sessions
        self._clock = clock

    # --- reading ------------------------------------------------------------------------------
    @staticmethod
    def _team_clause(doctor_id: int) -> Any:
        teams = select(TeamMember.team_id).where(TeamMember.user_id == doctor_id)
        return or_(PatientProfile.team_id.in_(teams), PatientProfile.doctor_id == doctor_id)

    async def _may_edit(self, session: AsyncSession, doctor_id: int, patient_id: int) -> bool:
        """Only the patient's own doctor or a member of their team (the privacy rule of the panel)."""
        return await session.scalar(select(PatientProfile.user_id).where(
            PatientProfile.user_id == patient_id, self._team_clause(doctor_id))) is not None

    async def _latest(self, session: AsyncSession, patient_id: int) -> CarePlanVersion | None:
        return await session.scalar(select(CarePlanVersion).where(CarePlanVersion.patient_id == patient_id)
                                    .order_by(CarePlanVersion.version.desc()).limit(1))

    async def current(self, patient_id: int) -> tuple[CarePlanVersion, CarePlan] | None:
        async with self._sessions() as session:
            row = await self._latest(session, patient_id)
            return (row, CarePlan.from_dict(row.data)) if row else None

    async def history(self, patient_id: int) -> list[CarePlanVersion]:
        async with self._sessions() as session:
            return list(await session.scalars(select(CarePlanVersion).where(CarePlanVersion.patient_id == patient_id)
                                              .order_by(CarePlanVersion.version.desc())))

    async def draft(self, doctor_id: int, patient_id: int) -> tuple[User, CarePlan, bool] | None:
        """(patient, plan to edit, is_new) for the doctor: the current plan, else the defaults.
        None when the patient is not the doctor's (same answer as "no such patient")."""
        async with self._sessions() as session:
            if not await self._may_edit(session, doctor_id, patient_id):
                return None
            patient = await session.get(User, patient_id)
            profile = await session.get(PatientProfile, patient_id)
            assert patient is not None and profile is not None
            row = await self._latest(session, patient_id)
            if row is not None:
                return patient, CarePlan.from_dict(row.data), False
            return patient, self.defaults_for(profile), True

    def defaults_for(self, profile: PatientProfile) -> CarePlan:
        age = self._clock.now().year - profile.birth_year if profile.birth_year else None
        return default_plan(profile.condition_set, profile.risk, age)

    async def viewable(self, viewer_id: int, patient_id: int) -> tuple[User, CarePlan] | None:
        """The plan for its patient, their team, or a caregiver who receives the summary (consent)."""
        async with self._sessions() as session:
            allowed = viewer_id == patient_id or await self._may_edit(session, viewer_id, patient_id)
            if not allowed:
                link = await session.get(CaregiverLink, (patient_id, viewer_id))
                allowed = link is not None and link.receive_summary
            if not allowed:
                return None
            row = await self._latest(session, patient_id)
            patient = await session.get(User, patient_id)
            return (patient, CarePlan.from_dict(row.data)) if row and patient else None

    # --- saving -------------------------------------------------------------------------------
    async def save(self, doctor_id: int, patient_id: int, plan: CarePlan, source: str = "chat") -> SavedPlan | None:
        """New version + medicines, reminders, targets, follow-up date, lessons and the announcement,
        in one transaction. None when the patient is not the doctor's.

        Two team members saving at the same instant collide on (patient, version): the loser runs
        again as a fresh transaction on top of the winner's version, so neither save is lost."""
        for attempt in range(3):
            try:
                return await with_retry(lambda: self._save(doctor_id, patient_id, plan, source))
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _save(self, doctor_id: int, patient_id: int, plan: CarePlan, source: str) -> SavedPlan | None:
        now = self._clock.now()
        async with self._sessions.begin() as session:
            if not await self._may_edit(session, doctor_id, patient_id):
                return None
            doctor = await session.get(User, doctor_id)
            patient = await session.get(User, patient_id)
            profile = await session.get(PatientProfile, patient_id)
            assert doctor is not None and patient is not None and profile is not None
            previous = await self._latest(session, patient_id)
            old = CarePlan.from_dict(previous.data) if previous else None
            changes = plan_changes(old, plan)
            intensive = any(c.what.startswith("medicine_") for c in changes) or old is None
            days = max((r.intensive_days for r in plan.rhythm if r.intensive_times), default=0)
            await session.execute(CarePlanVersion.__table__.update()
                                  .where(CarePlanVersion.patient_id == patient_id)
                                  .values(rhythm_switch_at=None))
            row = CarePlanVersion(patient_id=patient_id, version=(previous.version + 1) if previous else 1,
                                  author_id=doctor_id, data=plan.to_dict(), created_at=now, source=source,
                                  rhythm_switch_at=now + timedelta(days=days) if intensive and days else None)
            session.add(row)
            await session.flush()
            when = await self._sync_medicines(session, patient, old, plan, now)
            await self._sync_rhythm(session, patient, plan.rhythm, now, intensive=intensive and days > 0)
            self._sync_targets(profile, plan)
            await self._sync_followup(session, profile, plan, now)
            await self._sync_lessons(session, patient, doctor_id, old, plan, now)
            announced = await self._announce(session, doctor, patient, row, changes, when, now)
            return SavedPlan(row.version, row.id, changes, announced)

    async def _sync_medicines(self, session: AsyncSession, patient: User, old: CarePlan | None, plan: CarePlan,
                              now: datetime) -> dict[str, str]:
        """Returns, per medicine name, "today" or "tomorrow": when its first dose under the new plan is."""
        existing = {m.name.lower(): m for m in await session.scalars(
            select(Medicine).where(Medicine.patient_id == patient.id, Medicine.active.is_(True))
            .order_by(Medicine.id))}
        wanted = {m.name.lower(): m for m in plan.medicines}
        dropped = {m.name.lower() for m in old.medicines} - set(wanted) if old else set()
        for key in dropped:
            row = existing.get(key)
            if row is not None:
                row.active = False
                await session.execute(delete(Reminder).where(Reminder.medicine_id == row.id))
        when: dict[str, str] = {}
        today = now.astimezone(zone(patient.timezone)).date()
        for key, med in wanted.items():
            row = existing.get(key)
            if row is None:
                row = Medicine(patient_id=patient.id, name=med.name[:128], created_at=now)
                session.add(row)
            row.dose, row.times = med.dose[:64], ",".join(med.times)
            await session.flush()
            await session.execute(delete(Reminder).where(Reminder.medicine_id == row.id, Reminder.kind == "medicine",
                                                         Reminder.one_off.is_(False)))
            times = _times(med.times)
            due = next_occurrence(times, None, patient.timezone, now)
            if due is None:
                continue
            session.add(Reminder(user_id=patient.id, kind="medicine", medicine_id=row.id, times=format_times(times),
                                 weekdays="", tz=patient.timezone, next_due_at=due, payload={"plan": True},
                                 created_at=now))
            when[key] = "today" if due.astimezone(zone(patient.timezone)).date() == today else "tomorrow"
        return when

    async def _sync_rhythm(self, session: AsyncSession, patient: User, rhythm: tuple[Rhythm, ...], now: datetime, *,
                           intensive: bool) -> None:
        kinds = [r.kind for r in rhythm]
        if kinds:
            await session.execute(delete(Reminder).where(Reminder.user_id == patient.id, Reminder.kind.in_(kinds),
                                                         Reminder.one_off.is_(False)))
        for r in rhythm:
            use_intensive = intensive and r.intensive_days > 0 and bool(r.intensive_times)
            times = _times(r.intensive_times if use_intensive else r.times)
            days: tuple[int, ...] = () if use_intensive else r.weekdays
            due = next_occurrence(times, days, patient.timezone, now)
            if due is None:
                continue
            session.add(Reminder(user_id=patient.id, kind=r.kind, times=format_times(times),
                                 weekdays=weekdays_to_str(days), tz=patient.timezone, next_due_at=due,
                                 payload={"plan": True, "phase": "intensive" if use_intensive else "maintenance"},
                                 created_at=now))

    @staticmethod
    def _sync_targets(profile: PatientProfile, plan: CarePlan) -> None:
        """The assessment reads PatientProfile.target_* (bot.services.targets.targets_for)."""
        tg = plan.targets
        profile.target_sys, profile.target_dia = tg.bp_systolic, tg.bp_diastolic
        profile.target_fasting_low, profile.target_fasting_high = tg.fasting_low, tg.fasting_high
        profile.target_postmeal_high = tg.postmeal_high

    async def _sync_followup(self, session: AsyncSession, profile: PatientProfile, plan: CarePlan,
                             now: datetime) -> None:
        """Next follow-up from the last confirmed follow-up (or today) with the plan's interval, by the
        same rule as a recorded follow-up (bot.clinical.next_followup_due): the plan can bring the date
        forward, never past the risk interval, and a 2-week recheck after an uncontrolled one stays."""
        last = (await session.execute(select(FollowUp.visit_date, FollowUp.outcome).where(
            FollowUp.patient_id == profile.user_id, FollowUp.status == "confirmed")
            .order_by(FollowUp.visit_date.desc(), FollowUp.id.desc()).limit(1))).first()
        risk = "high" if profile.risk == "high" else "standard"
        outcome = last[1] if last and last[1] in clinical.FOLLOWUP_OUTCOMES else None
        profile.next_followup_due = clinical.next_followup_due(
            last[0] if last else now.date(), risk, outcome, plan_days=plan.followup_days)  # type: ignore[arg-type]

    async def _sync_lessons(self, session: AsyncSession, patient: User, doctor_id: int, old: CarePlan | None,
                            plan: CarePlan, now: datetime) -> None:
        """Start the plan's sets that are not running; stop the ones the previous version had and this
        one dropped (a set prescribed with /prescribe outside the plan keeps running)."""
        running = {rx.set_id: rx for rx in await session.scalars(select(Prescription).where(
            Prescription.patient_id == patient.id, Prescription.finished_at.is_(None)))}
        known = default_catalog().lesson_sets
        for set_id in plan.lessons:
            if set_id in running or set_id not in known:
                continue
            rx = Prescription(patient_id=patient.id, doctor_id=doctor_id, set_id=set_id, every_days=DEFAULT_EVERY_DAYS,
                              at_time=DEFAULT_AT.strftime("%H:%M"), created_at=now)
            session.add(rx)
            await session.flush()
            due = next_occurrence((DEFAULT_AT,), None, patient.timezone, now)
            assert due is not None
            session.add(Reminder(user_id=patient.id, kind="lesson", times=rx.at_time, tz=patient.timezone,
                                 next_due_at=due, payload={"prescription_id": rx.id}, created_at=now))
        dropped = set(old.lessons) - set(plan.lessons) if old else set()
        for set_id, rx in running.items():
            if set_id in dropped:
                rx.finished_at = now
                for rem in await session.scalars(select(Reminder).where(Reminder.user_id == patient.id,
                                                                        Reminder.kind == "lesson")):
                    if (rem.payload or {}).get("prescription_id") == rx.id:
                        await session.delete(rem)

    async def _announce(self, session: AsyncSession, doctor: User, patient: User, row: CarePlanVersion,
                        changes: list[Change], when: dict[str, str], now: datetime) -> int:
        queued = 0
        if patient.chat_id and changes:
            t = translator(patient.language)
            lines = _announcement(t, doctor, changes, when)
            lines.append(t("Send /plan to see your whole plan."))
            session.add(Outbox(kind="notice", recipient_id=patient.id, chat_id=patient.chat_id,
                               payload={"text": "\n".join(lines)}, dedupe_key=f"plan:{row.id}:{patient.id}",
                               next_attempt_at=await not_in_quiet_hours(session, patient, now), created_at=now))
            queued += 1
        carers = await session.scalars(select(User).join(CaregiverLink, CaregiverLink.caregiver_id == User.id).where(
            CaregiverLink.patient_id == patient.id, CaregiverLink.receive_summary.is_(True)))
        for carer in carers:
            if not carer.chat_id or carer.unreachable_at is not None or not changes:
                continue
            ct = translator(carer.language)
            text = "\n".join([ct("{doctor} updated the care plan of {name}:", doctor=doctor_name(ct, doctor),
                                 name=patient.display_name or patient.first_name), *describe(
                                     CarePlan.from_dict(row.data), ct)])
            session.add(Outbox(kind="notice", recipient_id=carer.id, chat_id=carer.chat_id, payload={"text": text},
                               dedupe_key=f"plan:{row.id}:{carer.id}",
                               next_attempt_at=await not_in_quiet_hours(session, carer, now), created_at=now))
            queued += 1
        return queued

    # --- the tick -----------------------------------------------------------------------------
    async def tick(self, now: datetime | None = None) -> int:
        """Intensive measuring periods that ended: switch those patients to the maintenance rhythm."""
        now = now or self._clock.now()
        switched = 0
        async with self._sessions.begin() as session:
            rows = list(await session.scalars(select(CarePlanVersion).where(
                CarePlanVersion.rhythm_switch_at.is_not(None), CarePlanVersion.rhythm_switch_at <= now).limit(500)))
            for row in rows:
                row.rhythm_switch_at = None
                patient = await session.get(User, row.patient_id)
                if patient is None:
                    continue
                plan = CarePlan.from_dict(row.data)
                await self._sync_rhythm(session, patient, plan.rhythm, now, intensive=False)
                switched += 1
        return switched


def medicine_from_form(name: str, dose: str, times: str, food: str) -> PlanMedicine | None:
    """A medicine from separate form fields (dashboard); None when the name or times are invalid."""
    parsed = parse_times(times)
    if not name.strip() or not parsed:
        return None
    return PlanMedicine(name.strip()[:128], dose.strip()[:64], tuple(format_times(parsed).split(",")),
                        food if food in ("with", "without") else "")
