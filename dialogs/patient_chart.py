"""The patient's 30-day chart for the doctor's /patient view (issue 5: "summary, trends, chart"),
rendered by bot.services.charts off the event loop and sent beside the text summary."""

from __future__ import annotations

from datetime import timedelta

from telegram import InputFile, Update

from bot.services.charts import render_history
from dialogs.common import Who

DAYS = 30


async def send_patient_chart(update: Update, w: Who, patient_id: int, name: str, timezone: str) -> bool:
    """Send the chart as a photo; False (nothing sent) when there are no BP or glucose readings."""
    rows = await w.services.readings.since(patient_id, w.services.clock.now() - timedelta(days=DAYS))
    bp = [(r.measured_at, r.systolic or 0, r.diastolic or 0) for r in rows if r.kind == "bp"]
    glucose = [(r.measured_at, r.mmol or 0.0) for r in rows if r.kind == "glucose" and r.mmol is not None]
    if not bp and not glucose:
        return False
    png = await render_history(bp, glucose, timezone)
    await update.effective_chat.send_photo(  # type: ignore[union-attr]
        InputFile(png, filename=f"patient-{patient_id}.png"),
        caption=w.t("#{id} {name}: readings, last {days} days. Shaded: red = needs attention, green = target range.",
                    id=patient_id, name=name, days=DAYS))
    return True
