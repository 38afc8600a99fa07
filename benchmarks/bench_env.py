"""Environment overhead and token cost benchmarks (issue: foundation).

1. Env overhead per token step and per text turn, excluding retrieval (the search tool
   is replaced by one returning a fixed passage), for ``self`` and ``full`` memory.
2. tokens_total / tokens_peak vs number of objectives for ``full`` vs ``self`` memory,
   with the scripted oracle agent (same turns in both modes, so the difference is the
   context management alone).

Run: ``python benchmarks/bench_env.py [--episodes 20]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import gymnasium as gym

import mempo_gym  # noqa: F401  (registers the ids)

PASSAGE = "Doc 1 (Title: Example) Example is a fictional city founded in 1901 by Someone Else."


class FixedPassageSearch:
    """A search tool with (almost) no cost, so timings measure the env alone."""

    def search(self, query: str) -> str:
        return PASSAGE

    def describe(self) -> dict[str, Any]:
        return {"name": "fixed-passage"}


def overhead(memory: str, turns: int = 2000) -> dict[str, float]:
    text_env = gym.make("MemPO-SynthWiki-4obj-v0", memory=memory, num_tasks=20, max_turns=18).unwrapped
    text_env.search_tool = FixedPassageSearch()
    turn = "<mem>fact one | fact two</mem><think>next hop</think><search>Example query</search>"
    text_env.reset(seed=0)
    done, n, t0 = False, 0, time.perf_counter()
    while n < turns:
        _, _, term, trunc, _ = text_env.step(turn)
        n += 1
        if term or trunc:
            text_env.reset(seed=n)
    per_turn = (time.perf_counter() - t0) / n

    tok_env = gym.make("MemPO-SynthWiki-4obj-v0", memory=memory, num_tasks=20, max_turns=18,
                       action_mode="token", context_budget=2048).unwrapped
    tok_env.search_tool = FixedPassageSearch()
    ids = tok_env.tokenizer.encode(turn)
    tok_env.reset(seed=0)
    steps, t0 = 0, time.perf_counter()
    while steps < turns * 4:
        for token in ids:
            _, _, term, trunc, _ = tok_env.step(token)
            steps += 1
            if term or trunc:
                tok_env.reset(seed=steps)
                break
    per_step = (time.perf_counter() - t0) / steps
    return {"text_turn_ms": per_turn * 1e3, "token_step_us": per_step * 1e6, "tokens_per_turn": len(ids),
            "token_mode_turn_ms": per_step * len(ids) * 1e3}


def token_cost(objectives: int, memory: str, episodes: int) -> dict[str, float]:
    from mempo_agents import OracleAgent

    env_id = "MemPO-SynthWiki-v0" if objectives == 1 else f"MemPO-SynthWiki-{objectives}obj-v0"
    env = gym.make(env_id, memory=memory, num_tasks=max(episodes, 10), context_budget=32768).unwrapped
    agent = OracleAgent()
    rows = []
    for i in range(episodes):
        obs, info = env.reset(seed=i, options={"task_index": i % len(env.tasks)})
        agent.reset(env.task)
        while True:
            obs, _, term, trunc, info = env.step(agent.act(obs, info))
            if term or trunc:
                rows.append(info["metrics"])
                break
    return {k: statistics.mean(r[k] for r in rows) for k in ("f1", "tokens_total", "tokens_peak", "tokens_generated", "turns")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--turns", type=int, default=2000)
    args = parser.parse_args()

    print("## Env overhead (no retrieval)\n")
    print("| memory | ms per text turn | us per token step | tokens/turn | ms per turn in token mode | token/text ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for memory in ("self", "full"):
        o = overhead(memory, args.turns)
        print(f"| {memory} | {o['text_turn_ms']:.3f} | {o['token_step_us']:.1f} | {o['tokens_per_turn']} | "
              f"{o['token_mode_turn_ms']:.3f} | {o['token_mode_turn_ms'] / o['text_turn_ms']:.2f}x |")

    print(f"\n## Token cost vs objectives (oracle agent, {args.episodes} episodes each)\n")
    print("| objectives | memory | F1 | tokens_total | tokens_peak | tokens_generated | turns | total self/full | peak self/full |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for k in (1, 2, 4, 8, 16):
        full = token_cost(k, "full", args.episodes)
        mine = token_cost(k, "self", args.episodes)
        for name, r in (("full", full), ("self", mine)):
            ratio = (f"{mine['tokens_total'] / full['tokens_total']:.2f} | {mine['tokens_peak'] / full['tokens_peak']:.2f}"
                     if name == "self" else " | ")
            print(f"| {k} | {name} | {r['f1']:.3f} | {r['tokens_total']:.0f} | {r['tokens_peak']:.0f} | "
                  f"{r['tokens_generated']:.0f} | {r['turns']:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
