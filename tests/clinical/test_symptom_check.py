"""When the glucose symptom check is asked (GLU-HYPO / GLU-URGENT edges) and which answers are
danger signs (GLU-DANGER)."""

from __future__ import annotations

import pytest

from bot.clinical import danger as d
from bot.clinical.symptom_check import HYPER_CHOICES, HYPO_CHOICES, SWEATING, glucose_check, is_glucose_danger


@pytest.mark.parametrize(("mmol", "meter", "side"), [
    (2.5, None, "low"), (3.8, None, "low"), (3.9, None, "low"),  # <= 3.9: GLU-URGENT low edge
    (4.0, None, None), (7.0, None, None), (16.6, None, None),
    (16.7, None, "high"), (25.0, None, "high"),
    (33.3, "HI", "high"), (1.1, "LO", "low"), (None, None, None),
])
def test_glucose_check_edges(mmol: float | None, meter: str | None, side: str | None) -> None:
    check = glucose_check(mmol, meter)
    assert (check.side if check else None) == side
    if check is not None:
        assert check.choices == (HYPO_CHOICES if side == "low" else HYPER_CHOICES)


def test_danger_answers_follow_glu_danger() -> None:
    assert is_glucose_danger(d.CONFUSION) and is_glucose_danger(d.HEAVY_THIRST_URINATION)
    assert not is_glucose_danger(SWEATING) and not is_glucose_danger(d.PALPITATIONS)
    assert all(is_glucose_danger(code) for code in HYPER_CHOICES)  # every high-side choice is GLU-DANGER
