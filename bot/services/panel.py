"""The doctor's panel: their team's patients ranked by need, and one patient's summary.

Every lookup goes through `team_patient`, which answers None for a patient outside the
doctor's teams, so "not found" is the same answer for a missing and a foreign patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, false, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import raiseload

from bot.services.clock import Clock
from bot.services.db import read_session
from storage.models import Alert, PatientProfile, TeamMember, User
from storage.panel_models import PanelLatest
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

    async def teams_of(self, doctor_id: int) -> list[int]:
        async with self._sessions() as session:
            return list(await session.scalars(self._team_ids(doctor_id)))

    async def team_patient(self, doctor_id: int, patient_id: int, *, session: AsyncSession | None = None
                           ) -> tuple[User, PatientProfile] | None:
        async with read_session(self._sessions, session) as session:
            row = (await session.execute(
                select(User, PatientProfile).join(PatientProfile, PatientProfile.user_id == User.id).where(
                    User.id == patient_id,
                    or_(PatientProfile.team_id.in_(self._team_ids(doctor_id)), PatientProfile.doctor_id == doctor_id),
                ).options(raiseload(User.roles)))).first()  # a patient's roles: never needed, one query less
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

        Each patient's latest reading comes from their `panel_latest` row (kept by triggers, migration
        0007_panel_latest), read by primary key, instead of two backward seeks of the readings index;
        open alerts are an index-only count. The rank is a CASE and window sums give the totals, so
        only `per_page` rows ever reach Python."""
        now = self._clock.now()
        page = max(page, 0)
        async with self._sessions() as session:
            if session.bind.dialect.name == "postgresql":
                # The correlated seeks below are cheap (all in cache), but PostgreSQL's default costs
                # price each at a random page read, which pushed the plan over jit_above_cost: JIT
                # compiling then took 80-230 ms for a ~30 ms query.
                await session.execute(text("SET LOCAL jit = off"))
            teams = list(await session.scalars(self._team_ids(doctor_id)))
            query = self._ranked(session, doctor_id, teams, now, condition, risk, search)
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

    def _ranked(self, session: AsyncSession, doctor_id: int, teams: list[int], now: datetime, condition: str | None,
                risk: str | None, search: str | None) -> Select[Any]:
        """The doctor's patients with rank and sort keys, ordered (urgent first), with window totals."""
        # Everything but the profile comes by one index seek per patient and value (correlated scalar
        # subqueries). Written as joins, PostgreSQL (default costs) hashed the 2 000 patients and
        # scanned all 100 000 users / panel_latest rows instead: 23 of the query's 34 ms at full size.
        mine = PatientProfile.user_id

        def one(column: Any, key: Any) -> Any:
            return select(column).where(key == mine).correlate(PatientProfile).scalar_subquery()

        base = (
            select(mine.label("id"),
                   one(case((User.display_name != "", User.display_name), else_=User.first_name), User.id)
                   .label("name"),
                   PatientProfile.conditions.label("conditions"),
                   PatientProfile.risk.label("risk"), PatientProfile.next_followup_due.label("due"),
                   one(PanelLatest.measured_at, PanelLatest.patient_id).label("at"),
                   one(PanelLatest.in_target, PanelLatest.patient_id).label("in_target"),
                   select(func.count()).where(Alert.patient_id == mine, Alert.status == "open")
                   .correlate(PatientProfile).scalar_subquery().label("alerts"),
                   one(ReminderPrefs.silent_since, ReminderPrefs.user_id).label("silent_since"),
                   PatientProfile.away_since.label("away_since"), PatientProfile.last_contact_at.label("last_contact"))
            # the doctor's teams as literal ids: two index scans OR-ed (a bitmap OR on PostgreSQL, a
            # multi-index OR on SQLite); with the team subquery inside, an OR scanned every profile
            .where(or_(PatientProfile.team_id.in_(teams), PatientProfile.doctor_id == doctor_id) if teams
                   else PatientProfile.doctor_id == doctor_id)
        )
        if condition:
            base = base.where(PatientProfile.conditions.contains(condition))
        if risk:
            base = base.where(PatientProfile.risk == risk)
        if search:
            base = base.where(select(User.id).where(User.id == mine, User.display_name.ilike(f"%{search}%"))
                              .correlate(PatientProfile).exists())
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
