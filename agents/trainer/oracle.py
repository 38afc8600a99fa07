"""A compact oracle demonstrator for SFT on SynthWiki (bridge and comparison questions).

It reads the golds (a control agent) and walks each question's supporting documents in
hop order, keeping a compact memory with one entry per question. The default
``style="relations"`` keeps in each entry what is still to be followed, so that every turn's
decision can be read off the memory and the newest document alone:

* ``i : rel2 rel1 X`` while a chain is open (X = the entity to look up next, also the turn's
  query; ``rel1`` = the relation to follow from X's document, named as in the question:
  director, author, birthplace, employer, founder, headquarters, country, capital, year; the
  relations keep the question's order, so the first entry is the question, condensed);
* ``i : earlier A 1800 , year rel X`` in a comparison (both chains and the direction; a
  chain becomes ``name year`` once its year is read), and ``i : earlier A 1800 , B 1750 = B``
  on the turn the comparison is decided;
* ``i : ANSWER`` once the question is answered (no relation left: every hop, the last one
  included, is the same rewrite, so answering needs no different first token).

With ``numbering="n/k"`` every entry is labelled with the number of questions too
(``1/2 : Kipa | 2/2 : later year Digu , year Piza``): whether a finished entry is the last one,
and the turn answers, is then read off the entry instead of the question list.

``style="compact"`` is the earlier, shorter form without the relations (``i : X``,
``i : A 1800 , X``, ``i = ANSWER``), kept for comparison. Every turn is
``<mem> … </mem> <search> X </search>`` (X = the open entry's entity) or, at the end,
``<mem> … </mem> <answer> a1 ; a2 </answer>``. No ``<think>``: a small
model pays for every generated token (``shared/notes/tiny-model-feasibility.md``), and
the memory already states the plan.

With ``mistake_rate`` it sometimes searches a decoy first (a name from the world that the
question does not need); :meth:`excluded_turns` reports those turns so SFT trains only
the *recovery*: the next turn sees unrelated ``<information>`` and the unchanged memory,
and searches the memory's entity again.

Requires ``Question.supporting_titles`` in hop order (SynthWiki) and, for comparisons,
``Question.supporting_texts`` (the year of each chain's last entity is read from it).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from mempo_gym.agent import Agent
from mempo_gym.records import Question, Task

_YEAR = re.compile(r"\b(\d{3,4})\b")


@dataclass
class _Plan:
    """One question's walk: queries in order and, after each, the memory entry it leads to."""

    queries: list[str]
    entries: list[str]  # entries[j] = memory entry after reading the result of queries[j]
    first_entry: str  # entry before the first search
    answer: str = ""  # the question's answer (what the last entry settles)
    done_entry: str = ""  # how the answered question is kept in later turns' memory


def _year(text: str) -> str:
    match = _YEAR.search(text)
    if match is None:
        raise ValueError(f"no year in supporting text {text!r}")
    return match.group(1)


#: How each document template links its title to the next entity (SynthWiki's templates), as the
#: relation's noun in the question: ``(pattern before the target, noun)``; checked in this order.
_LINKS: tuple[tuple[str, str], ...] = (
    (r"is a film by ", "director"), (r"is a book by ", "author"), (r"was born in ", "birthplace"),
    (r"works for ", "employer"), (r"founded in \d+ by ", "founder"), (r"is a city in ", "country"),
    (r"is a (?:company|university|bank) in ", "headquarters"), (r"with capital ", "capital"),
)


def relation_noun(text: str, target: str) -> str:
    """The relation by which the document ``text`` points at ``target`` ("director", ...,
    ``"year"`` when the target is the document's year)."""
    for before, noun in _LINKS:
        if re.search(before + re.escape(target) + r"\b", text):
            return noun
    if target.isdigit() and re.search(r"\b" + re.escape(target) + r"\b", text):
        return "year"
    raise ValueError(f"no relation leads to {target!r} in {text!r}")


def first_difference(a: str, b: str) -> tuple[str, str]:
    """The first digits in which two different years differ (left-padded with zeros to one
    length): ``("8", "4")`` for 2018 and 2014, ``("9", "8")`` for 1970 and 1800."""
    width = max(len(a), len(b))
    for x, y in zip(a.zfill(width), b.zfill(width)):
        if x != y:
            return x, y
    raise ValueError(f"the years {a} and {b} are equal; a comparison needs two different years")


def digit_check(a: str, b: str) -> str:
    """The comparison of two years written out at their first differing digit: ``8 > 4``."""
    x, y = first_difference(a, b)
    return f"{x} {'<' if x < y else '>'} {y}"


def digit_walk(a: str, b: str) -> str:
    """Two years compared digit by digit, left to right, up to their first difference:
    ``2 = 2 , 0 = 0 , 1 = 1 , 8 > 4`` for 2018 and 2014. Each step is a copy of one digit of
    each year and a comparison of two single digits, never of two four-digit numbers."""
    width = max(len(a), len(b))
    steps = []
    for x, y in zip(a.zfill(width), b.zfill(width)):
        steps.append(f"{x} {'=' if x == y else '<' if x < y else '>'} {y}")
        if x != y:
            return " , ".join(steps)
    raise ValueError(f"the years {a} and {b} are equal; a comparison needs two different years")


#: How a comparison's decision entry states its reason before the winner (``decision_reason``).
DECISION_REASONS = {"none": None, "first-digit": digit_check, "digits": digit_walk}

#: How an entry is labelled (``numbering``): ``"n"`` writes the question's number (``2 : …``);
#: ``"n/k"`` also the number of questions (``2/4 : …``), so that whether a finished entry is the
#: last one, and the turn answers, is read off the entry itself instead of the question list.
NUMBERINGS = ("n", "n/k")


def entry_label(n: int, total: int | None = None) -> str:
    """Question ``n``'s entry label: ``"2"``, or ``"2/4"`` given the ``total`` number of questions."""
    if total is not None and not 1 <= n <= total:
        raise ValueError(f"question {n} does not exist among {total} questions")
    return str(n) if total is None else f"{n}/{total}"


def comparison_winner(direction: str, a: tuple[str, str], b: tuple[str, str]) -> str:
    """The name of the ``(name, year)`` pair that is ``"earlier"`` / ``"later"``."""
    (name_a, year_a), (name_b, year_b) = a, b
    if int(year_a) == int(year_b):
        raise ValueError(f"{name_a} and {name_b} share the year {year_a}; a comparison needs two different years")
    if direction not in ("earlier", "later"):
        raise ValueError(f"direction must be 'earlier' or 'later', got {direction!r}")
    return name_a if (int(year_a) < int(year_b)) == (direction == "earlier") else name_b


def decision_entry(n: int, direction: str, a: tuple[str, str], b: tuple[str, str], reason: str = "none",
                   total: int | None = None) -> str:
    """Question ``n``'s memory entry on the turn its comparison is decided:
    ``1 : earlier Kiki 2018 , Futusi 2014 = Futusi``; a ``reason`` of :data:`DECISION_REASONS`
    writes ``: 8 > 4`` (``"first-digit"``) or ``: 2 = 2 , 0 = 0 , 1 = 1 , 8 > 4`` (``"digits"``)
    before the ``=``; a ``total`` labels the entry ``1/2`` (:func:`entry_label`)."""
    if reason not in DECISION_REASONS:
        raise ValueError(f"decision reason must be one of {', '.join(DECISION_REASONS)}, got {reason!r}")
    explain = DECISION_REASONS[reason]
    why = f" : {explain(a[1], b[1])}" if explain else ""
    label = entry_label(n, total)
    return f"{label} : {direction} {a[0]} {a[1]} , {b[0]} {b[1]}{why} = {comparison_winner(direction, a, b)}"


def plan_question(index: int, question: Question, style: str = "relations", decision_reason: str = "none",
                  total: int | None = None) -> _Plan:
    """The hop-by-hop memory entries of question ``index`` (0-based).

    ``style="relations"`` (the default) keeps the relations still to follow in the entry, in
    the question's own order (outermost first, the next one beside the entity), so each turn's
    decision is local: ``1 : country birthplace director Gavi`` -> search Gavi ->
    ``1 : country birthplace Kora Pobi`` -> search Kora Pobi -> ``1 : country Zunobo`` -> ... ->
    ``1 : Vadovo``. Every hop is the same rewrite (drop the relation beside the entity, put its
    target in the entity's place); an entry with no relation left is answered. A comparison keeps
    both chains and the direction, writes each chain's year as it is read and shows the decision
    once: ``1 : earlier Kiki 2018 , Futusi 2014 = Futusi`` (later turns keep ``1 : Futusi``).
    ``decision_reason`` writes the decision's reason before it (:func:`decision_entry`): the
    first digits in which the two years differ, ``1 : earlier Kiki 2018 , Futusi 2014 : 8 > 4 =
    Futusi``, or the digit-by-digit walk to them, ``: 2 = 2 , 0 = 0 , 1 = 1 , 8 > 4 = Futusi``,
    so that the model compares single digits instead of two four-digit numbers at once.
    A ``total`` (the task's number of questions) labels every entry ``n/total`` instead of ``n``
    (:func:`entry_label`). ``style="compact"`` is the earlier, shorter form (``1 : Kora Pobi``,
    ``1 : Busano 2000 , Demi``, ``1 = Vadovo``)."""
    if style == "compact":
        if total is not None:
            raise ValueError("the compact style numbers entries 'n' only; use style='relations' for 'n/k'")
        return _plan_compact(index, question)
    if style != "relations":
        raise ValueError(f"style must be 'relations' or 'compact', got {style!r}")
    titles, texts = list(question.supporting_titles), list(question.supporting_texts)
    if not titles or len(texts) != len(titles):
        raise ValueError(f"question {index + 1} needs supporting_titles and supporting_texts; the oracle reads them")
    n, answer = entry_label(index + 1, total), question.answers[0]

    def open_chain(j: int, nouns: Sequence[str]) -> str:  # nouns innermost first -> written outermost first
        return " ".join([*reversed(nouns), titles[j]])

    if question.kind != "comparison":
        nouns = [relation_noun(texts[j], titles[j + 1]) for j in range(len(titles) - 1)]
        nouns.append(relation_noun(texts[-1], answer))
        entries = [f"{n} : {open_chain(j, nouns[j:])}" for j in range(1, len(titles))] + [f"{n} : {answer}"]
        return _Plan(titles, entries, f"{n} : {open_chain(0, nouns)}", answer, f"{n} : {answer}")
    split = next((s for s in range(1, len(titles)) if titles[s] in question.text), None)
    direction = next((d for d in ("earlier", "later") if d in question.text), None)
    if split is None or direction is None:
        raise ValueError(f"comparison question {index + 1} cannot be split into its two chains")
    left_nouns = [relation_noun(texts[j], titles[j + 1]) for j in range(split - 1)] + ["year"]
    right_nouns = [relation_noun(texts[j], titles[j + 1]) for j in range(split, len(titles) - 1)] + ["year"]
    right_open = open_chain(split, right_nouns)
    left_year, right_year = _year(texts[split - 1]), _year(texts[-1])
    left_done = f"{titles[split - 1]} {left_year}"
    decision = decision_entry(index + 1, direction, (titles[split - 1], left_year), (titles[-1], right_year),
                              decision_reason, total)
    if not decision.endswith(f" = {answer}"):
        raise ValueError(f"comparison question {index + 1}: its years decide {decision!r}, its gold is {answer!r}")
    entries = [f"{n} : {direction} {open_chain(j, left_nouns[j:])} , {right_open}" for j in range(1, split)]
    entries.append(f"{n} : {direction} {left_done} , {right_open}")
    entries += [f"{n} : {direction} {left_done} , {open_chain(j, right_nouns[j - split:])}"
                for j in range(split + 1, len(titles))]
    entries.append(decision)
    return _Plan(titles, entries, f"{n} : {direction} {open_chain(0, left_nouns)} , {right_open}", answer,
                 f"{n} : {answer}")


def _plan_compact(index: int, question: Question) -> _Plan:
    titles = list(question.supporting_titles)
    if not titles:
        raise ValueError(f"question {index + 1} has no supporting_titles; the oracle needs them")
    n = index + 1
    answer = question.answers[0]
    if question.kind != "comparison":
        entries = [f"{n} : {t}" for t in titles[1:]] + [f"{n} = {answer}"]
        return _Plan(titles, entries, f"{n} : {titles[0]}", answer, f"{n} = {answer}")
    # comparison: two chains; the second starts at the later title named in the question
    split = next((s for s in range(1, len(titles)) if titles[s] in question.text), None)
    if split is None or len(question.supporting_texts) != len(titles):
        raise ValueError(f"comparison question {index + 1} cannot be split into its two chains")
    left, right = titles[:split], titles[split:]
    left_end = f"{left[-1]} {_year(question.supporting_texts[split - 1])}"
    entries = [f"{n} : {t}" for t in left[1:]] + [f"{n} : {left_end} , {right[0]}"]
    entries += [f"{n} : {left_end} , {t}" for t in right[1:]] + [f"{n} = {answer}"]
    return _Plan(titles, entries, f"{n} : {titles[0]}", answer, f"{n} = {answer}")


class CompactOracleAgent(Agent):
    """Solves SynthWiki questions from their supporting documents with a compact memory.

    Args:
        mistake_rate: probability of a decoy search before a real one (never twice in a row).
        decoys: names to use as decoy queries, or a function of the task returning them.
        seed: seeds the mistake draws.
        note_tag: ``"mem"`` writes the entries as the turn's ``<mem>`` (self-memory); ``"think"``
            writes the same entries as ``<think>`` (the full-context counterpart, where the
            history stays visible and nothing has to be remembered).
        style: ``"relations"`` or ``"compact"`` entries (:func:`plan_question`).
        open_all: write every question's entry from the first turn (``1 : … | 2 : …``), so the
            memory always says how many questions there are and which are still open; by
            default an entry appears when its question is started.
        decision_reason: how a comparison's decision states its reason (:data:`DECISION_REASONS`).
        numbering: how entries are labelled (:data:`NUMBERINGS`): ``"n/k"`` writes ``1/2 : …``, so
            that a model can tell from a finished entry whether questions are left.
    """

    name = "compact-oracle"

    def __init__(
        self,
        mistake_rate: float = 0.0,
        decoys: Sequence[str] | Callable[[Task], Sequence[str]] = (),
        seed: int = 0,
        note_tag: str = "mem",
        style: str = "relations",
        open_all: bool = False,
        decision_reason: str = "none",
        numbering: str = "n",
    ) -> None:
        if note_tag not in ("mem", "think"):
            raise ValueError(f"note_tag must be 'mem' or 'think', got {note_tag!r}")
        self.note_tag = note_tag
        if style not in ("relations", "compact"):
            raise ValueError(f"style must be 'relations' or 'compact', got {style!r}")
        self.style = style
        self.open_all = bool(open_all)
        if decision_reason not in DECISION_REASONS:
            raise ValueError(f"decision_reason must be one of {', '.join(DECISION_REASONS)}, got {decision_reason!r}")
        self.decision_reason = decision_reason
        if numbering not in NUMBERINGS:
            raise ValueError(f"numbering must be one of {', '.join(NUMBERINGS)}, got {numbering!r}")
        if numbering != "n" and style != "relations":
            raise ValueError(f"numbering {numbering!r} needs style='relations'")
        self.numbering = numbering
        if not 0.0 <= mistake_rate < 1.0:
            raise ValueError(f"mistake_rate must be in [0, 1), got {mistake_rate}")
        self.mistake_rate = mistake_rate
        self.decoys = decoys
        self.rng = random.Random(seed)
        self._state: dict[int, dict[str, Any]] = {}

    def env_kwargs(self) -> dict[str, Any]:
        return {"memory": "self" if self.note_tag == "mem" else "full"}

    def reset(self, task: Task, slot: int = 0) -> None:
        total = len(task.questions) if self.numbering == "n/k" else None
        plans = [plan_question(i, q, self.style, self.decision_reason, total) for i, q in enumerate(task.questions)]
        decoys = self.decoys(task) if callable(self.decoys) else self.decoys
        self._state[slot] = {
            "task": task, "plans": plans, "q": 0, "hop": 0, "pending": False, "turn": 0,
            "mem": {i: p.first_entry for i, p in enumerate(plans)} if self.open_all else {},
            "excluded": set(), "decoys": [d for d in decoys if d not in {t for p in plans for t in p.queries}],
        }

    def excluded_turns(self, slot: int = 0) -> set[int]:
        """Turns that were deliberate mistakes (not SFT targets)."""
        return set(self._state[slot]["excluded"])

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any], slot: int = 0) -> str:
        st = self._state[slot]
        plans: list[_Plan] = st["plans"]
        for q in range(st["q"]):  # an answered question shows its decision once, then just its answer
            st["mem"][q] = plans[q].done_entry
        if st["pending"] == "real":  # the last search was a real hop: record what it found
            plan = plans[st["q"]]
            st["mem"][st["q"]] = plan.entries[st["hop"]]
            st["hop"] += 1
            if st["hop"] == len(plan.queries):
                st["q"], st["hop"] = st["q"] + 1, 0
        if st["q"] < len(plans) and st["q"] not in st["mem"]:
            st["mem"][st["q"]] = plans[st["q"]].first_entry
        tag = self.note_tag
        mem = f"<{tag}> " + " | ".join(st["mem"][i] for i in sorted(st["mem"])) + f" </{tag}> "
        turn = st["turn"]
        st["turn"] += 1
        if st["q"] == len(plans):
            st["pending"] = False
            return mem + "<answer> " + " ; ".join(p.answer for p in plans) + " </answer>"
        if st["pending"] != "mistake" and st["decoys"] and self.rng.random() < self.mistake_rate:
            st["pending"] = "mistake"
            st["excluded"].add(turn)
            return mem + f"<search> {self.rng.choice(st['decoys'])} </search>"
        st["pending"] = "real"
        return mem + f"<search> {plans[st['q']].queries[st['hop']]} </search>"
