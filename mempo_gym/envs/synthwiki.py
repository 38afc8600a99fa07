"""SynthWiki envs: procedurally generated fictional worlds, searched with BM25.

``gym.make("MemPO-SynthWiki-v0", split="test", seed=0, objectives=1, ...)``. Every
field of :class:`~mempo_gym.tasks.synthwiki.SynthWikiConfig` is a keyword argument;
``search="bm25"`` (default, Search-R1 style ranked passages) or ``"title"`` (exact-title
lookup returning one document's text: :class:`~mempo_gym.retrieval.title_lookup.TitleLookupTool`);
the rest go to :func:`mempo_gym.envs.factory.build_qa_env`. Worlds are generated once per
process and configuration (vector envs share them).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

from mempo_gym.core.env import MemoryEnv
from mempo_gym.envs.factory import build_qa_env
from mempo_gym.records import Document, Task
from mempo_gym.tasks.synthwiki import SynthWikiConfig, generate_synthwiki

_CONFIG_FIELDS = {f.name for f in dataclasses.fields(SynthWikiConfig)}


@lru_cache(maxsize=16)
def synthwiki_data(config: SynthWikiConfig) -> tuple[tuple[Task, ...], tuple[Document, ...], str]:
    """Tasks, corpus and world id of a configuration (generated once per process)."""
    world, tasks = generate_synthwiki(config)
    return tuple(tasks), tuple(world.documents), world.world_id


def make_synthwiki_env(
    *,
    split: str = "test",
    seed: int = 0,
    objectives: int = 1,
    num_tasks: int = 200,
    max_turns: int | None = None,
    search: str = "bm25",
    **kwargs: Any,
) -> MemoryEnv:
    """A SynthWiki env; ``max_turns`` defaults to ``4 * objectives + 2``.

    >>> import gymnasium as gym, mempo_gym
    >>> env = gym.make("MemPO-SynthWiki-v0", num_tasks=5)
    >>> obs, info = env.reset(seed=0)
    >>> obs["context"].splitlines()[-1].startswith("Question:")
    True
    """
    world_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _CONFIG_FIELDS}
    for name in ("hops", "syllables", "year_range", "kinds"):
        if isinstance(world_kwargs.get(name), list):
            world_kwargs[name] = tuple(world_kwargs[name])
    config = SynthWikiConfig(split=split, seed=seed, objectives=objectives, num_tasks=num_tasks, **world_kwargs)
    tasks, documents, world_id = synthwiki_data(config)
    env_config = {"task_family": "synthwiki", "world_id": world_id, "synthwiki": dataclasses.asdict(config)}
    if search == "title":
        from mempo_gym.retrieval.title_lookup import TitleLookupTool

        kwargs["search_tool"] = TitleLookupTool(documents)
    elif search != "bm25":
        raise ValueError(f"search must be 'bm25' or 'title', got {search!r}")
    return build_qa_env(
        tasks, documents=documents, max_turns=max_turns or 4 * objectives + 2, env_config=env_config, **kwargs
    )
