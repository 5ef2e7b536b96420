"""Health-education content: tips, lessons, quizzes — loaded from YAML, validated, selected.

Layout under the content directory (default: this package's directory)::

    tips/<topic>.yaml      a list of tips
    lessons/<set>.yaml     {set: {...}, lessons: [...]} — one prescribable lesson set per file
    quizzes/<topic>.yaml   {id, topic, title, source, questions: [...]} — one quiz per file

``load_catalog()`` reads every file once and validates everything before returning; it raises
:class:`ContentError` listing every problem found, each naming the item id (or the file when no id
can be read).  ``default_catalog()`` caches the package's own catalogue for the process.

Tip selection (``Catalog.tips_for`` / ``Catalog.next_tip``):

* A tip fits a person when its audience matches (``all``; or one of the person's conditions;
  or ``caregiver`` for a caregiver, further narrowed by any condition listed next to it), every
  ``when`` condition holds, its ``season`` (if any) contains the current month, and — for exercise
  advice — ``_exercise_allowed(ctx)`` is true.
* Relevance tiers, best first: 0 ``when`` names a reading-based condition (bp/glucose average above
  target, recent hypo, last reading urgent); 1 seasonal tip in season; 2 tip targeted at the person's
  profile (age, BMI, insulin/sulfonylurea, smoker, caregiver-only); 3 general.  Inside a tier tips
  are interleaved by topic (the 1st tip of every topic, then the 2nd, ...), so consecutive tips vary.
  Everything is a pure function of (catalogue, context, seen): deterministic.
* A care plan's goals that are not met (``TipContext.plan_topics``, issue 10) come right after tier 0:
  every fitting tip of those topics (by tier) before the other tiers.
* ``next_tip`` returns the first fitting tip whose id is not in ``seen``.  When every fitting tip
  has been seen it starts the round again by returning the best fitting tip (ignoring ``seen``);
  the caller is expected to reset its ``seen`` set to ``{that tip's id}``.  ``None`` only when no
  tip fits at all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from bot.clinical import exercise_safety
from content import sources as _sources

__all__ = [
    "AUDIENCES",
    "CONDITION_KEYS",
    "LANGS",
    "MAX_TEXT_CHARS",
    "OIL_LIMIT_G",
    "SALT_LIMIT_G",
    "SEASONS",
    "TOPICS",
    "Catalog",
    "ContentError",
    "HouseholdResult",
    "Lesson",
    "LessonSet",
    "Question",
    "Quiz",
    "QuizResult",
    "Tip",
    "TipContext",
    "default_catalog",
    "household_oil",
    "household_salt",
    "load_catalog",
    "next_tip",
    "normalize_lang",
    "score_quiz",
]

LANGS: tuple[str, ...] = ("zh_CN", "en")
DEFAULT_LANG = "zh_CN"
MAX_TEXT_CHARS = 900  # a Telegram message holds 4096; keep every text well inside one bubble

TOPICS: tuple[str, ...] = (
    "salt",
    "oil",
    "sugar",
    "vegetables_fruit",
    "staple_foods",
    "alcohol_smoking",
    "exercise",
    "medicines",
    "measuring",
    "hypoglycaemia",
    "foot_care",
    "sleep_stress",
    "festivals_eating_out",
    "weight",
)
AUDIENCES: frozenset[str] = frozenset({"hypertension", "diabetes", "caregiver", "all"})
_CONDITIONS: frozenset[str] = frozenset({"hypertension", "diabetes"})

#: The only keys allowed in a tip's ``when`` and the type each value must have.
CONDITION_KEYS: Mapping[str, tuple[type, ...]] = MappingProxyType(
    {
        "bp_avg7_above_target": (bool,),
        "glucose_avg7_above_target": (bool,),
        "recent_hypo": (bool,),
        "last_reading_urgent": (bool,),
        "exercise": (bool,),
        "age_min": (int,),
        "age_max": (int,),
        "bmi_min": (int, float),
        "takes_insulin_or_su": (bool,),
        "smoker": (bool,),
    }
)
_READING_KEYS = frozenset(
    {"bp_avg7_above_target", "glucose_avg7_above_target", "recent_hypo", "last_reading_urgent"}
)
_PROFILE_KEYS = frozenset({"age_min", "age_max", "bmi_min", "takes_insulin_or_su", "smoker"})

#: Seasons and festivals -> Gregorian months.  Festivals follow the lunar calendar, so each one
#: covers the months its date can fall in (Spring Festival: late Jan - mid Feb, and so on).
SEASONS: Mapping[str, frozenset[int]] = MappingProxyType(
    {
        "spring": frozenset({3, 4, 5}),
        "summer": frozenset({6, 7, 8}),
        "autumn": frozenset({9, 10, 11}),
        "winter": frozenset({12, 1, 2}),
        "spring_festival": frozenset({1, 2}),
        "lantern_festival": frozenset({2, 3}),
        "dragon_boat": frozenset({5, 6}),
        "mid_autumn": frozenset({9, 10}),
        "double_ninth": frozenset({10, 11}),
        "winter_solstice": frozenset({12}),
    }
)

# CDG-2022 daily upper limits used by the household calculators.
SALT_LIMIT_G = 5.0  # salt < 5 g per person per day
OIL_LIMIT_G = 30.0  # cooking oil 25-30 g per person per day

# Exercise safety thresholds live in bot.clinical.thresholds (clinical-reference: Exercise and diet);
# _exercise_allowed asks bot.clinical.exercise_safety.

_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(-[a-z0-9_]+)*$")


class ContentError(ValueError):
    """Content failed validation.  ``problems`` holds one line per problem, each naming the item."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} content problem(s):\n" + "\n".join(self.problems))


def normalize_lang(lang: str | None) -> str:
    """Map a Telegram ``language_code`` or locale name onto a content language (zh_CN or en)."""
    if not lang:
        return DEFAULT_LANG
    low = lang.replace("-", "_").lower()
    if low in {"zh", "zh_cn", "zh_hans", "zh_hans_cn", "zh_sg"}:
        return "zh_CN"
    if low.startswith("zh"):
        return "zh_CN"  # best available Chinese text
    return "en"


def _pick(text: Mapping[str, str], lang: str | None) -> str:
    return text[normalize_lang(lang)]


# --------------------------------------------------------------------------------------------- model


@dataclass(frozen=True, eq=False)
class Tip:
    id: str
    topic: str
    audience: frozenset[str]
    when: Mapping[str, Any]
    season: tuple[str, ...]
    sources: tuple[str, ...]
    text: Mapping[str, str]
    order: int = 0  # position within its topic file (used to interleave topics)

    @property
    def source(self) -> str:
        return "/".join(self.sources)

    @property
    def is_exercise(self) -> bool:
        return bool(self.when.get("exercise")) or self.topic == "exercise"

    def text_for(self, lang: str | None = None) -> str:
        return _pick(self.text, lang)


@dataclass(frozen=True, eq=False)
class Lesson:
    id: str
    set_id: str
    order: int
    title: Mapping[str, str]
    body: Mapping[str, str]
    sources: tuple[str, ...]
    quiz_id: str | None = None

    @property
    def source(self) -> str:
        return "/".join(self.sources)

    def title_for(self, lang: str | None = None) -> str:
        return _pick(self.title, lang)

    def body_for(self, lang: str | None = None) -> str:
        return _pick(self.body, lang)


@dataclass(frozen=True, eq=False)
class LessonSet:
    id: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    audience: frozenset[str]
    lessons: tuple[Lesson, ...] = ()

    def title_for(self, lang: str | None = None) -> str:
        return _pick(self.title, lang)


@dataclass(frozen=True, eq=False)
class Question:
    id: str
    prompt: Mapping[str, str]
    options: tuple[Mapping[str, str], ...]
    answer: int  # index into options
    explanation: Mapping[str, str]
    sources: tuple[str, ...]

    def prompt_for(self, lang: str | None = None) -> str:
        return _pick(self.prompt, lang)

    def options_for(self, lang: str | None = None) -> list[str]:
        return [_pick(o, lang) for o in self.options]

    def explanation_for(self, lang: str | None = None) -> str:
        return _pick(self.explanation, lang)


@dataclass(frozen=True, eq=False)
class Quiz:
    id: str
    topic: str
    title: Mapping[str, str]
    sources: tuple[str, ...]
    questions: tuple[Question, ...]

    def title_for(self, lang: str | None = None) -> str:
        return _pick(self.title, lang)


@dataclass(frozen=True)
class QuizResult:
    correct: int
    total: int
    percent: float  # 0-100, one decimal

    @property
    def meets_target(self) -> bool:
        """Programme target for health-knowledge awareness: >= 80 %."""
        return self.percent >= 80.0


@dataclass(frozen=True)
class TipContext:
    """What the selector knows about the reader.  For a caregiver, describe the person cared for."""

    conditions: frozenset[str] = frozenset()  # {"hypertension", "diabetes"}
    age: int | None = None
    bmi: float | None = None
    bp_avg7_above_target: bool = False
    glucose_avg7_above_target: bool = False
    recent_hypo: bool = False  # a reading < 3.9 mmol/L in the last 14 days
    last_bp: tuple[int, int] | None = None  # (systolic, diastolic)
    last_glucose_mmol: float | None = None
    last_reading_urgent: bool = False
    month: int | None = None  # 1-12, local time; None -> no seasonal tips
    takes_insulin_or_su: bool = False
    smoker: bool = False
    is_caregiver: bool = False
    plan_topics: frozenset[str] = frozenset()  # topics of the care plan's goals not met (issue 10)

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", frozenset(self.conditions))
        object.__setattr__(self, "plan_topics", frozenset(self.plan_topics))
        if self.month is not None and not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1-12, got {self.month}")


# ------------------------------------------------------------------------------------------ catalog


@dataclass(eq=False)
class Catalog:
    tips: dict[str, Tip] = field(default_factory=dict)
    lesson_sets: dict[str, LessonSet] = field(default_factory=dict)
    lessons: dict[str, Lesson] = field(default_factory=dict)
    quizzes: dict[str, Quiz] = field(default_factory=dict)

    def tip(self, tip_id: str) -> Tip:
        return self.tips[tip_id]

    def lesson(self, lesson_id: str) -> Lesson:
        return self.lessons[lesson_id]

    def lesson_set(self, set_id: str) -> LessonSet:
        return self.lesson_sets[set_id]

    def quiz(self, quiz_id: str) -> Quiz:
        return self.quizzes[quiz_id]

    def quiz_for_topic(self, topic: str) -> Quiz | None:
        return next((q for q in self.quizzes.values() if q.topic == topic), None)

    def tips_by_topic(self) -> dict[str, list[Tip]]:
        out: dict[str, list[Tip]] = {t: [] for t in TOPICS}
        for tip in self.tips.values():
            out[tip.topic].append(tip)
        return out

    def _ranked(self, ctx: TipContext, lang: str | None) -> list[Tip]:
        lang = normalize_lang(lang)
        exercise_ok = _exercise_allowed(ctx)
        fitting = [
            t
            for t in self.tips.values()
            if lang in t.text and _fits(t, ctx) and (exercise_ok or not t.is_exercise)
        ]
        topic_index = {t: i for i, t in enumerate(TOPICS)}
        return sorted(fitting, key=lambda t: (_plan_rank(t, ctx), _tier(t, ctx), t.order, topic_index[t.topic],
                                              t.id))

    def tips_for(
        self, profile: TipContext, seen: Iterable[str] = (), lang: str | None = DEFAULT_LANG
    ) -> list[Tip]:
        """Every fitting tip not in ``seen``, most relevant first (see the module docstring)."""
        seen_ids = set(seen)
        return [t for t in self._ranked(profile, lang) if t.id not in seen_ids]

    def next_tip(
        self, ctx: TipContext, seen: Iterable[str] = (), lang: str | None = DEFAULT_LANG
    ) -> Tip | None:
        """The best unseen fitting tip; when all were seen, the best one again (caller resets seen)."""
        ranked = self._ranked(ctx, lang)
        if not ranked:
            return None
        seen_ids = set(seen)
        return next((t for t in ranked if t.id not in seen_ids), ranked[0])


def _exercise_allowed(ctx: TipContext) -> bool:
    """May exercise advice be shown to this person now?

    The last reading being urgent blocks it; otherwise ``bot.clinical.exercise_safety`` decides from the
    last BP and glucose (>= 180/110, > 16.7 or a low glucose block it), so tips, the exercise planner and
    challenges all follow the same rule.
    """
    # clinical-reference: Exercise and diet (exercise safety)
    if ctx.last_reading_urgent:
        return False
    return exercise_safety(ctx.last_bp, ctx.last_glucose_mmol).ok


def _audience_fits(tip: Tip, ctx: TipContext) -> bool:
    if "all" in tip.audience:
        return True
    conds = tip.audience & _CONDITIONS
    if "caregiver" in tip.audience and ctx.is_caregiver:
        return not conds or bool(conds & ctx.conditions)
    return bool(conds & ctx.conditions)


def _when_fits(when: Mapping[str, Any], ctx: TipContext) -> bool:
    for key, want in when.items():
        if key == "exercise":
            continue  # a marker, enforced by _exercise_allowed
        if key == "age_min":
            if ctx.age is None or ctx.age < want:
                return False
        elif key == "age_max":
            if ctx.age is None or ctx.age > want:
                return False
        elif key == "bmi_min":
            if ctx.bmi is None or ctx.bmi < want:
                return False
        elif bool(getattr(ctx, key)) != want:
            return False
    return True


def _season_fits(tip: Tip, ctx: TipContext) -> bool:
    if not tip.season:
        return True
    if ctx.month is None:
        return False
    return any(ctx.month in SEASONS[s] for s in tip.season)


def _fits(tip: Tip, ctx: TipContext) -> bool:
    return _audience_fits(tip, ctx) and _when_fits(tip.when, ctx) and _season_fits(tip, ctx)


def _plan_rank(tip: Tip, ctx: TipContext) -> int:
    """Reading-based tips stay first (they answer what is happening now); then the topics of the care
    plan's goals that are not met; then the rest. Without plan topics the order is the tiers' alone."""
    if _tier(tip, ctx) == 0:
        return 0
    return 1 if tip.topic in ctx.plan_topics else 2


def _tier(tip: Tip, ctx: TipContext) -> int:
    keys = set(tip.when)
    if keys & _READING_KEYS:
        return 0
    if tip.season:
        return 1
    if keys & _PROFILE_KEYS or (
        "caregiver" in tip.audience and ctx.is_caregiver and "all" not in tip.audience
    ):
        return 2
    return 3


# -------------------------------------------------------------------------------------------- loading


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


def _text(raw: Any, where: str, label: str, problems: _Problems) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        problems.add(where, f"{label} must be a mapping of language -> text")
        return {}
    out: dict[str, str] = {}
    for lang in raw:
        if lang not in LANGS:
            problems.add(where, f"{label} has unknown language {lang!r} (allowed: {', '.join(LANGS)})")
    for lang in LANGS:
        value = raw.get(lang)
        if value is None:
            problems.add(where, f"{label} missing translation for {lang}")
        elif not isinstance(value, str) or not value.strip():
            problems.add(where, f"{label} {lang} text is empty")
        else:
            value = value.strip()
            if len(value) > MAX_TEXT_CHARS:
                problems.add(where, f"{label} {lang} text is {len(value)} characters (max {MAX_TEXT_CHARS})")
            out[lang] = value
    return out


def _source_ids(raw: Any, where: str, problems: _Problems, required: bool = True) -> tuple[str, ...]:
    if raw is None:
        if required:
            problems.add(where, "missing source")
        return ()
    ids = [raw] if isinstance(raw, str) else raw
    if not isinstance(ids, list) or not ids or not all(isinstance(s, str) for s in ids):
        problems.add(where, f"source must be a source id or a list of them, got {raw!r}")
        return ()
    for s in ids:
        if not _sources.is_known(s):
            problems.add(where, f"unknown source {s!r}")
    return tuple(ids)


def _item_id(raw: Mapping[str, Any], where: str, problems: _Problems) -> str | None:
    item_id = raw.get("id")
    if not isinstance(item_id, str) or not _ID_RE.match(item_id):
        problems.add(where, f"missing or malformed id {item_id!r}")
        return None
    return item_id


def _read_yaml(path: Path, problems: _Problems) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        problems.add(path.name, f"cannot read YAML: {exc}")
        return None


def _load_tip(raw: Any, index: int, fname: str, problems: _Problems, seen_ids: dict[str, str]) -> Tip | None:
    where = f"{fname}[{index}]"
    if not isinstance(raw, Mapping):
        problems.add(where, "a tip must be a mapping")
        return None
    tip_id = _item_id(raw, where, problems)
    if tip_id is None:
        return None
    where = f"tip {tip_id} ({fname})"
    ok_before = len(problems.items)
    if tip_id in seen_ids:
        problems.add(where, f"duplicate id (also in {seen_ids[tip_id]})")
    seen_ids.setdefault(tip_id, fname)

    topic = raw.get("topic")
    if topic not in TOPICS:
        problems.add(where, f"unknown topic {topic!r}")
    elif not re.fullmatch(rf"{topic}-\d{{3}}", tip_id):
        problems.add(where, f"id must be '{topic}-NNN'")

    audience = raw.get("audience")
    if not isinstance(audience, list) or not audience:
        problems.add(where, "audience must be a non-empty list")
        audience = []
    for a in audience:
        if a not in AUDIENCES:
            problems.add(where, f"unknown audience {a!r}")

    when = raw.get("when") or {}
    if not isinstance(when, Mapping):
        problems.add(where, "when must be a mapping")
        when = {}
    for key, value in when.items():
        types = CONDITION_KEYS.get(key)
        if types is None:
            problems.add(where, f"unknown condition key {key!r} in when")
        elif (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            problems.add(where, f"condition {key!r} has wrong type {type(value).__name__}")
    if topic == "exercise" and when.get("exercise") is not True:
        problems.add(where, "exercise tips must set when.exercise: true")

    season = raw.get("season") or []
    if isinstance(season, str):
        season = [season]
    if not isinstance(season, list):
        problems.add(where, "season must be a list")
        season = []
    for s in season:
        if s not in SEASONS:
            problems.add(where, f"unknown season {s!r}")

    srcs = _source_ids(raw.get("source"), where, problems)
    text = _text(raw.get("text"), where, "text", problems)

    unknown = set(raw) - {"id", "topic", "audience", "when", "season", "source", "text"}
    if unknown:
        problems.add(where, f"unknown field(s) {sorted(unknown)}")
    if len(problems.items) != ok_before:
        return None
    return Tip(
        id=tip_id,
        topic=topic,
        audience=frozenset(audience),
        when=MappingProxyType(dict(when)),
        season=tuple(season),
        sources=srcs,
        text=MappingProxyType(text),
        order=index,
    )


def _load_quiz(raw: Any, fname: str, problems: _Problems) -> Quiz | None:
    if not isinstance(raw, Mapping):
        problems.add(fname, "a quiz file must be a mapping")
        return None
    quiz_id = _item_id(raw, fname, problems)
    if quiz_id is None:
        return None
    where = f"quiz {quiz_id} ({fname})"
    before = len(problems.items)
    topic = raw.get("topic")
    if topic not in TOPICS:
        problems.add(where, f"unknown topic {topic!r}")
    title = _text(raw.get("title"), where, "title", problems)
    quiz_sources = _source_ids(raw.get("source"), where, problems)
    raw_questions = raw.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        problems.add(where, "questions must be a non-empty list")
        raw_questions = []
    questions: list[Question] = []
    for qi, rq in enumerate(raw_questions, start=1):
        qid = f"{quiz_id}#q{qi}"
        qwhere = f"quiz {quiz_id} question {qi} ({fname})"
        if not isinstance(rq, Mapping):
            problems.add(qwhere, "a question must be a mapping")
            continue
        prompt = _text(rq.get("prompt"), qwhere, "prompt", problems)
        raw_options = rq.get("options")
        options: list[dict[str, str]] = []
        if not isinstance(raw_options, list) or len(raw_options) < 2:
            problems.add(qwhere, "options must be a list of at least 2 choices")
            raw_options = []
        for oi, ro in enumerate(raw_options):
            options.append(_text(ro, qwhere, f"option {oi}", problems))
        answer = rq.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(raw_options):
            problems.add(qwhere, f"answer index {answer!r} out of range (0..{len(raw_options) - 1})")
        explanation = _text(rq.get("explanation"), qwhere, "explanation", problems)
        qsources = _source_ids(rq.get("source"), qwhere, problems, required=False) or quiz_sources
        questions.append(
            Question(
                id=qid,
                prompt=MappingProxyType(prompt),
                options=tuple(MappingProxyType(o) for o in options),
                answer=answer if isinstance(answer, int) else -1,
                explanation=MappingProxyType(explanation),
                sources=qsources,
            )
        )
    if len(problems.items) != before:
        return None
    return Quiz(
        id=quiz_id,
        topic=topic,
        title=MappingProxyType(title),
        sources=quiz_sources,
        questions=tuple(questions),
    )


def _load_lesson_file(
    raw: Any, fname: str, problems: _Problems
) -> tuple[LessonSet | None, list[Lesson], list[tuple[str, str, str]]]:
    """Returns (set, lessons, [(lesson id, quiz id, where)]) — quiz references are checked later."""
    refs: list[tuple[str, str, str]] = []
    if not isinstance(raw, Mapping) or not isinstance(raw.get("set"), Mapping):
        problems.add(fname, "a lesson file must be a mapping with 'set' and 'lessons'")
        return None, [], refs
    rs = raw["set"]
    set_id = _item_id(rs, fname, problems)
    if set_id is None:
        return None, [], refs
    swhere = f"lesson set {set_id} ({fname})"
    before = len(problems.items)
    title = _text(rs.get("title"), swhere, "title", problems)
    description = _text(rs.get("description"), swhere, "description", problems)
    audience = rs.get("audience") or ["all"]
    if not isinstance(audience, list):
        problems.add(swhere, "audience must be a list")
        audience = []
    for a in audience:
        if a not in AUDIENCES:
            problems.add(swhere, f"unknown audience {a!r}")
    raw_lessons = raw.get("lessons")
    if not isinstance(raw_lessons, list) or not raw_lessons:
        problems.add(swhere, "lessons must be a non-empty list")
        raw_lessons = []
    lessons: list[Lesson] = []
    orders: set[int] = set()
    for li, rl in enumerate(raw_lessons):
        if not isinstance(rl, Mapping):
            problems.add(f"{fname}[{li}]", "a lesson must be a mapping")
            continue
        lesson_id = _item_id(rl, f"{fname}[{li}]", problems)
        if lesson_id is None:
            continue
        lwhere = f"lesson {lesson_id} ({fname})"
        if rl.get("set", set_id) != set_id:
            problems.add(lwhere, f"set {rl.get('set')!r} does not match the file's set {set_id!r}")
        order = rl.get("order")
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            problems.add(lwhere, f"order must be a positive integer, got {order!r}")
            order = 0
        elif order in orders:
            problems.add(lwhere, f"duplicate order {order} in set {set_id}")
        orders.add(order)
        ltitle = _text(rl.get("title"), lwhere, "title", problems)
        body = _text(rl.get("body"), lwhere, "body", problems)
        lsources = _source_ids(rl.get("source"), lwhere, problems)
        quiz_id = rl.get("quiz")
        if quiz_id is not None:
            if not isinstance(quiz_id, str):
                problems.add(lwhere, f"quiz must be a quiz id, got {quiz_id!r}")
                quiz_id = None
            else:
                refs.append((lesson_id, quiz_id, lwhere))
        lessons.append(
            Lesson(
                id=lesson_id,
                set_id=set_id,
                order=order,
                title=MappingProxyType(ltitle),
                body=MappingProxyType(body),
                sources=lsources,
                quiz_id=quiz_id,
            )
        )
    if len(problems.items) != before:
        return None, lessons, refs
    lessons.sort(key=lambda lesson: lesson.order)
    lesson_set = LessonSet(
        id=set_id,
        title=MappingProxyType(title),
        description=MappingProxyType(description),
        audience=frozenset(audience),
        lessons=tuple(lessons),
    )
    return lesson_set, lessons, refs


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate every content file under ``path`` (default: the ``content`` package dir)."""
    root = Path(path) if path is not None else Path(__file__).resolve().parent
    problems = _Problems()
    catalog = Catalog()

    tip_owner: dict[str, str] = {}
    for f in sorted((root / "tips").glob("*.yaml")):
        data = _read_yaml(f, problems)
        if data is None:
            continue
        if not isinstance(data, list):
            problems.add(f.name, "a tips file must be a list of tips")
            continue
        for i, raw in enumerate(data):
            tip = _load_tip(raw, i, f"tips/{f.name}", problems, tip_owner)
            if tip is not None:
                catalog.tips[tip.id] = tip

    for f in sorted((root / "quizzes").glob("*.yaml")):
        data = _read_yaml(f, problems)
        if data is None:
            continue
        quiz = _load_quiz(data, f"quizzes/{f.name}", problems)
        if quiz is None:
            continue
        if quiz.id in catalog.quizzes:
            problems.add(f"quiz {quiz.id} (quizzes/{f.name})", "duplicate id")
        catalog.quizzes[quiz.id] = quiz

    quiz_refs: list[tuple[str, str, str]] = []
    for f in sorted((root / "lessons").glob("*.yaml")):
        data = _read_yaml(f, problems)
        if data is None:
            continue
        lesson_set, lessons, refs = _load_lesson_file(data, f"lessons/{f.name}", problems)
        quiz_refs.extend(refs)
        for lesson in lessons:
            if lesson.id in catalog.lessons or lesson.id in catalog.lesson_sets:
                problems.add(f"lesson {lesson.id} (lessons/{f.name})", "duplicate id")
            catalog.lessons[lesson.id] = lesson
        if lesson_set is not None:
            if lesson_set.id in catalog.lesson_sets:
                problems.add(f"lesson set {lesson_set.id} (lessons/{f.name})", "duplicate id")
            catalog.lesson_sets[lesson_set.id] = lesson_set
    for lesson_id, quiz_id, where in quiz_refs:
        if quiz_id not in catalog.quizzes:
            problems.add(where, f"lesson {lesson_id} refers to unknown quiz {quiz_id!r}")

    if problems.items:
        raise ContentError(problems.items)
    return catalog


@functools.lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The package's own catalogue, loaded and validated once per process."""
    return load_catalog()


def next_tip(ctx: TipContext, seen: Iterable[str] = (), catalog: Catalog | None = None) -> Tip | None:
    """Module-level convenience for ``(catalog or default_catalog()).next_tip(ctx, seen)``."""
    return (catalog or default_catalog()).next_tip(ctx, seen)


# -------------------------------------------------------------------------------------- quiz scoring


def score_quiz(quiz: Quiz, answers: Sequence[int]) -> QuizResult:
    """Score a quiz; ``answers[i]`` is the chosen option index for question i (missing = wrong)."""
    if len(answers) > len(quiz.questions):
        raise ValueError(f"{len(answers)} answers for {len(quiz.questions)} questions")
    correct = sum(1 for q, a in zip(quiz.questions, answers, strict=False) if a == q.answer)
    total = len(quiz.questions)
    percent = round(100.0 * correct / total, 1) if total else 0.0
    return QuizResult(correct=correct, total=total, percent=percent)


# ------------------------------------------------------------------------------------- calculators


@dataclass(frozen=True)
class HouseholdResult:
    per_person_g: float  # grams per person per day, 1 decimal
    limit_g: float  # CDG-2022 limit per person per day
    above_limit: bool

    def __float__(self) -> float:
        return self.per_person_g


def _household(people: int, grams: float, days: int, limit: float) -> HouseholdResult:
    if isinstance(people, bool) or people < 1:
        raise ValueError("people must be at least 1")
    if isinstance(days, bool) or days < 1:
        raise ValueError("days must be at least 1")
    if grams < 0:
        raise ValueError("grams must not be negative")
    exact = grams / people / days
    return HouseholdResult(per_person_g=round(exact, 1), limit_g=limit, above_limit=exact > limit)


def household_salt(people: int, grams: float, days: int) -> HouseholdResult:
    """Salt a household used, per person per day (CDG-2022: < 5 g).  3 people, 500 g, 30 days -> 5.6."""
    return _household(people, grams, days, SALT_LIMIT_G)


def household_oil(people: int, grams: float, days: int) -> HouseholdResult:
    """Cooking oil a household used, per person per day (CDG-2022: 25-30 g; above 30 g is too much)."""
    return _household(people, grams, days, OIL_LIMIT_G)
