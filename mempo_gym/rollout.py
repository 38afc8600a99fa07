"""The batched episode loop shared by the evaluation harness, SFT data collection and training.

:func:`rollout` plays a stream of episodes (:class:`Job`) on a pool of envs: every free env
takes the next job, the policy is called once per round with the observations of all live
envs, and each finished episode is yielded as an :class:`Episode`. :func:`play_batch` plays
one episode on each of a fixed list of envs and returns them all.

A policy maps a batch to one action per env, with the signature of
:meth:`mempo_gym.agent.Agent.act_batch` (so ``agent.act_batch`` is a policy)::

    policy(observations: list, infos: list[dict], slots: list[int]) -> list[action]

An action is whatever the env's ``step`` takes (a text turn, a list of token ids, or one id
in token mode), or a :class:`Completion` carrying the exact ids a model sampled with their
log-probabilities, or an exception instance: the policy could not act for that env (a
served model timed out), and the episode ends there as failed (:attr:`Episode.failure`). With ``record_ids=True`` every finished turn becomes a :class:`TurnSample`
(verifiers style: prompt ids, completion ids, log-probs) holding the ids the env metered:
``prompt_ids`` are the env's :attr:`~mempo_gym.core.env.MemoryEnv.context_ids` for that call
(also given to the policy as ``info["context_ids"]``) and ``completion_ids`` its
``output_ids`` (ids the env dropped after a stop string are dropped from the log-probs too).

>>> from mempo_gym.rollout import Job, rollout   # doctest: +SKIP
>>> for ep in rollout([env], [Job(key=i, seed=i) for i in range(3)], agent.act_batch):
...     print(ep.key, ep.info["metrics"]["f1"])   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import gymnasium as gym

from mempo_gym.records import Task

Policy = Callable[[list[Any], list[dict[str, Any]], list[int]], Sequence[Any]]


@dataclass(frozen=True)
class Completion:
    """A policy's action given as the exact token ids it sampled.

    Attributes:
        ids: the generated ids (the env stops at its own stop rule; later ids are dropped).
        logprobs: one log-probability per id, or ``None``.
        extra: anything the caller wants kept with the turn (e.g. a memory-token mask).
    """

    ids: Sequence[int]
    logprobs: Sequence[float] | None = None
    extra: Mapping[str, Any] | None = None


@dataclass
class TurnSample:
    """One model call of an episode, as the env metered it.

    ``prompt_ids`` is ``None`` unless ``record_ids=True`` (or the env is not a MemoryEnv).
    """

    prompt_ids: tuple[int, ...] | None
    completion_ids: list[int]
    logprobs: list[float] | None
    output: str
    end: str
    action: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One episode to play: ``reset(seed=seed, options=options)``; ``key`` is the caller's id."""

    key: Any
    seed: int | None = None
    options: Mapping[str, Any] | None = None


@dataclass
class Episode:
    """A finished episode: the final ``info`` (``metrics``, ``transcript``), the summed reward,
    and one :class:`TurnSample` per model call."""

    key: Any
    slot: int
    seed: int | None
    task: Task | None
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    turns: list[TurnSample]
    failure: str | None = None
    """Why the policy could not finish the episode (``"TypeName: message"``); ``None`` if it ended."""


@dataclass
class _Slot:
    env: gym.Env
    core: Any
    job: Job | None = None
    observation: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    reward: float = 0.0
    turns: list[TurnSample] = field(default_factory=list)
    prompt_ids: tuple[int, ...] | None = None
    logprobs: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    turn: int = 0
    in_turn: bool = False


def _core(env: gym.Env) -> Any:
    base = getattr(env, "unwrapped", env)
    return base if hasattr(base, "context_ids") and hasattr(base, "last_call") else None


def rollout(
    envs: Sequence[gym.Env],
    jobs: Iterable[Job],
    policy: Policy,
    *,
    on_start: Callable[[int, Task | None], None] | None = None,
    record_ids: bool = False,
) -> Iterator[Episode]:
    """Play ``jobs`` on the pool ``envs`` (slot ``n`` is ``envs[n]``); yield episodes as they end.

    Args:
        envs: the envs (their number is the batch width).
        jobs: the episodes to play, taken in order by whichever slot is free (lowest first).
        policy: ``policy(observations, infos, slots) -> actions`` (see the module docstring).
        on_start: called as ``on_start(slot, task)`` after each reset (e.g. ``agent.reset``).
        record_ids: keep each call's prompt ids in :class:`TurnSample` and pass them to the
            policy as ``info["context_ids"]`` (costs one tuple of the context per call).
    """
    slots = [_Slot(env, _core(env)) for env in envs]
    pending = iter(jobs)
    exhausted = False
    while True:
        for number, slot in enumerate(slots):
            if slot.job is None and not exhausted:
                job = next(pending, None)
                if job is None:
                    exhausted = True
                    continue
                _start(slot, job)
                if on_start is not None:
                    on_start(number, slot.core.task if slot.core is not None else None)
        live = [n for n, s in enumerate(slots) if s.job is not None]
        if not live:
            return
        infos = []
        for n in live:
            slot = slots[n]
            if record_ids and not slot.in_turn and slot.core is not None:
                slot.prompt_ids = slot.core.context_ids  # a new turn starts
            if record_ids and slot.prompt_ids is not None:
                slot.info["context_ids"] = slot.prompt_ids
            infos.append(slot.info)
        actions = policy([slots[n].observation for n in live], infos, live)
        if len(actions) != len(live):
            raise RuntimeError(f"the policy returned {len(actions)} actions for {len(live)} slots")
        for n, action in zip(live, actions):
            episode = _step(slots[n], n, action)
            if episode is not None:
                yield episode


def play_batch(
    slots: Sequence[tuple[gym.Env, Mapping[str, Any] | None]],
    policy: Policy,
    *,
    seeds: Sequence[int | None] | None = None,
    on_start: Callable[[int, Task | None], None] | None = None,
    record_ids: bool = True,
) -> list[Episode]:
    """Play one episode on each ``(env, reset options)`` slot; return them in slot order."""
    jobs = [Job(key=k, seed=None if seeds is None else seeds[k], options=opts) for k, (_, opts) in enumerate(slots)]
    done = list(rollout([env for env, _ in slots], jobs, policy, on_start=on_start, record_ids=record_ids))
    return sorted(done, key=lambda e: e.key)


def _start(slot: _Slot, job: Job) -> None:
    slot.job = job
    slot.observation, slot.info = slot.env.reset(seed=job.seed, options=dict(job.options) if job.options else None)
    slot.reward, slot.turns, slot.turn = 0.0, [], 0
    slot.prompt_ids, slot.logprobs, slot.extra, slot.in_turn = None, None, {}, False


def _step(slot: _Slot, number: int, action: Any) -> Episode | None:
    if isinstance(action, BaseException):  # the policy failed for this env: the episode ends, failed
        job, slot.job = slot.job, None
        assert job is not None
        return Episode(
            key=job.key, slot=number, seed=job.seed, task=slot.core.task if slot.core is not None else None,
            reward=slot.reward, terminated=False, truncated=False, info=slot.info, turns=slot.turns,
            failure=f"{type(action).__name__}: {action}",
        )
    slot.in_turn = True
    env_action: Any = action
    if isinstance(action, Completion):
        if action.logprobs is not None:
            if len(action.logprobs) != len(action.ids):
                raise ValueError(f"a Completion has {len(action.ids)} ids but {len(action.logprobs)} log-probs")
            slot.logprobs = (slot.logprobs or []) + [float(x) for x in action.logprobs]
        if action.extra:
            slot.extra.update(action.extra)
        env_action = list(action.ids)
        if getattr(slot.core, "action_mode", "text") == "token":
            if len(env_action) != 1:
                raise ValueError("in action_mode='token' a Completion holds exactly one id")
            env_action = env_action[0]
    slot.observation, reward, terminated, truncated, slot.info = slot.env.step(env_action)
    slot.reward += float(reward)
    turn = int(slot.info.get("turn", slot.turn + 1))
    if turn > slot.turn or terminated or truncated:
        slot.turn = turn
        _close_turn(slot)
    if not (terminated or truncated):
        return None
    job, slot.job = slot.job, None
    assert job is not None
    return Episode(
        key=job.key, slot=number, seed=job.seed, task=slot.core.task if slot.core is not None else None,
        reward=slot.reward, terminated=bool(terminated), truncated=bool(truncated), info=slot.info,
        turns=slot.turns,
    )


def _close_turn(slot: _Slot) -> None:
    call = slot.core.last_call if slot.core is not None else None
    if call is not None:
        ids = list(call["output_ids"])
        lps = slot.logprobs[: len(ids)] if slot.logprobs is not None else None
        slot.turns.append(TurnSample(
            prompt_ids=slot.prompt_ids, completion_ids=ids, logprobs=lps, output=call["output"],
            end=call["end"], action=call["action"], extra=dict(slot.extra),
        ))
    slot.prompt_ids, slot.logprobs, slot.extra, slot.in_turn = None, None, {}, False


__all__ = [
    "Completion", "Episode", "Job", "Policy", "TurnSample", "play_batch", "rollout"
]
