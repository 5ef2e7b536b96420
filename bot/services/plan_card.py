"""The care plan as a large-type PNG card, to print or keep on the phone (elderly patients keep
such cards on the fridge).

Why matplotlib: it is already a dependency (charts) and draws text without a browser. Chinese text
needs a CJK font; when the machine has none installed, the card is drawn with English labels (the
translated plan always goes in the message text), so a card is never a row of empty boxes for words
we wrote. Medicine names are drawn as typed. Rendering runs in a worker thread (Agg backend).
"""

from __future__ import annotations

import asyncio
import io
from functools import lru_cache

import matplotlib

matplotlib.use("Agg")
from matplotlib import font_manager
from matplotlib.figure import Figure

from bot.clinical.plan import CarePlan
from content.i18n import Translator, translator

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "SimHei", "Microsoft YaHei", "PingFang SC", "Droid Sans Fallback")


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The first installed font that can draw Chinese, or None."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def _latin(text: str) -> bool:
    return all(ord(ch) < 0x2E80 for ch in text)


def card_lines(plan: CarePlan, t: Translator, name: str) -> list[tuple[str, float, str]]:
    """(text, size in points, colour) from top to bottom."""
    tg = plan.targets
    lines: list[tuple[str, float, str]] = [(t("Care plan of {name}", name=name), 30, "#1a5276")]
    if plan.medicines:
        lines.append((t("Medicines"), 24, "#7b241c"))
        doses = sorted((at, med) for med in plan.medicines for at in med.times)
        for at, med in doses:
            food = {"with": t("with food"), "without": t("before food")}.get(med.food, "")
            lines.append((f"{at}  {med.label}", 28, "#000000"))
            if food:
                lines.append((f"        {food}", 20, "#444444"))
    lines.append((t("Targets"), 24, "#7b241c"))
    lines.append((t("Blood pressure below {bp}", bp=f"{tg.bp_systolic}/{tg.bp_diastolic}"), 24, "#000000"))
    if tg.fasting_high is not None:
        lines.append((t("Fasting glucose {low} to {high} mmol/L", low=tg.fasting_low or "", high=tg.fasting_high),
                      24, "#000000"))
    ls = plan.lifestyle
    if ls.salt_g_per_day is not None:
        lines.append((t("salt under {g} g a day", g=f"{ls.salt_g_per_day:g}"), 22, "#145a32"))
    if ls.exercise_min_per_week is not None:
        lines.append((t("exercise {n} minutes a week", n=ls.exercise_min_per_week), 22, "#145a32"))
    return lines


def _render(plan: CarePlan, language: str, name: str) -> bytes:
    font = cjk_font()
    t = translator(language)
    lines = card_lines(plan, t, name)
    if font is None and not all(_latin(text) for text, _s, _c in lines):
        lines = card_lines(plan, translator("en"), name)  # no CJK font here: English labels, never boxes
    height = sum(size for _t, size, _c in lines) * 1.7 / 72 + 1.0
    fig = Figure(figsize=(8.27, max(5.0, height)), dpi=100)
    fig.patch.set_facecolor("#fffdf5")
    y = 1.0 - 0.5 / fig.get_figheight()
    for text, size, colour in lines:
        y -= size * 1.7 / 72 / fig.get_figheight()
        kwargs = {"fontfamily": [font, "DejaVu Sans"]} if font else {}
        # CJK fonts usually ship one weight; asking for bold only makes matplotlib log a warning per line
        bold = size >= 24 and font is None
        fig.text(0.05, y, text, fontsize=size, color=colour, weight="bold" if bold else "normal", **kwargs)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor=fig.get_facecolor())
    return buf.getvalue()


async def render_card(plan: CarePlan, language: str, name: str) -> bytes:
    return await asyncio.to_thread(_render, plan, language, name)
