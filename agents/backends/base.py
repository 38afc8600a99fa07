"""The backend interface: turn prompts into generations, nothing else.

A backend knows nothing about tags, memory or environments. Agents hand it the
observation contexts of one batch and get back one :class:`Generation` per prompt.
Backends stop at the first stop string (``</search>``, ``</answer>``) and keep it in the
text, so the environment sees the closing tag the model wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

from mempo_gym.core.protocol import STOP_STRINGS

DEFAULT_STOP: tuple[str, ...] = STOP_STRINGS


class BackendError(RuntimeError):
    """A backend could not produce a generation (bad settings, server error, bad reply)."""


@dataclass(frozen=True)
class Generation:
    """One generated continuation.

    Attributes:
        text: the generated text, cut just after the first stop string (kept).
        finish_reason: ``"stop"`` (stop string or end-of-sequence), ``"length"``
            (``max_new_tokens`` reached) or whatever the server reported.
        usage: token counts reported by the backend itself (``prompt_tokens``,
            ``completion_tokens`` and, for chat templates, ``template_tokens``). These are
            for comparison only: the environment's meter is the benchmark's count.
    """

    text: str
    finish_reason: str = "stop"
    usage: Mapping[str, int] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """Generates continuations for a batch of prompts."""

    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int,
        stop: Sequence[str] = DEFAULT_STOP,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[Generation]:
        """One :class:`Generation` per prompt, in order. ``temperature=0`` is greedy."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable settings recorded in run configs (never secrets)."""
        ...


def cut_after_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` cut just after the earliest stop string, and whether one was found."""
    ends = [i + len(s) for s in stop if s and (i := text.find(s)) >= 0]
    if not ends:
        return text, False
    return text[: min(ends)], True


def validate_generate_args(
    prompts: Sequence[str], max_new_tokens: int, stop: Sequence[str], temperature: float, top_p: float
) -> None:
    """Raise a clear ``ValueError``/``TypeError`` for bad :meth:`Backend.generate` arguments."""
    if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
        raise TypeError("prompts must be a list of strings (one per episode), not a single string")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if isinstance(stop, str) or not all(isinstance(s, str) and s for s in stop):
        raise TypeError("stop must be a list of non-empty strings, e.g. ['</search>', '</answer>']")
    if not temperature >= 0.0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
