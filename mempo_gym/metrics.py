"""Answer scoring: SQuAD v1.1 exact match / token F1 with the HotpotQA yes/no rule.

The functions reproduce the official evaluation scripts:

* normalisation, exact match and token F1 from the SQuAD v1.1 ``evaluate-v1.1.py``
  (lower-case, drop ASCII punctuation, drop the articles *a/an/the*, squeeze spaces);
* the HotpotQA ``hotpot_evaluate_v1.py`` rule: when the prediction or the gold
  normalises to ``yes``, ``no`` or ``noanswer`` and the two differ, F1, precision and
  recall are all 0;
* the maximum over gold aliases (SQuAD ``metric_max_over_ground_truths``); precision and
  recall are those of the alias with the best F1 (first one on ties).

MemPO tasks can ask several questions at once (multi-objective, paper Sec. 3); the agent
answers ``a1; a2; ...`` and :func:`score_answer` scores part *i* against the golds of
question *i* and averages. Only the final ``<answer>…</answer>`` of a trajectory counts
(:func:`extract_answer`).

>>> s = score_answer("Eiffel Tower; 1889", [["the Eiffel Tower"], ["1889", "in 1889"]])
>>> (s.em, s.f1)
(1.0, 1.0)
>>> score_answer("Paris", [["Paris"], ["France"]]).em
0.5
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Sequence

__all__ = [
    "ObjectiveScore",
    "AnswerScore",
    "normalize_answer",
    "exact_match",
    "token_f1",
    "best_gold_match",
    "score_answer",
    "extract_answer",
]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SPECIAL_ANSWERS = frozenset({"yes", "no", "noanswer"})
ANSWER_SEPARATOR = ";"


def normalize_answer(text: str) -> str:
    """Normalise an answer exactly as the SQuAD v1.1 evaluation script does.

    Only ASCII punctuation (``string.punctuation``) is removed, as in the official
    script; Unicode letters are lower-cased but not accent-folded.

    >>> normalize_answer("The  Eiffel-Tower!")
    'eiffeltower'
    >>> normalize_answer("An apple, a pear & THE plum")
    'apple pear plum'
    >>> normalize_answer("Gesellschaft mit BESCHRÄNKTER Haftung")
    'gesellschaft mit beschränkter haftung'
    """
    lowered = text.lower()
    no_punct = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    no_articles = _ARTICLES.sub(" ", no_punct)
    return " ".join(no_articles.split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when both strings normalise to the same text, else 0.0.

    >>> exact_match("the Eiffel Tower", "Eiffel Tower")
    1.0
    >>> exact_match("Eiffel", "Eiffel Tower")
    0.0
    """
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> tuple[float, float, float]:
    """Token-level ``(f1, precision, recall)`` of one prediction against one gold.

    SQuAD v1.1 bag-of-tokens overlap plus the HotpotQA yes/no/noanswer rule. As in the
    official scripts, no overlap (including two empty answers) gives zeros.

    >>> token_f1("Eiffel Tower in Paris", "the Eiffel Tower")
    (0.6666666666666666, 0.5, 1.0)
    >>> token_f1("no", "yes")
    (0.0, 0.0, 0.0)
    >>> token_f1("yes it is", "yes")  # gold is "yes" and the prediction differs
    (0.0, 0.0, 0.0)
    """
    norm_pred = normalize_answer(prediction)
    norm_gold = normalize_answer(gold)
    if norm_pred != norm_gold and (norm_pred in _SPECIAL_ANSWERS or norm_gold in _SPECIAL_ANSWERS):
        return 0.0, 0.0, 0.0
    pred_tokens = norm_pred.split()
    gold_tokens = norm_gold.split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0, 0.0, 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    f1 = 2 * precision * recall / (precision + recall)
    return f1, precision, recall


@dataclass(frozen=True)
class ObjectiveScore:
    """Score of one answer part against the golds of one question.

    Attributes:
        prediction: the answer part that was scored ("" when the part was missing).
        em: max exact match over the gold aliases (0.0 or 1.0).
        f1: max token F1 over the gold aliases.
        precision: precision against the best-F1 alias.
        recall: recall against the best-F1 alias.
        best_gold: the alias with the best F1 (the first alias when every F1 is 0).
    """

    prediction: str
    em: float
    f1: float
    precision: float
    recall: float
    best_gold: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def best_gold_match(prediction: str, golds: Sequence[str]) -> ObjectiveScore:
    """Score ``prediction`` against every gold alias; keep the best (SQuAD max-over-golds).

    >>> s = best_gold_match("Eiffel Tower", ["Tour Eiffel", "the Eiffel Tower"])
    >>> (s.em, s.f1, s.best_gold)
    (1.0, 1.0, 'the Eiffel Tower')
    """
    if isinstance(golds, str) or not golds:
        raise ValueError(
            f"golds must be a non-empty sequence of answer strings, got {golds!r}"
        )
    em = 0.0
    best: tuple[float, float, float] = (-1.0, 0.0, 0.0)
    best_gold = golds[0]
    for gold in golds:
        if not isinstance(gold, str):
            raise TypeError(f"gold answers must be strings, got {type(gold).__name__}: {gold!r}")
        em = max(em, exact_match(prediction, gold))
        scores = token_f1(prediction, gold)
        if scores[0] > best[0]:
            best, best_gold = scores, gold
    f1, precision, recall = best
    return ObjectiveScore(prediction, em, f1, precision, recall, best_gold)


@dataclass(frozen=True)
class AnswerScore:
    """Averaged score of a (possibly multi-part) answer; per-part details kept."""

    em: float
    f1: float
    precision: float
    recall: float
    per_objective: tuple[ObjectiveScore, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "em": self.em,
            "f1": self.f1,
            "precision": self.precision,
            "recall": self.recall,
            "per_objective": [o.to_dict() for o in self.per_objective],
        }


def split_answer(prediction: str, num_objectives: int) -> list[str]:
    """Split ``a1; a2; ...`` into ``num_objectives`` stripped parts.

    Missing parts become ``""``; parts beyond ``num_objectives`` are dropped.

    >>> split_answer(" Paris ;1889; extra", 2)
    ['Paris', '1889']
    >>> split_answer("Paris", 3)
    ['Paris', '', '']
    """
    parts = [p.strip() for p in prediction.split(ANSWER_SEPARATOR)]
    parts = parts[:num_objectives]
    return parts + [""] * (num_objectives - len(parts))


def score_answer(prediction: str, golds: Sequence[Sequence[str]]) -> AnswerScore:
    """Score an answer to a task with ``len(golds)`` questions.

    The prediction is split on ``;`` (every task, single-question ones included); part
    *i* is scored against ``golds[i]`` (answer plus aliases) with :func:`best_gold_match`;
    a missing part scores 0 and extra parts are ignored. The four numbers are the means
    over objectives. A gold containing ``;`` can therefore never be matched (none of the
    supported datasets has one).

    >>> s = score_answer("the Eiffel Tower", [["Eiffel Tower"]])
    >>> s.em, s.f1, s.per_objective[0].best_gold
    (1.0, 1.0, 'Eiffel Tower')
    >>> round(score_answer("Tower; 1889; 3", [["Eiffel Tower"], ["1889"]]).f1, 4)
    0.8333
    """
    if isinstance(prediction, bytes) or not isinstance(prediction, str):
        raise TypeError(f"prediction must be a str, got {type(prediction).__name__}")
    if isinstance(golds, str) or not golds:
        raise ValueError(
            "golds must be a non-empty sequence with one sequence of gold aliases per "
            f"question, got {golds!r}"
        )
    parts = split_answer(prediction, len(golds))
    per_objective = tuple(best_gold_match(part, gold) for part, gold in zip(parts, golds))
    n = len(per_objective)
    return AnswerScore(
        em=sum(o.em for o in per_objective) / n,
        f1=sum(o.f1 for o in per_objective) / n,
        precision=sum(o.precision for o in per_objective) / n,
        recall=sum(o.recall for o in per_objective) / n,
        per_objective=per_objective,
    )


_OPEN_TAG = "<answer>"
_CLOSE_TAG = "</answer>"


def extract_answer(text: str) -> str | None:
    """Content (stripped) of the final complete ``<answer>…</answer>`` span, else None.

    Only the last answer of a trajectory is scored; an unclosed trailing ``<answer>``
    does not count.

    >>> extract_answer("<answer>Rome</answer> wait <answer> Paris </answer>")
    'Paris'
    >>> extract_answer("<think>no answer yet</think>") is None
    True
    >>> extract_answer("<answer>a</answer><answer>b")
    'a'
    """
    close = text.rfind(_CLOSE_TAG)
    open_ = text.rfind(_OPEN_TAG, 0, close) if close != -1 else -1
    if open_ == -1:
        return None
    return text[open_ + len(_OPEN_TAG):close].strip()
