"""Questions and hardship flags on the doctor dashboard over real HTTP: the team sees them (with the
question's age) and answers from the web; another team's doctor sees nothing and cannot answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.app import CareCircle, build
from bot.sandbox import FakeTelegram
from bot.services.clock import ManualClock
from tests.conftest import app_settings
from tests.e2e.helpers import doctor, linked_patient
from tests.web.test_dashboard_http import base, csrf_of, logged_in


@pytest.fixture
async def care(tg: FakeTelegram, sqlite_url: str) -> AsyncIterator[tuple[CareCircle, ManualClock]]:
    clock = ManualClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))
    app = build(app_settings(tg, sqlite_url), clock=clock)
    await app.start()
    yield app, clock
    await app.stop()


async def test_dashboard_shows_questions_and_flags_to_the_team_only(tg: FakeTelegram, care) -> None:  # type: ignore[no-untyped-def]
    app, clock = care
    doc = await doctor(tg, app)
    other = await doctor(tg, app, name="Dr Zhao", team="Hillside")
    u = await linked_patient(tg, doc)
    s = app.services
    patient_id = (await s.users.by_telegram(u.id)).id
    doc_id, other_id = (await s.users.by_telegram(doc.id)).id, (await s.users.by_telegram(other.id)).id
    asked = await s.questions.ask(patient_id, patient_id, "Can I drink green tea with my pills?")
    await s.questions.set_trouble(patient_id, "medicines", True, by=patient_id)
    clock.advance(hours=2)
    http = await logged_in(app, doc_id)
    try:
        page = await (await http.get(base(app) + "/dashboard/questions")).text()
        assert "green tea" in page and "2 hours" in page and f'data-question="{asked.question_id}"' in page
        panel = await (await http.get(base(app) + "/dashboard/")).text()
        assert "🆘 cannot afford or get medicines" in panel and "Unanswered questions: 1" in panel
        view = await (await http.get(base(app) + f"/dashboard/patient/{patient_id}")).text()
        assert 'id="troubles"' in view and "cannot afford or get medicines" in view and "green tea" in view
        token = await csrf_of(http, base(app) + "/dashboard/questions")
        answered = await http.post(base(app) + f"/dashboard/questions/{asked.question_id}",
                                   data={"csrf": token, "answer": "Yes, two hours apart."}, allow_redirects=False)
        assert answered.status == 303
        reply = await u.next_message(timeout=5)
        while "answered" not in (reply.text or ""):
            reply = await u.next_message(timeout=5)
        assert "Dr Li from your care team answered" in reply.text and "two hours apart" in reply.text
        assert "No unanswered questions." in await (await http.get(base(app) + "/dashboard/questions")).text()
    finally:
        await http.close()
    second = await s.questions.ask(patient_id, patient_id, "And coffee?")
    http = await logged_in(app, other_id)
    try:
        page = await (await http.get(base(app) + "/dashboard/questions")).text()
        assert "coffee" not in page and "No unanswered questions." in page
        assert "🆘" not in await (await http.get(base(app) + "/dashboard/")).text()
        token = await csrf_of(http, base(app) + "/dashboard/questions")
        forged = await http.post(base(app) + f"/dashboard/questions/{second.question_id}",
                                 data={"csrf": token, "answer": "No."}, allow_redirects=False)
        assert forged.status == 404
    finally:
        await http.close()
    assert [q.id for q in await s.questions.open_for(doc_id)] == [second.question_id]
