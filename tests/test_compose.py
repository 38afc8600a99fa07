"""Multi-objective composition: determinism, ids, member bookkeeping, pool mixing, errors."""

from __future__ import annotations

import doctest
from collections import Counter

import pytest

from mempo_gym.records import Question, Task
from mempo_gym.tasks import compose as compose_module
from mempo_gym.tasks.compose import compose_mixed_tasks, compose_tasks
from mempo_gym.tasks.synthwiki import SynthWikiConfig, generate_synthwiki


def make_pool(n: int, source: str = "demo", split: str = "dev", **meta: object) -> list[Task]:
    return [
        Task(
            id=f"{source}-{i}",
            questions=(Question(text=f"{source} question {i}?", answers=(f"answer {i}",), kind="bridge"),),
            source=source,
            split=split,
            meta=dict(meta),
        )
        for i in range(n)
    ]


def test_docstring_examples_pass() -> None:
    result = doctest.testmod(compose_module)
    assert result.attempted > 0 and result.failed == 0


def test_composition_is_deterministic_and_seed_dependent() -> None:
    pool = make_pool(40)
    first = compose_tasks(pool, objectives=3, num_tasks=10, seed=7, source="demo")
    assert first == compose_tasks(pool, objectives=3, num_tasks=10, seed=7, source="demo")
    other = compose_tasks(pool, objectives=3, num_tasks=10, seed=8, source="demo")
    assert [t.meta["members"] for t in first] != [t.meta["members"] for t in other]


def test_ids_meta_and_questions_follow_the_members() -> None:
    pool = make_pool(12)
    by_id = {t.id: t for t in pool}
    tasks = compose_tasks(pool, objectives=4, num_tasks=3, seed=0, source="demo")
    assert [t.id for t in tasks] == ["demo-4obj-0", "demo-4obj-1", "demo-4obj-2"]
    for task in tasks:
        assert task.num_objectives == 4 and task.source == "demo" and task.split == "dev"
        assert task.meta["objectives"] == 4 and task.meta["compose_seed"] == 0
        members = task.meta["members"]
        assert len(set(members)) == 4
        assert task.questions == tuple(by_id[m].questions[0] for m in members)
        assert task.golds == [by_id[m].questions[0].answers for m in members]
    used = [m for t in tasks for m in t.meta["members"]]
    assert sorted(used) == sorted(t.id for t in pool), "a pool of exactly n*k is used once each"


def test_members_are_reused_evenly_and_never_twice_in_a_task() -> None:
    pool = make_pool(7)
    tasks = compose_tasks(pool, objectives=3, num_tasks=30, seed=1, source="demo")
    counts = Counter(m for t in tasks for m in t.meta["members"])
    assert set(counts) == {t.id for t in pool}
    assert max(counts.values()) - min(counts.values()) <= 2
    for task in tasks:
        assert len(set(task.meta["members"])) == 3
        assert len({q.text for q in task.questions}) == 3


def test_duplicate_question_texts_never_share_a_task() -> None:
    pool = make_pool(4)
    twin = Task(id="twin", questions=pool[0].questions, source="demo", split="dev")
    tasks = compose_tasks(pool + [twin], objectives=4, num_tasks=20, seed=3, source="demo")
    for task in tasks:
        assert len({q.text for q in task.questions}) == 4
    with pytest.raises(ValueError, match="4 distinct questions"):
        compose_tasks(pool + [twin], objectives=5, num_tasks=1, seed=0, source="demo")


def test_mixed_pools_alternate_slots_and_join_splits() -> None:
    hotpot = make_pool(10, source="hotpotqa", split="dev")
    nq = make_pool(10, source="nq", split="test")
    tasks = compose_mixed_tasks([hotpot, nq], objectives=3, num_tasks=5, seed=0, source="hotpotqa+nq")
    for task in tasks:
        members = task.meta["members"]
        assert [m.split("-")[0] for m in members] == ["hotpotqa", "nq", "hotpotqa"]
        assert task.id.startswith("hotpotqa+nq-3obj-") and task.split == "dev+test"
    two = compose_mixed_tasks([hotpot, nq], objectives=2, num_tasks=10, seed=0, source="mix", id_prefix="hq-nq")
    assert [t.id for t in two][:2] == ["hq-nq-2obj-0", "hq-nq-2obj-1"]
    assert sorted(m for t in two for m in t.meta["members"]) == sorted(t.id for t in hotpot + nq)
    assert compose_mixed_tasks([hotpot], objectives=2, num_tasks=4, seed=5, source="demo") == compose_tasks(
        hotpot, objectives=2, num_tasks=4, seed=5, source="demo"
    )


def test_keep_meta_copies_shared_values_and_rejects_disagreement() -> None:
    pool = make_pool(6, world="w0")
    tasks = compose_tasks(pool, objectives=2, num_tasks=3, seed=0, source="demo", keep_meta=("world",))
    assert all(t.meta["world"] == "w0" for t in tasks)
    mixed = make_pool(3, world="w0") + make_pool(3, source="other", world="w1")
    with pytest.raises(ValueError, match="keep_meta key 'world'"):
        compose_tasks(mixed, objectives=6, num_tasks=1, seed=0, source="demo", keep_meta=("world",))
    with pytest.raises(ValueError, match="keep_meta key 'missing'"):
        compose_tasks(pool, objectives=2, num_tasks=1, seed=0, source="demo", keep_meta=("missing",))


def test_bad_arguments_are_rejected() -> None:
    pool = make_pool(3)
    with pytest.raises(ValueError, match="objectives"):
        compose_tasks(pool, objectives=0, num_tasks=1, seed=0, source="demo")
    with pytest.raises(ValueError, match="3 distinct questions but each task needs 4"):
        compose_tasks(pool, objectives=4, num_tasks=1, seed=0, source="demo")
    with pytest.raises(ValueError, match="num_tasks"):
        compose_tasks(pool, objectives=1, num_tasks=-1, seed=0, source="demo")
    with pytest.raises(ValueError, match="empty"):
        compose_tasks([], objectives=1, num_tasks=1, seed=0, source="demo")
    with pytest.raises(ValueError, match="source"):
        compose_tasks(pool, objectives=1, num_tasks=1, seed=0, source="")
    with pytest.raises(ValueError, match="more than once"):
        compose_tasks(pool + [pool[0]], objectives=1, num_tasks=1, seed=0, source="demo")
    double = Task(id="double", questions=pool[0].questions + pool[1].questions, source="demo")
    with pytest.raises(ValueError, match="'double' has 2 questions"):
        compose_tasks(pool + [double], objectives=1, num_tasks=1, seed=0, source="demo")
    with pytest.raises(TypeError, match="Task records"):
        compose_tasks([pool[0].questions[0]], objectives=1, num_tasks=1, seed=0, source="demo")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="pool 1"):
        compose_mixed_tasks([pool, pool[:1]], objectives=4, num_tasks=1, seed=0, source="demo")
    assert compose_tasks(pool, objectives=2, num_tasks=0, seed=0, source="demo") == []


def test_synthwiki_pool_composes_into_multi_objective_presets() -> None:
    world, singles = generate_synthwiki(SynthWikiConfig(seed=2, num_entities=120, num_tasks=40))
    tasks = compose_tasks(singles, objectives=4, num_tasks=10, seed=0, source="synthwiki", keep_meta=("world",))
    assert all(t.meta["world"] == world.world_id and t.num_objectives == 4 for t in tasks)
    assert len({m for t in tasks for m in t.meta["members"]}) == 40
    roundtrip = [Task.from_dict(t.to_dict()) for t in tasks]
    assert roundtrip == tasks
