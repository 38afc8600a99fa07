"""Dense retrieval: cosine similarity of sentence embeddings in a faiss index.

Each document is embedded as ``"{title}\\n{text}"`` (title omitted when empty) with a
:class:`~mempo_gym.retrieval.embedding.SentenceEmbedder` (default: bundled
all-MiniLM-L6-v2, 384-d). Vectors are L2-normalised, so faiss inner products are
cosines. Index types (:class:`VectorIndex`):

* ``"flat"`` (default): exact search, ``IndexFlatIP``;
* ``"ivf"``: ``IndexIVFFlat`` with ``nlist`` k-means cells, ``nprobe`` cells searched
  (approximate; for corpora of ~100k+ passages);
* ``"hnsw"``: ``IndexHNSWFlat`` graph with ``M`` links, ``efSearch`` beam (approximate).

Embeddings (``.npy``) and trained ivf/hnsw indexes (``faiss.write_index``) are cached
on disk; switching index type reuses the cached embeddings.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal, Sequence

import faiss
import numpy as np

from mempo_gym.records import Document
from mempo_gym.retrieval.base import CorpusRetriever, validate_corpus
from mempo_gym.retrieval.cache import (
    IndexCache, cache_key, corpus_fingerprint, load_or_build, resolve_cache,
)
from mempo_gym.retrieval.embedding import SentenceEmbedder

IndexType = Literal["flat", "ivf", "hnsw"]
INDEX_TYPES = ("flat", "ivf", "hnsw")
_EMBEDDING_TEXT_FORMAT = "title\\ntext"


def document_embedding_text(doc: Document) -> str:
    """The text embedded for a document: ``title``, newline, ``text``."""
    return f"{doc.title}\n{doc.text}" if doc.title else doc.text


class VectorIndex:
    """A faiss inner-product index over normalised vectors (flat, IVF or HNSW).

    Args:
        dim: vector dimension.
        index_type: ``"flat"``, ``"ivf"`` or ``"hnsw"``.
        nlist: IVF cells (default ``~4*sqrt(n)``, at most ``n/39`` so k-means has
            enough points per centroid).
        nprobe: IVF cells searched (default ``max(8, nlist/8)`` capped at ``nlist``).
        hnsw_m: HNSW links per node; ef_construction / ef_search: HNSW beam widths.
    """

    def __init__(
        self,
        dim: int,
        index_type: IndexType = "flat",
        *,
        nlist: int | None = None,
        nprobe: int | None = None,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
    ) -> None:
        if index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {index_type!r}")
        for name, value in (("nlist", nlist), ("nprobe", nprobe)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        for name, value in (("hnsw_m", hnsw_m), ("ef_construction", ef_construction),
                            ("ef_search", ef_search)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.dim, self.index_type = int(dim), index_type
        self.nlist, self.nprobe = nlist, nprobe
        self.hnsw_m, self.ef_construction, self.ef_search = hnsw_m, ef_construction, ef_search
        self.index: Any = None

    def build_settings(self) -> dict[str, Any]:
        """Settings that change the built structure (cache key part)."""
        s: dict[str, Any] = {"index_type": self.index_type, "faiss": faiss.__version__}
        if self.index_type == "ivf":
            s["nlist"] = self.nlist
        elif self.index_type == "hnsw":
            s.update(hnsw_m=self.hnsw_m, ef_construction=self.ef_construction)
        return s

    @staticmethod
    def default_nlist(n: int) -> int:
        return max(1, min(int(round(4 * math.sqrt(n))), n // 39))

    def build(self, vectors: np.ndarray) -> "VectorIndex":
        """Create and fill the faiss index with ``vectors`` (n, dim)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or vectors.shape[0] == 0:
            raise ValueError(
                f"expected a non-empty (n, {self.dim}) array of vectors, got shape {vectors.shape}"
            )
        n = vectors.shape[0]
        index: Any
        if self.index_type == "flat":
            index = faiss.IndexFlatIP(self.dim)
        elif self.index_type == "ivf":
            nlist = self.nlist or self.default_nlist(n)
            if nlist > n:
                raise ValueError(f"nlist={nlist} exceeds the number of vectors ({n}); lower nlist")
            self.nlist = nlist
            index = faiss.IndexIVFFlat(
                faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT
            )
            index.train(vectors)
        else:
            index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
        index.add(vectors)
        self.index = index
        self._apply_search_params()
        return self

    def _apply_search_params(self) -> None:
        if self.index_type == "ivf":
            ivf = faiss.extract_index_ivf(self.index)
            self.nlist = int(ivf.nlist)
            self.nprobe = min(self.nlist, self.nprobe or max(8, self.nlist // 8))
            ivf.nprobe = self.nprobe
        elif self.index_type == "hnsw":
            self.index.hnsw.efSearch = self.ef_search

    def save(self, path: Path) -> None:
        """Write the faiss index file (faiss binary format, no pickle)."""
        faiss.write_index(self.index, str(path))

    def load(self, path: Path, expected_count: int) -> "VectorIndex":
        """Read an index written by :meth:`save`; check its size and dimension."""
        index = faiss.read_index(str(path))
        if index.d != self.dim or index.ntotal != expected_count:
            raise ValueError(
                f"faiss index file {path} has dim={index.d}, ntotal={index.ntotal}; "
                f"expected dim={self.dim}, ntotal={expected_count}"
            )
        self.index = index
        self._apply_search_params()
        return self

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Top-``k`` ``(position, inner product)`` per query row, best first."""
        if self.index is None:
            raise RuntimeError("VectorIndex.search called before build() or load()")
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = min(k, int(self.index.ntotal))
        if queries.shape[0] == 0 or k == 0:
            return [[] for _ in range(queries.shape[0])]
        scores, ids = self.index.search(queries, k)
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
            for row_ids, row_scores in zip(ids, scores)
        ]

    def describe(self) -> dict[str, Any]:
        d = self.build_settings()
        if self.index_type == "ivf":
            d["nprobe"] = self.nprobe
        elif self.index_type == "hnsw":
            d["ef_search"] = self.ef_search
        return d


class DenseRetriever(CorpusRetriever):
    """Cosine-similarity retrieval over sentence embeddings of title + text.

    Args:
        documents: the corpus.
        embedder: a :class:`SentenceEmbedder`, any sentence-transformers model (wrapped),
            a local model folder, or ``None`` for the bundled all-MiniLM-L6-v2.
        index_type, nlist, nprobe, hnsw_m, ef_construction, ef_search: see :class:`VectorIndex`.
        cache, cache_dir: on-disk cache of embeddings and ivf/hnsw indexes
            (``True``/``"auto"``: always cache, ``False``: never, or an :class:`IndexCache`).
        show_progress: tqdm progress bar while embedding the corpus.
    """

    def __init__(
        self,
        documents: Sequence[Document],
        *,
        embedder: SentenceEmbedder | Any = None,
        index_type: IndexType = "flat",
        nlist: int | None = None,
        nprobe: int | None = None,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
        cache: bool | Literal["auto"] | IndexCache = True,
        cache_dir: str | os.PathLike[str] | None = None,
        show_progress: bool = True,
    ) -> None:
        self.documents = validate_corpus(documents, "DenseRetriever")
        self.embedder = embedder if isinstance(embedder, SentenceEmbedder) else SentenceEmbedder(embedder)
        self.show_progress = show_progress
        self.corpus_hash = corpus_fingerprint(self.documents)
        self._cache = resolve_cache(cache, cache_dir)
        self.vectors = VectorIndex(
            self.embedder.dim, index_type, nlist=nlist, nprobe=nprobe, hnsw_m=hnsw_m,
            ef_construction=ef_construction, ef_search=ef_search,
        )
        n = len(self.documents)
        emb_settings = self.embedding_settings()
        emb_key = cache_key(self.corpus_hash, emb_settings)
        embeddings, self.embeddings_from_cache = load_or_build(
            self._cache, "embeddings", emb_key,
            read_entry=lambda folder: self._read_embeddings(folder / "embeddings.npy"),
            build=lambda: self.embedder.embed_documents(
                [document_embedding_text(d) for d in self.documents],
                show_progress=self.show_progress,
            ),
            write_members=lambda arr, folder: np.save(
                folder / "embeddings.npy", arr, allow_pickle=False
            ),
            info={"settings": emb_settings, "num_docs": n},
        )
        if index_type == "flat":  # exact index: rebuilding from embeddings is instant
            self.vectors.build(embeddings)
            self.index_from_cache = self.embeddings_from_cache
        else:
            index_settings = {"embeddings": emb_key, **self.vectors.build_settings()}
            _, self.index_from_cache = load_or_build(
                self._cache, "faiss", cache_key(self.corpus_hash, index_settings),
                read_entry=lambda folder: self.vectors.load(folder / "index.faiss", n),
                build=lambda: self.vectors.build(embeddings),
                write_members=lambda vi, folder: vi.save(folder / "index.faiss"),
                info={"settings": index_settings, "num_docs": n},
            )
        self.cache_key = emb_key

    def embedding_settings(self) -> dict[str, Any]:
        """Everything that determines the document embeddings (cache key part)."""
        return {
            "retriever": "dense", "model": self.embedder.model_name,
            "dim": self.embedder.dim, "document_prefix": self.embedder.document_prefix,
            "text_format": _EMBEDDING_TEXT_FORMAT, "normalised": True,
        }

    def _read_embeddings(self, path: Path) -> np.ndarray:
        arr = np.load(path, allow_pickle=False)
        if arr.dtype != np.float32 or arr.shape != (len(self.documents), self.embedder.dim):
            raise ValueError(f"cached embeddings have shape {arr.shape}, dtype {arr.dtype}")
        return arr

    def search_positions(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.search_positions_batch([query], k)[0]

    def search_positions_batch(
        self, queries: Sequence[str], k: int
    ) -> list[list[tuple[int, float]]]:
        for q in queries:
            if not isinstance(q, str):
                raise TypeError(f"query must be a str, got {type(q).__name__}")
        results: list[list[tuple[int, float]]] = [[] for _ in queries]
        asked = [i for i, q in enumerate(queries) if q.strip()]  # blank query: no results
        if asked:
            vecs = self.embedder.embed_queries([queries[i] for i in asked])
            for i, row in zip(asked, self.vectors.search(vecs, k)):
                results[i] = row
        return results

    def describe(self) -> dict[str, Any]:
        return {
            "retriever": "dense", **self.embedder.describe(), **self.vectors.describe(),
            "text_format": _EMBEDDING_TEXT_FORMAT, "num_docs": len(self.documents),
            "corpus_sha256": self.corpus_hash,
        }
