"""Local retrieval over a fixed corpus of :class:`~mempo_gym.records.Document` passages.

* :class:`BM25Retriever` (bm25s; default) and :class:`RankBM25Retriever` (rank-bm25 reference);
* :class:`DenseRetriever` (sentence embeddings + faiss flat / IVF / HNSW);
* :class:`HybridRetriever` (reciprocal-rank fusion of BM25 and dense);
* :class:`RetrieverSearchTool`: the env's :class:`~mempo_gym.core.tools.SearchTool`
  rendering hits in the Search-R1 ``Doc i (Title: ...) text`` format;
* :func:`rank_texts`: quick in-memory ranking of short memory items;
* :class:`IndexCache`: verified on-disk index cache (JSON / .npy / faiss files, no pickle).

Heavy modules (faiss, sentence-transformers) are imported only when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mempo_gym.retrieval.base import Hit, Retriever

if TYPE_CHECKING:
    from mempo_gym.retrieval.bm25 import BM25Retriever
    from mempo_gym.retrieval.cache import IndexCache, default_cache_dir
    from mempo_gym.retrieval.dense import DenseRetriever, VectorIndex
    from mempo_gym.retrieval.embedding import SentenceEmbedder
    from mempo_gym.retrieval.hybrid import HybridRetriever, reciprocal_rank_fusion
    from mempo_gym.retrieval.rank_bm25_ref import RankBM25Retriever
    from mempo_gym.retrieval.ranking import rank_texts
    from mempo_gym.retrieval.search_tool import RetrieverSearchTool

_LAZY = {
    "BM25Retriever": "bm25",
    "RankBM25Retriever": "rank_bm25_ref",
    "DenseRetriever": "dense",
    "VectorIndex": "dense",
    "SentenceEmbedder": "embedding",
    "HybridRetriever": "hybrid",
    "reciprocal_rank_fusion": "hybrid",
    "RetrieverSearchTool": "search_tool",
    "rank_texts": "ranking",
    "IndexCache": "cache",
    "default_cache_dir": "cache",
}

__all__ = ["Hit", "Retriever", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"mempo_gym.retrieval.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'mempo_gym.retrieval' has no attribute {name!r}")
