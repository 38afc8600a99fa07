"""The ``transformers`` KV-cache interface across versions, in one place: the keyword that
passes a cache to ``model.forward``, the cache a forward returns, and a cache's per-layer
keys and values (used by the trainer's sampler and the backends' prefix cache)."""

from __future__ import annotations

import inspect
from typing import Any


def cache_keyword(model: Any) -> str:
    """The KV-cache keyword of ``model.forward`` (``cache`` in recent transformers, else ``past_key_values``)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def output_cache(out: Any) -> Any:
    """The cache a forward pass returned."""
    return out["cache"] if "cache" in out else out.past_key_values


def cache_layers(cache: Any) -> list[tuple[Any, Any]]:
    """(keys, values) of each layer of a ``DynamicCache``, each ``[batch, kv_heads, length, head_dim]``."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))  # transformers < 4.56
