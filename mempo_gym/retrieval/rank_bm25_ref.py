"""Reference BM25 retriever on `rank-bm25` (``BM25Okapi``), for comparisons only.

Same interface, tokeniser and title+text fields as :class:`~mempo_gym.retrieval.bm25.BM25Retriever`,
but scores are computed lazily in pure Python/NumPy per query (no index cache). Used by
tests and ``benchmarks/bench_bm25.py`` to check bm25s's rankings and measure its speed-up.

``BM25Okapi`` uses the classic Robertson IDF ``log((N - df + 0.5) / (df + 0.5))`` with
negative values floored at ``epsilon * mean_idf``, so absolute scores differ from the
Lucene variant; as in the default retriever, only documents sharing a query term are
returned.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from rank_bm25 import BM25Okapi

from mempo_gym.records import Document
from mempo_gym.retrieval.base import CorpusRetriever, top_k_positions, validate_corpus
from mempo_gym.retrieval.cache import corpus_fingerprint
from mempo_gym.retrieval.lexical import (
    StopwordSetting, document_tokens, resolve_stopwords, tokenize_words,
)


class RankBM25Retriever(CorpusRetriever):
    """BM25Okapi (rank-bm25) over title + text; see module docstring."""

    def __init__(
        self,
        documents: Sequence[Document],
        *,
        k1: float = 0.9,
        b: float = 0.4,
        epsilon: float = 0.25,
        stopwords: StopwordSetting = "en",
        title_weight: int = 2,
    ) -> None:
        self.documents = validate_corpus(documents, "RankBM25Retriever")
        resolve_stopwords(stopwords)
        self.k1, self.b, self.epsilon, self.stopwords = float(k1), float(b), float(epsilon), stopwords
        self.corpus_hash = corpus_fingerprint(self.documents)
        if isinstance(title_weight, bool) or not isinstance(title_weight, int) or title_weight < 0:
            raise ValueError(f"title_weight must be a non-negative integer, got {title_weight!r}")
        self.title_weight = title_weight
        tokens = [document_tokens(d.title, d.text, stopwords, title_weight) for d in self.documents]
        postings: dict[str, list[int]] = {}
        for position, doc_tokens_ in enumerate(tokens):
            for term in set(doc_tokens_):
                postings.setdefault(term, []).append(position)
        self.postings = {t: np.asarray(p, dtype=np.int64) for t, p in postings.items()}
        # BM25Okapi divides by the mean document length: skip it when nothing has a token.
        self.model: BM25Okapi | None = (
            BM25Okapi(tokens, k1=self.k1, b=self.b, epsilon=self.epsilon)
            if any(tokens) else None
        )

    def search_positions(self, query: str, k: int) -> list[tuple[int, float]]:
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        terms = [t for t in tokenize_words(query, self.stopwords) if t in self.postings]
        if self.model is None or not terms:
            return []
        scores = np.asarray(self.model.get_scores(terms), dtype=np.float64)
        matched = np.zeros(len(self.documents), dtype=bool)
        for term in set(terms):
            matched[self.postings[term]] = True
        # Okapi scores can be <= 0 (floored IDF); rank matched documents by score.
        shifted = np.where(matched, scores - scores[matched].min() + 1.0, 0.0)
        return [(i, float(scores[i])) for i, _ in top_k_positions(shifted, k, positive_only=True)]

    def describe(self) -> dict[str, Any]:
        return {
            "retriever": "bm25", "backend": "rank_bm25.BM25Okapi", "k1": self.k1,
            "b": self.b, "epsilon": self.epsilon, "stopwords": self.stopwords,
            "fields": "title+text", "title_weight": self.title_weight, "num_docs": len(self.documents),
        }
