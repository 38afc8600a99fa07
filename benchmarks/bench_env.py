"""Environment overhead and token cost benchmarks (CPU time, ratios measured in one run).

1. The issue-12 targets, each printed as a ratio against the alternative measured in the same
   run (``time.process_time``; retrieval excluded where it says so):

   * full memory: per-turn env overhead at 16 objectives / at 1 objective (target <= 1.5x);
   * self memory: a text turn / the tokenizer's cost of that turn's new text (target <= 2x);
   * a token step / a gymnasium CartPole step (target <= 3x), at budgets 4096 and 32768;
   * BM25 query / raw bm25s at 100k documents (target <= 1.2x); a search on HotpotQA / its
     BM25 call (target <= 2x; needs ``MEMPO_GYM_DATA``);
   * ``import mempo_gym`` / ``import gymnasium`` in fresh interpreters (target <= 1.5x).
2. With ``--cost``: tokens_total / tokens_peak vs number of objectives for ``full`` vs
   ``self`` memory, with the scripted oracle agent (same turns in both modes).

Run: ``python benchmarks/bench_env.py [--turns 600] [--cost --episodes 10]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import gymnasium as gym

import mempo_gym  # noqa: F401  (registers the ids)

PASSAGE = "Doc 1 (Title: Example) Example is a fictional city founded in 1901 by Someone Else."
TURN = "<mem>fact one | fact two</mem><think>next hop</think><search>Example query</search>"


class FixedPassageSearch:
    """A search tool with (almost) no cost, so timings measure the env alone."""

    def search(self, query: str) -> str:
        return PASSAGE

    def describe(self) -> dict[str, Any]:
        return {"name": "fixed-passage"}


def cpu(fn: Callable[[], Any]) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def synthwiki(objectives: int, **kwargs: Any) -> Any:
    env_id = "MemPO-SynthWiki-v0" if objectives == 1 else f"MemPO-SynthWiki-{objectives}obj-v0"
    env = gym.make(env_id, num_tasks=10, **kwargs).unwrapped
    env.search_tool = FixedPassageSearch()
    return env


def text_turn_cpu(objectives: int, memory: str, turns: int) -> tuple[float, int]:
    """CPU seconds per text turn (steps only; resets excluded) and the mean turns per episode."""
    env = synthwiki(objectives, memory=memory, context_budget=65536, max_turns=4 * objectives + 2)
    spent, n, episodes = 0.0, 0, 0
    while n < turns:
        env.reset(seed=episodes)
        episodes += 1
        while True:
            t0 = time.process_time()
            _, _, term, trunc, _ = env.step(TURN)
            spent += time.process_time() - t0
            n += 1
            if term or trunc:
                break
    return spent / n, n // episodes


def self_turn_vs_tokenizer(turns: int) -> tuple[float, float]:
    """Self memory: CPU per text turn, and the tokenizer's CPU for that turn's new text
    (the action plus the context text after the fixed prompt)."""
    env = synthwiki(4, memory="self", context_budget=65536, max_turns=18)
    tok = env.tokenizer
    env_s = tok_s = 0.0
    n = 0
    while n < turns:
        env.reset(seed=n)
        prompt = env.context
        while True:
            t0 = time.process_time()
            _, _, term, trunc, _ = env.step(TURN)
            env_s += time.process_time() - t0
            new = env.context[len(prompt):]
            t0 = time.process_time()
            tok.encode(TURN, add_special_tokens=False)
            tok.encode(new, add_special_tokens=False)
            tok_s += time.process_time() - t0
            n += 1
            if term or trunc:
                break
    return env_s / n, tok_s / n


def token_step_cpu(budget: int, steps: int) -> float:
    env = gym.make("MemPO-SynthWiki-4obj-v0", num_tasks=10, memory="self", action_mode="token",
                   context_budget=budget, max_turns=18)
    env.unwrapped.search_tool = FixedPassageSearch()
    ids = env.unwrapped.tokenizer.encode(TURN, add_special_tokens=False)
    env.reset(seed=0)
    spent, n = 0.0, 0
    while n < steps:
        for token in ids:
            t0 = time.process_time()
            _, _, term, trunc, _ = env.step(token)
            spent += time.process_time() - t0
            n += 1
            if term or trunc:
                env.reset(seed=n)
                break
    return spent / n


def cartpole_step_cpu(steps: int) -> float:
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    spent = 0.0
    for i in range(steps):
        t0 = time.process_time()
        _, _, term, trunc, _ = env.step(i % 2)
        spent += time.process_time() - t0
        if term or trunc:
            env.reset(seed=i)
    return spent / steps


def bm25_vs_raw(n_docs: int, n_queries: int, k: int = 3) -> tuple[float, float, float]:
    """CPU per query of ``BM25Retriever.search`` (query string to hits), of raw bm25s scoring
    plus ``np.argpartition`` on pre-tokenized queries, and of bm25s's own ``retrieve``."""
    import numpy as np

    try:
        from benchmarks.bench_bm25 import synthwiki_corpus
    except ImportError:  # run as a script from benchmarks/
        from bench_bm25 import synthwiki_corpus
    from mempo_gym.retrieval.bm25 import BM25Retriever
    from mempo_gym.retrieval.lexical import tokenize_words

    docs, queries, _ = synthwiki_corpus(n_docs, n_queries, seed=0)
    retriever = BM25Retriever(docs, cache=False)
    model = retriever.index.model
    tokens = [[t for t in tokenize_words(q, retriever.stopwords) if t in model.vocab_dict] for q in queries]
    pairs = [(q, t) for q, t in zip(queries, tokens) if t]
    for q, t in pairs[:5]:  # warm up both
        retriever.search(q, k)
        model.retrieve([t], k=k, show_progress=False, n_threads=0)
    id_lists = [[model.vocab_dict[w] for w in t] for _, t in pairs]

    def raw_topk(ids: list[int]) -> Any:
        scores = model.get_scores_from_ids(ids)
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top], kind="stable")]

    ours = cpu(lambda: [retriever.search(q, k) for q, _ in pairs]) / len(pairs)
    raw = cpu(lambda: [raw_topk(ids) for ids in id_lists]) / len(pairs)
    retrieve = cpu(lambda: [model.retrieve([t], k=k, show_progress=False, n_threads=0) for _, t in pairs]) / len(pairs)
    return ours, raw, retrieve


def hotpotqa_search_vs_bm25(n_queries: int) -> tuple[float, float, float] | None:
    if not os.environ.get("MEMPO_GYM_DATA"):
        return None
    try:
        env = gym.make("MemPO-HotpotQA-v0").unwrapped
    except (FileNotFoundError, LookupError):
        return None
    tool = env.search_tool
    queries = [q.text for t in env.tasks for q in t.questions][:n_queries]
    queries += [title for t in env.tasks for q in t.questions for title in q.supporting_titles][:n_queries]
    tool.search("warm up")
    bm25 = cpu(lambda: [tool.retriever.search(q, tool.top_k) for q in queries]) / len(queries)
    tool._capped.clear()
    cold = cpu(lambda: [tool.search(q) for q in queries]) / len(queries)  # every passage cut for the first time
    warm = cpu(lambda: [tool.search(q) for q in queries]) / len(queries)  # caps reused
    return bm25, cold, warm


def import_cpu(module: str, repeats: int = 5) -> float:
    """Median CPU seconds of ``import module`` in a fresh interpreter (startup excluded)."""
    code = (f"import time; t=time.process_time(); import {module}; "
            "print(time.process_time() - t)")
    out = []
    for _ in range(repeats):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        out.append(float(res.stdout.strip().splitlines()[-1]))
    return statistics.median(out)


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


def row(name: str, value: str, base: str, ratio: float, target: float) -> None:
    verdict = "met" if ratio <= target else "MISSED"
    print(f"| {name} | {value} | {base} | {ratio:.2f}x | <= {target:g}x | {verdict} |")


def targets(turns: int, bm25_docs: int) -> None:
    print("## Issue-12 targets (CPU time, one run)\n")
    print("| target | measured | alternative (same run) | ratio | target | |")
    print("|---|---:|---:|---:|---:|---|")
    one, h1 = text_turn_cpu(1, "full", turns)
    sixteen, h16 = text_turn_cpu(16, "full", turns)
    row(f"full memory: per text turn, 16 objectives ({h16} turns/episode) vs 1 ({h1})",
        f"{sixteen * 1e3:.3f} ms", f"{one * 1e3:.3f} ms", sixteen / one, 1.5)
    env_turn, tok_turn = self_turn_vs_tokenizer(turns)
    row("self memory: text turn vs tokenizing its new text", f"{env_turn * 1e3:.3f} ms",
        f"{tok_turn * 1e3:.3f} ms", env_turn / tok_turn, 2.0)
    cart = cartpole_step_cpu(turns * 20)
    for budget in (4096, 32768):
        step = token_step_cpu(budget, turns * 10)
        row(f"token step (budget {budget}) vs CartPole step", f"{step * 1e6:.1f} us", f"{cart * 1e6:.1f} us",
            step / cart, 3.0)
    ours, raw, retrieve = bm25_vs_raw(bm25_docs, 200)
    row(f"BM25 query vs raw bm25s scores + argpartition, {bm25_docs:,} docs", f"{ours * 1e3:.3f} ms",
        f"{raw * 1e3:.3f} ms", ours / raw, 1.2)
    row(f"BM25 query vs bm25s `retrieve`, {bm25_docs:,} docs", f"{ours * 1e3:.3f} ms",
        f"{retrieve * 1e3:.3f} ms", ours / retrieve, 1.2)
    hp = hotpotqa_search_vs_bm25(100)
    if hp is None:
        print("| HotpotQA search vs its BM25 call | skipped: set MEMPO_GYM_DATA | | | <= 2x | |")
    else:
        bm25, cold, warm = hp
        row("HotpotQA search vs its BM25 call (passages cut for the first time)", f"{cold * 1e3:.3f} ms",
            f"{bm25 * 1e3:.3f} ms", cold / bm25, 2.0)
        row("HotpotQA search vs its BM25 call (passage caps reused)", f"{warm * 1e3:.3f} ms",
            f"{bm25 * 1e3:.3f} ms", warm / bm25, 2.0)
    gym_s, ours_s = import_cpu("gymnasium"), import_cpu("mempo_gym")
    row("import mempo_gym vs import gymnasium (fresh interpreter)", f"{ours_s:.3f} s", f"{gym_s:.3f} s",
        ours_s / gym_s, 1.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=600, help="text turns per overhead measurement")
    parser.add_argument("--bm25-docs", type=int, default=100_000)
    parser.add_argument("--cost", action="store_true", help="also print the token cost table")
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()
    targets(args.turns, args.bm25_docs)
    if not args.cost:
        return
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
