"""Async vector envs in text mode (bounded text space in shared memory); wrappers keep the metrics."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RecordEpisodeStatistics, TimeLimit

import mempo_gym  # noqa: F401
from mempo_gym.core.spaces import UnicodeText
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory


def test_context_space_is_bounded_and_round_trips_any_unicode_through_shared_memory() -> None:
    env = gym.make("MemPO-SynthWiki-v0")
    space = env.observation_space["context"]
    assert isinstance(space, UnicodeText) and space.max_length <= 2 * 4096 * 128  # ~16 GiB before
    small = UnicodeText(max_length=16)
    memory = create_shared_memory(small, n=2)
    texts = ["中文 \x00é😀\ud800", "<mem>x</mem>"]
    for i, text in enumerate(texts):
        write_to_shared_memory(small, i, text, memory)
    assert read_from_shared_memory(small, memory, n=2) == tuple(texts)
    try:
        write_to_shared_memory(small, 0, "x" * 17, memory)
    except ValueError as err:
        assert "does not fit" in str(err)
    else:
        raise AssertionError("an over-long text was written")


def test_async_vector_env_in_text_mode() -> None:
    envs = gym.make_vec("MemPO-SynthWiki-v0", num_envs=2, vectorization_mode="async", memory="self")
    try:
        obs, infos = envs.reset(seed=[1, 2])
        sync = gym.make("MemPO-SynthWiki-v0", memory="self")
        assert obs["context"][0] == sync.reset(seed=1)[0]["context"]
        assert obs["context"][1] == sync.reset(seed=2)[0]["context"]
        obs, rewards, terminated, truncated, infos = envs.step(
            ["<mem>a</mem><search>x</search>", "<mem>b</mem><answer>nobody</answer>"])
        assert "<information>" in obs["context"][0]
        assert list(terminated) == [False, True] and np.isclose(rewards[1], 0.0)
        assert infos["metrics"]["turns"][1] == 1  # the finished episode's metrics came through
    finally:
        envs.close()


def test_time_limit_and_episode_statistics_keep_the_metrics() -> None:
    env = RecordEpisodeStatistics(TimeLimit(gym.make("MemPO-SynthWiki-v0").unwrapped, max_episode_steps=2))
    env.reset(seed=0)
    env.step("<mem>a</mem><search>x</search>")
    _, _, terminated, truncated, info = env.step("<mem>a</mem><search>y</search>")
    assert truncated and not terminated  # the time limit, not the env, ended it
    assert info["metrics"]["turns"] == 2 and info["metrics"]["tokens_total"] > 0
    assert info["metrics"]["answered"] is False and info["metrics"]["f1"] == 0.0 and "episode" in info
