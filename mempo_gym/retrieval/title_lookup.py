"""Exact-title lookup: the search tool of worlds whose agents search entity names.

A query names a document title (whitespace is normalised); the tool returns that
document's text, or ``No results.``. Deterministic and free of ranking noise, it is the
search of the tiny SynthWiki models trained here (``gym.make("MemPO-SynthWiki-v0",
search="title")``) and a clean setting for studying memory apart from retrieval.

>>> from mempo_gym.records import Document
>>> tool = TitleLookupTool([Document("1", "Vema", "Vema is a city in Gaga.")])
>>> tool.search("  Vema "), tool.search("Gaga")
('Vema is a city in Gaga.', 'No results.')
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mempo_gym.records import Document
from mempo_gym.retrieval.search_tool import NO_RESULTS


class TitleLookupTool:
    """SearchTool returning the text of the document whose title equals the query."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self._by_title: dict[str, str] = {}
        for doc in documents:
            self._by_title.setdefault(" ".join(doc.title.split()), doc.text)

    def search(self, query: str) -> str:
        return self._by_title.get(" ".join(str(query).split()), NO_RESULTS)

    def describe(self) -> Mapping[str, Any]:
        return {"name": "title-lookup", "documents": len(self._by_title)}
