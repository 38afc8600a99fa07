"""``evaluate``: run an agent on environments, batched, resumable, recorded in a run folder.

A run folder holds ``config.json`` (everything needed to reproduce and compare the run)
and ``episodes.jsonl`` (one line per finished episode; see :mod:`.runfiles` for the
crash-safety guarantees). ``batch_size`` environments are stepped together and the
agent's :meth:`~mempo_gym.agent.Agent.act_batch` is called once per round.
"""

from __future__ import annotations

import datetime as _dt
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import gymnasium as gym

from mempo_gym.agent import Agent, EpisodeFailure
from mempo_gym.harness.envs import core_env, make_env
from mempo_gym.harness.episodes import episode_key, episode_record, failed_record, is_failed
from mempo_gym.harness.task_order import DEFAULT_TASK_ORDER, check_task_order, reset_arguments
from mempo_gym.harness.runfiles import (
    CONFIG_FILE, EPISODES_FILE, RUN_FORMAT, RUN_FORMAT_VERSION, EpisodeWriter, RunFileError,
    canonical_json, drop_failed, read_config, repair_torn_tail, to_jsonable, write_json_atomic,
)
from mempo_gym.prompts import PROMPTS_VERSION
from mempo_gym.rollout import Job, rollout
from mempo_gym.version import __version__

if TYPE_CHECKING:
    import pandas as pd
    from tqdm import tqdm

#: Config keys that may differ when a run is resumed (everything else must match).
RESUMABLE_KEYS = frozenset({"command", "created_at", "episodes", "first", "batch_size", "resumed"})


class RunConfigMismatchError(RunFileError):
    """``resume=True`` into a folder whose recorded config differs from this run's."""


class RunExistsError(RunFileError, FileExistsError):
    """The output folder already holds a run and ``resume`` was not requested."""


def _merged_env_kwargs(agent: Agent, env_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Agent-required settings, overridden by the caller's explicit ``env_kwargs``."""
    merged = dict(agent.env_kwargs())
    merged.update(env_kwargs or {})
    return merged


def _build_config(
    env_ids: Sequence[str], envs: Mapping[str, gym.Env], kwargs: Mapping[str, Any], agent: Agent,
    episodes: int, seed: int, batch_size: int, task_order: str = DEFAULT_TASK_ORDER, first: int = 0,
) -> dict[str, Any]:
    env_entries = []
    for env_id in env_ids:
        described = to_jsonable(core_env(envs[env_id]).describe())
        env_entries.append({
            "id": env_id,
            "kwargs": to_jsonable(dict(kwargs)),
            "describe": described,
            "data_files": dict(described.get("data_files") or {}),
        })
    described = env_entries[0]["describe"] if env_entries else {}
    return {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "mempo_gym_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": _shlex_join(sys.argv),
        "envs": env_entries,
        "tokenizer": described.get("tokenizer"),
        "prompts_version": described.get("prompts_version", PROMPTS_VERSION),
        "agent": to_jsonable(agent.describe()),
        "seed": int(seed),
        "episodes": int(episodes),
        "first": int(first),
        "task_order": task_order,
        "batch_size": int(batch_size),
    }


def _shlex_join(argv: Sequence[str]) -> str:
    import shlex

    return shlex.join(argv)


def config_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a run config that must not change when a run is resumed."""
    return {k: v for k, v in config.items() if k not in RESUMABLE_KEYS}


def _config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    a, b = config_identity(old), config_identity(new)
    diffs = []
    for key in sorted(set(a) | set(b)):
        if canonical_json(a.get(key)) != canonical_json(b.get(key)):
            diffs.append(f"{key}: recorded {canonical_json(a.get(key))[:160]} vs now {canonical_json(b.get(key))[:160]}")
    return diffs


def _prepare_folder(out: Path, config: dict[str, Any], resume: bool) -> list[dict[str, Any]]:
    """Create or reopen a run folder; return the episodes already finished there."""
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / CONFIG_FILE
    episodes_path = out / EPISODES_FILE
    if not config_path.exists():
        if episodes_path.exists() and episodes_path.stat().st_size > 0:
            raise RunFileError(f"{episodes_path} exists without {CONFIG_FILE}; use an empty folder")
        write_json_atomic(config_path, config)
        return []
    if not resume:
        raise RunExistsError(
            f"{out} already holds a run; pass resume=True (CLI: --resume) to continue it, "
            "or choose another output folder"
        )
    old = read_config(out)
    diffs = _config_differences(old, config)
    if diffs:
        raise RunConfigMismatchError(
            f"cannot resume into {out}: its config differs from this run's:\n  " + "\n  ".join(diffs)
            + "\nRun with the same settings, or choose another output folder."
        )
    updated = dict(old)
    updated["episodes"] = max(int(old.get("episodes", 0)), int(config["episodes"]))
    updated["first"] = min(int(old.get("first", 0)), int(config["first"]))
    updated["resumed"] = list(old.get("resumed", [])) + [
        {"at": config["created_at"], "command": config["command"], "batch_size": config["batch_size"]}
    ]
    write_json_atomic(config_path, updated)
    return drop_failed(episodes_path, repair_torn_tail(episodes_path).records)


def _frame(records: Sequence[Mapping[str, Any]]) -> "pd.DataFrame":
    import pandas as pd  # imported when a run returns its table, not with mempo_gym

    rows = [{k: v for k, v in r.items() if k != "transcript"} for r in records]
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.sort_values(["env_id", "episode_index"], kind="stable").reset_index(drop=True)
    return frame


def evaluate(
    envs: str | Sequence[str],
    agent: Agent,
    episodes: int,
    seed: int = 0,
    out: str | Path | None = None,
    batch_size: int = 1,
    resume: bool = False,
    env_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
    task_order: str = DEFAULT_TASK_ORDER,
    first: int = 0,
) -> "pd.DataFrame":
    """Run ``agent`` for ``episodes`` episodes on each env id; return one row per episode.

    Args:
        envs: one env id or several (e.g. ``"MemPO-SynthWiki-v0"``).
        agent: the evaluated :class:`~mempo_gym.agent.Agent`.
        episodes: episodes per env id.
        seed: run seed; episode ``i`` of env ``E`` resets with ``episode_seed(seed, E, i)``.
        out: run folder (``config.json`` + ``episodes.jsonl``); ``None`` keeps nothing on disk.
        batch_size: environments stepped together; ``act_batch`` is called once per round.
        resume: continue the run in ``out`` (its config must match), skipping finished episodes.
        env_kwargs: ``gym.make`` keyword arguments; they override ``agent.env_kwargs()``.
        progress: show a tqdm bar with the live mean F1 and mean ``tokens_total``.
        task_order: ``"permutation"`` (default: each task once, the first ``episodes`` of a
            seeded permutation) or ``"sample"`` (with replacement); see :mod:`.task_order`.
        first: play episode indices ``first .. episodes-1`` only (a shard of the run). Episode
            ``i`` is the same task in every run of the same seed, so runs of disjoint ranges
            play disjoint tasks and their episodes can be pooled or paired by index; resuming
            with a smaller ``first`` extends the folder downwards.

    An episode whose agent raises :class:`~mempo_gym.agent.EpisodeFailure` (a served
    model timed out or failed after its retries) is recorded with ``failed: true`` and the
    reason, and the run goes on; ``resume=True`` retries failed episodes.

    Returns:
        A DataFrame with the ``episodes.jsonl`` fields except the transcript, sorted by
        env and episode index (episodes finished before a resume included; failed ones
        have ``failed == True`` and no scores).
    """
    env_ids = [envs] if isinstance(envs, str) else list(envs)
    if not env_ids:
        raise ValueError("evaluate() needs at least one env id")
    if len(set(env_ids)) != len(env_ids):
        raise ValueError(f"env ids must be distinct, got {env_ids}")
    if not isinstance(agent, Agent):
        raise TypeError(f"agent must be a mempo_gym.Agent, got {type(agent).__name__}")
    if int(episodes) < 0 or int(batch_size) < 1:
        raise ValueError(f"episodes must be >= 0 and batch_size >= 1, got {episodes} and {batch_size}")
    if not 0 <= int(first) <= int(episodes):
        raise ValueError(f"first must be between 0 and episodes ({episodes}), got {first}: "
                         "the run plays episode indices first .. episodes-1")
    episodes, batch_size, first = int(episodes), int(batch_size), int(first)
    kwargs = _merged_env_kwargs(agent, env_kwargs)

    first_envs: dict[str, gym.Env] = {}
    try:
        for env_id in env_ids:  # one instance per id up front: fail fast, and describe() for the config
            first_envs[env_id] = make_env(env_id, **kwargs)
            check_task_order(task_order, episodes, len(core_env(first_envs[env_id]).tasks), env_id)
        config = _build_config(env_ids, first_envs, kwargs, agent, episodes, seed, batch_size, task_order, first)
        out_dir = Path(out) if out is not None else None
        done: list[dict[str, Any]] = []
        if out_dir is not None:
            done = _prepare_folder(out_dir, config, resume)
        elif resume:
            raise ValueError("resume=True needs an output folder (out=...)")
        finished = {r["key"] for r in done}
        records = list(done)
        writer = EpisodeWriter(out_dir / EPISODES_FILE) if out_dir is not None else None
        total = (episodes - first) * len(env_ids)
        from tqdm.auto import tqdm  # not at import time (it pulls in asyncio and ssl)

        initial = sum(episode_key(env_id, i) in finished for env_id in env_ids for i in range(first, episodes))
        bar = tqdm(total=total, initial=initial, disable=not progress,
                   desc=getattr(agent, "name", "agent"), unit="ep", dynamic_ncols=True)
        try:
            _show(bar, records)
            for env_id in env_ids:
                pending = deque(i for i in range(first, episodes) if episode_key(env_id, i) not in finished)
                if not pending:
                    continue
                _run_env(env_id, first_envs[env_id], kwargs, agent, seed, batch_size, pending,
                         writer, records, bar, task_order)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
    finally:
        for env in first_envs.values():
            env.close()
    return _frame(records)


def _show(bar: "tqdm", records: Sequence[Mapping[str, Any]]) -> None:
    done = [r for r in records if not is_failed(r)]
    if records and not bar.disable:
        f1 = sum(float(r.get("f1") or 0.0) for r in done) / max(len(done), 1)
        tokens = sum(int(r.get("tokens_total") or 0) for r in done) / max(len(done), 1)
        bar.set_postfix(f1=f"{f1:.3f}", tokens=f"{tokens:.0f}", failed=len(records) - len(done))


def _run_env(
    env_id: str, first_env: gym.Env, kwargs: Mapping[str, Any], agent: Agent, seed: int,
    batch_size: int, pending: deque[int], writer: EpisodeWriter | None,
    records: list[dict[str, Any]], bar: "tqdm", task_order: str = DEFAULT_TASK_ORDER,
) -> None:
    """Step up to ``batch_size`` episodes of one env id together until ``pending`` is empty
    (the shared loop of :func:`mempo_gym.rollout.rollout`)."""
    width = min(batch_size, len(pending))
    pool = [first_env]
    try:
        for _ in range(width - 1):
            pool.append(make_env(env_id, **kwargs))
        num_tasks = len(core_env(first_env).tasks)
        jobs = (Job(key=i, **reset_arguments(task_order, seed, env_id, i, num_tasks)) for i in pending)
        on_start = lambda number, task: agent.reset(task, number)  # noqa: E731
        for episode in rollout(pool, jobs, lambda o, i, s: _act(agent, o, i, s), on_start=on_start):
            task = episode.task
            assert task is not None and episode.seed is not None
            if episode.failure is not None:
                record = failed_record(
                    env_id=env_id, index=episode.key, seed=episode.seed, task_id=task.id,
                    num_objectives=task.num_objectives, reason=episode.failure, turns=len(episode.turns),
                )
            else:
                record = episode_record(
                    env_id=env_id, index=episode.key, seed=episode.seed, task_id=task.id,
                    num_objectives=task.num_objectives, metrics=episode.info["metrics"],
                    transcript=episode.info.get("transcript", []),
                )
            if writer is not None:
                writer.append(record)
            records.append(record)
            bar.update(1)
            _show(bar, records)
    finally:
        for env in pool[1:]:
            env.close()


def _act(agent: Agent, observations: list[Any], infos: list[dict[str, Any]], slots: list[int]) -> list[Any]:
    """One turn per slot; an :class:`EpisodeFailure` in place of the turn of a slot that failed
    (the rollout loop ends that episode as failed).

    When a batched call fails, each slot is asked again on its own, so one slow or failed
    request fails only its own episode.
    """
    def call(numbers: list[int]) -> list[Any]:
        return list(agent.act_batch([observations[n] for n in numbers], [infos[n] for n in numbers],
                                    [slots[n] for n in numbers]))

    everyone = list(range(len(slots)))
    try:
        return call(everyone)
    except EpisodeFailure as failure:
        if len(slots) == 1:
            return [failure]
    out: list[Any] = []
    for n in everyone:
        try:
            out.extend(call([n]))
        except EpisodeFailure as failure:
            out.append(failure)
    return out
