"""Memory methods by name: the built-ins, MEM1's think-state memory, and third-party ones.

A memory method is a :class:`~mempo_gym.core.context.ContextManager`; a *factory* builds one
from keyword settings. ``make_memory("window", k=3)`` or ``gym.make(..., memory="window")``
builds one by name; ``make_memory(manager.describe())`` rebuilds a manager from the settings
a run recorded (``config.json`` holds each env's ``describe()["memory"]``), so a run, the CLI
and the scorer can all rebuild the memory a result was made with.

Third-party methods register a factory in the ``mempo_gym.memory`` entry-point group (the
entry point's name is the memory's name), or call :func:`register_memory` at run time. A
factory's keyword arguments must be the keys its manager's ``describe()`` records (besides
``name``). See ``docs/memory_methods.md``.

>>> {"self", "full", "window", "external", "mem1", "mem1-think-state"} <= set(registered_memories())
True
>>> make_memory({"name": "window", "k": 3}).describe()
{'name': 'window', 'k': 3}
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Mapping

from mempo_gym.core.context import ContextManager, ExternalMemory, FullContext, SelfMemory, SlidingWindow, ThinkStateMemory

ENTRY_POINT_GROUP = "mempo_gym.memory"
MemoryFactory = Callable[..., ContextManager]
EXTERNAL_RANKERS = ("bm25", "embedding")


class MemoryNotFoundError(LookupError, ValueError):
    """No memory method of that name is registered."""


def _external(top_k: int = 2, ranker: str = "bm25") -> ExternalMemory:
    """:class:`ExternalMemory` ranking past turns with ``rank_texts(method=ranker)``."""
    if ranker not in EXTERNAL_RANKERS:
        raise ValueError(f"the external memory's ranker must be one of {EXTERNAL_RANKERS}, got {ranker!r}")
    from mempo_gym.retrieval.ranking import rank_texts

    return ExternalMemory(partial(rank_texts, method=ranker), top_k=top_k, method=ranker)


_BUILTINS: dict[str, MemoryFactory] = {
    "self": SelfMemory,
    "full": FullContext,
    "window": SlidingWindow,
    "external": _external,
    "mem1-think-state": ThinkStateMemory,
    "mem1": ThinkStateMemory,
}
_registered: dict[str, MemoryFactory] = {}


def register_memory(name: str, factory: MemoryFactory, *, overwrite: bool = False) -> None:
    """Make ``factory`` available as ``memory=name`` in this process."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a memory name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"the factory of memory {name!r} must be callable, got {type(factory).__name__}")
    if not overwrite and (name in _BUILTINS or name in _registered):
        raise ValueError(f"a memory named {name!r} is already registered; pass overwrite=True to replace it")
    _registered[name] = factory


def registered_memories() -> dict[str, MemoryFactory | Any]:
    """Factories by name: built-ins, then entry points (not loaded yet), then run-time ones."""
    from importlib.metadata import entry_points

    found: dict[str, Any] = dict(_BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    found.update(_registered)
    return found


def make_memory(memory: str | Mapping[str, Any], **settings: Any) -> ContextManager:
    """Build a memory method from its name (plus settings) or a recorded ``describe()`` dict."""
    if isinstance(memory, Mapping):
        spec = dict(memory)
        if "name" not in spec:
            raise ValueError(f"a memory spec needs a 'name' key, got {sorted(spec)}")
        name = spec.pop("name")
        settings = {**spec, **settings}
    else:
        name = memory
    factories = registered_memories()
    if name not in factories:
        raise MemoryNotFoundError(
            f"no memory method named {name!r}; registered: {', '.join(sorted(factories))}. Third-party "
            f"methods register a factory in the {ENTRY_POINT_GROUP!r} entry-point group or call register_memory()."
        )
    factory = factories[name]
    if hasattr(factory, "load") and hasattr(factory, "group"):  # an entry point
        factory = factory.load()
    try:
        manager = factory(**settings)
    except TypeError as exc:
        raise ValueError(f"memory {name!r} does not take the settings {sorted(settings)}: {exc}") from exc
    if not isinstance(manager, ContextManager):
        raise TypeError(f"the factory of memory {name!r} returned {type(manager).__name__}, not a ContextManager")
    return manager


__all__ = [
    "ENTRY_POINT_GROUP", "EXTERNAL_RANKERS", "MemoryFactory", "MemoryNotFoundError", "make_memory",
    "register_memory", "registered_memories"
]
