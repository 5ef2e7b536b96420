"""A patient's effective targets: the doctor's own values where set, else the reference default."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot import clinical
from storage.models import PatientProfile


def age_of(profile: PatientProfile | None, now: datetime) -> int | None:
    if profile is None or not profile.birth_year:
        return None
    return now.year - profile.birth_year


def targets_for(profile: PatientProfile | None, age: int | None) -> clinical.Targets:
    conditions = profile.condition_set if profile else frozenset()
    targets = clinical.default_targets(age, conditions)
    if profile is None:
        return targets
    overrides = {
        name: value
        for name, value in (
            ("bp_systolic", profile.target_sys),
            ("bp_diastolic", profile.target_dia),
            ("fasting_low", profile.target_fasting_low),
            ("fasting_high", profile.target_fasting_high),
            ("postmeal_high", profile.target_postmeal_high),
        )
        if value is not None
    }
    return replace(targets, **overrides) if overrides else targets
