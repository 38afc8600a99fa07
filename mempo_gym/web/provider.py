"""The interface every search provider implements (live HTTP APIs, the offline corpus)."""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

from mempo_gym.web.records import WebPage, WebResult


@runtime_checkable
class SearchProvider(Protocol):
    """A source of web search results and pages.

    ``search`` and ``fetch`` raise :class:`~mempo_gym.web.errors.ProviderError` on any
    failure; the tool turns that into text for the agent.
    """

    #: Stable provider name; part of the record/replay cache key.
    name: str

    def search(self, query: str, k: int) -> list[WebResult]:
        """Return at most ``k`` results for ``query``, best first."""
        ...

    def fetch(self, url: str) -> WebPage:
        """Return the main text of the page at ``url``."""
        ...

    def describe(self) -> Mapping[str, Any]:
        """JSON-serialisable settings (never secrets such as API keys)."""
        ...
