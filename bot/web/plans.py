"""The care plan form on the doctor dashboard: /dashboard/patient/{pid}/plan.

Why its own module: the dashboard's session, CSRF and team checks (`page`, `team_patient`) are
handed in by add_dashboard_routes, so this page gets exactly the same protection while the plan
code stays in one place. Saving goes through PlanService.save, the same use case as the chat.
Medicines use the chat's one-line syntax (one per line), so a doctor learns one format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from bot.clinical.plan import CarePlan, Lifestyle, PlanTargets, Rhythm, parse_medicine_line
from bot.clinical.schedule import format_times, parse_times
from bot.services.plans import WEEKDAY_LABELS, describe
from content.catalog import default_catalog

Handler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


def _number(form: Any, name: str, kind: type = float) -> Any:
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        value = kind(float(raw))
    except ValueError:
        return None
    return value if value >= 0 else None


def _medicine_text(plan: CarePlan) -> str:
    food = {"with": " after food", "without": " before food", "": ""}
    return "\n".join(f"{m.name} {m.dose} {','.join(m.times)}{food[m.food]}".replace("  ", " ")
                     for m in plan.medicines)


def plan_from_form(form: Any, base: CarePlan) -> tuple[CarePlan | None, list[str]]:
    """The submitted plan, or None and the lines/fields that could not be read."""
    errors: list[str] = []
    sys_, dia = _number(form, "bp_systolic", int), _number(form, "bp_diastolic", int)
    if not sys_ or not dia or not 90 <= sys_ <= 200 or not 50 <= dia <= 130 or dia >= sys_:
        errors.append("bp")
    medicines = []
    for line in str(form.get("medicines", "")).splitlines():
        if line.strip():
            med = parse_medicine_line(line)
            if med is None:
                errors.append(line.strip()[:80])
            else:
                medicines.append(med)
    rhythm = []
    for r in base.rhythm:
        times = parse_times(str(form.get(f"{r.kind}_times", "")))
        intensive = parse_times(str(form.get(f"{r.kind}_intensive_times", ""))) if form.get(
            f"{r.kind}_intensive_times") else ()
        if times is None or intensive is None:
            errors.append(r.kind)
            continue
        days = tuple(sorted(int(d) for d in form.getall(f"{r.kind}_weekdays", []) if str(d).isdigit()
                            and 0 <= int(d) <= 6))
        rhythm.append(Rhythm(r.kind, tuple(format_times(times).split(",")), days,
                             tuple(format_times(intensive).split(",")) if intensive else (),
                             _number(form, f"{r.kind}_intensive_days", int) or 0))
    followup = _number(form, "followup_days", int)
    if not followup or not 7 <= followup <= 365:
        errors.append("followup_days")
    if errors:
        return None, errors
    known = default_catalog().lesson_sets
    plan = replace(
        base,
        targets=PlanTargets(sys_, dia, _number(form, "fasting_low"), _number(form, "fasting_high"),
                            _number(form, "postmeal_high"), _number(form, "weight_kg"), _number(form, "bmi")),
        medicines=tuple({m.name.lower(): m for m in medicines}.values()),
        rhythm=tuple(rhythm),
        lifestyle=Lifestyle(_number(form, "salt_g_per_day"), _number(form, "cigarettes_per_day", int),
                            _number(form, "alcohol_liang_per_day"), _number(form, "exercise_min_per_week", int),
                            _number(form, "staple_g_per_day", int)),
        followup_days=followup,
        lessons=tuple(s for s in form.getall("lessons", []) if s in known),
    )
    return plan, []


def add_plan_routes(web_app: web.Application, page: Callable[..., Callable[[Handler], Any]],
                    render: Callable[..., web.Response], team_patient: Callable[[Any, str], Awaitable[Any]],
                    not_found: Callable[[web.Request, Any], web.Response]) -> None:
    """Mounted by add_dashboard_routes with its own session/CSRF wrapper and renderer."""

    async def show(request: web.Request, ctx: Any, patient_id: int, plan: CarePlan, is_new: bool,
                   errors: list[str] | None = None, medicines_text: str | None = None) -> web.Response:
        history = await ctx.services.plans.history(patient_id)
        return render(request, ctx, "plan.html", status=400 if errors else 200, patient_id=patient_id, plan=plan,
                      is_new=is_new, errors=errors or [], history=history, summary=describe(plan, ctx.t),
                      medicines_text=_medicine_text(plan) if medicines_text is None else medicines_text,
                      lesson_sets=list(default_catalog().lesson_sets.values()), weekday_labels=WEEKDAY_LABELS,
                      saved=request.query.get("saved"), active="panel")

    @page()
    async def plan_form(request: web.Request, ctx: Any) -> web.StreamResponse:
        found = await team_patient(ctx, request.match_info["pid"])
        if found is None:
            return not_found(request, ctx)
        draft = await ctx.services.plans.draft(ctx.doctor.id, found[0].id)
        if draft is None:
            return not_found(request, ctx)
        await ctx.dash.audit(ctx.doctor.id, "page", f"/dashboard/patient/{found[0].id}/plan", patient_id=found[0].id)
        return await show(request, ctx, found[0].id, draft[1], draft[2])

    @page(post=True)
    async def plan_save(request: web.Request, ctx: Any) -> web.StreamResponse:
        found = await team_patient(ctx, request.match_info["pid"])
        if found is None:
            return not_found(request, ctx)
        draft = await ctx.services.plans.draft(ctx.doctor.id, found[0].id)
        if draft is None:
            return not_found(request, ctx)
        form = await request.post()
        plan, errors = plan_from_form(form, draft[1])
        if plan is None:
            return await show(request, ctx, found[0].id, draft[1], draft[2], errors, str(form.get("medicines", "")))
        saved = await ctx.services.plans.save(ctx.doctor.id, found[0].id, plan, source="dashboard")
        if saved is None:
            return not_found(request, ctx)
        ctx.services.outbox.wake()
        await ctx.dash.audit(ctx.doctor.id, "plan", f"/dashboard/patient/{found[0].id}/plan", patient_id=found[0].id,
                             detail=f"plan version {saved.version}")
        raise web.HTTPSeeOther(f"/dashboard/patient/{found[0].id}/plan?saved={saved.version}")

    web_app.router.add_get("/dashboard/patient/{pid}/plan", plan_form)
    web_app.router.add_post("/dashboard/patient/{pid}/plan", plan_save)
