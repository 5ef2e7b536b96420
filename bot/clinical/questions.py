"""Does a question to the care team sound urgent? Pure: no I/O.

Why not just `detect_danger_signs`: a question is not a reading. Two signs only count next to a
reading (clinical-reference BP-DANGER: pregnancy "with raised BP"; BP-LOW: plain dizziness with a
low reading), so "I am pregnant, can I take this pill?" or "a little dizzy after the new pill" is a
question for working hours, while "chest pain since this morning" gets the safety answer at once.
A reading in the question is assessed with the signs next to it, exactly as if it had been logged.
Bias as in `danger`: a missed emergency is worse than a needless safety answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.clinical.assessment import assess
from bot.clinical.danger import (
    BP_DANGER_SIGNS,
    DIZZINESS,
    FAINTING,
    GLU_DANGER_SIGNS,
    PREGNANCY,
    detect_danger_signs,
)
from bot.clinical.parsing import ParsedReading, parse_readings

# clinical-reference: BP-DANGER, GLU-DANGER (fainting from BP-LOW: losing consciousness is never routine)
URGENT_ALONE: frozenset[str] = (BP_DANGER_SIGNS | GLU_DANGER_SIGNS | {FAINTING}) - {PREGNANCY, DIZZINESS}


@dataclass(frozen=True)
class QuestionSafety:
    """Danger signs that are urgent on their own, and readings in the text that are urgent."""

    signs: frozenset[str] = field(default_factory=frozenset)
    urgent_readings: tuple[ParsedReading, ...] = ()

    @property
    def urgent(self) -> bool:
        return bool(self.signs or self.urgent_readings)


def question_safety(text: str) -> QuestionSafety:
    """What in a patient's question needs the safety answer now rather than a doctor's reply later.

    >>> question_safety("chest pain since this morning, what should I do?").urgent
    True
    >>> question_safety("I am pregnant, can I keep taking my pills?").urgent
    False
    >>> question_safety("can I eat rice?").urgent
    False
    """
    mentioned = detect_danger_signs(text)
    readings = tuple(p for p in parse_readings(text)
                     if p.problem is None and p.kind in ("bp", "glucose") and assess(p, symptoms=mentioned).urgent)
    return QuestionSafety(mentioned & URGENT_ALONE, readings)
