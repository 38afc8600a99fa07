"""The random control: uniformly random tokens (token mode) or random text (text mode).

Token mode (``action_mode="token"``): :meth:`RandomAgent.act` returns one token id drawn
uniformly from the vocabulary per env step. Text mode: each turn is 1..``max_tokens``
random token ids decoded to text; with probability ``action_probability`` the random text
is wrapped as ``<search>…</search>`` or ``<answer>…</answer>`` (even odds) so episodes can
end. Randomness is per slot and reproducible from ``seed``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from mempo_gym.agent import Agent
from mempo_gym.prompts import INSTRUCTIONS
from mempo_gym.records import Task

MODES = ("text", "token")


class RandomAgent(Agent):
    """Random-token / random-text control (see module doc).

    Args:
        mode: ``"text"`` or ``"token"``.
        seed: base seed; episode ``e`` of ``slot`` uses ``(seed, slot, e)``.
        max_tokens: most random tokens in one text turn.
        action_probability: chance a text turn is wrapped as a search or answer.
        tokenizer: tokenizer for vocabulary size and decoding (default: the env's SmolLM2).
    """

    name = "random"

    def __init__(self, *, mode: str = "text", seed: int = 0, max_tokens: int = 16,
                 action_probability: float = 0.5, tokenizer: Any = None) -> None:
        from mempo_gym.tokenizer import load_tokenizer

        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if max_tokens < 1 or not 0.0 <= action_probability <= 1.0:
            raise ValueError("max_tokens >= 1 and 0 <= action_probability <= 1 are required")
        self.mode, self.seed, self.max_tokens = mode, int(seed), int(max_tokens)
        self.action_probability = float(action_probability)
        self.tokenizer = load_tokenizer(tokenizer)
        self.vocab_size = len(self.tokenizer)
        self._rngs: dict[int, np.random.Generator] = {}
        self._episodes: dict[int, int] = {}

    def env_kwargs(self) -> dict[str, Any]:
        return {"memory": "self", "instructions": INSTRUCTIONS["mempo"], "action_mode": self.mode}

    def reset(self, task: Task, slot: int = 0) -> None:
        episode = self._episodes.get(slot, -1) + 1
        self._episodes[slot] = episode
        self._rngs[slot] = np.random.default_rng([self.seed, slot, episode])

    def _rng(self, slot: int) -> np.random.Generator:
        if slot not in self._rngs:
            self._rngs[slot] = np.random.default_rng([self.seed, slot, 0])
        return self._rngs[slot]

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any], slot: int = 0) -> Any:
        rng = self._rng(slot)
        if self.mode == "token":
            return int(rng.integers(self.vocab_size))
        ids = rng.integers(self.vocab_size, size=int(rng.integers(1, self.max_tokens + 1))).tolist()
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        if rng.random() < self.action_probability:
            tag = "search" if rng.random() < 0.5 else "answer"
            text = f"<{tag}>{text}</{tag}>"
        return text

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "seed": self.seed, "max_tokens": self.max_tokens,
                "action_probability": self.action_probability}
