"""Memory methods by name: registry, rebuild from describe(), entry points, the docs example."""

from __future__ import annotations

import doctest
from pathlib import Path

import gymnasium as gym
import pytest

import mempo_gym
from mempo_gym.core.context import LatestBlockMemory, SelfMemory, ThinkStateMemory
from mempo_gym.memory import MemoryNotFoundError, make_memory, register_memory, registered_memories

DOCS = Path(__file__).resolve().parents[1] / "docs" / "memory_methods.md"


def test_every_registered_memory_rebuilds_from_its_describe() -> None:
    names = registered_memories()
    assert {"self", "full", "window", "external", "mem1", "mem1-think-state"} <= set(names)
    for name in names:
        manager = make_memory(name)
        again = make_memory(manager.describe())
        assert type(again) is type(manager) and again.describe() == manager.describe()
    assert make_memory("window", k=5).describe() == {"name": "window", "k": 5}
    assert make_memory({"name": "external", "top_k": 3, "ranker": "embedding"}).describe() == {
        "name": "external", "top_k": 3, "ranker": "embedding"}


def test_mem1_is_usable_by_name_from_gym_make_and_is_one_class_with_self() -> None:
    env = gym.make("MemPO-SynthWiki-v0", num_tasks=3, memory="mem1")
    _, info = env.reset(seed=0)
    assert info["settings"]["memory"] == {"name": "mem1-think-state"}
    obs, *_ = env.step("<think>state: need X</think><search>nothing here</search>")
    assert "<think>state: need X</think>" in obs["context"]
    assert isinstance(env.unwrapped.memory, ThinkStateMemory) and isinstance(SelfMemory(), LatestBlockMemory)
    from mempo_agents.memory import ThinkStateMemory as Reexported

    assert Reexported is ThinkStateMemory


def test_unknown_names_and_settings_are_clear_errors() -> None:
    with pytest.raises(MemoryNotFoundError, match="no memory method named 'nope'; registered: .*self"):
        make_memory("nope")
    with pytest.raises(ValueError, match="does not take the settings"):
        make_memory("full", k=3)
    with pytest.raises(ValueError, match="ranker must be one of"):
        gym.make("MemPO-SynthWiki-v0", num_tasks=3, memory="external", external_ranker="tfidf")
    with pytest.raises(ValueError, match="already registered"):
        register_memory("self", SelfMemory)


def test_entry_point_memories_are_discovered(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "my_mem_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from mempo_gym.core.context import FullContext\n"
        "class Mine(FullContext):\n    name = 'mine'\n"
    )
    dist = tmp_path / "my_mem_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-mem-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mempo_gym.memory]\nmine = my_mem_pkg:Mine\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "mine" in registered_memories()
    env = gym.make("MemPO-SynthWiki-v0", num_tasks=3, memory="mine")
    assert env.unwrapped.describe()["memory"] == {"name": "mine"}


def test_the_add_your_memory_method_page_runs() -> None:
    result = doctest.testfile(str(DOCS), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8 and result.failed == 0
    assert mempo_gym.memory.registered_memories()["mem-plus-recent"].__name__ == "MemPlusRecentInfo"
