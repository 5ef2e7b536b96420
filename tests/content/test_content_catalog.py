"""Validation of the real content catalogue and of deliberately broken fixture catalogues."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from content import sources
from content.catalog import (
    LANGS,
    MAX_TEXT_CHARS,
    TOPICS,
    ContentError,
    default_catalog,
    load_catalog,
)

# ------------------------------------------------------------------------------- the real catalogue


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_real_catalogue_validates(catalog):
    assert catalog.tips and catalog.lessons and catalog.quizzes
    assert default_catalog() is default_catalog()  # cached once per process


def test_at_least_120_tips_per_language(catalog):
    for lang in LANGS:
        assert sum(1 for t in catalog.tips.values() if t.text.get(lang)) >= 120
    assert len(catalog.tips) >= 130


def test_every_topic_present(catalog):
    by_topic = catalog.tips_by_topic()
    for topic in TOPICS:
        assert len(by_topic[topic]) >= 5, topic


def test_one_quiz_per_topic_with_3_to_5_questions(catalog):
    assert len(catalog.quizzes) >= 12
    topics = {q.topic for q in catalog.quizzes.values()}
    assert topics == set(TOPICS)
    for quiz in catalog.quizzes.values():
        assert 3 <= len(quiz.questions) <= 5, quiz.id
        for q in quiz.questions:
            assert 0 <= q.answer < len(q.options)
            assert q.sources and all(sources.is_known(s) for s in q.sources)
            for lang in LANGS:
                assert q.explanation[lang].strip()


def test_lesson_sets(catalog):
    expected = {
        "low-salt": 4,
        "home-bp": 3,
        "diabetes-diet": 4,
        "hypo-safety": 3,
        "foot-care": 2,
        "exercise-start": 3,
        "medicines": 3,
    }
    for set_id, count in expected.items():
        assert len(catalog.lesson_set(set_id).lessons) == count, set_id
    for lesson_set in catalog.lesson_sets.values():
        assert len(lesson_set.lessons) >= 2, lesson_set.id
        assert [lesson.order for lesson in lesson_set.lessons] == list(range(1, len(lesson_set.lessons) + 1))
        for lesson in lesson_set.lessons:
            assert lesson.quiz_id is None or lesson.quiz_id in catalog.quizzes


def test_lesson_bodies_are_short_plain_reading(catalog):
    for lesson in catalog.lessons.values():
        words = len(re.findall(r"[A-Za-z0-9]+(?:['’-][A-Za-z0-9]+)*", lesson.body["en"]))
        assert 80 <= words <= 200, (lesson.id, words)
        zh_chars = len(re.findall(r"[\u4e00-\u9fff]", lesson.body["zh_CN"]))
        assert 80 <= zh_chars <= 400, (lesson.id, zh_chars)


def test_all_texts_fit_a_message_and_all_sources_are_known(catalog):
    for tip in catalog.tips.values():
        assert tip.sources and all(sources.is_known(s) for s in tip.sources)
        for lang in LANGS:
            assert 0 < len(tip.text[lang]) <= MAX_TEXT_CHARS
    for lesson in catalog.lessons.values():
        for lang in LANGS:
            assert len(lesson.body[lang]) <= MAX_TEXT_CHARS


def test_required_sources_are_defined():
    for sid in (
        "NBPHS-3",
        "CHN-HTN-2018",
        "CHN-HTN-PC-2019",
        "CDS-2020",
        "ADA-6",
        "ACC-AHA-2017",
        "WHO-2021",
        "CDG-2022",
        "CPAG-2021",
    ):
        assert sid in sources.SOURCES
        assert len(sources.citation(sid)) > 30
    for row, (_, underlying) in sources.REFERENCE_ROWS.items():
        assert underlying and all(s in sources.SOURCES for s in underlying), row
        assert sources.citation(row)


def test_exercise_topic_tips_are_marked(catalog):
    for tip in catalog.tips.values():
        if tip.topic == "exercise":
            assert tip.when.get("exercise") is True, tip.id


def test_hypoglycaemia_tips_cite_ada_or_cds(catalog):
    for tip in catalog.tips_by_topic()["hypoglycaemia"]:
        assert {"ADA-6", "CDS-2020", "GLU-HYPO"} & set(tip.sources), tip.id
    rule = catalog.tip("hypoglycaemia-002")
    assert "15" in rule.text["zh_CN"] and "15-15" in rule.text["en"]


def test_medicine_tips_point_to_the_doctor(catalog):
    """Medicine tips never tell anyone to change a medicine; any talk of changing one says: ask the doctor."""
    for tip in catalog.tips_by_topic()["medicines"]:
        zh, en = tip.text["zh_CN"], tip.text["en"]
        if re.search("停|减|换|调整|漏服|双倍", zh):
            assert re.search("医生|药师", zh), tip.id
        if re.search(r"stop|reduce|cut down|change|switch|miss|double", en, re.IGNORECASE):
            assert re.search("doctor|pharmacist", en), tip.id


DIAGNOSIS = re.compile(r"you have|你患有|你得了|您患有|您得了", re.IGNORECASE)


def _all_texts(catalog):
    for tip in catalog.tips.values():
        for lang in LANGS:
            yield tip.id, tip.text[lang]
    for lesson in catalog.lessons.values():
        for lang in LANGS:
            yield lesson.id, lesson.title[lang] + " " + lesson.body[lang]
    for quiz in catalog.quizzes.values():
        for q in quiz.questions:
            for lang in LANGS:
                yield q.id, " ".join([q.prompt[lang], q.explanation[lang], *(o[lang] for o in q.options)])


def test_no_diagnosis_phrasing(catalog):
    offenders = [item_id for item_id, text in _all_texts(catalog) if DIAGNOSIS.search(text)]
    assert offenders == []


def test_chinese_texts_use_simplified_characters(catalog):
    # a few traditional-only characters that a machine translation into zh_TW would produce
    traditional = re.compile("[鹽醫藥壓練體動號選單們這說會]")
    bad = [
        item_id
        for item_id, text in _all_texts(catalog)
        if re.search(r"[\u4e00-\u9fff]", text) and traditional.search(text)
    ]
    assert bad == []


# ------------------------------------------------------------------------------- broken catalogues

GOOD_TIP = """\
- id: salt-001
  audience: [all]
  topic: salt
  source: CDG-2022
  text:
    zh_CN: "每天吃盐少于5克。"
    en: "Eat less than 5 g of salt a day."
- id: salt-002
  audience: [hypertension]
  topic: salt
  when: {bp_avg7_above_target: true}
  source: CHN-HTN-2018
  text:
    zh_CN: "血压偏高时少吃盐。"
    en: "Eat less salt while blood pressure runs high."
"""

GOOD_QUIZ = """\
id: quiz-salt
topic: salt
source: CDG-2022
title: {zh_CN: "减盐", en: "Salt"}
questions:
  - prompt: {zh_CN: "每天吃盐少于多少？", en: "Salt a day under?"}
    options:
      - {zh_CN: "5克", en: "5 g"}
      - {zh_CN: "10克", en: "10 g"}
    answer: 0
    explanation: {zh_CN: "少于5克。", en: "Under 5 g."}
"""

GOOD_LESSONS = """\
set:
  id: low-salt
  title: {zh_CN: "减盐", en: "Less salt"}
  description: {zh_CN: "减盐课程", en: "Salt lessons"}
lessons:
  - id: low-salt-1
    order: 1
    source: CDG-2022
    title: {zh_CN: "为什么", en: "Why"}
    body: {zh_CN: "少吃盐。", en: "Eat less salt."}
    quiz: quiz-salt
  - id: low-salt-2
    order: 2
    source: CDG-2022
    title: {zh_CN: "怎么做", en: "How"}
    body: {zh_CN: "用限盐勺。", en: "Use the salt spoon."}
"""


def write_catalogue(
    root: Path, tips: str = GOOD_TIP, quiz: str = GOOD_QUIZ, lessons: str = GOOD_LESSONS
) -> Path:
    for sub in ("tips", "quizzes", "lessons"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "tips" / "salt.yaml").write_text(textwrap.dedent(tips), encoding="utf-8")
    (root / "quizzes" / "salt.yaml").write_text(textwrap.dedent(quiz), encoding="utf-8")
    (root / "lessons" / "low-salt.yaml").write_text(textwrap.dedent(lessons), encoding="utf-8")
    return root


def test_fixture_catalogue_is_valid(tmp_path):
    cat = load_catalog(write_catalogue(tmp_path))
    assert set(cat.tips) == {"salt-001", "salt-002"}
    assert cat.lesson_set("low-salt").lessons[0].quiz_id == "quiz-salt"


def problems_for(tmp_path, **files) -> str:
    with pytest.raises(ContentError) as info:
        load_catalog(write_catalogue(tmp_path, **files))
    return str(info.value)


def test_missing_zh_cn_names_the_tip(tmp_path):
    msg = problems_for(tmp_path, tips=GOOD_TIP.replace('    zh_CN: "每天吃盐少于5克。"\n', ""))
    assert "salt-001" in msg and "zh_CN" in msg and "missing translation" in msg


def test_missing_en_names_the_tip(tmp_path):
    msg = problems_for(
        tmp_path, tips=GOOD_TIP.replace('    en: "Eat less salt while blood pressure runs high."\n', "")
    )
    assert "salt-002" in msg and "missing translation for en" in msg


def test_unknown_source_names_the_tip(tmp_path):
    msg = problems_for(tmp_path, tips=GOOD_TIP.replace("source: CHN-HTN-2018", "source: MY-BLOG"))
    assert "salt-002" in msg and "unknown source 'MY-BLOG'" in msg


def test_bad_condition_key_names_the_tip(tmp_path):
    msg = problems_for(tmp_path, tips=GOOD_TIP.replace("bp_avg7_above_target: true", "bp_high: true"))
    assert "salt-002" in msg and "unknown condition key 'bp_high'" in msg


def test_wrong_condition_type_names_the_tip(tmp_path):
    msg = problems_for(
        tmp_path, tips=GOOD_TIP.replace("bp_avg7_above_target: true", "bp_avg7_above_target: 'yes'")
    )
    assert "salt-002" in msg and "wrong type" in msg


def test_duplicate_id_names_the_tip(tmp_path):
    msg = problems_for(tmp_path, tips=GOOD_TIP.replace("id: salt-002", "id: salt-001"))
    assert "salt-001" in msg and "duplicate id" in msg


def test_bad_quiz_index_names_the_quiz(tmp_path):
    msg = problems_for(tmp_path, quiz=GOOD_QUIZ.replace("answer: 0", "answer: 2"))
    assert "quiz-salt" in msg and "out of range" in msg


def test_lesson_with_unknown_quiz_names_the_lesson(tmp_path):
    msg = problems_for(tmp_path, lessons=GOOD_LESSONS.replace("quiz: quiz-salt", "quiz: quiz-nope"))
    assert "low-salt-1" in msg and "quiz-nope" in msg


def test_unknown_topic_and_audience(tmp_path):
    bad = GOOD_TIP.replace("audience: [all]", "audience: [everyone]").replace(
        "topic: salt\n  when:", "topic: salty\n  when:"
    )
    msg = problems_for(tmp_path, tips=bad)
    assert "salt-001" in msg and "unknown audience 'everyone'" in msg
    assert "salt-002" in msg and "unknown topic 'salty'" in msg


def test_empty_and_overlong_text(tmp_path):
    long_text = "盐" * (MAX_TEXT_CHARS + 1)
    bad = GOOD_TIP.replace('"每天吃盐少于5克。"', '"  "').replace('"血压偏高时少吃盐。"', f'"{long_text}"')
    msg = problems_for(tmp_path, tips=bad)
    assert "salt-001" in msg and "empty" in msg
    assert "salt-002" in msg and f"max {MAX_TEXT_CHARS}" in msg


def test_every_problem_is_listed_at_once(tmp_path):
    bad_tips = GOOD_TIP.replace("source: CDG-2022", "source: NOPE").replace("bp_avg7_above_target", "bp_high")
    with pytest.raises(ContentError) as info:
        load_catalog(
            write_catalogue(tmp_path, tips=bad_tips, quiz=GOOD_QUIZ.replace("answer: 0", "answer: 9"))
        )
    problems = info.value.problems
    assert any("salt-001" in p and "NOPE" in p for p in problems)
    assert any("salt-002" in p and "bp_high" in p for p in problems)
    assert any("quiz-salt" in p and "out of range" in p for p in problems)


def test_unreadable_yaml_names_the_file(tmp_path):
    msg = problems_for(tmp_path, tips="- id: salt-001\n  text: [unclosed\n")
    assert "salt.yaml" in msg
