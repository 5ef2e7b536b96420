"""Quiz results and the health-knowledge score the dashboard shows.

Why "latest attempt per quiz": a patient who retakes a quiz after a lesson should be judged on
what they know now, and one topic taken five times must not outweigh the others. The score is the
share of correct answers over those latest attempts (programme target: >= 80 %).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.clock import Clock
from content.catalog import QuizResult
from storage.tips_models import QuizAttempt

KNOWLEDGE_TARGET = 0.8  # programme target for health-knowledge awareness


class QuizService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock):
        self._sessions = sessions
        self._clock = clock

    async def record(self, user_id: int, quiz_id: str, correct: int, total: int) -> int:
        """Store one finished attempt; returns its id."""
        if total < 1 or not 0 <= correct <= total:
            raise ValueError(f"bad score {correct}/{total}")
        passed = QuizResult(correct, total, round(100.0 * correct / total, 1)).meets_target
        async with self._sessions.begin() as session:
            row = QuizAttempt(user_id=user_id, quiz_id=quiz_id, correct=correct, total=total, passed=passed,
                              taken_at=self._clock.now())
            session.add(row)
            await session.flush()
            return row.id

    async def latest_by_quiz(self, user_id: int) -> dict[str, QuizAttempt]:
        async with self._sessions() as session:
            rows = await session.scalars(select(QuizAttempt).where(QuizAttempt.id.in_(_latest_ids([user_id]))))
            return {row.quiz_id: row for row in rows}

    async def knowledge_score(self, user_id: int) -> float | None:
        """Share (0..1) of correct answers over the latest attempt of each quiz; None before any quiz."""
        return (await self.knowledge_scores([user_id])).get(user_id)

    async def knowledge_scores(self, user_ids: Iterable[int]) -> dict[int, float]:
        """The same for many patients in one query (a dashboard panel); patients without quizzes are absent."""
        ids = list(user_ids)
        if not ids:
            return {}
        async with self._sessions() as session:
            rows = await session.execute(
                select(QuizAttempt.user_id, func.sum(QuizAttempt.correct), func.sum(QuizAttempt.total))
                .where(QuizAttempt.id.in_(_latest_ids(ids)))
                .group_by(QuizAttempt.user_id)
            )
            return {int(uid): int(correct) / int(total) for uid, correct, total in rows if total}


def _latest_ids(user_ids: list[int]):  # type: ignore[no-untyped-def]
    """Ids are increasing, so the newest attempt per (user, quiz) is the largest id: no tie on equal times."""
    return (select(func.max(QuizAttempt.id)).where(QuizAttempt.user_id.in_(user_ids))
            .group_by(QuizAttempt.user_id, QuizAttempt.quiz_id))
