"""Assembly shared by every registered env: memory names, retrievers, search tools.

Keyword arguments accepted by every ``gym.make("MemPO-…")`` call (besides the
task-specific ones):

* ``memory``: a registered memory name (:mod:`mempo_gym.memory`: ``"self"`` (default),
  ``"full"``, ``"window"``, ``"external"``, ``"mem1"`` and any from the ``mempo_gym.memory``
  entry-point group), a recorded ``describe()`` dict such as ``{"name": "window", "k": 3}``,
  or a :class:`~mempo_gym.core.context.ContextManager` object; ``memory_kwargs`` (settings
  of the named method); ``window_k`` (default 2), ``external_top_k`` (default 2),
  ``external_ranker`` (``"bm25"`` or ``"embedding"``).
* ``retriever``: ``"bm25"`` (default), ``"dense"`` or ``"hybrid"``; ``top_k`` (default 3);
  ``passage_token_cap`` (default 128 env tokens per passage, ``None`` = whole passage);
  ``index_cache_dir``.
* everything :class:`~mempo_gym.core.env.MemoryEnv` takes: ``tokenizer``,
  ``action_mode``, ``context_budget``, ``max_turns``, ``max_turn_tokens``, ``reward``,
  ``format_penalty``, ``truncation_reward``, ``instructions``, ``render_mode``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mempo_gym.core.context import ContextManager
from mempo_gym.core.env import MemoryEnv
from mempo_gym.memory import make_memory
from mempo_gym.core.tools import SearchTool
from mempo_gym.records import Document, Task
from mempo_gym.tokenizer import load_tokenizer

MEMORY_MODES = ("self", "full", "window", "external", "mem1")
RETRIEVERS = ("bm25", "dense", "hybrid")


def resolve_memory(
    memory: str | Mapping[str, Any] | ContextManager = "self",
    *,
    window_k: int = 2,
    external_top_k: int = 2,
    external_ranker: str = "bm25",
    memory_kwargs: Mapping[str, Any] | None = None,
) -> ContextManager:
    """A context manager from a ``memory=`` name, a recorded ``describe()`` dict, or the
    object itself (see :mod:`mempo_gym.memory`)."""
    if isinstance(memory, ContextManager):
        return memory
    if not isinstance(memory, (str, Mapping)):
        raise TypeError(
            "memory must be a registered name (" + ", ".join(MEMORY_MODES) + ", ...), a describe() dict,"
            " or an object with name, reset(), build(prompt, turns) and describe()"
        )
    settings = dict(memory_kwargs or {})
    name = memory if isinstance(memory, str) else memory.get("name")
    if name == "window":
        settings.setdefault("k", window_k)
    elif name == "external":
        settings.setdefault("top_k", external_top_k)
        settings.setdefault("ranker", external_ranker)
    if isinstance(memory, Mapping):  # recorded settings win over the defaults above
        settings.update({k: v for k, v in memory.items() if k != "name"})
        memory = {"name": name}
    return make_memory(memory, **settings)


def build_retriever(documents: Sequence[Document], retriever: str = "bm25", *, cache_dir: str | None = None) -> Any:
    """A retriever of the named kind over ``documents`` (indexes cached on disk)."""
    from mempo_gym import retrieval

    if retriever == "bm25":
        return retrieval.BM25Retriever(documents, cache_dir=cache_dir)
    if retriever == "dense":
        return retrieval.DenseRetriever(documents, cache_dir=cache_dir, show_progress=False)
    if retriever == "hybrid":
        return retrieval.HybridRetriever(
            retrieval.BM25Retriever(documents, cache_dir=cache_dir),
            retrieval.DenseRetriever(documents, cache_dir=cache_dir, show_progress=False),
        )
    raise ValueError(f"retriever must be one of {RETRIEVERS}, got {retriever!r}")


def build_qa_env(
    tasks: Sequence[Task],
    search_tool: SearchTool | None = None,
    *,
    documents: Sequence[Document] | None = None,
    retriever: str = "bm25",
    top_k: int = 3,
    passage_token_cap: int | None = 128,
    index_cache_dir: str | None = None,
    memory: str | Mapping[str, Any] | ContextManager = "self",
    window_k: int = 2,
    external_top_k: int = 2,
    external_ranker: str = "bm25",
    memory_kwargs: Mapping[str, Any] | None = None,
    tokenizer: Any = None,
    env_config: dict[str, Any] | None = None,
    **env_kwargs: Any,
) -> MemoryEnv:
    """A :class:`MemoryEnv` over ``tasks``, searching ``documents`` (or a given tool)."""
    tok = load_tokenizer(tokenizer)
    config = dict(env_config or {})
    if search_tool is None:
        if documents is None:
            raise ValueError("build_qa_env needs documents= (a corpus) or search_tool=")
        from mempo_gym.retrieval import RetrieverSearchTool

        search_tool = RetrieverSearchTool(
            build_retriever(documents, retriever, cache_dir=index_cache_dir),
            top_k=top_k, passage_token_cap=passage_token_cap, tokenizer=tok,
        )
        config.update({"retriever": retriever, "top_k": top_k, "passage_token_cap": passage_token_cap,
                       "corpus_size": len(documents)})
    context_manager = resolve_memory(
        memory, window_k=window_k, external_top_k=external_top_k, external_ranker=external_ranker,
        memory_kwargs=memory_kwargs,
    )
    return MemoryEnv(tasks, search_tool, tokenizer=tok, memory=context_manager, env_config=config, **env_kwargs)
