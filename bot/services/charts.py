"""Reading charts as PNG. Labels are numbers and units only, so no CJK font is needed; the
localized words go in the photo caption. Rendering runs in a worker thread (Agg backend)
so the event loop keeps serving other chats."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
from matplotlib.figure import Figure

from bot.clinical import thresholds as th


def _render(points_bp: Sequence[tuple[datetime, int, int]], points_glu: Sequence[tuple[datetime, float]],
            tz: str) -> bytes:
    zone = ZoneInfo(tz)
    panels = [p for p in (points_bp, points_glu) if p]
    fig = Figure(figsize=(8, 3.2 * max(1, len(panels))), dpi=100)
    axes = fig.subplots(max(1, len(panels)), 1, squeeze=False)[:, 0]
    i = 0
    if points_bp:
        ax = axes[i]
        i += 1
        xs = [p[0].astimezone(zone) for p in points_bp]
        ax.axhspan(th.BP_URGENT_SBP, 260, color="#f8d0d0")  # clinical-reference: BP-URGENT
        ax.axhspan(th.BP_TARGET_SBP, th.BP_URGENT_SBP, color="#fdf0d5")  # clinical-reference: BP-TARGET
        ax.plot(xs, [p[1] for p in points_bp], "o-", color="#c0392b", label="SYS")
        ax.plot(xs, [p[2] for p in points_bp], "o-", color="#2980b9", label="DIA")
        ax.axhline(th.BP_TARGET_SBP, color="#c0392b", lw=0.8, ls="--")
        ax.axhline(th.BP_TARGET_DBP, color="#2980b9", lw=0.8, ls="--")
        ax.set_ylabel("mmHg")
        ax.legend(loc="upper left")
    if points_glu:
        ax = axes[i]
        xs = [p[0].astimezone(zone) for p in points_glu]
        ax.axhspan(0, th.GLU_URGENT_LOW, color="#f8d0d0")  # clinical-reference: GLU-HYPO
        ax.axhspan(th.GLU_FASTING_LOW, th.GLU_FASTING_HIGH, color="#d5f5e3")  # clinical-reference: GLU-TARGET
        ax.axhspan(th.GLU_URGENT_HIGH, 30, color="#f8d0d0")  # clinical-reference: GLU-URGENT
        ax.plot(xs, [p[1] for p in points_glu], "o-", color="#8e44ad", label="mmol/L")
        ax.set_ylabel("mmol/L")
        ax.set_ylim(0, max(20.0, max(p[1] for p in points_glu) + 2))
        ax.legend(loc="upper left")
    for ax in axes:
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d", tz=zone))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


async def render_history(points_bp: Sequence[tuple[datetime, int, int]], points_glu: Sequence[tuple[datetime, float]],
                         tz: str) -> bytes:
    return await asyncio.to_thread(_render, points_bp, points_glu, tz)
