"""A personal care plan (一人一策) as plain values, and the pure rules around it.

Why pure: the chat, the dashboard form, the service and the PNG card all read and write the same
plan; parsing a typed medicine line and describing what changed between two versions must give the
same answer everywhere and be testable without a database.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from datetime import time
from typing import Any

from bot.clinical.schedule import format_times, parse_times

FOOD = ("with", "without", "")  # with food / on an empty stomach / does not matter
RHYTHM_KINDS = ("bp", "glucose")


@dataclass(frozen=True)
class PlanTargets:
    """Per-patient targets. BP and glucose feed the assessment (PatientProfile.target_*)."""

    bp_systolic: int
    bp_diastolic: int
    fasting_low: float | None = None
    fasting_high: float | None = None
    postmeal_high: float | None = None
    weight_kg: float | None = None
    bmi: float | None = None


@dataclass(frozen=True)
class PlanMedicine:
    name: str
    dose: str = ""
    times: tuple[str, ...] = ()  # "HH:MM" local, sorted
    food: str = ""  # one of FOOD

    @property
    def label(self) -> str:
        return f"{self.name} {self.dose}".strip()


@dataclass(frozen=True)
class Rhythm:
    """How often to measure one thing: `intensive_times` every day for `intensive_days` days after
    a medicine change, then `times` on `weekdays` (Mon=0; empty = every day)."""

    kind: str  # bp|glucose
    times: tuple[str, ...]
    weekdays: tuple[int, ...] = ()
    intensive_times: tuple[str, ...] = ()
    intensive_days: int = 0


@dataclass(frozen=True)
class Lifestyle:
    salt_g_per_day: float | None = None
    cigarettes_per_day: int | None = None
    alcohol_liang_per_day: float | None = None
    exercise_min_per_week: int | None = None
    staple_g_per_day: int | None = None


@dataclass(frozen=True)
class CarePlan:
    targets: PlanTargets
    medicines: tuple[PlanMedicine, ...] = ()
    rhythm: tuple[Rhythm, ...] = ()
    lifestyle: Lifestyle = field(default_factory=Lifestyle)
    followup_days: int = 90
    lessons: tuple[str, ...] = ()  # lesson set ids (content catalog)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CarePlan:
        return cls(
            targets=PlanTargets(**data["targets"]),
            medicines=tuple(PlanMedicine(m["name"], m.get("dose", ""), tuple(m.get("times", ())), m.get("food", ""))
                            for m in data.get("medicines", ())),
            rhythm=tuple(Rhythm(r["kind"], tuple(r.get("times", ())), tuple(r.get("weekdays", ())),
                                tuple(r.get("intensive_times", ())), int(r.get("intensive_days", 0)))
                         for r in data.get("rhythm", ())),
            lifestyle=Lifestyle(**data.get("lifestyle", {})),
            followup_days=int(data.get("followup_days", 90)),
            lessons=tuple(data.get("lessons", ())),
            note=str(data.get("note", "")),
        )

    def with_medicine(self, medicine: PlanMedicine) -> CarePlan:
        """Add the medicine, or replace the one with the same name (case-insensitive)."""
        others = tuple(m for m in self.medicines if m.name.lower() != medicine.name.lower())
        return replace(self, medicines=(*others, medicine))

    def without_medicine(self, name: str) -> CarePlan:
        return replace(self, medicines=tuple(m for m in self.medicines if m.name.lower() != name.strip().lower()))


# "amlodipine 5mg 08:00,20:00 after food" / "metformin 500 mg 07:30 12:00 with food" / "aspirin 100mg 08:00"
_TIMES = re.compile(r"^\d{1,2}[:：]\d{2}([,，、]\d{1,2}[:：]\d{2})*,?$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_UNIT = r"(mg|g|ml|iu|u|units?|tablets?|tabs?|片|粒|毫克|单位)"
_DOSE = re.compile(r"^\d+(?:\.\d+)?" + _UNIT + "$", re.IGNORECASE)
_UNIT_ONLY = re.compile("^" + _UNIT + "$", re.IGNORECASE)
_FOOD_WORDS = {"with": "with", "after": "with", "饭后": "with", "随餐": "with", "before": "without",
               "without": "without", "empty": "without", "饭前": "without", "空腹": "without"}
_FILLER = {"food", "meal", "meals", "stomach", "an", "a", "on", "the", "at"}


def parse_medicine_line(text: str) -> PlanMedicine | None:
    """A doctor's one-line medicine, or None when no name or no valid time is found."""
    name: list[str] = []
    dose: list[str] = []
    found: set[time] = set()
    food = ""
    for word in text.split():
        low = word.lower()
        if _TIMES.match(word):
            parsed = parse_times(word.rstrip(",，"))
            if parsed is None:
                return None
            found |= set(parsed)
        elif low in _FOOD_WORDS:
            food = food or _FOOD_WORDS[low]
        elif low in _FILLER:
            continue
        elif name and not found and (_DOSE.match(word) or _NUMBER.match(word)
                                     or (dose and _NUMBER.match(dose[-1]) and _UNIT_ONLY.match(word))):
            dose.append(word)
        elif not dose and not found:
            name.append(word)
    if not name or not found:
        return None
    dose_text = " ".join(dose)
    m = re.match(r"^(\d+(?:\.\d+)?)\s*" + _UNIT + "$", dose_text, re.IGNORECASE)
    if m:
        dose_text = f"{m.group(1)} {m.group(2)}"
    return PlanMedicine(" ".join(name)[:128], dose_text[:64], tuple(format_times(sorted(found)).split(",")), food)


@dataclass(frozen=True)
class Change:
    """One line of the announcement: what changed for one medicine, target or goal."""

    what: str  # medicine_added|medicine_changed|medicine_stopped|targets|lifestyle|rhythm|followup
    medicine: PlanMedicine | None = None
    before: PlanMedicine | None = None


def plan_changes(old: CarePlan | None, new: CarePlan) -> list[Change]:
    """What the patient needs to hear about, medicines first (they matter most day to day)."""
    out: list[Change] = []
    before = {m.name.lower(): m for m in old.medicines} if old else {}
    after = {m.name.lower(): m for m in new.medicines}
    for key, med in after.items():
        if key not in before:
            out.append(Change("medicine_added", med))
        elif before[key] != med:
            out.append(Change("medicine_changed", med, before[key]))
    out.extend(Change("medicine_stopped", med) for key, med in before.items() if key not in after)
    if old is None or old.targets != new.targets:
        out.append(Change("targets"))
    if old is not None and old.lifestyle != new.lifestyle:
        out.append(Change("lifestyle"))
    if old is not None and old.rhythm != new.rhythm:
        out.append(Change("rhythm"))
    if old is not None and old.followup_days != new.followup_days:
        out.append(Change("followup"))
    return out


def medicines_changed(old: CarePlan | None, new: CarePlan) -> bool:
    return any(c.what.startswith("medicine_") for c in plan_changes(old, new))


def time_of_day(hhmm: str) -> str:
    """morning / midday / evening / night: the word patients use for a dose time."""
    hour = int(hhmm.split(":")[0])
    if 4 <= hour < 11:
        return "morning"
    if 11 <= hour < 15:
        return "midday"
    if 15 <= hour < 22:
        return "evening"
    return "night"
