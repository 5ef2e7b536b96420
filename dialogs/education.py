"""Education prescriptions: the doctor's /prescribe and /prescriptions, and the patient's
"Read ✓" button under each lesson. ("Take the quiz" buttons carry "qz:start:<quiz_id>", which the
quizzes dialog handles.) Access is checked in EducationService: a foreign patient is "Not found."
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from dialogs.common import answer, inline, reply, who
from dialogs.doctor import _doctor


async def prescribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    t = w.t
    args = context.args or []
    if not args or not args[0].lstrip("#").isdigit():
        await reply(update, t("Usage: /prescribe <patient number> <lesson set>"))
        return
    patient_id = int(args[0].lstrip("#"))
    found = await w.services.panel.team_patient(w.user.id, patient_id)
    if found is None:
        await reply(update, t("Not found."))
        return
    if len(args) < 2:
        sets = w.services.education.sets()
        rows = [[(s.title_for(w.user.language), f"ed:rx:{patient_id}:{s.id}")] for s in sets]
        await reply(update, t("Which lessons for {name}?", name=found[0].display_name or found[0].first_name),
                    reply_markup=inline(rows))
        return
    await _prescribe(update, w, patient_id, args[1])


async def _prescribe(update: Update, w, patient_id: int, set_id: str) -> None:  # type: ignore[no-untyped-def]
    rx = await w.services.education.prescribe(w.user.id, patient_id, set_id)
    if rx is None:
        await reply(update, w.t("Not found."))
        return
    lesson_set = next(s for s in w.services.education.sets() if s.id == set_id)
    await reply(update, w.t("Prescribed \"{title}\": {n} lessons, one every {days} days at {time} the patient's "
                            "time. /prescriptions {id} shows what was read.",
                            title=lesson_set.title_for(w.user.language), n=len(lesson_set.lessons),
                            days=rx.every_days, time=rx.at_time, id=patient_id))


async def on_prescribe_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    if not w.user.has_role("doctor") or len(parts) != 4 or not parts[2].isdigit():
        await answer(update, w.t("This button has expired."))
        return
    await answer(update)
    await _prescribe(update, w, int(parts[2]), parts[3])


async def prescriptions(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await _doctor(update, context)
    if w is None:
        return
    t = w.t
    args = context.args or []
    if not args or not args[0].lstrip("#").isdigit():
        await reply(update, t("Usage: /prescriptions <patient number>"))
        return
    progress = await w.services.education.progress(w.user.id, int(args[0].lstrip("#")))
    if progress is None:
        await reply(update, t("Not found."))
        return
    if not progress:
        await reply(update, t("No lessons prescribed yet. /prescribe {id} shows the sets.", id=args[0]))
        return
    sets = {s.id: s for s in w.services.education.sets()}
    lines = []
    for rx, deliveries in progress:
        lesson_set = sets.get(rx.set_id)
        total = len(lesson_set.lessons) if lesson_set else 0
        title = lesson_set.title_for(w.user.language) if lesson_set else rx.set_id
        read = sum(1 for d in deliveries if d.read_at)
        lines.append(t("{title}: {sent} of {total} sent, {read} read", title=title, sent=len(deliveries),
                       total=total, read=read))
        for d in deliveries:
            mark = "✓" if d.read_at else "…"
            lesson = next((x for x in lesson_set.lessons if x.id == d.lesson_id), None) if lesson_set else None
            lines.append(f"  {mark} {lesson.title_for(w.user.language) if lesson else d.lesson_id}")
    await reply(update, "\n".join(lines))


async def on_read(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    w = await who(update, context)
    parts = (update.callback_query.data or "").split(":")  # type: ignore[union-attr]
    delivery = await w.services.education.mark_read(w.user.id, int(parts[2])) \
        if len(parts) == 3 and parts[2].isdigit() else None
    if delivery is None:
        await answer(update, w.t("This button has expired."))
        return
    await answer(update, w.t("Marked as read ✓"))
    message = update.callback_query.message  # type: ignore[union-attr]
    markup = getattr(message, "reply_markup", None)
    if markup is not None:
        keep = [row for row in markup.inline_keyboard if not any((b.callback_data or "").startswith("ed:read:")
                                                                 for b in row)]
        try:
            await message.edit_reply_markup(inline([[(b.text, b.callback_data or "") for b in row]  # type: ignore[union-attr]
                                                    for row in keep]) if keep else None)
        except Exception:
            pass  # an old message: the read is saved all the same


def handlers() -> list[object]:
    return [
        CommandHandler("prescribe", prescribe),
        CommandHandler("prescriptions", prescriptions),
        CallbackQueryHandler(on_prescribe_button, pattern=r"^ed:rx:"),
        CallbackQueryHandler(on_read, pattern=r"^ed:read:"),
    ]
