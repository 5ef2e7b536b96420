"""The doctor's panel: their team's patients ranked by need, and one patient's summary.

Every lookup goes through `team_patient`, which answers None for a patient outside the
doctor's teams, so "not found" is the same answer for a missing and a foreign patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.clock import Clock
from storage.models import Alert, PatientProfile, Reading, TeamMember, User
from storage.reminder_models import ReminderPrefs

SILENT_AFTER = timedelta(days=7)
RANK_LABELS = ("open_alert", "overdue", "uncontrolled", "silent", "ok")


@dataclass(frozen=True)
class PanelRow:
    patient_id: int
    name: str
    conditions: frozenset[str]
    risk: str
    open_alerts: int
    next_followup_due: date | None
    last_reading_at: datetime | None
    last_in_target: bool | None
    rank: int

    @property
    def status(self) -> str:
        return RANK_LABELS[self.rank]


@dataclass(frozen=True)
class PanelPage:
    rows: list[PanelRow]
    total: int
    counts: dict[str, int]
    page: int
    pages: int


class PanelService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock):
        self._sessions = sessions
        self._clock = clock

    def _team_ids(self, doctor_id: int) -> Select[tuple[int]]:
        return select(TeamMember.team_id).where(TeamMember.user_id == doctor_id)

    async def teams_of(self, doctor_id: int) -> list[int]:
        async with self._sessions() as session:
            return list(await session.scalars(self._team_ids(doctor_id)))

    async def team_patient(self, doctor_id: int, patient_id: int) -> tuple[User, PatientProfile] | None:
        async with self._sessions() as session:
            row = (await session.execute(
                select(User, PatientProfile).join(PatientProfile, PatientProfile.user_id == User.id).where(
                    User.id == patient_id,
                    or_(PatientProfile.team_id.in_(self._team_ids(doctor_id)), PatientProfile.doctor_id == doctor_id),
                ))).first()
            return (row[0], row[1]) if row else None

    async def find(self, doctor_id: int, query: str) -> list[tuple[User, PatientProfile]]:
        """By number (the id shown in /patients) or by part of the name, within the doctor's teams."""
        async with self._sessions() as session:
            condition = User.id == int(query) if query.isdigit() else User.display_name.ilike(f"%{query}%")
            rows = await session.execute(
                select(User, PatientProfile).join(PatientProfile, PatientProfile.user_id == User.id).where(
                    condition,
                    or_(PatientProfile.team_id.in_(self._team_ids(doctor_id)), PatientProfile.doctor_id == doctor_id),
                ).limit(10))
            return [(u, p) for u, p in rows.all()]

    async def panel(self, doctor_id: int, *, page: int = 0, per_page: int = 10, condition: str | None = None,
                    risk: str | None = None, search: str | None = None) -> PanelPage:
        now = self._clock.now()
        today = now.date()
        async with self._sessions() as session:
            base = (
                select(User.id, User.display_name, User.first_name, PatientProfile.conditions, PatientProfile.risk,
                       PatientProfile.next_followup_due)
                .join(PatientProfile, PatientProfile.user_id == User.id)
                .where(or_(PatientProfile.team_id.in_(self._team_ids(doctor_id)),
                           PatientProfile.doctor_id == doctor_id))
            )
            if condition:
                base = base.where(PatientProfile.conditions.contains(condition))
            if risk:
                base = base.where(PatientProfile.risk == risk)
            if search:
                base = base.where(User.display_name.ilike(f"%{search}%"))
            patients = (await session.execute(base)).all()
            ids = [p.id for p in patients]
            alerts: dict[int, int] = {}
            last: dict[int, tuple[datetime, bool | None]] = {}
            silent: dict[int, datetime] = {}
            for chunk in (ids[i:i + 1000] for i in range(0, len(ids), 1000)):
                alerts.update(dict((await session.execute(
                    select(Alert.patient_id, func.count(Alert.id))
                    .where(Alert.patient_id.in_(chunk), Alert.status == "open").group_by(Alert.patient_id))).all()))
                latest = (
                    select(Reading.patient_id, func.max(Reading.measured_at).label("at"))
                    .where(Reading.patient_id.in_(chunk), Reading.kind.in_(("bp", "glucose")))
                    .group_by(Reading.patient_id).subquery()
                )
                for pid, at, in_target in (await session.execute(
                    select(Reading.patient_id, Reading.measured_at, Reading.in_target).join(
                        latest, and_(Reading.patient_id == latest.c.patient_id, Reading.measured_at == latest.c.at)))
                ).all():
                    last[pid] = (at, in_target)
                # Reminders mark a patient silent after a second missed reading rhythm (issue 6).
                silent.update(dict((await session.execute(select(ReminderPrefs.user_id, ReminderPrefs.silent_since)
                                    .where(ReminderPrefs.user_id.in_(chunk),
                                           ReminderPrefs.silent_since.is_not(None)))).all()))
        rows = []
        for p in patients:
            at, in_target = last.get(p.id, (None, None))
            n_alerts = alerts.get(p.id, 0)
            if n_alerts:
                rank = 0
            elif p.next_followup_due is not None and p.next_followup_due < today:
                rank = 1
            elif in_target is False:
                rank = 2
            elif at is None or now - at > SILENT_AFTER or (p.id in silent and at < silent[p.id]):
                rank = 3
            else:
                rank = 4
            rows.append(PanelRow(p.id, p.display_name or p.first_name,
                                 frozenset(c for c in p.conditions.split(",") if c), p.risk, n_alerts,
                                 p.next_followup_due, at, in_target, rank))
        rows.sort(key=lambda r: (r.rank, -r.open_alerts, r.next_followup_due or date.max, r.name, r.patient_id))
        counts = {label: sum(1 for r in rows if r.rank == i) for i, label in enumerate(RANK_LABELS)}
        pages = max(1, -(-len(rows) // per_page))
        page = min(max(page, 0), pages - 1)
        return PanelPage(rows[page * per_page:(page + 1) * per_page], len(rows), counts, page, pages)
