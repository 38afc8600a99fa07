"""Hybrid retrieval: reciprocal-rank fusion (RRF) of BM25 and dense rankings.

RRF (Cormack, Clarke & Büttcher, SIGIR 2009) scores a document by its ranks alone::

    score(d) = sum_r  w_r / (rrf_k + rank_r(d))        (rank_r starts at 1)

over the rankings ``r`` in which ``d`` appears within the top ``depth``. Both
retrievers must index the same corpus (checked by content fingerprint).
"""

from __future__ import annotations

import os
from typing import Any, Literal, Sequence

from mempo_gym.records import Document
from mempo_gym.retrieval.base import CorpusRetriever
from mempo_gym.retrieval.bm25 import BM25Retriever
from mempo_gym.retrieval.cache import IndexCache
from mempo_gym.retrieval.dense import DenseRetriever


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], weights: Sequence[float], rrf_k: float = 60.0
) -> list[tuple[int, float]]:
    """Fuse ranked position lists into ``(position, RRF score)`` pairs, best first.

    Ties are broken by the best rank reached in any list, then by position.
    """
    if len(rankings) != len(weights):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    fused: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, position in enumerate(ranking, start=1):
            fused[position] = fused.get(position, 0.0) + weight / (rrf_k + rank)
            best_rank[position] = min(best_rank.get(position, rank), rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], best_rank[kv[0]], kv[0]))


class HybridRetriever(CorpusRetriever):
    """RRF of a :class:`BM25Retriever` and a :class:`DenseRetriever` over one corpus.

    Args:
        bm25, dense: the component retrievers (same documents, same order).
        rrf_k: RRF smoothing constant (60 in the original paper).
        depth: how many hits each component contributes (default ``max(k, 50)``).
        weights: ``(bm25 weight, dense weight)``.
    """

    def __init__(
        self,
        bm25: BM25Retriever,
        dense: DenseRetriever,
        *,
        rrf_k: float = 60.0,
        depth: int | None = None,
        weights: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        if not isinstance(bm25, CorpusRetriever) or not isinstance(dense, CorpusRetriever):
            raise TypeError("HybridRetriever needs two retrievers from mempo_gym.retrieval")
        if getattr(bm25, "corpus_hash", None) != getattr(dense, "corpus_hash", None):
            raise ValueError(
                "HybridRetriever: the BM25 and dense retrievers index different corpora; "
                "build both from the same document list"
            )
        if rrf_k <= 0:
            raise ValueError(f"rrf_k must be positive, got {rrf_k}")
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
            raise ValueError(f"depth must be a positive integer or None, got {depth!r}")
        if len(weights) != 2 or any(w < 0 for w in weights) or sum(weights) == 0:
            raise ValueError(f"weights must be two non-negative numbers, not both 0; got {weights}")
        self.bm25, self.dense = bm25, dense
        self.documents = bm25.documents
        self.corpus_hash = bm25.corpus_hash
        self.rrf_k, self.depth, self.weights = float(rrf_k), depth, tuple(map(float, weights))

    @classmethod
    def build(
        cls,
        documents: Sequence[Document],
        *,
        cache: bool | Literal["auto"] | IndexCache = "auto",
        cache_dir: str | os.PathLike[str] | None = None,
        bm25_options: dict[str, Any] | None = None,
        dense_options: dict[str, Any] | None = None,
        **fusion_options: Any,
    ) -> "HybridRetriever":
        """Build both component retrievers on ``documents`` and fuse them.

        ``cache="auto"`` follows each retriever's rule (BM25: large corpora only;
        dense: always, since embedding is the slow part).
        """
        bm25 = BM25Retriever(documents, cache=cache, cache_dir=cache_dir, **(bm25_options or {}))
        dense = DenseRetriever(documents, cache=cache, cache_dir=cache_dir, **(dense_options or {}))
        return cls(bm25, dense, **fusion_options)

    def search_positions_batch(
        self, queries: Sequence[str], k: int
    ) -> list[list[tuple[int, float]]]:
        depth = self.depth or max(k, 50)
        lexical = self.bm25.search_positions_batch(queries, depth)
        semantic = self.dense.search_positions_batch(queries, depth)
        return [
            reciprocal_rank_fusion(
                [[p for p, _ in lex], [p for p, _ in sem]], self.weights, self.rrf_k
            )[:k]
            for lex, sem in zip(lexical, semantic)
        ]

    def search_positions(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.search_positions_batch([query], k)[0]

    def describe(self) -> dict[str, Any]:
        return {
            "retriever": "hybrid_rrf", "rrf_k": self.rrf_k, "depth": self.depth,
            "weights": list(self.weights), "bm25": self.bm25.describe(),
            "dense": self.dense.describe(), "num_docs": len(self.documents),
        }
