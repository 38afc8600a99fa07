"""The env's search tool backed by a local retriever, formatted like Search-R1.

:class:`RetrieverSearchTool` implements :class:`mempo_gym.core.tools.SearchTool`: it
runs ``retriever.search(query, top_k)`` and renders the hits as::

    Doc 1 (Title: <title>) <passage text>
    Doc 2 (Title: <title>) <passage text>

Each passage can be cut to ``passage_token_cap`` tokens of a tokenizer you pass
(a ``transformers`` tokenizer, a ``tokenizers.Tokenizer`` or any object with
``encode``/``decode``), or to that many whitespace-separated words when none is given,
by the cut rule of :mod:`mempo_gym.core.tokens`. A passage is cut once (one encode) and
the result reused for later searches.
Blank queries give ``"No results."``; the tool never raises for any query string.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Callable, Mapping

from mempo_gym.core.tokens import TokenCounter
from mempo_gym.retrieval.base import Hit, Retriever

logger = logging.getLogger(__name__)

NO_RESULTS = "No results."
MAX_QUERY_CHARS = 4096
PASSAGE_CACHE_SIZE = 100_000

CountTokens = Callable[[str], int]
Truncate = Callable[[str, int], str]


def tokenizer_functions(tokenizer: Any) -> tuple[CountTokens, Truncate]:
    """``(count_tokens, truncate)`` by the rules of :mod:`mempo_gym.core.tokens`
    (``None`` counts whitespace words)."""
    counter = TokenCounter(tokenizer)
    return counter.count, lambda text, cap: counter.cut(text, cap)[0]


def sanitize_query(query: Any, max_chars: int = MAX_QUERY_CHARS) -> str:
    """A query safe for any retriever: a ``str`` of valid UTF-8, at most ``max_chars`` long."""
    if not isinstance(query, str):
        query = "" if query is None else str(query)
    query = query[:max_chars]
    # Lone surrogates cannot be encoded (tokenizers, faiss, files): replace them.
    return query.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")


def format_hits(hits: list[Hit], truncate: Callable[[str], str] | None = None) -> str:
    """Search-R1 layout: ``Doc i (Title: t) text`` lines, numbered from 1."""
    lines = []
    for i, hit in enumerate(hits, start=1):
        text = truncate(hit.doc.text) if truncate is not None else hit.doc.text
        lines.append(f"Doc {i} (Title: {hit.doc.title}) {text}".rstrip())
    return "\n".join(lines)


class RetrieverSearchTool:
    """SearchTool over a :class:`~mempo_gym.retrieval.base.Retriever`.

    Args:
        retriever: any retriever of this package (or object with ``search``/``describe``).
        top_k: passages shown per search.
        passage_token_cap: maximum tokens of each passage's text (title excluded);
            ``None`` shows passages whole.
        tokenizer: tokenizer used for the cap (``encode``/``decode``); when ``None``
            and no ``count_tokens``/``truncate`` are given, the cap counts whitespace words.
        count_tokens: custom token counter (overrides the tokenizer's).
        truncate: custom ``truncate(text, cap) -> text`` (overrides the tokenizer's).
        max_query_chars: longer queries are cut to this many characters.
    """

    def __init__(
        self,
        retriever: Retriever,
        top_k: int = 3,
        passage_token_cap: int | None = None,
        count_tokens: CountTokens | None = None,
        truncate: Truncate | None = None,
        *,
        tokenizer: Any = None,
        max_query_chars: int = MAX_QUERY_CHARS,
    ) -> None:
        if not callable(getattr(retriever, "search", None)):
            raise TypeError(f"retriever must have a search(query, k) method; got {type(retriever).__name__}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        if passage_token_cap is not None and (
            isinstance(passage_token_cap, bool) or not isinstance(passage_token_cap, int)
            or passage_token_cap < 1
        ):
            raise ValueError(f"passage_token_cap must be a positive integer or None, got {passage_token_cap!r}")
        if isinstance(max_query_chars, bool) or not isinstance(max_query_chars, int) or max_query_chars < 1:
            raise ValueError(f"max_query_chars must be a positive integer, got {max_query_chars!r}")
        self.retriever, self.top_k, self.passage_token_cap = retriever, top_k, passage_token_cap
        self.max_query_chars = max_query_chars
        self.counter = TokenCounter(tokenizer)
        self.token_unit = self.counter.unit
        self.count_tokens: CountTokens = count_tokens or self.counter.count
        self._truncate: Truncate | None = truncate
        self._custom_count = count_tokens is not None
        if count_tokens is not None or truncate is not None:
            self.token_unit = "custom"
        self._capped: OrderedDict[str, str] = OrderedDict()

    def truncate_passage(self, text: str) -> str:
        """``text`` cut to ``passage_token_cap`` tokens (unchanged when within the cap).

        Computed once per passage text and reused (an LRU of ``PASSAGE_CACHE_SIZE`` passages)."""
        cap = self.passage_token_cap
        if cap is None:
            return text
        hit = self._capped.get(text)
        if hit is not None:
            self._capped.move_to_end(text)
            return hit
        if self._truncate is not None:
            out = text if self.count_tokens(text) <= cap else self._truncate(text, cap)
        elif self._custom_count:
            out = self.counter.cut(text, cap)[0] if self.count_tokens(text) > cap else text
        else:
            out = self.counter.cut(text, cap)[0]  # one encode whether or not it is over the cap
        self._capped[text] = out
        if len(self._capped) > PASSAGE_CACHE_SIZE:
            self._capped.popitem(last=False)
        return out

    def search(self, query: str) -> str:
        """Information text for ``query`` (never raises)."""
        try:
            query = sanitize_query(query, self.max_query_chars)
            if not query.strip():
                return NO_RESULTS
            hits = self.retriever.search(query, self.top_k)
            if not hits:
                return NO_RESULTS
            return format_hits(hits, self.truncate_passage)
        except Exception as err:  # noqa: BLE001 - the env must always get text back
            logger.warning("search failed for query %.80r: %r", query, err)
            return f"Search failed ({type(err).__name__}); try a different query."

    def describe(self) -> Mapping[str, Any]:
        describe = getattr(self.retriever, "describe", None)
        return {
            "tool": "retriever_search", "top_k": self.top_k,
            "passage_token_cap": self.passage_token_cap, "token_unit": self.token_unit,
            "max_query_chars": self.max_query_chars, "format": "search-r1",
            "retriever": dict(describe()) if callable(describe) else type(self.retriever).__name__,
        }
