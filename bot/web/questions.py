"""Questions on the doctor dashboard: /dashboard/questions lists the team's unanswered questions
with their age, and answers them (POST /dashboard/questions/{qid}).

Why its own module: the dashboard's session, CSRF and audit wrappers (`page`, `render`,
`not_found`) are handed in by add_dashboard_routes, so these pages get the same protection.
Answering is QuestionService.answer, the same use case (and the same team check) as the chat.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.services.questions import waited

Handler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


def add_question_routes(web_app: web.Application, page: Callable[..., Callable[[Handler], Any]],
                        render: Callable[..., web.Response], not_found: Callable[..., web.Response]) -> None:
    @page()
    async def questions(request: web.Request, ctx: Any) -> web.StreamResponse:
        items = await ctx.services.questions.open_for(ctx.doctor.id, limit=500)
        now = ctx.services.clock.now()
        await ctx.dash.audit(ctx.doctor.id, "page", "/dashboard/questions")
        return render(request, ctx, "questions.html", items=items, age=lambda since: waited(ctx.t, since, now),
                      done=request.query.get("done"), active="questions")

    @page(post=True)
    async def answer(request: web.Request, ctx: Any) -> web.StreamResponse:
        raw = request.match_info["qid"]
        if not raw.isdigit() or len(raw) > 18:
            return not_found(request, ctx)
        form = await request.post()
        result = await ctx.services.questions.answer(int(raw), ctx.doctor.id, str(form.get("answer", "")))
        if result.reason == "not_found":
            return not_found(request, ctx)
        ctx.services.outbox.wake()
        await ctx.dash.audit(ctx.doctor.id, "question", "/dashboard/questions",
                             detail=f"answer {raw} {result.reason or 'sent'}")
        raise web.HTTPSeeOther(f"/dashboard/questions?done={raw}")

    web_app.router.add_get("/dashboard/questions", questions)
    web_app.router.add_post("/dashboard/questions/{qid}", answer)
