"""Quick in-memory ranking of a handful of short texts (the env's external memory store).

:func:`rank_texts` ranks tens to hundreds of memory items for one query without any disk
cache: ``method="bm25"`` builds a throw-away bm25s index with the package's lexical
tokeniser (only items sharing a query word are returned); ``method="embedding"`` ranks
all items by cosine similarity of sentence embeddings (default model: bundled
all-MiniLM-L6-v2, loaded once per process).
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

from mempo_gym.retrieval.base import top_k_positions, validate_k
from mempo_gym.retrieval.bm25 import BM25Index
from mempo_gym.retrieval.embedding import SentenceEmbedder
from mempo_gym.retrieval.lexical import StopwordSetting, tokenize_many, tokenize_words

RankMethod = Literal["bm25", "embedding"]

_default_embedder: SentenceEmbedder | None = None


def _embedder(model: Any) -> SentenceEmbedder:
    global _default_embedder
    if isinstance(model, SentenceEmbedder):
        return model
    if model is not None:
        return SentenceEmbedder(model)
    if _default_embedder is None:
        _default_embedder = SentenceEmbedder()
    return _default_embedder


def rank_texts(
    query: str,
    texts: Sequence[str],
    k: int,
    method: RankMethod = "bm25",
    *,
    stopwords: StopwordSetting = "en",
    model: SentenceEmbedder | Any = None,
) -> list[int]:
    """Indices into ``texts`` of the ``k`` items most relevant to ``query``, best first.

    Args:
        query: the search text; a blank query returns ``[]``.
        texts: candidate items (any may be empty).
        k: maximum number of indices returned.
        method: ``"bm25"`` (lexical; items with no query word are left out) or
            ``"embedding"`` (cosine similarity; returns ``min(k, len(texts))`` indices).
        stopwords: BM25 stopword setting (see :mod:`mempo_gym.retrieval.lexical`).
        model: embedding model for ``method="embedding"`` (a :class:`SentenceEmbedder`,
            a sentence-transformers model, or ``None`` for the default).

    Ties keep the original order of ``texts``.
    """
    validate_k(k, "rank_texts")
    if not isinstance(query, str):
        raise TypeError(f"rank_texts: query must be a str, got {type(query).__name__}")
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("rank_texts: texts must be a sequence of strings")
    if not texts or not query.strip():
        return []
    if method == "bm25":
        query_tokens = tokenize_words(query, stopwords)
        if not query_tokens:
            return []
        index = BM25Index(tokenize_many(texts, stopwords))
        return [i for i, _ in index.top_k(query_tokens, k)]
    if method == "embedding":
        embedder = _embedder(model)
        query_vec = embedder.embed_queries([query])[0]
        item_vecs = embedder.embed_documents(list(texts))
        return [i for i, _ in top_k_positions(item_vecs @ query_vec, k)]
    raise ValueError(f"rank_texts: method must be 'bm25' or 'embedding', got {method!r}")
