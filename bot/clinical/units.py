"""Glucose and weight unit conversions.

Why a module of its own: glucose is stored in mmol/L only (see DESIGN.md), while some patients and
meters think in mg/dL.  Converting in one place with one factor keeps the stored value and every
display consistent.  The factor is the reference's 18.0 (Nightscout's; Tidepool uses 18.0156, the
difference is below display precision).
"""

from __future__ import annotations

import math
from typing import Literal

from bot.clinical.thresholds import JIN_KG, LB_KG, MGDL_PER_MMOL

GlucoseUnit = Literal["mmol", "mgdl"]


def mgdl_to_mmol(mgdl: float) -> float:
    """mg/dL -> mmol/L, unrounded (round only for display, so round trips stay exact)."""
    return mgdl / MGDL_PER_MMOL  # clinical-reference: GLU (mg/dL = mmol/L x 18.0)


def mmol_to_mgdl(mmol: float) -> float:
    """mmol/L -> mg/dL, unrounded."""
    return mmol * MGDL_PER_MMOL  # clinical-reference: GLU (mg/dL = mmol/L x 18.0)


def _round_half_up(value: float, ndigits: int) -> float:
    # Python's round() rounds half to even; people expect 6.85 -> 6.9 on a meter-like display.
    # The small epsilon absorbs binary representation error (6.85 is stored as 6.8499999...).
    factor = 10.0**ndigits
    return math.floor(value * factor + 0.5 + 1e-9) / factor


def round_mmol(mmol: float) -> float:
    """Round to the 1 decimal the reference prescribes for mmol/L display and storage."""
    return _round_half_up(mmol, 1)


def format_glucose(mmol: float, unit: GlucoseUnit = "mmol", *, with_unit: bool = False) -> str:
    """Text for a glucose value: 1 decimal in mmol/L, a whole number in mg/dL (reference GLU header).

    >>> format_glucose(7.0, "mgdl")
    '126'
    >>> format_glucose(6.84, "mmol", with_unit=True)
    '6.8 mmol/L'
    """
    if unit == "mgdl":
        text = str(int(_round_half_up(mmol_to_mgdl(mmol), 0)))
        return f"{text} mg/dL" if with_unit else text
    if unit != "mmol":
        raise ValueError(f"unknown glucose unit {unit!r}")
    text = f"{round_mmol(mmol):.1f}"
    return f"{text} mmol/L" if with_unit else text


def jin_to_kg(jin: float) -> float:
    """市斤 -> kg (1 jin = 0.5 kg); many older Chinese patients weigh themselves in jin."""
    return jin * JIN_KG


def lb_to_kg(lb: float) -> float:
    """Pounds -> kg."""
    return lb * LB_KG
