"""A compact oracle demonstrator for SFT on SynthWiki-style bridge questions.

It reads the golds (a control agent), searches each question's supporting titles in hop
order and keeps a compact memory: one entry per question, ``i : X`` while the chain is
open (X = the entity to look up next) and ``i = A`` once answered, e.g.
``<mem> 1 = Vema | 2 : Gaga </mem> <search> Gaga </search>``. No ``<think>`` block: a tiny
model pays for every generated token (see the feasibility note). With ``mistake_rate`` it
sometimes searches a decoy word first; :meth:`excluded_turns` reports those turns so SFT
trains only the recovery (the next turn sees ``No results.`` and the unchanged memory).

Requires ``Question.supporting_titles`` in hop order (SynthWiki bridge questions).
"""

from __future__ import annotations

import random
from typing import Any, Callable, Mapping, Sequence

from mempo_gym.agent import Agent
from mempo_gym.records import Task


def render_memory(entries: Mapping[int, tuple[str, str]]) -> str:
    """``{0: ("=", "Vema"), 1: (":", "Gaga")}`` -> ``"1 = Vema | 2 : Gaga"``."""
    return " | ".join(f"{i + 1} {sep} {value}" for i, (sep, value) in sorted(entries.items()))


class CompactOracleAgent(Agent):
    """Solves bridge questions from their supporting titles with a compact memory.

    Args:
        mistake_rate: probability of a decoy search before a real one (never twice in a row).
        decoys: words to use as decoy queries (must not be titles), or a function of the task.
        seed: seeds the mistake draws.
    """

    name = "compact-oracle"

    def __init__(
        self,
        mistake_rate: float = 0.0,
        decoys: Sequence[str] | Callable[[Task], Sequence[str]] = (),
        seed: int = 0,
    ) -> None:
        if not 0.0 <= mistake_rate < 1.0:
            raise ValueError(f"mistake_rate must be in [0, 1), got {mistake_rate}")
        self.mistake_rate = mistake_rate
        self.decoys = decoys
        self.rng = random.Random(seed)
        self._state: dict[int, dict[str, Any]] = {}

    def env_kwargs(self) -> dict[str, Any]:
        return {"memory": "self"}

    def reset(self, task: Task, slot: int = 0) -> None:
        steps = []
        for i, q in enumerate(task.questions):
            if not q.supporting_titles:
                raise ValueError(f"task {task.id!r} question {i + 1} has no supporting_titles; the oracle needs them")
            steps += [(i, j) for j in range(len(q.supporting_titles))]
        decoys = self.decoys(task) if callable(self.decoys) else self.decoys
        self._state[slot] = {"task": task, "steps": steps, "mem": {}, "last": None, "turn": 0,
                             "excluded": set(), "decoys": list(decoys)}

    def excluded_turns(self, slot: int = 0) -> set[int]:
        """Turns that were deliberate mistakes (not SFT targets)."""
        return set(self._state[slot]["excluded"])

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any], slot: int = 0) -> str:
        st = self._state[slot]
        task: Task = st["task"]
        last = st["last"]
        if last is not None and last != "mistake":
            i, j = last
            q = task.questions[i]
            st["mem"][i] = (":", q.supporting_titles[j + 1]) if j + 1 < len(q.supporting_titles) else ("=", q.answers[0])
            st["steps"].pop(0)
        mem = f"<mem> {render_memory(st['mem'])} </mem> "
        turn = st["turn"]
        st["turn"] += 1
        if not st["steps"]:
            st["last"] = None
            return mem + "<answer> " + " ; ".join(q.answers[0] for q in task.questions) + " </answer>"
        i, j = st["steps"][0]
        if last != "mistake" and st["decoys"] and self.rng.random() < self.mistake_rate:
            st["last"] = "mistake"
            st["excluded"].add(turn)
            return mem + f"<search> {self.rng.choice(st['decoys'])} </search>"
        st["last"] = (i, j)
        return mem + f"<search> {task.questions[i].supporting_titles[j]} </search>"
