"""All services, built once at start-up and shared by handlers, workers and the web app."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.services.alerts import AlertService
from bot.services.chat_followups import ChatFollowUpService
from bot.services.circles import CircleService
from bot.services.clock import Clock
from bot.services.education import EducationService
from bot.services.exports import ExportService
from bot.services.followups import FollowUpService
from bot.services.group_commit import GroupCommit
from bot.services.indicators import IndicatorService
from bot.services.invites import InviteService
from bot.services.medicines import MedicineService
from bot.services.outbox import OutboxWorker
from bot.services.panel import PanelService
from bot.services.plans import PlanService
from bot.services.questions import QuestionService
from bot.services.quiz import QuizService
from bot.services.readings import ReadingService
from bot.services.reminders import ReminderService
from bot.services.tips import TipService
from bot.services.updates import UpdateLedgerService
from bot.services.users import UserService
from bot.web.auth import DashboardAuth
from storage.db import create_engine, is_sqlite, session_factory


@dataclass
class Services:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    users: UserService
    readings: ReadingService
    alerts: AlertService
    outbox: OutboxWorker
    ledger: UpdateLedgerService
    invites: InviteService
    medicines: MedicineService
    panel: PanelService
    followups: FollowUpService
    chat_followups: ChatFollowUpService
    education: EducationService
    reminders: ReminderService
    indicators: IndicatorService
    exports: ExportService
    dashboard: DashboardAuth
    tips: TipService
    quizzes: QuizService
    circles: CircleService
    plans: PlanService
    questions: QuestionService

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Services:
        clock = clock or Clock()
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        alerts = AlertService(sessions, clock, settings.alert_escalation_minutes)
        panel = PanelService(sessions, clock)
        education = EducationService(sessions, clock, panel)
        followups = FollowUpService(sessions, clock, panel)
        return cls(
            settings=settings,
            clock=clock,
            engine=engine,
            sessions=sessions,
            users=UserService(sessions, clock, settings.default_timezone, settings.default_language),
            readings=ReadingService(sessions, clock, alerts,
                                    GroupCommit(sessions, lanes=1 if is_sqlite(settings.database_url) else 2)),
            alerts=alerts,
            outbox=OutboxWorker(sessions, clock, postgres=not is_sqlite(settings.database_url)),
            ledger=UpdateLedgerService(sessions, clock),
            invites=InviteService(sessions, clock),
            medicines=MedicineService(sessions, clock),
            panel=panel,
            followups=followups,
            chat_followups=ChatFollowUpService(sessions, clock, panel, followups,
                                               postgres=not is_sqlite(settings.database_url)),
            education=education,
            reminders=ReminderService(sessions, clock, panel, education,
                                      postgres=not is_sqlite(settings.database_url)),
            indicators=IndicatorService(sessions, clock),
            exports=ExportService(sessions, clock),
            dashboard=DashboardAuth(sessions, clock, settings.dashboard_secret),
            tips=TipService(sessions, clock),
            quizzes=QuizService(sessions, clock),
            circles=CircleService(sessions, clock),
            plans=PlanService(sessions, clock),
            questions=QuestionService(sessions, clock, alerts, settings.default_timezone),
        )
