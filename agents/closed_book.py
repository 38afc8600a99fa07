"""The closed-book control: answers at once, without searching (the contamination check).

Without a backend (the ``closed-book-unknown`` agent) it answers ``unknown`` for every
objective: a model-free floor. With a backend (``closed-book``, the default) it asks the
model (``closed-book`` instructions) and keeps its ``<answer>…</answer>`` when it wrote
one; output without a complete answer block is wrapped as the answer (first non-empty
line, tags removed, or ``unknown``) so every episode ends in one turn. A high F1 here
means the model knows the answers without retrieval.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mempo_gym.agent import Agent
from mempo_gym.core.protocol import parse_turn
from mempo_gym.prompts import INSTRUCTIONS

from mempo_agents.backends.base import Backend
from mempo_agents.llm_agents import observation_context
from mempo_agents.oracle import clean

UNKNOWN = "unknown"


def as_answer_turn(text: str, num_objectives: int) -> str:
    """A one-turn answer from free model output (see module doc)."""
    parsed = parse_turn(text)
    if parsed.action == "answer":
        return parsed.text
    lines = [clean(line) for line in text.splitlines()]
    answer = next((line for line in lines if line), "") or "; ".join([UNKNOWN] * max(1, num_objectives))
    return f"<answer>{answer}</answer>"


class ClosedBookAgent(Agent):
    """Answers without searching; optional backend (see module doc)."""

    name = "closed-book"

    def __init__(self, backend: Backend | None = None, *, max_new_tokens: int = 32, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0) -> None:
        self.backend, self.max_new_tokens = backend, int(max_new_tokens)
        if backend is None:
            self.name = "closed-book-unknown"
        self.temperature, self.top_p, self.seed = float(temperature), float(top_p), int(seed)
        self._calls = 0

    def env_kwargs(self) -> dict[str, Any]:
        return {"memory": "full", "instructions": INSTRUCTIONS["closed-book"], "action_mode": "text"}

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any], slot: int = 0) -> str:
        return self.act_batch([observation], [info], [slot])[0]

    def act_batch(self, observations: Sequence[Mapping[str, Any]], infos: Sequence[Mapping[str, Any]],
                  slots: Sequence[int]) -> list[str]:
        counts = [int(i.get("num_objectives", 1)) for i in infos]
        if self.backend is None:
            return [f"<answer>{'; '.join([UNKNOWN] * max(1, n))}</answer>" for n in counts]
        prompts = [observation_context(o, i) for o, i in zip(observations, infos)]
        generations = self.backend.generate(
            prompts, self.max_new_tokens, stop=["</answer>"], temperature=self.temperature,
            top_p=self.top_p, seed=self.seed + self._calls,
        )
        self._calls += 1
        return [as_answer_turn(g.text, n) for g, n in zip(generations, counts)]

    def describe(self) -> dict[str, Any]:
        describe = getattr(self.backend, "describe", None)
        return {"name": self.name, "max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                "backend": describe() if callable(describe) else None}
