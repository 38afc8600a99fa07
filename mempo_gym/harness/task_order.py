"""Which task episode ``i`` of a run asks: each task once (default), or sampled with replacement.

Two orders, named in the run config as ``"task_order"``:

* ``"permutation"`` (default) — a seeded permutation of the env's tasks without
  replacement; a run of ``N`` episodes asks the first ``N`` tasks of it, each once
  (``N`` = the env's ``num_tasks`` asks every task). Task ``j`` (its index in
  ``env.tasks``) sorts by the key ``sha256("mempo-gym-order|{seed}|{env_id}|{j}")``, so
  any system reproduces the order without this library (``docs/submission_format.md``).
* ``"sample"`` — the env draws the task from ``reset(seed=episode_seed(seed, env_id, i))``
  (with replacement: the same question may come twice; kept for training-style runs).

Either way episode ``i`` resets with ``seed=episode_seed(seed, env_id, i)``; the
scorer uses :func:`reset_arguments` to rebuild exactly the same episode.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from mempo_gym.harness.episodes import episode_seed

TASK_ORDERS = ("permutation", "sample")
DEFAULT_TASK_ORDER = "permutation"


def check_task_order(order: str, episodes: int, num_tasks: int, env_id: str) -> None:
    """Raise ``ValueError`` when ``order`` is unknown or cannot give ``episodes`` distinct tasks."""
    if order not in TASK_ORDERS:
        raise ValueError(f"task_order must be one of {TASK_ORDERS}, got {order!r}")
    if order == "permutation" and episodes > num_tasks:
        raise ValueError(
            f"{env_id} has {num_tasks} tasks, so {episodes} episodes cannot ask each task once: use at most "
            f"{num_tasks} episodes (or num_tasks=... to build more tasks, or task_order='sample' to sample "
            "with replacement)"
        )


@lru_cache(maxsize=64)
def task_permutation(seed: int, env_id: str, num_tasks: int) -> tuple[int, ...]:
    """The seeded without-replacement order of task indices ``0..num_tasks-1`` (see module doc).

    >>> sorted(task_permutation(0, "E", 5)) == [0, 1, 2, 3, 4]
    True
    >>> task_permutation(0, "E", 5) == task_permutation(0, "E", 5) != task_permutation(1, "E", 5)
    True
    """
    def key(j: int) -> bytes:
        return hashlib.sha256(f"mempo-gym-order|{int(seed)}|{env_id}|{j}".encode()).digest()

    return tuple(sorted(range(int(num_tasks)), key=key))


def reset_arguments(order: str, seed: int, env_id: str, index: int, num_tasks: int) -> dict[str, Any]:
    """``env.reset`` keyword arguments of episode ``index`` of a run.

    >>> reset_arguments("sample", 0, "E", 1, 10) == {"seed": episode_seed(0, "E", 1)}
    True
    >>> reset_arguments("permutation", 0, "E", 1, 10)["options"]["task_index"] == task_permutation(0, "E", 10)[1]
    True
    """
    arguments: dict[str, Any] = {"seed": episode_seed(seed, env_id, index)}
    if order == "permutation":
        arguments["options"] = {"task_index": task_permutation(seed, env_id, num_tasks)[index]}
    elif order != "sample":
        raise ValueError(f"task_order must be one of {TASK_ORDERS}, got {order!r}")
    return arguments
