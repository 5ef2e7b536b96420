"""The doctor's panel: their team's patients ranked by need, and one patient's summary.

Every lookup goes through `team_patient`, which answers None for a patient outside the
doctor's teams, so "not found" is the same answer for a missing and a foreign patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, false, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

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
    away_since: datetime | None = None  # lives away from home: follow-ups in the chat (issue 10)
    last_contact_at: datetime | None = None  # when the team last reached them (follow-up, call, chat answers)

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

    def _patient_ids(self, doctor_id: int) -> Any:
        """Ids of the patients in the doctor's teams or with them as their own doctor.

        A UNION of two index lookups (team_id, doctor_id): written as one OR, SQLite scanned every
        profile of the database (100 000 in the benchmark) for each panel page."""
        pp = aliased(PatientProfile)
        return union(select(pp.user_id).where(pp.team_id.in_(self._team_ids(doctor_id))),
                     select(pp.user_id).where(pp.doctor_id == doctor_id))

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
        """One page of the panel, ranked and paged by the database (issue 8).

        Each patient's latest reading and open-alert count are correlated subqueries that seek the
        (patient_id, measured_at) / (patient_id, rule, status) indexes once per patient, the rank is a
        CASE, and window sums give the totals, so only `per_page` rows ever reach Python."""
        now = self._clock.now()
        page = max(page, 0)
        async with self._sessions() as session:
            query = self._ranked(session, doctor_id, now, condition, risk, search)
            rows = (await session.execute(query.limit(per_page).offset(page * per_page))).all()
            if not rows and page > 0:  # past the end: show the last page
                total = (await session.execute(query.limit(1))).first()
                last = max(0, -(-int(total.total) // per_page) - 1) if total else 0
                rows = (await session.execute(query.limit(per_page).offset(last * per_page))).all()
        total = int(rows[0].total) if rows else 0
        counts = {label: int(getattr(rows[0], f"n_{label}")) if rows else 0 for label in RANK_LABELS}
        pages = max(1, -(-total // per_page))
        page = min(page, pages - 1)
        return PanelPage([PanelRow(r.id, r.name, frozenset(c for c in r.conditions.split(",") if c), r.risk,
                                   int(r.alerts), r.due, r.at, r.in_target, int(r.rank), r.away_since,
                                   r.last_contact) for r in rows],
                         total, counts, page, pages)

    def _ranked(self, session: AsyncSession, doctor_id: int, now: datetime, condition: str | None,
                risk: str | None, search: str | None) -> Select[Any]:
        """The doctor's patients with rank and sort keys, ordered (urgent first), with window totals."""
        mine = PatientProfile.user_id
        latest = (select(Reading.measured_at, Reading.in_target)
                  .where(Reading.patient_id == mine, Reading.kind.in_(("bp", "glucose")))
                  .order_by(Reading.measured_at.desc()).limit(1).correlate(PatientProfile))
        name = case((User.display_name != "", User.display_name), else_=User.first_name)
        base = (
            select(User.id.label("id"), name.label("name"), PatientProfile.conditions.label("conditions"),
                   PatientProfile.risk.label("risk"), PatientProfile.next_followup_due.label("due"),
                   latest.with_only_columns(Reading.measured_at).scalar_subquery().label("at"),
                   latest.with_only_columns(Reading.in_target).scalar_subquery().label("in_target"),
                   select(func.count()).where(Alert.patient_id == mine, Alert.status == "open")
                   .scalar_subquery().label("alerts"),
                   ReminderPrefs.silent_since.label("silent_since"),
                   PatientProfile.away_since.label("away_since"), PatientProfile.last_contact_at.label("last_contact"))
            .join(PatientProfile, PatientProfile.user_id == User.id)
            .outerjoin(ReminderPrefs, ReminderPrefs.user_id == User.id)
            .where(PatientProfile.user_id.in_(self._patient_ids(doctor_id)))
        )
        if condition:
            base = base.where(PatientProfile.conditions.contains(condition))
        if risk:
            base = base.where(PatientProfile.risk == risk)
        if search:
            base = base.where(User.display_name.ilike(f"%{search}%"))
        # Materialized, so each correlated subquery runs once per patient, not once per reference.
        p = base.cte("panel_facts").prefix_with("MATERIALIZED")
        rank = case(
            (p.c.alerts > 0, 0),
            (and_(p.c.due.is_not(None), p.c.due < now.date()), 1),
            (p.c.in_target == false(), 2),
            (or_(p.c.at.is_(None), p.c.at < now - SILENT_AFTER,
                 and_(p.c.silent_since.is_not(None), p.c.at < p.c.silent_since)), 3),
            else_=4,
        )
        r = select(p, rank.label("rank")).subquery("ranked")
        # Python's order (code points), whatever the database's default collation is.
        sort_name = r.c.name.collate("C") if session.bind.dialect.name == "postgresql" else r.c.name
        return (select(r, func.count().over().label("total"),
                       *(func.sum(case((r.c.rank == i, 1), else_=0)).over().label(f"n_{label}")
                         for i, label in enumerate(RANK_LABELS)))
                .order_by(r.c.rank, r.c.alerts.desc(), r.c.due.is_(None), r.c.due, sort_name, r.c.id))
