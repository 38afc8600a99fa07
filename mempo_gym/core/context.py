"""Context managers: what the next model call sees, given the turns so far.

Every memory method is a :class:`ContextManager`. The environment renders the task
prompt once, records each finished turn as a :class:`TurnRecord`, and before every
model call asks the manager for the context text; the token meter then counts exactly
that text. A new memory method plugs in by implementing the two-method protocol::

    class KeepLastAnswerOnly:
        name = "last-info"
        def reset(self) -> None: ...
        def build(self, prompt: str, turns: Sequence[TurnRecord]) -> str:
            return prompt + (render_information(turns[-1].information) if turns else "")
        def describe(self) -> dict: return {"name": self.name}

    gym.make("MemPO-SynthWiki-v0", memory=KeepLastAnswerOnly())

Memory methods are found by name in :mod:`mempo_gym.memory` (built-ins, plus any
registered in the ``mempo_gym.memory`` entry-point group). Built-in managers (``memory=`` names):

* ``full`` — :class:`FullContext`: prompt + every turn and its information (ReAct/Search-R1).
* ``self`` — :class:`SelfMemory`: prompt + the latest ``<mem>`` block + the newest
  information only (MemPO).
* ``mem1-think-state`` (alias ``mem1``) — :class:`ThinkStateMemory`: the same with the
  latest ``<think>`` block (MEM1's internal state).
* ``window`` — :class:`SlidingWindow`: prompt + the last ``k`` turns.
* ``external`` — :class:`ExternalMemory`: prompt + the ``top_k`` past turns most relevant to
  the latest query (ranked by BM25 or embeddings) + the newest turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from mempo_gym.core.protocol import ParsedTurn

Ranker = Callable[[str, Sequence[str], int], list[int]]
"""``ranker(query, texts, k)`` returns the indices of the ``k`` most relevant texts, best first."""


@dataclass(frozen=True)
class TurnRecord:
    """A finished turn: what the agent wrote and what the environment answered.

    ``information`` is the search result for a search turn, the feedback message for a
    malformed turn, and ``None`` after an answer.
    """

    index: int
    parsed: ParsedTurn
    information: str | None

    @property
    def text(self) -> str:
        return self.parsed.text


def render_information(information: str | None) -> str:
    return "" if information is None else f"<information>{information}</information>\n"


def render_turn(turn: TurnRecord) -> str:
    """A turn as it appears in a full-history context."""
    text = turn.text if turn.text.endswith("\n") else turn.text + "\n"
    return text + render_information(turn.information)


@runtime_checkable
class ContextManager(Protocol):
    """Decides what the next model call sees."""

    name: str

    def reset(self) -> None:
        """Forget everything from the previous episode."""
        ...

    def build(self, prompt: str, turns: Sequence[TurnRecord]) -> str:
        """The full context text for the next call (must start with ``prompt``)."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable settings recorded in run configs."""
        ...


class FullContext:
    """Everything so far: the ReAct / Search-R1 context."""

    name = "full"

    def reset(self) -> None:
        """Stateless: the context is rebuilt from the turns each call."""

    def build(self, prompt: str, turns: Sequence[TurnRecord]) -> str:
        return prompt + "".join(render_turn(t) for t in turns)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


class LatestBlockMemory:
    """Prompt + the agent's latest ``<block>…</block>`` + the newest information.

    The kept block is the last one of that tag the agent wrote in any turn so far (a turn
    without one keeps the previous block); thoughts and earlier information are dropped.
    :class:`SelfMemory` keeps ``<mem>`` (MemPO), :class:`ThinkStateMemory` keeps ``<think>``
    (MEM1's internal state).
    """

    name = "latest-block"
    block = "mem"

    def reset(self) -> None:
        """Stateless: the context is rebuilt from the turns each call."""

    @classmethod
    def latest_block(cls, turns: Sequence[TurnRecord]) -> str | None:
        for turn in reversed(turns):
            content = getattr(turn.parsed, cls.block)
            if content is not None:
                return content
        return None

    def build(self, prompt: str, turns: Sequence[TurnRecord]) -> str:
        if not turns:
            return prompt
        content = self.latest_block(turns)
        kept = "" if content is None else f"<{self.block}>{content}</{self.block}>\n"
        return prompt + kept + render_information(turns[-1].information)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


class SelfMemory(LatestBlockMemory):
    """MemPO's context: prompt + the agent's latest ``<mem>`` + the newest information."""

    name = "self"
    block = "mem"

    @classmethod
    def latest_memory(cls, turns: Sequence[TurnRecord]) -> str | None:
        """The latest ``<mem>`` content (``None`` before any)."""
        return cls.latest_block(turns)


class ThinkStateMemory(LatestBlockMemory):
    """MEM1's context (Zhou et al. 2025): prompt + the latest ``<think>`` block (the agent's
    internal state) + the newest information; the state is shown as the agent wrote it."""

    name = "mem1-think-state"
    block = "think"

    @classmethod
    def latest_state(cls, turns: Sequence[TurnRecord]) -> str | None:
        """The latest ``<think>`` content (``None`` before any)."""
        return cls.latest_block(turns)


class SlidingWindow:
    """The last ``k`` turns in full."""

    name = "window"

    def __init__(self, k: int = 2) -> None:
        if k < 1:
            raise ValueError(f"window size k must be >= 1, got {k}")
        self.k = k

    def reset(self) -> None:
        """Stateless: the context is rebuilt from the turns each call."""

    def build(self, prompt: str, turns: Sequence[TurnRecord]) -> str:
        return prompt + "".join(render_turn(t) for t in turns[-self.k:])

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "k": self.k}


class ExternalMemory:
    """A store of past turns; each call sees the ``top_k`` most relevant ones.

    The store holds every turn before the newest one (its text and information). The
    query is the newest search query, or the question text before any search. Retrieved
    turns are shown in chronological order under ``Retrieved memory:``, followed by the
    newest turn in full.

    Args:
        ranker: ``ranker(query, texts, k) -> indices`` (e.g.
            :func:`mempo_gym.retrieval.ranking.rank_texts`).
        top_k: how many past turns to show.
        method: a label for the ranker, recorded in run configs.
    """

    name = "external"

    def __init__(self, ranker: Ranker, top_k: int = 2, method: str = "custom") -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.ranker, self.top_k, self.method = ranker, top_k, method

    def reset(self) -> None:
        """Stateless: the context is rebuilt from the turns each call."""

    def build(self, prompt: str, turns: Sequence[TurnRecord]) -> str:
        if not turns:
            return prompt
        *past, newest = turns
        text = prompt
        if past:
            query = newest.parsed.query or next(
                (t.parsed.query for t in reversed(past) if t.parsed.query), prompt
            )
            items = [render_turn(t) for t in past]
            chosen = sorted(set(self.ranker(query, items, min(self.top_k, len(items)))))
            if chosen:
                text += "Retrieved memory:\n" + "".join(items[i] for i in chosen)
        return text + render_turn(newest)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "top_k": self.top_k, "ranker": self.method}


__all__ = [
    "ContextManager", "ExternalMemory", "FullContext", "LatestBlockMemory", "Ranker", "SelfMemory",
    "SlidingWindow", "ThinkStateMemory", "TurnRecord", "render_information", "render_turn"
]
