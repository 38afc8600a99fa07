"""The env's search tool backed by a local retriever, formatted like Search-R1.

:class:`RetrieverSearchTool` implements :class:`mempo_gym.core.tools.SearchTool`: it
runs ``retriever.search(query, top_k)`` and renders the hits as::

    Doc 1 (Title: <title>) <passage text>
    Doc 2 (Title: <title>) <passage text>

Each passage can be cut to ``passage_token_cap`` tokens of a tokenizer you pass
(a ``transformers`` tokenizer, a ``tokenizers.Tokenizer`` or any object with
``encode``/``decode``), or to that many whitespace-separated words when none is given.
Blank queries give ``"No results."``; the tool never raises for any query string.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Mapping

from mempo_gym.retrieval.base import Hit, Retriever

logger = logging.getLogger(__name__)

NO_RESULTS = "No results."
MAX_QUERY_CHARS = 4096
_WORD_RUN = re.compile(r"\S+")

CountTokens = Callable[[str], int]
Truncate = Callable[[str, int], str]


def _token_ids(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]] | None]:
    """Token ids of ``text`` without special tokens, plus char offsets when available."""
    if callable(tokenizer) and hasattr(tokenizer, "is_fast"):  # transformers tokenizer
        if getattr(tokenizer, "is_fast", False):
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
        return list(tokenizer.encode(text, add_special_tokens=False)), None
    try:
        enc = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:
        enc = tokenizer.encode(text)
    if hasattr(enc, "ids"):  # tokenizers.Encoding
        offsets = getattr(enc, "offsets", None)
        return list(enc.ids), [tuple(o) for o in offsets] if offsets is not None else None
    return list(enc), None


def tokenizer_functions(tokenizer: Any) -> tuple[CountTokens, Truncate]:
    """``(count_tokens, truncate)`` built from a tokenizer with ``encode``/``decode``.

    Truncation cuts the original text at the end offset of the last kept token when
    the tokenizer reports offsets (keeps the text verbatim), else decodes the kept ids.
    """
    if not callable(getattr(tokenizer, "encode", None)):
        raise TypeError(
            f"tokenizer must have an encode(text) method (and decode(ids)); got {type(tokenizer).__name__}"
        )

    def count_tokens(text: str) -> int:
        return len(_token_ids(tokenizer, text)[0])

    def truncate(text: str, cap: int) -> str:
        ids, offsets = _token_ids(tokenizer, text)
        if len(ids) <= cap:
            return text
        if cap <= 0:
            return ""
        if offsets is not None and len(offsets) == len(ids):
            return text[: offsets[cap - 1][1]].rstrip()
        return str(tokenizer.decode(ids[:cap])).strip()

    return count_tokens, truncate


def count_words(text: str) -> int:
    """Number of whitespace-separated words."""
    return len(text.split())


def truncate_words(text: str, cap: int) -> str:
    """``text`` up to the end of its ``cap``-th whitespace-separated word (verbatim)."""
    if cap <= 0:
        return ""
    for i, match in enumerate(_WORD_RUN.finditer(text), start=1):
        if i == cap:
            return text[: match.end()]
    return text


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
        if tokenizer is not None:
            tok_count, tok_truncate = tokenizer_functions(tokenizer)
            self.token_unit = f"tokens of {type(tokenizer).__name__}" + (
                f" ({tokenizer.name_or_path})" if getattr(tokenizer, "name_or_path", "") else ""
            )
        else:
            tok_count, tok_truncate = count_words, truncate_words
            self.token_unit = "whitespace words" if truncate is None else "custom"
        self.count_tokens: CountTokens = count_tokens or tok_count
        self._truncate: Truncate = truncate or tok_truncate
        if truncate is not None:
            self.token_unit = "custom"

    def truncate_passage(self, text: str) -> str:
        """``text`` cut to ``passage_token_cap`` tokens (unchanged when within the cap)."""
        cap = self.passage_token_cap
        if cap is None or self.count_tokens(text) <= cap:
            return text
        return self._truncate(text, cap)

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
