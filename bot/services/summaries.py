"""Weekly summaries: the patient's week (with a chart), a short version for caregivers who opted
in, and the doctor's panel digest. Called by the reminders tick inside its transaction, so a
summary is queued exactly when its reminder row advances.

Why text is built here and not in dialogs: nobody is talking to the bot when a summary goes out;
each text is rendered in its reader's language (`translator(user.language)`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clinical.schedule import times_from_str, weekdays_from_str, zone
from bot.services.charts import render_history
from bot.services.panel import PanelService
from bot.services.plan_focus import plan_focus
from bot.services.readings import age_of, targets_for
from content.catalog import TipContext, default_catalog
from content.i18n import translator
from storage.models import MedicationLog, PatientProfile, Reading, User
from storage.reminder_models import Reminder

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class WeekFacts:
    """What the week looked like; the numbers every summary (patient, caregiver) is built from."""

    count: int
    plan: int
    bp_avg: tuple[float, float] | None
    glucose_avg: float | None
    bp_target: tuple[int, int]
    best_day: date | None
    taken: int
    scheduled: int
    bp_points: list[tuple[datetime, int, int]]
    glucose_points: list[tuple[datetime, float]]


async def week_facts(session: AsyncSession, user: User, profile: PatientProfile | None, now: datetime) -> WeekFacts:
    since = now - WEEK
    readings = list(await session.scalars(
        select(Reading).where(Reading.patient_id == user.id, Reading.measured_at >= since,
                              Reading.kind.in_(("bp", "glucose"))).order_by(Reading.measured_at)))
    bp = [r for r in readings if r.kind == "bp" and r.systolic and r.diastolic]
    glu = [r for r in readings if r.kind == "glucose" and r.mmol is not None]
    targets = targets_for(profile, age_of(profile, now))
    tz = zone(user.timezone)
    by_day: dict[date, list[bool]] = defaultdict(list)
    for r in readings:
        if r.in_target is not None:
            by_day[r.measured_at.astimezone(tz).date()].append(bool(r.in_target))
    # Best day: the highest share of readings in target, then the most readings, then the latest.
    best = max(by_day.items(), key=lambda kv: (sum(kv[1]) / len(kv[1]), len(kv[1]), kv[0]), default=None)
    plan = 0
    for rem in await session.scalars(select(Reminder).where(
            Reminder.user_id == user.id, Reminder.kind.in_(("bp", "glucose")), Reminder.one_off.is_(False))):
        plan += len(times_from_str(rem.times)) * len(weekdays_from_str(rem.weekdays))
    logs = dict((await session.execute(
        select(MedicationLog.status, func.count()).where(MedicationLog.patient_id == user.id,
                                                         MedicationLog.logged_at >= since)
        .group_by(MedicationLog.status))).all())
    taken = int(logs.get("taken", 0))
    return WeekFacts(
        count=len(readings), plan=plan,
        bp_avg=(sum(r.systolic or 0 for r in bp) / len(bp), sum(r.diastolic or 0 for r in bp) / len(bp)) if bp else None,
        glucose_avg=sum(r.mmol or 0.0 for r in glu) / len(glu) if glu else None,
        bp_target=(targets.bp_systolic, targets.bp_diastolic),
        best_day=best[0] if best and any(best[1]) else None,
        taken=taken, scheduled=taken + int(logs.get("missed", 0)),
        bp_points=[(r.measured_at, r.systolic or 0, r.diastolic or 0) for r in bp],
        glucose_points=[(r.measured_at, float(r.mmol or 0.0)) for r in glu],
    )


def tip_context(profile: PatientProfile | None, facts: WeekFacts | None, last_bp: tuple[int, int] | None,
                last_glucose: float | None, last_urgent: bool, month: int, age: int | None) -> TipContext:
    """A simple TipContext: conditions, age, the last readings (for exercise safety) and averages."""
    conditions = profile.condition_set if profile else frozenset()
    bp_above = bool(facts and facts.bp_avg and (facts.bp_avg[0] >= facts.bp_target[0]
                                                or facts.bp_avg[1] >= facts.bp_target[1]))
    return TipContext(conditions=conditions, age=age, bp_avg7_above_target=bp_above,
                      last_bp=last_bp, last_glucose_mmol=last_glucose, last_reading_urgent=last_urgent,
                      month=month)


async def last_readings(session: AsyncSession, patient_id: int) -> tuple[tuple[int, int] | None, float | None, bool]:
    """Last BP, last glucose and whether the very last reading was urgent (exercise safety)."""
    last_bp = await session.scalar(select(Reading).where(Reading.patient_id == patient_id, Reading.kind == "bp")
                                   .order_by(Reading.measured_at.desc(), Reading.id.desc()).limit(1))
    last_glu = await session.scalar(select(Reading).where(Reading.patient_id == patient_id,
                                                          Reading.kind == "glucose")
                                    .order_by(Reading.measured_at.desc(), Reading.id.desc()).limit(1))
    latest = max((r for r in (last_bp, last_glu) if r is not None), key=lambda r: r.measured_at, default=None)
    return ((last_bp.systolic or 0, last_bp.diastolic or 0) if last_bp else None,
            last_glu.mmol if last_glu else None, bool(latest and latest.urgent))


async def weekly_patient(session: AsyncSession, user: User, now: datetime,
                         seen_tips: list[str]) -> tuple[str, bytes | None, WeekFacts, str | None]:
    """(text, chart PNG or None, facts, tip id used) for the patient's Sunday summary."""
    t = translator(user.language)
    profile = await session.get(PatientProfile, user.id)
    facts = await week_facts(session, user, profile, now)
    tz = ZoneInfo(user.timezone) if user.timezone else zone("Asia/Shanghai")
    lines = ["📅 " + t("Your week with CareCircle")]
    if facts.plan:
        lines.append(t("Readings this week: {count} (plan: {plan})", count=facts.count, plan=facts.plan))
    else:
        lines.append(t("Readings this week: {count}", count=facts.count))
    if facts.bp_avg:
        lines.append(t("Blood pressure 7-day average: {avg} (target: below {target})",
                       avg=f"{facts.bp_avg[0]:.0f}/{facts.bp_avg[1]:.0f}",
                       target=f"{facts.bp_target[0]}/{facts.bp_target[1]}"))
    if facts.glucose_avg is not None:
        lines.append(t("Glucose 7-day average: {avg} mmol/L", avg=f"{facts.glucose_avg:.1f}"))
    if facts.best_day:
        lines.append(t("Best day: {day}", day=facts.best_day.strftime("%m-%d")))
    if facts.scheduled:
        lines.append(t("Medicines taken: {pct}%", pct=round(100 * facts.taken / facts.scheduled)))
    if facts.count == 0:
        lines.append(t("No readings this week. A reading or two next week helps you and your doctor."))
    last_bp, last_glu, urgent = await last_readings(session, user.id)
    ctx = tip_context(profile, facts, last_bp, last_glu, urgent, now.astimezone(tz).month, age_of(profile, now))
    focus = await plan_focus(session, user.id)  # issue 10: the care plan's goals not met come first
    ctx = replace(ctx, plan_topics=focus.topics, smoker=focus.smoker)
    tip = default_catalog().next_tip(ctx, seen_tips, user.language)
    if tip is not None:
        lines.append("")
        lines.append("💡 " + tip.text_for(user.language))
    png = None
    if facts.bp_points or facts.glucose_points:
        png = await render_history(facts.bp_points, facts.glucose_points, user.timezone)
    return "\n".join(lines), png, facts, tip.id if tip else None


def weekly_caregiver(caregiver: User, patient: User, facts: WeekFacts) -> str:
    """The short version for a family member who opted in (receive_summary)."""
    t = translator(caregiver.language)
    name = patient.display_name or patient.first_name
    parts = [t("{name}'s week: {count} readings.", name=name, count=facts.count)]
    if facts.bp_avg:
        parts.append(t("BP average {avg}.", avg=f"{facts.bp_avg[0]:.0f}/{facts.bp_avg[1]:.0f}"))
    if facts.glucose_avg is not None:
        parts.append(t("Glucose average {avg} mmol/L.", avg=f"{facts.glucose_avg:.1f}"))
    if facts.scheduled:
        parts.append(t("Medicines taken: {pct}%", pct=round(100 * facts.taken / facts.scheduled)))
    return "📅 " + " ".join(parts)


STATUS_WORDS = {
    "open_alert": "open alert",
    "overdue": "follow-up overdue",
    "uncontrolled": "not in target",
    "silent": "no recent readings",
    "ok": "fine",
}


def _(msgid: str) -> str:
    return msgid


DIGEST_LABELS = {key: _(value) for key, value in STATUS_WORDS.items()}


async def doctor_digest(panel: PanelService, doctor: User) -> str:
    """Counts by status and who needs a call (open alert, overdue follow-up, silent)."""
    t = translator(doctor.language)
    page = await panel.panel(doctor.id, per_page=10)
    counts = []
    for key, value in page.counts.items():
        label = DIGEST_LABELS[key]
        counts.append(f"{t(label)}: {value}")
    lines = ["📋 " + t("Your weekly panel digest: {n} patients.", n=page.total), ", ".join(counts)]
    call = [r for r in page.rows if r.status in ("open_alert", "overdue", "silent")][:5]
    if call:
        lines.append(t("Please call:"))
        for row in call:
            label = DIGEST_LABELS[row.status]
            lines.append(f"• #{row.patient_id} {row.name} — {t(label)}")
    lines.append(t("/patients opens the full list."))
    return "\n".join(lines)
