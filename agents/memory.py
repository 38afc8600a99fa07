"""Context managers that belong to reference agents rather than to the environment core.

:class:`ThinkStateMemory` is MEM1's context (Zhou et al. 2025): the agent's internal state
lives in its latest ``<think>`` block, so each call sees the prompt, that state and the
newest information only. (MemPO's :class:`mempo_gym.core.context.SelfMemory` keeps the
latest ``<mem>`` block instead.)
"""

from __future__ import annotations

from typing import Any, Sequence

from mempo_gym.core.context import TurnRecord, render_information


class ThinkStateMemory:
    """Prompt + the latest ``<think>`` block (the MEM1 internal state) + the newest information.

    A turn without a ``<think>`` block keeps the previous state; the state is shown as
    ``<think>…</think>`` exactly as the agent wrote it.
    """

    name = "mem1-think-state"

    def reset(self) -> None:
        """Stateless: the context is rebuilt from the turns each call."""

    @staticmethod
    def latest_state(turns: Sequence[TurnRecord]) -> str | None:
        for turn in reversed(turns):
            if turn.parsed.think is not None:
                return turn.parsed.think
        return None

    def build(self, prompt: str, turns: Sequence[TurnRecord]) -> str:
        if not turns:
            return prompt
        state = self.latest_state(turns)
        state_text = "" if state is None else f"<think>{state}</think>\n"
        return prompt + state_text + render_information(turns[-1].information)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}
