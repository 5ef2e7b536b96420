"""Panel indicators (管理指标) the family-doctor team is measured by — pure formulas.

Why pure: the same numbers appear on the dashboard, in the per-doctor table and in the month-by-month
chart; computing them from plain per-patient facts (gathered once by the service) keeps every figure
consistent, cheap to re-aggregate for any subset of patients, and testable by hand.

Definitions (each written on the dashboard page too):

- managed: patients on the panel registered on or before the end of the period.
- standardized management rate (规范化管理率): managed patients who had the required number of confirmed
  follow-ups. Interval: quarterly (90 days) for standard risk, monthly (30 days) for high risk
  ("Follow-up rules"). Counted over a window of max(period, interval) days ending at the period end;
  required = window // interval (a 1-year period needs 4 for standard risk, 12 for high risk).
- BP control rate (血压控制率): hypertension patients registered more than 90 days before the period end
  whose LAST BP in the 90 days before the period end is below their own target (BP-TARGET, per-patient
  target when the doctor set one). No BP in that window counts as not controlled.
- glucose control rate (血糖控制率): the same for diabetes patients and their last FASTING glucose within
  their fasting target range (GLU-TARGET, inclusive).
- medication adherence (服药率): doses taken / (taken + missed) logged in the period (all patients pooled).
- knowledge rate: patients with a quiz knowledge score >= 80 % / patients with a score.
- overdue: next follow-up due before today. lost to follow-up: no contact or reading for 12 months
  (bot.clinical.is_lost_to_followup).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.clinical import thresholds as th
from bot.clinical.followup import is_lost_to_followup, is_overdue

INDICATOR_KEYS = ("managed", "standardized", "bp_control", "glucose_control", "adherence", "knowledge",
                  "overdue", "lost")


@dataclass(frozen=True)
class PatientFacts:
    """What the indicators need to know about one patient, gathered by the service."""

    patient_id: int
    doctor_id: int | None
    conditions: frozenset[str]
    risk: str
    registered_on: date
    followup_dates: tuple[date, ...] = ()
    last_bp: tuple[int, int] | None = None  # last BP in the control window
    bp_target: tuple[int, int] = (th.BP_TARGET_SBP, th.BP_TARGET_DBP)
    last_fasting: float | None = None  # last fasting glucose in the control window
    fasting_range: tuple[float, float] = (th.GLU_FASTING_LOW, th.GLU_FASTING_HIGH)
    doses_taken: int = 0
    doses_missed: int = 0
    knowledge_score: float | None = None  # 0..1, latest quiz result
    next_followup_due: date | None = None
    last_contact: date | None = None  # latest of last contact and last reading


@dataclass(frozen=True)
class Indicator:
    """One figure: numerator / denominator, with the patient ids behind both (for the drill-down)."""

    key: str
    numerator: int
    denominator: int
    target: float | None = None  # a share (0..1); None for plain counts
    numerator_ids: tuple[int, ...] = ()
    denominator_ids: tuple[int, ...] = ()

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    @property
    def meets_target(self) -> bool | None:
        if self.target is None or self.rate is None:
            return None
        return self.rate >= self.target


@dataclass(frozen=True)
class IndicatorSet:
    start: date
    end: date
    values: dict[str, Indicator] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Indicator:
        return self.values[key]


def followup_interval_days(risk: str) -> int:
    """Quarterly for standard risk, monthly for high risk (clinical-reference: Follow-up rules)."""
    return th.FOLLOWUP_HIGH_RISK_DAYS if risk == "high" else th.FOLLOWUP_STANDARD_DAYS


def followup_window(risk: str, start: date, end: date) -> tuple[date, int]:
    """(first day of the counting window, follow-ups required in it) for a period start..end inclusive."""
    interval = followup_interval_days(risk)
    days = max((end - start).days + 1, interval)
    return end - timedelta(days=days - 1), days // interval


def is_standardized(f: PatientFacts, start: date, end: date) -> bool:
    first, required = followup_window(f.risk, start, end)
    return sum(1 for d in f.followup_dates if first <= d <= end) >= required


def control_window_start(end: date) -> date:
    """Readings from this day to the period end count for the control rates (last 3 months)."""
    return end - timedelta(days=th.INDICATOR_CONTROL_WINDOW_DAYS)


def bp_controlled(f: PatientFacts) -> bool:
    """Last BP below the patient's target on both numbers (BP-TARGET "< 140/90")."""
    # clinical-reference: BP-TARGET
    return f.last_bp is not None and f.last_bp[0] < f.bp_target[0] and f.last_bp[1] < f.bp_target[1]


def glucose_controlled(f: PatientFacts) -> bool:
    """Last fasting glucose within the fasting target, inclusive (GLU-TARGET 4.4-7.0)."""
    # clinical-reference: GLU-TARGET
    return f.last_fasting is not None and f.fasting_range[0] <= f.last_fasting <= f.fasting_range[1]


def _share(key: str, target: float | None, population: list[PatientFacts], ok: Iterable[bool]) -> Indicator:
    flags = list(ok)
    hits = tuple(p.patient_id for p, hit in zip(population, flags, strict=True) if hit)
    return Indicator(key, len(hits), len(population), target, hits, tuple(p.patient_id for p in population))


def compute(facts: Iterable[PatientFacts], start: date, end: date, today: date) -> IndicatorSet:
    """All indicators for one period (start..end inclusive) over the given patients."""
    managed = [f for f in facts if f.registered_on <= end]
    registered_long = end - timedelta(days=th.INDICATOR_CONTROL_WINDOW_DAYS)
    htn = [f for f in managed if "hypertension" in f.conditions and f.registered_on < registered_long]
    dm = [f for f in managed if "diabetes" in f.conditions and f.registered_on < registered_long]
    on_meds = [f for f in managed if f.doses_taken + f.doses_missed]
    quizzed = [f for f in managed if f.knowledge_score is not None]
    ids = tuple(f.patient_id for f in managed)
    taken = sum(f.doses_taken for f in on_meds)
    doses = sum(f.doses_taken + f.doses_missed for f in on_meds)
    overdue = tuple(f.patient_id for f in managed
                    if f.next_followup_due is not None and is_overdue(f.next_followup_due, today))
    lost = tuple(f.patient_id for f in managed if is_lost_to_followup(f.last_contact or f.registered_on, today))
    values = {
        "managed": Indicator("managed", len(managed), len(managed), None, ids, ids),
        "standardized": _share("standardized", th.INDICATOR_TARGET_STANDARDIZED, managed,
                               (is_standardized(f, start, end) for f in managed)),
        "bp_control": _share("bp_control", th.INDICATOR_TARGET_BP_CONTROL, htn, map(bp_controlled, htn)),
        "glucose_control": _share("glucose_control", th.INDICATOR_TARGET_GLUCOSE_CONTROL, dm,
                                  map(glucose_controlled, dm)),
        # Pooled doses, not an average of per-patient rates: a patient logging more doses weighs more.
        "adherence": Indicator("adherence", taken, doses, th.INDICATOR_TARGET_ADHERENCE,
                               tuple(f.patient_id for f in on_meds
                                     if f.doses_taken / (f.doses_taken + f.doses_missed)
                                     >= th.INDICATOR_TARGET_ADHERENCE),
                               tuple(f.patient_id for f in on_meds)),
        "knowledge": _share("knowledge", th.INDICATOR_TARGET_KNOWLEDGE, quizzed,
                            (f.knowledge_score is not None and f.knowledge_score >= th.INDICATOR_KNOWLEDGE_PASS
                             for f in quizzed)),
        "overdue": Indicator("overdue", len(overdue), len(managed), None, overdue, ids),
        "lost": Indicator("lost", len(lost), len(managed), None, lost, ids),
    }
    return IndicatorSet(start, end, values)


def month_ends(end: date, months: int) -> list[tuple[date, date]]:
    """The last `months` calendar months up to `end` as (first day, last day or `end`), oldest first."""
    out: list[tuple[date, date]] = []
    first = end.replace(day=1)
    last = end
    for _ in range(months):
        out.append((first, last))
        last = first - timedelta(days=1)
        first = last.replace(day=1)
    return out[::-1]
