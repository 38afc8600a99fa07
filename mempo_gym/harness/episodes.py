"""What one evaluated episode is called, which seed it gets, and what is recorded about it.

Episode ``i`` of environment ``E`` in a run with seed ``s`` always gets the same reset
seed, :func:`episode_seed` ``(s, E, i)``, whatever the batch size and however often the
run was interrupted and resumed, so it always draws the same task.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

#: Fields of an ``episodes.jsonl`` line (see ``docs/submission_format.md``).
EPISODE_FIELDS: tuple[str, ...] = (
    "key", "env_id", "episode_index", "episode_seed", "task_id", "num_objectives",
    "prediction", "golds", "answered", "f1", "em", "precision", "recall", "per_objective",
    "reward", "tokens_total", "tokens_peak", "tokens_generated", "calls", "turns", "searches",
    "search_errors", "malformed_turns", "truncated_reason", "wall_time_s", "transcript",
)
#: Fields of the line of a failed episode (the agent could not write a turn: a timeout, a
#: server error); ``resume`` retries it and replaces the line.
FAILED_FIELDS: tuple[str, ...] = (
    "key", "env_id", "episode_index", "episode_seed", "task_id", "num_objectives",
    "failed", "failure", "turns",
)
#: Fields that legitimately differ between two runs of the same episode.
NONDETERMINISTIC_FIELDS: frozenset[str] = frozenset({"wall_time_s"})


def episode_key(env_id: str, index: int) -> str:
    """Run-unique name of an episode.

    >>> episode_key("MemPO-SynthWiki-v0", 3)
    'MemPO-SynthWiki-v0#3'
    """
    return f"{env_id}#{int(index)}"


def episode_seed(seed: int, env_id: str, index: int) -> int:
    """Reset seed of episode ``index`` of ``env_id`` in a run seeded ``seed`` (63-bit, SHA-256 based).

    >>> episode_seed(0, "E", 1) == episode_seed(0, "E", 1) != episode_seed(0, "E", 2)
    True
    """
    digest = hashlib.sha256(f"mempo-gym-episode|{int(seed)}|{env_id}|{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def episode_record(
    *,
    env_id: str,
    index: int,
    seed: int,
    task_id: str,
    num_objectives: int,
    metrics: Mapping[str, Any],
    transcript: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The ``episodes.jsonl`` line of a finished episode, from the env's final ``info``."""
    missing = [k for k in ("f1", "em", "tokens_total", "tokens_peak", "tokens_generated", "turns") if k not in metrics]
    if missing:
        raise KeyError(
            f"the final info['metrics'] of {env_id} lacks {missing}; is this a MemPO-Gym MemoryEnv?"
        )
    record: dict[str, Any] = {
        "key": episode_key(env_id, index),
        "env_id": env_id,
        "episode_index": int(index),
        "episode_seed": int(seed),
        "task_id": str(task_id),
        "num_objectives": int(num_objectives),
    }
    for name in EPISODE_FIELDS:
        if name in record or name == "transcript":
            continue
        value = metrics.get(name)
        record[name] = value
    record["golds"] = [list(g) for g in metrics.get("golds") or []]
    record["per_objective"] = [dict(o) for o in metrics.get("per_objective") or []]
    record["transcript"] = [dict(call) for call in transcript]
    return record


def failed_record(
    *, env_id: str, index: int, seed: int, task_id: str, num_objectives: int, reason: str, turns: int = 0,
) -> dict[str, Any]:
    """The ``episodes.jsonl`` line of an episode that failed (``failed: true`` and the reason).

    >>> r = failed_record(env_id="E", index=0, seed=1, task_id="t", num_objectives=1, reason="timeout")
    >>> is_failed(r), r["failure"]
    (True, 'timeout')
    """
    return {
        "key": episode_key(env_id, index), "env_id": env_id, "episode_index": int(index),
        "episode_seed": int(seed), "task_id": str(task_id), "num_objectives": int(num_objectives),
        "failed": True, "failure": str(reason)[:2000], "turns": int(turns),
    }


def is_failed(record: Mapping[str, Any]) -> bool:
    """Whether an ``episodes.jsonl`` line records a failed episode."""
    return bool(record.get("failed"))


def strip_nondeterministic(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record without the fields that vary between identical runs (wall time)."""
    return {k: v for k, v in record.items() if k not in NONDETERMINISTIC_FIELDS}
