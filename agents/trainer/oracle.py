"""A compact oracle demonstrator for SFT on SynthWiki (bridge and comparison questions).

It reads the golds (a control agent) and walks each question's supporting documents in
hop order, keeping a compact memory with one entry per question:

* ``i : X`` while a chain is open (X = the entity to look up next, also the turn's query);
* ``i : A 1800 , X`` in a comparison once the first chain is finished (A's year kept);
* ``i = ANSWER`` once the question is answered.

Every turn is ``<mem> … </mem> <search> X </search>`` (X = the last name of the open entry)
or, at the end, ``<mem> … </mem> <answer> a1 ; a2 </answer>``. No ``<think>``: a small
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


def _year(text: str) -> str:
    match = _YEAR.search(text)
    if match is None:
        raise ValueError(f"no year in supporting text {text!r}")
    return match.group(1)


def plan_question(index: int, question: Question) -> _Plan:
    """The hop-by-hop memory entries of question ``index`` (0-based)."""
    titles = list(question.supporting_titles)
    if not titles:
        raise ValueError(f"question {index + 1} has no supporting_titles; the oracle needs them")
    n = index + 1
    answer = question.answers[0]
    if question.kind != "comparison":
        entries = [f"{n} : {t}" for t in titles[1:]] + [f"{n} = {answer}"]
        return _Plan(titles, entries, f"{n} : {titles[0]}")
    # comparison: two chains; the second starts at the later title named in the question
    split = next((s for s in range(1, len(titles)) if titles[s] in question.text), None)
    if split is None or len(question.supporting_texts) != len(titles):
        raise ValueError(f"comparison question {index + 1} cannot be split into its two chains")
    left, right = titles[:split], titles[split:]
    left_end = f"{left[-1]} {_year(question.supporting_texts[split - 1])}"
    entries = [f"{n} : {t}" for t in left[1:]] + [f"{n} : {left_end} , {right[0]}"]
    entries += [f"{n} : {left_end} , {t}" for t in right[1:]] + [f"{n} = {answer}"]
    return _Plan(titles, entries, f"{n} : {titles[0]}")


class CompactOracleAgent(Agent):
    """Solves SynthWiki questions from their supporting documents with a compact memory.

    Args:
        mistake_rate: probability of a decoy search before a real one (never twice in a row).
        decoys: names to use as decoy queries, or a function of the task returning them.
        seed: seeds the mistake draws.
        note_tag: ``"mem"`` writes the entries as the turn's ``<mem>`` (self-memory); ``"think"``
            writes the same entries as ``<think>`` (the full-context counterpart, where the
            history stays visible and nothing has to be remembered).
    """

    name = "compact-oracle"

    def __init__(
        self,
        mistake_rate: float = 0.0,
        decoys: Sequence[str] | Callable[[Task], Sequence[str]] = (),
        seed: int = 0,
        note_tag: str = "mem",
    ) -> None:
        if note_tag not in ("mem", "think"):
            raise ValueError(f"note_tag must be 'mem' or 'think', got {note_tag!r}")
        self.note_tag = note_tag
        if not 0.0 <= mistake_rate < 1.0:
            raise ValueError(f"mistake_rate must be in [0, 1), got {mistake_rate}")
        self.mistake_rate = mistake_rate
        self.decoys = decoys
        self.rng = random.Random(seed)
        self._state: dict[int, dict[str, Any]] = {}

    def env_kwargs(self) -> dict[str, Any]:
        return {"memory": "self" if self.note_tag == "mem" else "full"}

    def reset(self, task: Task, slot: int = 0) -> None:
        plans = [plan_question(i, q) for i, q in enumerate(task.questions)]
        decoys = self.decoys(task) if callable(self.decoys) else self.decoys
        self._state[slot] = {
            "task": task, "plans": plans, "q": 0, "hop": 0, "mem": {}, "pending": False, "turn": 0,
            "excluded": set(), "decoys": [d for d in decoys if d not in {t for p in plans for t in p.queries}],
        }

    def excluded_turns(self, slot: int = 0) -> set[int]:
        """Turns that were deliberate mistakes (not SFT targets)."""
        return set(self._state[slot]["excluded"])

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any], slot: int = 0) -> str:
        st = self._state[slot]
        plans: list[_Plan] = st["plans"]
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
            return mem + "<answer> " + " ; ".join(p.entries[-1].split(" = ", 1)[1] for p in plans) + " </answer>"
        if st["pending"] != "mistake" and st["decoys"] and self.rng.random() < self.mistake_rate:
            st["pending"] = "mistake"
            st["excluded"].add(turn)
            return mem + f"<search> {self.rng.choice(st['decoys'])} </search>"
        st["pending"] = "real"
        return mem + f"<search> {plans[st['q']].queries[st['hop']]} </search>"
