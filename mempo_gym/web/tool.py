"""The web-search tool the environment calls: search and open pages, live or recorded.

``search`` answers a ``<search>`` turn with the top-k results as text for
``<information>``; ``open_page`` returns a page's main text cut to a token cap. In
``record`` mode every live answer is stored in a :class:`SearchCache`; in ``replay``
mode answers come only from the cache, so a recorded run replays offline and
identically. Neither method raises for any query or URL: failures and replay misses
become a short explanatory text (and are counted). Two deliberate exceptions: a corrupt
cache raises :class:`CacheCorruptError`, and ``strict=True`` makes a replay miss raise
:class:`CacheMissError` (for leaderboard verification).
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from typing import Any, Callable, Mapping

from mempo_gym.core.tokens import TokenCounter, cut_to_tokens
from mempo_gym.web.cache import SearchCache
from mempo_gym.web.errors import CacheError, CacheMissError, ProviderError
from mempo_gym.web.provider import SearchProvider
from mempo_gym.web.records import WebPage, WebResult

logger = logging.getLogger("mempo_gym.web")

MODES = ("live", "record", "replay")


def whitespace_token_count(text: str) -> int:
    """Default token counter: whitespace-separated words."""
    return len(text.split())


def clean_query(query: str, max_chars: int) -> str:
    """Make any string safe to send and store: valid UTF-8, NFKC, no control characters,
    whitespace collapsed, cut at a word boundary to ``max_chars``."""
    text = query.encode("utf-8", errors="replace").decode("utf-8")  # lone surrogates -> "?"
    text = unicodedata.normalize("NFKC", text)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)
    text = " ".join(text.split())
    if len(text) > max_chars:
        head = text[:max_chars]
        space = head.rfind(" ")
        text = head[:space] if space > max_chars // 2 else head
    return text


def format_results(results: list[WebResult]) -> str:
    """``Result i (Title: …; URL: …) snippet`` lines, as shown inside ``<information>``."""
    lines = []
    for i, r in enumerate(results, start=1):
        title = " ".join(r.title.split()) or "(untitled)"
        snippet = " ".join(r.snippet.split())
        lines.append(f"Result {i} (Title: {title}; URL: {r.url}) {snippet}".rstrip())
    return "\n".join(lines)


class WebSearchTool:
    """Web search for the MemPO env (implements :class:`mempo_gym.core.tools.SearchTool`).

    Args:
        provider: any :class:`SearchProvider` (``HttpJsonProvider``, ``OfflineWebProvider``).
        top_k: results per search.
        cache: a :class:`SearchCache`; required for ``record`` and ``replay``.
        mode: ``"live"`` (provider only), ``"record"`` (provider, then store),
            ``"replay"`` (cache only, works offline).
        page_token_cap: ``open_page`` text is cut to this many tokens.
        tokenizer: the env's tokenizer: the cap counts its tokens by the rules of
            :mod:`mempo_gym.core.tokens` (default: whitespace words).
        count_tokens: a custom token counter for the cap (instead of ``tokenizer``).
        strict: in replay mode, raise :class:`CacheMissError` on a miss instead of
            returning "Replay cache miss ..." text.
        max_query_chars: longer queries are cut (at a word boundary) before searching.
    """

    def __init__(
        self,
        provider: SearchProvider,
        top_k: int = 5,
        cache: SearchCache | None = None,
        mode: str = "live",
        *,
        page_token_cap: int = 1000,
        count_tokens: Callable[[str], int] | None = None,
        tokenizer: Any = None,
        strict: bool = False,
        max_query_chars: int = 400,
    ) -> None:
        if not isinstance(provider, SearchProvider):
            raise TypeError(f"provider must implement SearchProvider (search, fetch, name, describe), "
                            f"got {type(provider).__name__}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode in ("record", "replay") and cache is None:
            raise ValueError(f"mode={mode!r} needs a cache: pass cache=SearchCache('web_cache.sqlite')")
        if mode == "live" and cache is not None:
            raise ValueError("a cache is only used with mode='record' or mode='replay'; "
                             "pass one of those modes or drop the cache")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive int, got {top_k!r}")
        if isinstance(page_token_cap, bool) or not isinstance(page_token_cap, int) or page_token_cap < 1:
            raise ValueError(f"page_token_cap must be a positive int, got {page_token_cap!r}")
        if max_query_chars < 1:
            raise ValueError(f"max_query_chars must be >= 1, got {max_query_chars!r}")
        self.provider = provider
        self.top_k = top_k
        self.cache = cache
        self.mode = mode
        self.page_token_cap = page_token_cap
        if count_tokens is not None and tokenizer is not None:
            raise ValueError("pass tokenizer= or count_tokens=, not both")
        self.counter = TokenCounter(tokenizer)
        self._custom_count = count_tokens
        self.count_tokens = count_tokens or (self.counter.count if tokenizer is not None else whitespace_token_count)
        self.strict = strict
        self.max_query_chars = max_query_chars
        provider_settings = dict(provider.describe())
        self._key_params: dict[str, Any] = {}
        for name in ("adapter", "corpus_sha256"):
            if provider_settings.get(name) is not None:
                self._key_params[name] = provider_settings[name]
        self._counts_lock = threading.Lock()
        self.searches = 0
        self.pages_opened = 0
        self.cache_hits = 0
        self.misses = 0
        self.failures = 0

    def __repr__(self) -> str:
        return (f"WebSearchTool(provider={self.provider!r}, top_k={self.top_k}, mode={self.mode!r}, "
                f"cache={self.cache!r})")

    # ------------------------------------------------------------------ bookkeeping
    def _count(self, name: str) -> None:
        with self._counts_lock:
            setattr(self, name, getattr(self, name) + 1)

    @property
    def stats(self) -> dict[str, int]:
        """Counters since construction: searches, pages_opened, cache_hits, misses, failures."""
        return {"searches": self.searches, "pages_opened": self.pages_opened,
                "cache_hits": self.cache_hits, "misses": self.misses, "failures": self.failures}

    def describe(self) -> Mapping[str, Any]:
        if self._custom_count is not None:
            counter = getattr(self._custom_count, "__qualname__", type(self._custom_count).__name__)
        else:
            counter = "whitespace" if self.counter.tokenizer is None else self.counter.unit
        return {
            "tool": "web_search",
            "provider": dict(self.provider.describe()),
            "top_k": self.top_k,
            "mode": self.mode,
            "strict": self.strict,
            "page_token_cap": self.page_token_cap,
            "count_tokens": counter,
            "max_query_chars": self.max_query_chars,
            "cache": dict(self.cache.describe()) if self.cache is not None else None,
        }

    # ------------------------------------------------------------------ search
    def search(self, query: str) -> str:
        """Top-k results for ``query`` as information text (never raises for a query)."""
        self._count("searches")
        if not isinstance(query, str):
            self._count("failures")
            return f"Search failed: the query must be text, got {type(query).__name__}."
        text = clean_query(query, self.max_query_chars)
        if not text:
            return "Empty search query: put the words to search for between <search> and </search>."
        params = {"k": self.top_k, **self._key_params}
        if self.mode == "replay":
            assert self.cache is not None
            try:
                results = self.cache.require_search(self.provider.name, text, params)
            except CacheMissError:
                self._count("misses")
                if self.strict:
                    raise
                return f"Replay cache miss for query {text!r}: this search was not recorded."
            self._count("cache_hits")
        else:
            try:
                results = self._live_search(text)
            except ProviderError as exc:
                self._count("failures")
                return f"Search failed: {str(exc).rstrip('.')}."
            if self.mode == "record":
                assert self.cache is not None
                self.cache.put_search(self.provider.name, text, params, results)
        if not results:
            return f"No results for {text!r}."
        return format_results(results)

    def _live_search(self, text: str) -> list[WebResult]:
        try:
            results = self.provider.search(text, self.top_k)
        except (ProviderError, CacheError):
            raise
        except Exception as exc:  # a provider bug must not end the episode
            logger.exception("provider %r raised while searching", self.provider.name)
            raise ProviderError(f"provider {self.provider.name!r} raised {type(exc).__name__}") from None
        if not isinstance(results, list) or not all(isinstance(r, WebResult) for r in results):
            raise ProviderError(f"provider {self.provider.name!r} returned something other than a list of WebResult")
        return results[: self.top_k]

    # ------------------------------------------------------------------ pages
    def open_page(self, url: str) -> str:
        """Main text of the page at ``url``, cut to ``page_token_cap`` tokens (never raises)."""
        self._count("pages_opened")
        if not isinstance(url, str) or not url.strip():
            self._count("failures")
            return "Open failed: give the URL of a search result."
        url = clean_query(url, 2000).replace(" ", "%20")
        params = dict(self._key_params)
        if self.mode == "replay":
            assert self.cache is not None
            try:
                page = self.cache.require_page(self.provider.name, url, params)
            except CacheMissError:
                self._count("misses")
                if self.strict:
                    raise
                return f"Replay cache miss for page {url!r}: this page was not recorded."
            self._count("cache_hits")
        else:
            try:
                page = self._live_fetch(url)
            except ProviderError as exc:
                self._count("failures")
                return f"Open failed: {str(exc).rstrip('.')}."
            if self.mode == "record":
                assert self.cache is not None
                self.cache.put_page(self.provider.name, url, params, page)
        return self._format_page(page)

    open = open_page

    def _live_fetch(self, url: str) -> WebPage:
        try:
            page = self.provider.fetch(url)
        except (ProviderError, CacheError):
            raise
        except Exception as exc:
            logger.exception("provider %r raised while opening a page", self.provider.name)
            raise ProviderError(f"provider {self.provider.name!r} raised {type(exc).__name__}") from None
        if not isinstance(page, WebPage):
            raise ProviderError(f"provider {self.provider.name!r} returned something other than a WebPage")
        return page

    def _format_page(self, page: WebPage) -> str:
        body, was_cut = cut_to_tokens(page.text, self.page_token_cap, self._custom_count or self.counter)
        parts = [f"Page: {' '.join(page.title.split()) or '(untitled)'} (URL: {page.url})", body or "(no text)"]
        if was_cut:
            parts.append(f"[page cut at {self.page_token_cap} tokens]")
        elif page.truncated:
            parts.append("[page cut at the download size cap]")
        return "\n".join(parts)
