"""The tool interface the environment calls when a turn ends with ``</search>``.

The env core knows nothing about corpora, retrievers or the web: it is handed an
object with a ``search`` method and shows whatever text it returns inside
``<information>…</information>``. Local retrieval (:mod:`mempo_gym.retrieval`) and web
search (:mod:`mempo_gym.web`) both implement it.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable


class ToolFatalError(RuntimeError):
    """Raised by a tool when the episode must not go on (e.g. a strict replay cache miss
    while re-scoring a leaderboard run). The environment lets it propagate; every other
    exception from a tool becomes a ``Search failed: …`` information text."""


@runtime_checkable
class SearchTool(Protocol):
    """Answers one search query with the text shown to the agent.

    Implementations must not raise for any query string (empty, huge, odd Unicode):
    a failed search returns a short explanatory text instead, e.g. ``"No results."``.
    """

    def search(self, query: str) -> str:
        """Return the information text (without the ``<information>`` tags)."""
        ...

    def describe(self) -> Mapping[str, Any]:
        """JSON-serialisable settings recorded in run configs (corpus, retriever, top-k...)."""
        ...


__all__ = [
    "SearchTool", "ToolFatalError"
]
