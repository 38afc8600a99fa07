"""Golden tests for mempo_gym.metrics against the official SQuAD v1.1 / HotpotQA rules.

Expected values are hand-computed from the definitions in SQuAD's ``evaluate-v1.1.py``
and HotpotQA's ``hotpot_evaluate_v1.py``; the property test compares with an
independent re-statement of those scripts.
"""

from __future__ import annotations

import doctest
import json
import re
import string
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mempo_gym.metrics as metrics
from mempo_gym.metrics import (
    AnswerScore,
    best_gold_match,
    exact_match,
    extract_answer,
    normalize_answer,
    score_answer,
    split_answer,
    token_f1,
)


def test_doctests() -> None:
    result = doctest.testmod(metrics)
    assert result.attempted >= 10
    assert result.failed == 0


# --- normalisation --------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("the Eiffel Tower", "eiffel tower"),
        ("  A  tale of   TWO cities. ", "tale of two cities"),
        ("U.S.A.", "usa"),
        ("rock-n-roll", "rocknroll"),
        ("Theatre an der Wien", "theatre der wien"),  # "an" is an article token
        ("Anne Thea", "anne thea"),  # articles only as whole words
        ("the", ""),
        ("", ""),
        ("Gesellschaft mit BESCHRÄNKTER Haftung", "gesellschaft mit beschränkter haftung"),
        # the official script strips ASCII punctuation only
        ("“Hello”", "“hello”"),
        ("1914–1918", "1914–1918"),
        ("Café", "café"),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


# --- exact match and token F1 ------------------------------------------------------


def _frac(x: float) -> Fraction:
    return Fraction(x).limit_denominator(1000)


@pytest.mark.parametrize(
    "prediction, gold, em, f1, precision, recall",
    [
        ("the Eiffel Tower", "Eiffel Tower", 1, Fraction(1), Fraction(1), Fraction(1)),
        ("Eiffel Tower in Paris", "the Eiffel Tower", 0, Fraction(2, 3), Fraction(1, 2), Fraction(1)),
        ("Barack Obama", "President Barack Hussein Obama", 0, Fraction(2, 3), Fraction(1), Fraction(1, 2)),
        # repeated tokens are counted with multiplicity (Counter intersection)
        ("the cat cat cat", "cat", 0, Fraction(1, 2), Fraction(1, 3), Fraction(1)),
        ("cat dog cat", "cat cat bird", 0, Fraction(2, 3), Fraction(2, 3), Fraction(2, 3)),
        ("U.S.A.", "USA", 1, Fraction(1), Fraction(1), Fraction(1)),
        ("rock-n-roll", "rock n roll", 0, Fraction(0), Fraction(0), Fraction(0)),
        ("Paris", "London", 0, Fraction(0), Fraction(0), Fraction(0)),
        # HotpotQA yes/no/noanswer rule
        ("yes", "no", 0, Fraction(0), Fraction(0), Fraction(0)),
        ("No.", "no", 1, Fraction(1), Fraction(1), Fraction(1)),
        ("yes, definitely", "yes", 0, Fraction(0), Fraction(0), Fraction(0)),
        ("yes", "yes it is", 0, Fraction(0), Fraction(0), Fraction(0)),
        ("noanswer", "no answer", 0, Fraction(0), Fraction(0), Fraction(0)),
        # Unicode: lower-cased, not accent-folded
        ("Gesellschaft mit beschränkter Haftung", "gesellschaft mit BESCHRÄNKTER haftung",
         1, Fraction(1), Fraction(1), Fraction(1)),
        ("Café Müller", "Cafe Müller", 0, Fraction(1, 2), Fraction(1, 2), Fraction(1, 2)),
        ("北京 大学", "北京", 0, Fraction(2, 3), Fraction(1, 2), Fraction(1)),
        # empty prediction; two empty answers: EM 1 but F1 0, as in SQuAD v1.1
        ("", "Paris", 0, Fraction(0), Fraction(0), Fraction(0)),
        ("", "the", 1, Fraction(0), Fraction(0), Fraction(0)),
    ],
)
def test_golden_pairs(
    prediction: str, gold: str, em: int, f1: Fraction, precision: Fraction, recall: Fraction
) -> None:
    assert exact_match(prediction, gold) == float(em)
    got_f1, got_p, got_r = token_f1(prediction, gold)
    assert (_frac(got_f1), _frac(got_p), _frac(got_r)) == (f1, precision, recall)


def test_yes_no_rule_differs_from_plain_squad() -> None:
    # Plain SQuAD F1 would give 2/3 here (p=1/2, r=1); HotpotQA zeroes it.
    assert token_f1("yes definitely", "yes") == (0.0, 0.0, 0.0)
    assert token_f1("definitely yes", "definitely") != (0.0, 0.0, 0.0)


def test_max_over_aliases_takes_precision_recall_from_best_f1_alias() -> None:
    # alias 1: p=1/3 r=1 f1=1/2 ; alias 2: p=2/3 r=2/3 f1=2/3 -> alias 2 wins
    s = best_gold_match("Barack Obama Jr", ["Obama", "Barack Hussein Obama"])
    assert s.best_gold == "Barack Hussein Obama"
    assert (_frac(s.f1), _frac(s.precision), _frac(s.recall)) == (
        Fraction(2, 3), Fraction(2, 3), Fraction(2, 3))
    assert s.em == 0.0


def test_exact_match_is_max_over_aliases() -> None:
    s = best_gold_match("Obama", ["Barack Obama", "obama."])
    assert s.em == 1.0 and s.f1 == 1.0 and s.best_gold == "obama."


def test_ties_keep_first_alias_and_zero_keeps_first() -> None:
    assert best_gold_match("red", ["red car", "red bus"]).best_gold == "red car"
    assert best_gold_match("blue", ["red car", "green"]).best_gold == "red car"


@pytest.mark.parametrize("bad", [[], (), "Paris"])
def test_best_gold_match_rejects_bad_golds(bad: object) -> None:
    with pytest.raises(ValueError, match="non-empty sequence"):
        best_gold_match("Paris", bad)  # type: ignore[arg-type]


def test_best_gold_match_rejects_non_string_alias() -> None:
    with pytest.raises(TypeError, match="strings"):
        best_gold_match("Paris", ["Paris", 3])  # type: ignore[list-item]


# --- multi-objective scoring ----------------------------------------------------


def test_score_answer_single_objective() -> None:
    s = score_answer("the Eiffel Tower", [["Eiffel Tower", "Tour Eiffel"]])
    assert isinstance(s, AnswerScore)
    assert (s.em, s.f1, s.precision, s.recall) == (1.0, 1.0, 1.0, 1.0)
    assert len(s.per_objective) == 1


def test_score_answer_averages_objectives() -> None:
    golds = [["Eiffel Tower"], ["1889"], ["Gustave Eiffel"]]
    s = score_answer(" Tower ;1889;  Eiffel Gustave ", golds)
    # part 1: p=1 r=1/2 f1=2/3 ; part 2: exact ; part 3: bag-of-words exact, EM 0
    assert [o.prediction for o in s.per_objective] == ["Tower", "1889", "Eiffel Gustave"]
    assert [o.em for o in s.per_objective] == [0.0, 1.0, 0.0]
    assert _frac(s.em) == Fraction(1, 3)
    assert _frac(s.f1) == Fraction(1, 3) * (Fraction(2, 3) + 1 + 1)
    assert _frac(s.precision) == Fraction(1)
    assert _frac(s.recall) == Fraction(1, 3) * (Fraction(1, 2) + 1 + 1)


def test_score_answer_missing_and_extra_parts() -> None:
    missing = score_answer("Paris", [["Paris"], ["France"]])
    assert (missing.em, missing.f1) == (0.5, 0.5)
    assert missing.per_objective[1].prediction == ""
    extra = score_answer("Paris; France; Europe; Earth", [["Paris"], ["France"]])
    assert (extra.em, extra.f1) == (1.0, 1.0)
    assert len(extra.per_objective) == 2


def test_score_answer_single_objective_splits_on_separator() -> None:
    s = score_answer("Paris; London", [["Paris"]])
    assert s.em == 1.0
    assert split_answer("a;;b", 3) == ["a", "", "b"]


def test_score_answer_empty_prediction() -> None:
    s = score_answer("", [["Paris"], ["yes"]])
    assert (s.em, s.f1, s.precision, s.recall) == (0.0, 0.0, 0.0, 0.0)


def test_score_answer_yes_no_objective() -> None:
    s = score_answer("no; 1972", [["yes"], ["December 1972", "1972"]])
    assert [o.f1 for o in s.per_objective] == [0.0, 1.0]
    assert s.per_objective[1].best_gold == "1972"


def test_score_answer_to_dict_is_json() -> None:
    s = score_answer("Tower; 1889", [["Eiffel Tower"], ["1889"]])
    d = json.loads(json.dumps(s.to_dict()))
    assert d["em"] == 0.5
    assert d["per_objective"][0] == {
        "prediction": "Tower", "em": 0.0, "f1": pytest.approx(2 / 3),
        "precision": 1.0, "recall": 0.5, "best_gold": "Eiffel Tower",
    }


@pytest.mark.parametrize("golds", [[], "Paris"])
def test_score_answer_rejects_bad_golds(golds: object) -> None:
    with pytest.raises(ValueError, match="one sequence of gold aliases per question"):
        score_answer("Paris", golds)  # type: ignore[arg-type]


def test_score_answer_rejects_non_string_prediction() -> None:
    with pytest.raises(TypeError, match="prediction must be a str"):
        score_answer(b"Paris", [["Paris"]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty sequence"):
        score_answer("Paris", [["Paris"], []])


# --- answer extraction ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<answer>Paris</answer>", "Paris"),
        ("<mem>m</mem><think>t</think><answer>  Paris; 1889 \n</answer>", "Paris; 1889"),
        ("<answer>Rome</answer> hmm <answer>Paris</answer> trailing", "Paris"),
        ("<answer>a</answer><answer>b", "a"),  # unclosed final tag does not count
        ("<answer>a<answer>b</answer>", "b"),  # innermost opening before the last close
        ("<answer></answer>", ""),
        ("<search>q</search>", None),
        ("</answer><answer>", None),
        ("", None),
        ("<ANSWER>x</ANSWER>", None),  # tags are case-sensitive, as in the MemPO protocol
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


# --- agreement with an independent statement of the official scripts ----------------


def _reference_normalize(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _reference_f1(prediction: str, gold: str) -> tuple[float, float, float]:
    p, g = _reference_normalize(prediction), _reference_normalize(gold)
    if p in ("yes", "no", "noanswer") and p != g:
        return 0.0, 0.0, 0.0
    if g in ("yes", "no", "noanswer") and p != g:
        return 0.0, 0.0, 0.0
    pt, gt = p.split(), g.split()
    same = sum((Counter(pt) & Counter(gt)).values())
    if same == 0:
        return 0.0, 0.0, 0.0
    prec, rec = same / len(pt), same / len(gt)
    return 2 * prec * rec / (prec + rec), prec, rec


_answer_text = st.text(
    alphabet=st.sampled_from(list("abc the an yes no.,-!'\"é ")), max_size=25
)


@settings(max_examples=300, deadline=None)
@given(_answer_text, _answer_text)
def test_matches_reference_definition(prediction: str, gold: str) -> None:
    assert normalize_answer(prediction) == _reference_normalize(prediction)
    assert token_f1(prediction, gold) == _reference_f1(prediction, gold)
    f1, p, r = token_f1(prediction, gold)
    assert 0.0 <= f1 <= 1.0 and 0.0 <= p <= 1.0 and 0.0 <= r <= 1.0
    if exact_match(prediction, gold) and normalize_answer(gold):
        assert f1 == 1.0
