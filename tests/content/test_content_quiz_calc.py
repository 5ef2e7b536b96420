"""Quiz scoring and the household salt / oil calculators."""

from __future__ import annotations

import pytest

from content.catalog import (
    OIL_LIMIT_G,
    SALT_LIMIT_G,
    household_oil,
    household_salt,
    load_catalog,
    score_quiz,
)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_all_correct(catalog):
    quiz = catalog.quiz("quiz-salt")
    result = score_quiz(quiz, [q.answer for q in quiz.questions])
    assert (result.correct, result.total, result.percent) == (4, 4, 100.0)
    assert result.meets_target


def test_partly_correct_and_missing_answers(catalog):
    quiz = catalog.quiz("quiz-oil")  # 3 questions
    answers = [q.answer for q in quiz.questions]
    wrong = (answers[1] + 1) % len(quiz.questions[1].options)
    result = score_quiz(quiz, [answers[0], wrong, answers[2]])
    assert (result.correct, result.total, result.percent) == (2, 3, 66.7)
    assert not result.meets_target
    assert score_quiz(quiz, [answers[0]]).correct == 1  # unanswered counts as wrong
    assert score_quiz(quiz, []).percent == 0.0


def test_too_many_answers(catalog):
    quiz = catalog.quiz("quiz-weight")
    with pytest.raises(ValueError):
        score_quiz(quiz, [0] * (len(quiz.questions) + 1))


def test_quiz_texts(catalog):
    q = catalog.quiz("quiz-hypoglycaemia").questions[1]
    assert "15" in q.prompt_for("zh_CN") and len(q.options_for("en")) == 3
    assert q.explanation_for("en")


def test_household_salt_example():
    r = household_salt(3, 500, 30)
    assert r.per_person_g == 5.6 and float(r) == 5.6
    assert r.above_limit and r.limit_g == SALT_LIMIT_G == 5.0


def test_household_salt_within_limit():
    r = household_salt(4, 400, 30)
    assert r.per_person_g == pytest.approx(3.3) and not r.above_limit
    assert not household_salt(2, 300, 30).above_limit  # exactly 5.0 is not above


def test_household_oil():
    r = household_oil(3, 4500, 30)
    assert r.per_person_g == 50.0 and r.above_limit and r.limit_g == OIL_LIMIT_G == 30.0
    assert not household_oil(2, 1500, 30).above_limit  # 25 g


@pytest.mark.parametrize(("people", "grams", "days"), [(0, 500, 30), (3, 500, 0), (3, -1, 30)])
def test_calculator_rejects_nonsense(people, grams, days):
    with pytest.raises(ValueError):
        household_salt(people, grams, days)
    with pytest.raises(ValueError):
        household_oil(people, grams, days)
