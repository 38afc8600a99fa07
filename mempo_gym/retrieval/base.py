"""Shared retrieval types: the :class:`Hit` record and the :class:`Retriever` protocol.

Every retriever in this package ranks a fixed corpus of
:class:`~mempo_gym.records.Document` passages. Concrete retrievers implement
``search_positions`` (corpus positions + scores, used by fusion) and inherit
``search`` / ``search_batch`` from :class:`CorpusRetriever`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from mempo_gym.records import Document


@dataclass(frozen=True)
class Hit:
    """One retrieved passage and its retriever score (higher is better).

    Scores are only comparable within one retriever (BM25 scores, cosine similarities
    and reciprocal-rank-fusion scores live on different scales).
    """

    doc: Document
    score: float


@runtime_checkable
class Retriever(Protocol):
    """Ranks a fixed corpus of documents for free-text queries."""

    def search(self, query: str, k: int) -> list[Hit]:
        """Return at most ``k`` hits, best first (fewer when fewer documents match)."""
        ...

    def search_batch(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """``[search(q, k) for q in queries]``, possibly computed faster in one go."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable settings recorded in run configs."""
        ...


def validate_corpus(documents: Sequence[Document], owner: str) -> list[Document]:
    """Return ``documents`` as a list after checking it is a non-empty Document sequence."""
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise TypeError(
            f"{owner}: documents must be a sequence of mempo_gym.records.Document, "
            f"got {type(documents).__name__}"
        )
    docs = list(documents)
    if not docs:
        raise ValueError(f"{owner}: the corpus is empty; pass at least one Document")
    for i, doc in enumerate(docs):
        if not isinstance(doc, Document):
            raise TypeError(
                f"{owner}: documents[{i}] is a {type(doc).__name__}, not a "
                "mempo_gym.records.Document; build Document(id=..., title=..., text=...) first"
            )
    return docs


def validate_k(k: int, owner: str) -> int:
    """Check that ``k`` is a positive int and return it."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{owner}: k must be a positive integer, got {k!r}")
    return k


def top_k_positions(
    scores: np.ndarray, k: int, positive_only: bool = False
) -> list[tuple[int, float]]:
    """The ``k`` best ``(position, score)`` pairs of a score vector, best first.

    Ties are broken by position (earlier first) so results are deterministic;
    with ``positive_only`` documents scoring ``<= 0`` (no query term matched) are dropped.
    """
    scores = np.asarray(scores).reshape(-1)
    n = scores.size
    if k <= 0 or n == 0:
        return []
    if n > k:
        # Partial selection: the k-th best score, everything strictly above it, then the
        # ties at it in position order (flatnonzero is sorted) -- never a sort of all ties.
        kth = _kth_largest(scores, k)
        if positive_only and kth <= 0:  # fewer than k documents match at all
            picked = np.flatnonzero(scores > 0)
        else:
            above = np.flatnonzero(scores > kth)
            picked = np.concatenate([above, np.flatnonzero(scores == kth)[: k - above.size]])
    else:
        picked = np.flatnonzero(scores > 0) if positive_only else np.arange(n)
    picked_scores = scores[picked]
    order = np.lexsort((picked, -picked_scores))
    return [(int(picked[i]), float(picked_scores[i])) for i in order]


def _kth_largest(values: np.ndarray, k: int) -> Any:
    """The ``k``-th largest of ``values`` counting ties (``values.size > k``).

    For small ``k`` it peels off the largest distinct values (``O(k n)``, and fast on the
    heavily tied scores BM25 produces, where ``np.partition`` degrades badly: 45 ms for
    40k scores with 6 distinct values); otherwise it sorts."""
    remaining, current = k, values
    while k <= 32:
        top = current.max()
        count = int(np.count_nonzero(current == top))
        if count == 0:  # NaN scores: leave them to the sort below
            break
        if count >= remaining:
            return top
        remaining -= count
        current = current[current < top]
    return np.sort(values)[values.size - k]


class CorpusRetriever(ABC):
    """Base class of the concrete retrievers: holds the corpus, maps positions to hits.

    Subclasses set ``self.documents`` and implement :meth:`search_positions`;
    they may override :meth:`search_positions_batch` when batching is faster.
    """

    documents: list[Document]

    @abstractmethod
    def search_positions(self, query: str, k: int) -> list[tuple[int, float]]:
        """Return ``(corpus position, score)`` pairs, best first, at most ``k``."""

    def search_positions_batch(
        self, queries: Sequence[str], k: int
    ) -> list[list[tuple[int, float]]]:
        """Batched :meth:`search_positions`; a plain loop unless overridden."""
        return [self.search_positions(q, k) for q in queries]

    def search(self, query: str, k: int) -> list[Hit]:
        """Return at most ``k`` hits for ``query``, best first."""
        validate_k(k, type(self).__name__)
        return [Hit(self.documents[i], s) for i, s in self.search_positions(query, k)]

    def search_batch(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """Return one hit list per query (same order as ``queries``)."""
        validate_k(k, type(self).__name__)
        if isinstance(queries, str):
            raise TypeError("search_batch expects a sequence of query strings, not one string")
        return [
            [Hit(self.documents[i], s) for i, s in positions]
            for positions in self.search_positions_batch(list(queries), k)
        ]

    def __len__(self) -> int:
        return len(self.documents)
