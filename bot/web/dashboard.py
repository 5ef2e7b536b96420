"""The doctor web dashboard: server-rendered pages (Jinja2 through aiohttp-jinja2), no JS framework.

Every handler goes through `_page`, which checks the signed session cookie; every patient lookup goes
through PanelService.team_patient (another team's patient is a 404, the same as a missing one); every
POST carries the session's CSRF token (403 without); every view, action and export writes an audit row.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clinical import indicators as ind
from bot.services.alerts import ACTION_LABELS
from bot.services.charts import render_history
from bot.services.dashboard import DashboardService
from bot.services.exports import WHAT
from bot.services.followups import OUTCOMES, WAYS, form_from_fields
from bot.services.indicators import Scope, day_start
from bot.services.questions import TROUBLE_TEAM_LABELS
from bot.services.readings import age_of, targets_for
from bot.web.auth import COOKIE_NAME, SESSION_VALID, DashboardSession
from bot.web.followup_drafts import add_followup_draft_routes, drafts_for_page
from bot.web.plans import add_plan_routes
from bot.web.questions import add_question_routes
from content.i18n import Translator, translator
from content.render import category_text
from storage.models import User

HERE = Path(__file__).parent
JINJA: web.AppKey[jinja2.Environment] = web.AppKey("carecircle_dashboard_jinja", jinja2.Environment)
PER_PAGE = 50


def _(msgid: str) -> str:
    return msgid


INDICATOR_LABELS = {
    "managed": _("Patients managed"),
    "standardized": _("Standardized management rate"),
    "bp_control": _("BP control rate"),
    "glucose_control": _("Glucose control rate"),
    "adherence": _("Medication adherence"),
    "knowledge": _("Knowledge rate"),
    "overdue": _("Follow-up overdue"),
    "lost": _("Lost to follow-up"),
}
INDICATOR_DEFINITIONS = {
    "managed": _("Patients on the panel registered on or before the last day of the period."),
    "standardized": _("Managed patients with the required number of confirmed follow-ups: one per 90 days "
                      "(standard risk) or one per 30 days (high risk), counted over the period or, when the "
                      "period is shorter, over the last 90 / 30 days."),
    "bp_control": _("Hypertension patients registered more than 3 months before the period end whose last blood "
                    "pressure in the last 3 months of the period is below their target (default < 140/90, "
                    "age 65+ < 150/90). No reading counts as not controlled."),
    "glucose_control": _("Diabetes patients registered more than 3 months before the period end whose last fasting "
                         "glucose in the last 3 months of the period is within their target (default 4.4-7.0 "
                         "mmol/L). No reading counts as not controlled."),
    "adherence": _("Medicine doses logged as taken divided by doses taken plus missed in the period."),
    "knowledge": _("Patients whose latest quiz knowledge score is at least 80 %, among patients with a score."),
    "overdue": _("Patients whose next follow-up date is before today."),
    "lost": _("Patients with no contact and no reading for 12 months."),
}
STATUS_LABELS = {"open_alert": _("open alert"), "overdue": _("follow-up overdue"), "uncontrolled": _("not in target"),
                 "silent": _("no recent readings"), "ok": _("fine")}
WAY_LABELS = {"clinic": _("Clinic"), "home": _("Home visit"), "phone": _("Phone"), "online": _("Online chat")}
OUTCOME_LABELS = {"controlled": _("Controlled"), "unsatisfactory": _("Unsatisfactory"),
                  "adverse_reaction": _("Adverse reaction"), "complication": _("Complication")}


@dataclass
class Ctx:
    """The logged-in doctor behind one request."""

    care: Any  # bot.app.CareCircle
    doctor: User
    session: DashboardSession
    t: Translator
    csrf: str
    dash: DashboardService

    @property
    def services(self) -> Any:
        return self.care.services

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.doctor.timezone)

    def local(self, value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return value.astimezone(self.tz).strftime(fmt) if value else "—"

    def today(self) -> date:
        return self.services.clock.now().astimezone(self.tz).date()

    async def scope(self, only_doctor: int | None = None) -> Scope:
        return await self.services.indicators.scope_for(self.doctor.id, only_doctor)


def _label(t: Translator, table: dict[str, str], key: str) -> str:
    msgid = table.get(key, key)
    return t(msgid)


def add_dashboard_routes(web_app: web.Application, app_ref: dict[str, Any]) -> None:
    """Mount the dashboard under /dashboard on the bot's aiohttp app (the one call in build_web_app)."""
    env = aiohttp_jinja2.setup(web_app, app_key=JINJA, loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                               autoescape=jinja2.select_autoescape(default=True), default_helpers=False)
    env.globals["label"] = _label
    dashes: dict[int, DashboardService] = {}

    def dash_for(care: Any) -> DashboardService:
        key = id(care.services)
        if key not in dashes:
            dashes[key] = DashboardService(care.services.sessions, care.services.clock)
        return dashes[key]

    async def context_of(request: web.Request) -> Ctx | None:
        care = app_ref["app"]
        found = await care.services.dashboard.session_doctor(request.cookies.get(COOKIE_NAME))
        if found is None:  # no cookie, a bad or expired one, logged out, or no longer a doctor
            return None
        session, doctor = found
        t = translator(doctor.language)
        return Ctx(care, doctor, session, t, await care.services.dashboard.csrf_token(session), dash_for(care))

    def render(request: web.Request, ctx: Ctx | None, template: str, status: int = 200, **values: Any) -> web.Response:
        t = ctx.t if ctx else translator(app_ref["app"].settings.default_language)
        response = aiohttp_jinja2.render_template(
            template, request, {"t": t, "ctx": ctx, "csrf": ctx.csrf if ctx else "", **values},
            app_key=JINJA, status=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def page(post: bool = False) -> Callable[[Callable[[web.Request, Ctx], Awaitable[web.StreamResponse]]],
                                            Callable[[web.Request], Awaitable[web.StreamResponse]]]:
        """Require a valid session (and for POST a valid CSRF token) before the handler runs."""
        def wrap(handler: Callable[[web.Request, Ctx], Awaitable[web.StreamResponse]]
                 ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
            async def run(request: web.Request) -> web.StreamResponse:
                ctx = await context_of(request)
                if ctx is None:
                    return render(request, None, "message.html", status=401,
                                  message_key="login_needed")
                if post:
                    form = await request.post()
                    token = form.get("csrf")
                    if not await ctx.services.dashboard.check_csrf(ctx.session, token if isinstance(token, str)
                                                                    else None):
                        return render(request, ctx, "message.html", status=403, message_key="csrf")
                return await handler(request, ctx)
            return run
        return wrap

    def not_found(request: web.Request, ctx: Ctx) -> web.Response:
        return render(request, ctx, "message.html", status=404, message_key="not_found")

    async def team_patient(ctx: Ctx, raw: str, session: AsyncSession | None = None) -> Any:
        if not raw.isdigit() or len(raw) > 18:
            return None
        return await ctx.services.panel.team_patient(ctx.doctor.id, int(raw), session=session)

    # ---- login / logout -------------------------------------------------------------------------
    async def login_form(request: web.Request) -> web.Response:
        # A GET never spends the token: link previews and scanners fetch URLs, people press buttons.
        return render(request, None, "login.html", token=request.query.get("token", ""))

    async def login(request: web.Request) -> web.StreamResponse:
        care = app_ref["app"]
        form = await request.post()
        token = form.get("token")
        doctor_id = await care.services.dashboard.consume_login(token if isinstance(token, str) else "")
        if doctor_id is None:
            return render(request, None, "message.html", status=403, message_key="link_invalid")
        cookie = await care.services.dashboard.session_cookie(doctor_id)
        await dash_for(care).audit(doctor_id, "login", "/dashboard/login")
        response = web.HTTPSeeOther("/dashboard/")
        response.set_cookie(COOKIE_NAME, cookie, max_age=int(SESSION_VALID.total_seconds()), httponly=True,
                            samesite="Lax", path="/dashboard", secure=request.secure)
        raise response

    @page(post=True)
    async def logout(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        await ctx.services.dashboard.revoke(ctx.session)  # the cookie is useless from now on, even if copied
        await ctx.dash.audit(ctx.doctor.id, "logout", "/dashboard/logout")
        response = render(request, None, "message.html", message_key="logged_out")
        response.del_cookie(COOKIE_NAME, path="/dashboard")
        return response

    # ---- panel ----------------------------------------------------------------------------------
    @page()
    async def panel(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        q = request.query
        condition = q.get("condition", "") if q.get("condition") in ("hypertension", "diabetes") else ""
        risk = q.get("risk", "") if q.get("risk") in ("standard", "high") else ""
        search = q.get("q", "").strip()[:64]
        number = int(q["page"]) if q.get("page", "").isdigit() else 1
        if search.isdigit():  # a patient number: open it when it is ours
            found = await ctx.services.panel.team_patient(ctx.doctor.id, int(search))
            if found is not None:
                raise web.HTTPSeeOther(f"/dashboard/patient/{found[0].id}")
        result = await ctx.services.panel.panel(ctx.doctor.id, page=number - 1, per_page=PER_PAGE,
                                                condition=condition or None, risk=risk or None,
                                                search=search or None)
        await ctx.dash.audit(ctx.doctor.id, "page", "/dashboard/", detail=f"page {result.page + 1}")
        return render(request, ctx, "panel.html", result=result, condition=condition, risk=risk, search=search,
                      status_labels=STATUS_LABELS, active="panel",
                      to_call=await ctx.services.chat_followups.to_call(ctx.doctor.id),  # issue 10
                      troubles=await ctx.services.questions.troubles_for(r.patient_id for r in result.rows),
                      trouble_labels=TROUBLE_TEAM_LABELS,
                      waiting=await ctx.services.questions.open_count(ctx.doctor.id))

    # ---- patient --------------------------------------------------------------------------------
    @page()
    async def patient(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        s = ctx.services
        # Every read of the page in one session: one connection checkout and one transaction instead
        # of eleven (each was a checkout, on PostgreSQL a BEGIN, the query, a ROLLBACK, and then a pre-ping).
        async with s.sessions() as db:
            found = await team_patient(ctx, request.match_info["pid"], db)
            if found is None:  # another team's patient: the same 404 as a missing one, and no audit row
                return not_found(request, ctx)
            user, profile = found
            alerts = await ctx.dash.patient_alerts(user.id, session=db)
            page = dict(
                patient=user, profile=profile, readings=await s.readings.recent(user.id, limit=60, session=db),
                alerts=alerts, timelines=await s.alerts.timelines([a.id for a in alerts[:10]], session=db),
                adherence=await s.medicines.adherence(user.id, days=30, session=db),
                followups=await s.followups.history(user.id, limit=20, session=db),
                medicines=await s.medicines.list(user.id, session=db),
                quiz=await ctx.dash.quiz_results(user.id, session=db),
                questions=await s.questions.of_patient(user.id, session=db),
                troubles=await s.questions.troubles(user.id, session=db),
                # chat follow-ups to confirm (bot/web/followup_drafts.py)
                drafts=drafts_for_page(ctx, await s.chat_followups.drafts_of(user, profile, session=db)))
        await ctx.dash.audit(ctx.doctor.id, "patient", f"/dashboard/patient/{user.id}", patient_id=user.id)
        now = s.clock.now()
        return render(
            request, ctx, "patient.html", category=lambda c: category_text(c, ctx.t) if c else "",
            targets=targets_for(profile, age_of(profile, now)), age=age_of(profile, now), ways=WAYS,
            outcomes=OUTCOMES, way_labels=WAY_LABELS, outcome_labels=OUTCOME_LABELS, action_labels=ACTION_LABELS,
            today=ctx.today().isoformat(), saved=request.query.get("saved"), active="panel",
            trouble_labels=TROUBLE_TEAM_LABELS, **page)

    @page()
    async def patient_chart(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        found = await team_patient(ctx, request.match_info["pid"])
        if found is None:
            return not_found(request, ctx)
        since = ctx.services.clock.now() - timedelta(days=90)
        rows = await ctx.services.readings.since(found[0].id, since)
        bp = [(r.measured_at, r.systolic, r.diastolic) for r in rows if r.kind == "bp" and r.systolic]
        glu = [(r.measured_at, r.mmol) for r in rows if r.kind == "glucose" and r.mmol is not None]
        png = await render_history(bp, glu, ctx.doctor.timezone)
        return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})

    @page(post=True)
    async def add_followup(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        found = await team_patient(ctx, request.match_info["pid"])
        if found is None:
            return not_found(request, ctx)
        form = await request.post()

        def number(name: str, kind: type = int) -> Any:
            raw = str(form.get(name, "")).strip()
            try:
                return kind(raw) if raw else None
            except ValueError:
                return None

        way, outcome = str(form.get("way", "")), str(form.get("outcome", ""))
        if way not in WAYS or outcome not in OUTCOMES:
            return render(request, ctx, "message.html", status=400, message_key="bad_form")
        try:
            visit = date.fromisoformat(str(form.get("visit_date", ""))) if form.get("visit_date") else None
        except ValueError:
            visit = None
        result = await ctx.services.followups.record(
            ctx.doctor.id, found[0].id, way=way, outcome=outcome, visit_date=visit,
            systolic=number("systolic"), diastolic=number("diastolic"), fasting_mmol=number("fasting_mmol", float),
            weight_kg=number("weight_kg", float), medication_change=str(form.get("medication_change", ""))[:512],
            details={"note": str(form.get("note", ""))[:1000], "source": "dashboard"},
            form=form_from_fields(form), source="dashboard")  # every field of the NBPHS-3 form (issue 10)
        if result is None:
            return not_found(request, ctx)
        await ctx.dash.audit(ctx.doctor.id, "followup", f"/dashboard/patient/{found[0].id}",
                             patient_id=found[0].id, detail=f"followup {result.followup_id}")
        raise web.HTTPSeeOther(f"/dashboard/patient/{found[0].id}?saved=1")

    # ---- alerts ---------------------------------------------------------------------------------
    @page()
    async def alerts(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        rows = await ctx.dash.open_alerts(await ctx.scope())
        await ctx.dash.audit(ctx.doctor.id, "page", "/dashboard/alerts")
        return render(request, ctx, "alerts.html", rows=rows, action_labels=ACTION_LABELS,
                      done=request.query.get("done"), active="alerts")

    @page(post=True)
    async def act_alert(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        raw = request.match_info["aid"]
        form = await request.post()
        action = str(form.get("action", ""))
        if not raw.isdigit() or action not in ACTION_LABELS:
            return not_found(request, ctx)
        # The same use case as the chat buttons: same permission check, same state, same notices.
        result = await ctx.services.alerts.act(int(raw), ctx.doctor.id, action)
        if not result.ok and result.reason == "not_found":
            return not_found(request, ctx)
        ctx.services.outbox.wake()
        await ctx.dash.audit(ctx.doctor.id, "alert", "/dashboard/alerts", detail=f"alert {raw} {action}")
        raise web.HTTPSeeOther(f"/dashboard/alerts?done={raw}")

    # ---- indicators -----------------------------------------------------------------------------
    def period(ctx: Ctx, q: Any) -> tuple[date, date]:
        today = ctx.today()
        try:
            end = date.fromisoformat(q["end"]) if q.get("end") else today
            start = date.fromisoformat(q["start"]) if q.get("start") else end - timedelta(days=89)
        except ValueError:
            end, start = today, today - timedelta(days=89)
        if start > end:
            start, end = end, start
        return max(start, end - timedelta(days=3660)), end

    async def chosen_doctor(ctx: Ctx, q: Any) -> tuple[int | None, list[User]]:
        doctors = await ctx.services.indicators.team_doctors(ctx.doctor.id)
        raw = q.get("doctor", "")
        chosen = int(raw) if raw.isdigit() and any(d.id == int(raw) for d in doctors) else None
        return chosen, doctors

    @page()
    async def indicators(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        start, end = period(ctx, request.query)
        chosen, doctors = await chosen_doctor(ctx, request.query)
        team, by_doctor = await ctx.services.indicators.per_doctor(await ctx.scope(chosen), start, end,
                                                                   ctx.doctor.timezone)
        await ctx.dash.audit(ctx.doctor.id, "page", "/dashboard/indicators", detail=f"{start}..{end}")
        names = {d.id: d.display_name or d.first_name for d in doctors}
        return render(request, ctx, "indicators.html", values=team, by_doctor=by_doctor, names=names,
                      doctors=doctors, chosen=chosen, start=start.isoformat(), end=end.isoformat(),
                      labels=INDICATOR_LABELS, definitions=INDICATOR_DEFINITIONS, keys=ind.INDICATOR_KEYS,
                      active="indicators")

    @page()
    async def indicator_chart(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        _start, end = period(ctx, request.query)
        chosen, _doctors = await chosen_doctor(ctx, request.query)
        months = await ctx.services.indicators.monthly(await ctx.scope(chosen), end, 6, ctx.doctor.timezone)
        return web.Response(text=monthly_svg(months), content_type="image/svg+xml",
                            headers={"Cache-Control": "no-store"})

    @page()
    async def indicator_patients(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        key = request.query.get("key", "")
        if key not in ind.INDICATOR_KEYS:
            return not_found(request, ctx)
        start, end = period(ctx, request.query)
        chosen, _doctors = await chosen_doctor(ctx, request.query)
        values = await ctx.services.indicators.compute(await ctx.scope(chosen), start, end, ctx.doctor.timezone)
        figure = values[key]
        which = "met" if request.query.get("which") == "met" else "all"
        ids = figure.numerator_ids if which == "met" else figure.denominator_ids
        met = set(figure.numerator_ids)
        people = await ctx.services.indicators.names(ids[:1000])
        await ctx.dash.audit(ctx.doctor.id, "page", "/dashboard/indicators/patients", detail=f"{key} {which}")
        return render(request, ctx, "indicator_patients.html", key=key, figure=figure, which=which, met=met,
                      people=people, total=len(ids), labels=INDICATOR_LABELS, definitions=INDICATOR_DEFINITIONS,
                      start=start.isoformat(), end=end.isoformat(), chosen=chosen, active="indicators")

    # ---- audit ----------------------------------------------------------------------------------
    @page()
    async def audit(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        if not await ctx.dash.is_lead(ctx.doctor.id):
            return render(request, ctx, "message.html", status=403, message_key="lead_only")
        rows = await ctx.dash.audit_rows(ctx.doctor.id)
        await ctx.dash.audit(ctx.doctor.id, "page", "/dashboard/audit")
        return render(request, ctx, "audit.html", rows=rows, active="audit")

    # ---- exports --------------------------------------------------------------------------------
    def export_period(ctx: Ctx, q: Any) -> tuple[datetime | None, datetime | None]:
        try:
            since = day_start(date.fromisoformat(q["since"]), ctx.doctor.timezone) if q.get("since") else None
            until = (day_start(date.fromisoformat(q["until"]) + timedelta(days=1), ctx.doctor.timezone)
                     if q.get("until") else None)
        except ValueError as exc:
            raise web.HTTPBadRequest(text="dates must be YYYY-MM-DD") from exc
        return since, until

    @page()
    async def export_csv(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        what = request.match_info["what"]
        if what not in WHAT:
            return not_found(request, ctx)
        since, until = export_period(ctx, request.query)
        await ctx.dash.audit(ctx.doctor.id, "export", f"/dashboard/export/{what}.csv",
                             detail=f"csv {what} {request.query_string}"[:256])
        response = web.StreamResponse(headers={
            "Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="carecircle-{what}.csv"'})
        await response.prepare(request)
        async for chunk in ctx.services.exports.csv_rows(what, await ctx.scope(), since, until):
            await response.write(chunk)
        await response.write_eof()
        return response

    @page()
    async def export_fhir(request: web.Request, ctx: Ctx) -> web.StreamResponse:
        since, until = export_period(ctx, request.query)
        raw = request.query.get("patient", "")
        patient_id = None
        if raw:
            found = await team_patient(ctx, raw)
            if found is None:
                return not_found(request, ctx)
            patient_id = found[0].id
        bundle = await ctx.services.exports.fhir_bundle(await ctx.scope(), patient_id, since, until)
        await ctx.dash.audit(ctx.doctor.id, "export", "/dashboard/export/fhir.json", patient_id=patient_id,
                             detail=f"fhir {request.query_string}"[:256])
        body = await asyncio.to_thread(json.dumps, bundle, ensure_ascii=False)
        return web.Response(text=body, content_type="application/fhir+json", headers={
            "Cache-Control": "no-store", "Content-Disposition": 'attachment; filename="carecircle-fhir.json"'})

    r = web_app.router
    r.add_get("/dashboard/login", login_form)
    r.add_post("/dashboard/login", login)
    r.add_post("/dashboard/logout", logout)
    r.add_get("/dashboard/", panel)
    r.add_get("/dashboard", to_panel)
    r.add_get("/dashboard/patient/{pid}", patient)
    r.add_get("/dashboard/patient/{pid}/chart.png", patient_chart)
    r.add_post("/dashboard/patient/{pid}/followup", add_followup)
    r.add_get("/dashboard/alerts", alerts)
    r.add_post("/dashboard/alerts/{aid}", act_alert)
    r.add_get("/dashboard/indicators", indicators)
    r.add_get("/dashboard/indicators/chart.svg", indicator_chart)
    r.add_get("/dashboard/indicators/patients", indicator_patients)
    r.add_get("/dashboard/audit", audit)
    r.add_get("/dashboard/export/fhir.json", export_fhir)
    r.add_get("/dashboard/export/{what}.csv", export_csv)
    add_plan_routes(web_app, page, render, team_patient, not_found)  # the care plan form (bot/web/plans.py)
    add_question_routes(web_app, page, render, not_found)  # questions to the team (bot/web/questions.py)
    add_followup_draft_routes(web_app, page, render, not_found)  # confirm chat follow-ups (followup_drafts.py)
    r.add_static("/dashboard/static/", HERE / "static")


async def to_panel(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/dashboard/")


SERIES = (("standardized", "#2471a3"), ("bp_control", "#c0392b"), ("glucose_control", "#8e44ad"),
          ("adherence", "#27ae60"))


def monthly_svg(months: list[ind.IndicatorSet]) -> str:
    """Month-by-month rates as an inline-able SVG line chart (0-100 %), target lines dashed.

    Only numbers and month labels are drawn, so no font or translation is needed; the legend with
    the translated names is HTML next to the image."""
    width, height, left, top, bottom = 640, 260, 40, 10, 30
    plot_w, plot_h = width - left - 10, height - top - bottom
    n = max(1, len(months) - 1)

    def x(i: int) -> float:
        return left + plot_w * i / n

    def y(rate: float) -> float:
        return top + plot_h * (1 - rate)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'font-family="sans-serif" font-size="11">', f'<rect width="{width}" height="{height}" fill="#fff"/>']
    for pct in (0, 25, 50, 75, 100):
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(pct / 100):.1f}" y2="{y(pct / 100):.1f}" '
                     f'stroke="#ddd"/><text x="4" y="{y(pct / 100) + 4:.1f}">{pct}%</text>')
    for i, m in enumerate(months):
        parts.append(f'<text x="{x(i) - 12:.1f}" y="{height - 10}">{m.start.strftime("%Y-%m")}</text>')
    for key, colour in SERIES:
        target = months[0][key].target if months else None
        if target is not None:
            parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
                         f'stroke="{colour}" stroke-dasharray="4 3" stroke-width="0.8"/>')
        points = [(x(i), y(m[key].rate)) for i, m in enumerate(months) if m[key].rate is not None]  # type: ignore[arg-type]
        if points:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" '
                         f'data-key="{key}"/>')
            parts.extend(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in points)
    parts.append("</svg>")
    return "".join(parts)
