"""Compose single-question tasks into multi-objective tasks (k questions per episode).

MemPO's multi-objective setting asks k independent questions in one episode, answered
together as ``a1; a2; ...``. :func:`compose_tasks` builds such tasks from any pool of
single-question tasks (SynthWiki, HotpotQA, NQ ...); :func:`compose_mixed_tasks` fills
the k slots from several pools in turn (slot ``j`` from pool ``j % len(pools)``, e.g.
HotpotQA then NQ for the 2-objective HotpotQA+NQ mix).

Sampling rule (deterministic from ``seed``, ``id_prefix`` and ``objectives``):

* every pool is read through a stream of seeded random permutations of its members
  (epoch after epoch), so each member is used once before any member is used twice;
* within one task members are distinct (by id and by question text): a member that
  would repeat inside the task is kept for the next task instead.

Composed ids are ``{id_prefix}-{k}obj-{i}`` (``id_prefix`` defaults to ``source``) and
``meta`` records ``members`` (member ids in question order), ``objectives`` and
``compose_seed``, plus any ``keep_meta`` keys, which must agree across the members.

>>> from mempo_gym.records import Question, Task
>>> pool = [Task(id=f"p{i}", questions=(Question(text=f"Q{i}?", answers=(str(i),)),),
...              source="demo", split="dev") for i in range(5)]
>>> tasks = compose_tasks(pool, objectives=2, num_tasks=2, seed=0, source="demo")
>>> [t.id for t in tasks], tasks[0].num_objectives
(['demo-2obj-0', 'demo-2obj-1'], 2)
>>> len(set(tasks[0].meta["members"] + tasks[1].meta["members"]))
4
>>> tasks == compose_tasks(pool, objectives=2, num_tasks=2, seed=0, source="demo")
True
"""

from __future__ import annotations

from collections import deque
from random import Random
from typing import Any, Sequence

from mempo_gym.records import Task
from mempo_gym.tasks.names import derive_seed


class _MemberStream:
    """Endless stream of pool indices: seeded permutations, one epoch after another."""

    def __init__(self, pool: Sequence[Task], rng: Random) -> None:
        self._pool = pool
        self._rng = rng
        self._pending: deque[int] = deque()

    def _refill(self) -> None:
        order = list(range(len(self._pool)))
        self._rng.shuffle(order)
        self._pending.extend(order)

    def draw(self, used_ids: set[str], used_texts: set[str]) -> int:
        """Next index whose member is not yet in the task; skipped ones stay in front."""
        skipped: list[int] = []
        while True:
            if not self._pending:
                self._refill()
            index = self._pending.popleft()
            task = self._pool[index]
            if task.id in used_ids or task.questions[0].text in used_texts:
                skipped.append(index)
                continue
            self._pending.extendleft(reversed(skipped))
            return index


def _check_pool(pool: Sequence[Task], slots: int, name: str) -> None:
    if not pool:
        raise ValueError(f"{name} is empty: pass at least one single-question Task")
    for task in pool:
        if not isinstance(task, Task):
            raise TypeError(f"{name} must hold Task records, got {type(task).__name__}")
        if task.num_objectives != 1:
            raise ValueError(
                f"{name}: task {task.id!r} has {task.num_objectives} questions; compose only "
                "single-question tasks (split multi-question ones first)"
            )
    seen: set[str] = set()
    for task in pool:
        if task.id in seen:
            raise ValueError(f"{name} holds task id {task.id!r} more than once: member ids must be unique")
        seen.add(task.id)
    distinct = len({t.questions[0].text for t in pool})
    if distinct < slots:
        raise ValueError(
            f"{name} has {distinct} distinct questions but each task needs {slots} from it; "
            "lower `objectives` or enlarge the pool"
        )


def _common_meta(members: Sequence[Task], keys: Sequence[str], task_id: str) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key in keys:
        values = [m.meta.get(key) for m in members]
        if any(v != values[0] for v in values[1:]) or key not in members[0].meta:
            raise ValueError(
                f"keep_meta key {key!r} differs or is missing among the members of {task_id} "
                f"({[m.id for m in members]}): only keep keys every member shares"
            )
        kept[key] = values[0]
    return kept


def compose_mixed_tasks(
    pools: Sequence[Sequence[Task]],
    objectives: int,
    num_tasks: int,
    seed: int,
    source: str,
    id_prefix: str | None = None,
    keep_meta: Sequence[str] = (),
) -> list[Task]:
    """k-objective tasks whose slot ``j`` comes from ``pools[j % len(pools)]``.

    Args:
        pools: one or more pools of single-question tasks.
        objectives: questions per composed task (k >= 1).
        num_tasks: how many tasks to build (members are reused, epoch after epoch, when
            ``num_tasks * k`` exceeds the pool; never twice inside one task).
        seed: composition seed; with ``id_prefix`` and ``objectives`` it fixes the output.
        source: ``Task.source`` of the composed tasks (e.g. ``"hotpotqa+nq"``).
        id_prefix: start of the composed ids (default ``source``).
        keep_meta: member ``meta`` keys copied to the composed task (values must agree).

    Returns:
        ``num_tasks`` tasks; ``split`` is the members' split, or their sorted distinct
        splits joined by ``+`` when they differ.
    """
    if isinstance(objectives, bool) or not isinstance(objectives, int) or objectives < 1:
        raise ValueError(f"objectives must be an integer >= 1, got {objectives!r}")
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 0:
        raise ValueError(f"num_tasks must be an integer >= 0, got {num_tasks!r}")
    if not pools:
        raise ValueError("pools is empty: pass at least one pool of tasks")
    if not source:
        raise ValueError("source must be a non-empty string naming the composed task family")
    prefix = id_prefix or source
    for p, pool in enumerate(pools):
        slots = len(range(p, objectives, len(pools)))
        if slots:
            _check_pool(pool, slots, f"pool {p}" if len(pools) > 1 else "questions_pool")
    rng = Random(derive_seed("compose", prefix, objectives, len(pools), seed))
    streams = [_MemberStream(pool, rng) for pool in pools]
    tasks: list[Task] = []
    for i in range(num_tasks):
        members: list[Task] = []
        used_ids: set[str] = set()
        used_texts: set[str] = set()
        for j in range(objectives):
            p = j % len(pools)
            member = pools[p][streams[p].draw(used_ids, used_texts)]
            members.append(member)
            used_ids.add(member.id)
            used_texts.add(member.questions[0].text)
        task_id = f"{prefix}-{objectives}obj-{i}"
        splits = sorted({m.split for m in members})
        meta: dict[str, Any] = {
            "members": [m.id for m in members],
            "objectives": objectives,
            "compose_seed": seed,
        }
        meta.update(_common_meta(members, keep_meta, task_id))
        tasks.append(
            Task(
                id=task_id,
                questions=tuple(m.questions[0] for m in members),
                source=source,
                split=splits[0] if len(splits) == 1 else "+".join(splits),
                meta=meta,
            )
        )
    return tasks


def compose_tasks(
    questions_pool: Sequence[Task],
    objectives: int,
    num_tasks: int,
    seed: int,
    source: str,
    id_prefix: str | None = None,
    keep_meta: Sequence[str] = (),
) -> list[Task]:
    """k-objective tasks sampled from one pool of single-question tasks.

    Same rules and arguments as :func:`compose_mixed_tasks` with a single pool.
    """
    return compose_mixed_tasks(
        [questions_pool], objectives, num_tasks, seed, source, id_prefix=id_prefix, keep_meta=keep_meta
    )
