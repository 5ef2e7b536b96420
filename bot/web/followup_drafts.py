"""Confirming a chat follow-up draft from the dashboard (issue 10): the patient page lists the drafts
with the patient's answers and a form (way, signs, classification) posting to
/dashboard/followup/{fid}/confirm.

Why its own module: the dashboard's session, CSRF and audit wrappers (`page`, `render`, `not_found`)
are handed in by add_dashboard_routes, so this form gets the same protection as the others. The
confirmation is the chat's use case (ChatFollowUpService.draft / FollowUpService.set_way / add_signs /
ChatFollowUpService.confirm): the same team check, the same next due date, the same notice to the
patient.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.services.chat_followups import Draft, draft_text
from bot.services.followups import OUTCOMES, WAYS, Signs, signs_from_text

Handler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]
SIGN_FIELDS = ("systolic", "diastolic", "heart_rate", "fasting_mmol", "weight_kg")


@dataclass(frozen=True)
class DraftView:
    draft: Draft
    text: str  # the same words the doctor reads in the chat


def drafts_for_page(ctx: Any, drafts: list[Draft]) -> list[DraftView]:
    """What the patient page shows under "Follow-up answers waiting for confirmation" (the drafts come
    from ChatFollowUpService.drafts_of, read with the rest of the page)."""
    return [DraftView(d, draft_text(ctx.t, d, ctx.doctor.timezone)) for d in drafts]


def signs_from_form(form: Any) -> Signs | bool | None:
    """The signs typed in the form, checked by the reading parser's plausibility rules (BP-RANGE,
    GLU-RANGE) as in the chat. None: no sign given; False: a sign given but not plausible."""
    raw = {name: str(form.get(name, "") or "").strip() for name in SIGN_FIELDS}
    if not any(raw.values()):
        return None
    parts = []
    if raw["systolic"] or raw["diastolic"]:
        parts.append(f"{raw['systolic']}/{raw['diastolic']}" + (f" pulse {raw['heart_rate']}" if raw["heart_rate"]
                                                                 else ""))
    elif raw["heart_rate"]:
        return False  # the parser reads a heart rate with a blood pressure only
    if raw["fasting_mmol"]:
        parts.append(f"fasting glucose {raw['fasting_mmol']}")
    if raw["weight_kg"]:
        parts.append(f"weight {raw['weight_kg']} kg")
    signs = signs_from_text(" ; ".join(parts))
    if signs is None or any(raw[name] and getattr(signs, name) is None for name in SIGN_FIELDS):
        return False
    return signs


def add_followup_draft_routes(web_app: web.Application, page: Callable[..., Callable[[Handler], Any]],
                              render: Callable[..., web.Response], not_found: Callable[..., web.Response]) -> None:
    @page(post=True)
    async def confirm(request: web.Request, ctx: Any) -> web.StreamResponse:
        raw = request.match_info["fid"]
        if not raw.isdigit() or len(raw) > 18:
            return not_found(request, ctx)
        fid = int(raw)
        s = ctx.services
        draft = await s.chat_followups.draft(ctx.doctor.id, fid)  # another team's draft: 404 as a missing one
        if draft is None:
            return not_found(request, ctx)
        patient_id = draft.followup.patient_id
        back = f"/dashboard/patient/{patient_id}"
        if draft.followup.status != "draft":  # a colleague confirmed it a moment ago
            raise web.HTTPSeeOther(back + "?saved=1")
        form = await request.post()
        outcome, way = str(form.get("outcome", "")), str(form.get("way", ""))
        if outcome not in OUTCOMES or (way and way not in WAYS):
            return render(request, ctx, "message.html", status=400, message_key="bad_form")
        signs = signs_from_form(form)
        if signs is False:
            return render(request, ctx, "message.html", status=400, message_key="bad_signs")
        if way and way != draft.followup.way and not draft.away:  # away from home: always online
            await s.followups.set_way(ctx.doctor.id, fid, way)
        if isinstance(signs, Signs):
            await s.followups.add_signs(ctx.doctor.id, fid, signs)
        result = await s.chat_followups.confirm(ctx.doctor, fid, outcome)
        if result is not None:
            s.outbox.wake()
            await ctx.dash.audit(ctx.doctor.id, "followup", back, patient_id=patient_id,
                                 detail=f"confirm draft {fid} {outcome}")
        raise web.HTTPSeeOther(back + "?saved=1")

    web_app.router.add_post("/dashboard/followup/{fid}/confirm", confirm)
