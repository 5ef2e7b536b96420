"""Tip selection: exercise safety, rotation, relevance, seasons and audiences."""

from __future__ import annotations

import itertools

import pytest

from content.catalog import TipContext, _exercise_allowed, load_catalog, next_tip

HTN = frozenset({"hypertension"})
DM = frozenset({"diabetes"})
BOTH = HTN | DM


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _contexts(**danger):
    """Many contexts differing in everything except the given (dangerous) last-reading fields."""
    for conds, caregiver, age, bmi, month, flags in itertools.product(
        (HTN, DM, BOTH, frozenset()),
        (False, True),
        (None, 45, 70),
        (None, 22.0, 29.5),
        (1, 6, 9),
        itertools.product((False, True), repeat=4),
    ):
        bp_high, glu_high, hypo, insulin = flags
        yield TipContext(
            conditions=conds,
            age=age,
            bmi=bmi,
            bp_avg7_above_target=bp_high,
            glucose_avg7_above_target=glu_high,
            recent_hypo=hypo,
            takes_insulin_or_su=insulin,
            smoker=insulin,  # vary it too, tied to another flag to keep the product small
            month=month,
            is_caregiver=caregiver,
            **danger,
        )


@pytest.mark.parametrize(
    "danger",
    [
        {"last_bp": (185, 100)},
        {"last_bp": (150, 112)},
        {"last_glucose_mmol": 17.2},
        {"last_reading_urgent": True},
        {"last_bp": (120, 75), "last_glucose_mmol": 6.0, "last_reading_urgent": True},
    ],
)
def test_no_exercise_tip_when_readings_are_dangerous(catalog, danger):
    checked = 0
    for i, ctx in enumerate(_contexts(**danger)):
        assert not _exercise_allowed(ctx)
        offered = catalog.tips_for(ctx, set(), "zh_CN" if i % 2 else "en")
        assert not [t.id for t in offered if t.is_exercise or t.when.get("exercise")]
        checked += 1
        if i % 97:
            continue
        # every tip the rotation hands out, including the restart after the pool is used up
        seen: set[str] = set()
        for _ in range(len(offered) + 1):
            tip = catalog.next_tip(ctx, seen)
            assert tip is None or not (tip.is_exercise or tip.when.get("exercise")), tip.id
            if tip is not None:
                seen.add(tip.id)
    assert checked > 1000


def test_exercise_tips_offered_when_readings_are_fine(catalog):
    ctx = TipContext(
        conditions=BOTH,
        age=60,
        bmi=26.0,
        last_bp=(132, 82),
        last_glucose_mmol=6.4,
        month=5,
        takes_insulin_or_su=True,
    )
    assert _exercise_allowed(ctx)
    offered = catalog.tips_for(ctx, set(), "en")
    exercise = {t.id for t in offered if t.is_exercise}
    assert {"exercise-001", "exercise-002", "exercise-006", "exercise-007"} <= exercise
    assert any(t.when.get("exercise") and t.topic != "exercise" for t in offered)  # e.g. weight-008


@pytest.mark.parametrize(
    ("last_bp", "glucose", "allowed"),
    [
        ((179, 109), 16.7, True),
        ((180, 80), None, False),
        ((140, 110), None, False),
        (None, 16.8, False),
        (None, None, True),
    ],
)
def test_exercise_thresholds(last_bp, glucose, allowed):
    ctx = TipContext(conditions=BOTH, last_bp=last_bp, last_glucose_mmol=glucose)
    assert _exercise_allowed(ctx) is allowed


@pytest.mark.parametrize(
    "ctx",
    [
        TipContext(conditions=HTN, age=68, month=1),
        TipContext(conditions=DM, age=55, bmi=27.0, month=9, takes_insulin_or_su=True, recent_hypo=True),
        TipContext(
            conditions=BOTH,
            age=72,
            month=6,
            smoker=True,
            bp_avg7_above_target=True,
            glucose_avg7_above_target=True,
        ),
        TipContext(conditions=DM, is_caregiver=True, age=80, month=2),
        TipContext(conditions=HTN, month=3, last_bp=(190, 100)),
    ],
)
def test_rotation_has_no_repeats_until_pool_used_up(catalog, ctx):
    pool = catalog.tips_for(ctx, set(), "zh_CN")
    assert len(pool) >= 20
    seen: list[str] = []
    for _ in range(len(pool)):
        tip = catalog.next_tip(ctx, set(seen))
        assert tip is not None and tip.id not in seen
        seen.append(tip.id)
    assert set(seen) == {t.id for t in pool}
    assert seen == [t.id for t in pool]  # next_tip walks tips_for's order
    # pool used up: start again with the best tip (the caller resets `seen`)
    again = catalog.next_tip(ctx, set(seen))
    assert again is not None and again.id == pool[0].id
    assert catalog.tips_for(ctx, set(seen)) == []


def test_selection_is_deterministic(catalog):
    ctx = TipContext(conditions=BOTH, age=66, bmi=25.0, month=10, bp_avg7_above_target=True)
    first = [t.id for t in catalog.tips_for(ctx, {"salt-001", "oil-001"})]
    second = [t.id for t in load_catalog().tips_for(ctx, ["oil-001", "salt-001"])]
    assert first == second
    assert next_tip(ctx, set()).id == catalog.next_tip(ctx, set()).id


def test_bp_above_target_gets_condition_tips_first(catalog):
    ctx = TipContext(conditions=HTN, age=58, month=4, bp_avg7_above_target=True, last_bp=(152, 94))
    tips = catalog.tips_for(ctx, set())
    first = catalog.next_tip(ctx, set())
    assert first.when.get("bp_avg7_above_target") is True
    assert first.topic in {"salt", "measuring"}
    flags = [bool(t.when.get("bp_avg7_above_target")) for t in tips]
    n = sum(flags)
    assert n >= 3 and flags[:n] == [True] * n  # all condition-matched tips come before the others
    # once those are seen, a general tip follows
    rest = catalog.next_tip(ctx, {t.id for t in tips[:n]})
    assert not rest.when.get("bp_avg7_above_target")


def test_condition_tips_not_offered_when_condition_false(catalog):
    ctx = TipContext(conditions=BOTH, month=4)
    for tip in catalog.tips_for(ctx, set()):
        for key in (
            "bp_avg7_above_target",
            "glucose_avg7_above_target",
            "recent_hypo",
            "last_reading_urgent",
            "takes_insulin_or_su",
            "smoker",
        ):
            assert tip.when.get(key) is not True, tip.id
        assert "age_min" not in tip.when and "bmi_min" not in tip.when  # unknown age/BMI


def test_recent_hypo_is_most_relevant(catalog):
    ctx = TipContext(conditions=DM, month=4, recent_hypo=True, takes_insulin_or_su=True)
    assert catalog.next_tip(ctx, set()).id == "hypoglycaemia-006"


def test_seasonal_tips(catalog):
    autumn = TipContext(conditions=BOTH, month=9)
    spring = TipContext(conditions=BOTH, month=4)
    mooncake = "festivals_eating_out-006"
    autumn_ids = [t.id for t in catalog.tips_for(autumn, set())]
    assert mooncake in autumn_ids
    assert mooncake not in {t.id for t in catalog.tips_for(spring, set())}
    general = [t.id for t in catalog.tips_for(autumn, set()) if not t.season and not t.when]
    assert autumn_ids.index(mooncake) < autumn_ids.index(general[0])
    winter = {t.id for t in catalog.tips_for(TipContext(conditions=BOTH, month=1), set())}
    assert {"festivals_eating_out-001", "salt-010"} <= winter
    assert not [t for t in catalog.tips_for(TipContext(conditions=BOTH, month=None), set()) if t.season]


def test_audiences(catalog):
    htn_only = catalog.tips_for(TipContext(conditions=HTN, month=4, age=70, bmi=30.0), set())
    assert htn_only
    for tip in htn_only:
        assert "all" in tip.audience or "hypertension" in tip.audience, tip.id
    dm_ids = {t.id for t in catalog.tips_for(TipContext(conditions=DM, month=4), set())}
    assert "foot_care-001" in dm_ids and "measuring-001" not in dm_ids
    assert "salt-011" not in dm_ids  # caregiver-only tip
    carer = {t.id for t in catalog.tips_for(TipContext(conditions=DM, month=4, is_caregiver=True), set())}
    assert {"salt-011", "hypoglycaemia-004"} <= carer
    assert "measuring-002" not in carer  # hypertension+caregiver tip, but the cared-for person has diabetes


def test_text_for_language(catalog):
    tip = catalog.tip("salt-001")
    assert "5克" in tip.text_for("zh-hans") and "5 g" in tip.text_for("en-US")
    assert tip.text_for(None) == tip.text["zh_CN"]
    assert tip.source == "CDG-2022"


def test_month_validation():
    with pytest.raises(ValueError):
        TipContext(month=13)
