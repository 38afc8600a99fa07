"""Every registered env id builds with its own registered defaults (no sizes overridden) and plays
one episode; an id whose real data is absent on this machine skips with the reason."""

from __future__ import annotations

import gymnasium as gym
import pytest

import mempo_gym
from mempo_gym.data import DatasetNotFoundError

from conftest import shared_data_dir


@pytest.mark.parametrize("env_id", mempo_gym.registered_ids())
def test_registered_id_builds_with_its_defaults(env_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = shared_data_dir()
    if data is not None:
        monkeypatch.setenv("MEMPO_GYM_DATA", str(data))
    try:
        env = gym.make(env_id)  # registered defaults only: no num_tasks, no sizes
    except (DatasetNotFoundError, FileNotFoundError) as exc:
        pytest.skip(f"{env_id}: data absent here: {str(exc).splitlines()[0][:200]}")
    core = env.unwrapped
    spec_kwargs = gym.spec(env_id).kwargs
    if "num_tasks" in spec_kwargs:
        assert len(core.tasks) == spec_kwargs["num_tasks"]
    assert len({t.id for t in core.tasks}) == len(core.tasks), "task ids are unique"
    obs, info = env.reset(seed=0, options={"task_index": len(core.tasks) - 1})
    assert all(q.text in obs["context"] for q in core.task.questions)
    _, _, terminated, truncated, info = env.step("<answer>unknown</answer>")
    assert terminated and not truncated and info["metrics"]["calls"] == 1
    env.close()
