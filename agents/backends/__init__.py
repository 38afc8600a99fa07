"""Generation backends: local ``transformers`` models and OpenAI-compatible servers."""

from mempo_agents.backends.base import Backend, BackendError, Generation, cut_after_stop
from mempo_agents.backends.openai_backend import (
    BackendHTTPError, BackendResponseError, BackendTimeoutError, BackendUnavailableError, OpenAIBackend,
)

__all__ = [
    "Backend", "BackendError", "BackendHTTPError", "BackendResponseError", "BackendTimeoutError", "BackendUnavailableError",
    "Generation", "OpenAIBackend", "TransformersBackend", "cut_after_stop",
]


def __getattr__(name: str) -> object:
    # TransformersBackend imports torch/transformers: load it only when asked for.
    if name == "TransformersBackend":
        from mempo_agents.backends.transformers_backend import TransformersBackend

        return TransformersBackend
    raise AttributeError(name)
