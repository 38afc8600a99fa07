"""Prefix KV caching against recomputing every prompt: the same greedy episodes played twice on
the registered SynthWiki envs, CPU seconds of each, their ratio, and how many episodes came out
token for token the same (``TransformersBackend(prefix_cache_tokens=...)``,
:mod:`mempo_agents.backends.prefix_cache`).

    python benchmarks/prefix_cache.py                     # full-context counterpart, k=2, 8 episodes
    python benchmarks/prefix_cache.py --agent mempo --model agents/checkpoints/mempo-smollm2-135m-lora
    python benchmarks/prefix_cache.py --k 4 --episodes 8 --batch-size 8

Both runs play the same tasks with the same batch size in one process, uncached first, on one
thread (``--threads``); CPU time is ``time.process_time``, so another process on the machine does
not count against either.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from mempo_agents.hardware import describe_cpu
from reproduce_mempo import env_id  # the registered SynthWiki id of k objectives (this folder is on sys.path)

SHIPPED_FULL = "agents/checkpoints/full-context-smollm2-135m-lora"


def play(agent_name: str, model: str, cache_tokens: int, args: argparse.Namespace) -> tuple[float, Any, Any]:
    """CPU seconds, the episode records (with transcripts) and the agent of one run."""
    import tempfile
    from pathlib import Path

    from mempo_gym.agent import make_agent
    from mempo_gym.harness import evaluate

    agent = make_agent(agent_name, model=model, max_new_tokens=args.max_new_tokens, prefix_cache_tokens=cache_tokens)
    with tempfile.TemporaryDirectory() as folder:
        started = time.process_time()
        evaluate([env_id(args.k)], agent, episodes=args.episodes, seed=0, out=folder, batch_size=args.batch_size,
                 progress=False)
        seconds = time.process_time() - started
        lines = (Path(folder) / "episodes.jsonl").read_text(encoding="utf-8").splitlines()
    return seconds, [json.loads(line) for line in lines], agent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", default="full-context", help="make_agent name (default: full-context)")
    parser.add_argument("--model", default=SHIPPED_FULL, help=f"model or adapter folder (default: {SHIPPED_FULL})")
    parser.add_argument("--k", type=int, default=2, help="objectives per task (default 2)")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--cache-tokens", type=int, default=131072, help="prefix_cache_tokens of the cached run")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    print(f"CPU: {describe_cpu()}; torch threads {args.threads}; {args.agent} on {env_id(args.k)} (registered test world), "
          f"{args.episodes} episodes, batch {args.batch_size}, max_new_tokens {args.max_new_tokens}")
    plain_s, plain, _ = play(args.agent, args.model, 0, args)
    cached_s, cached, agent = play(args.agent, args.model, args.cache_tokens, args)
    stats = agent.backend.prefix_cache.stats
    same = sum(a["transcript"] == b["transcript"] for a, b in zip(plain, cached))
    for name, seconds, records in (("recomputed", plain_s, plain), ("prefix cache", cached_s, cached)):
        em = sum(float(r["em"]) for r in records) / len(records)
        tokens = sum(int(r["tokens_total"]) for r in records) / len(records)
        print(f"{name:>13}: {seconds:8.1f} CPU-s, {seconds / len(records):6.1f} per episode, EM {em:.3f}, "
              f"tokens_total {tokens:,.0f}")
    print(f"ratio (prefix cache / recomputed CPU time): {cached_s / plain_s:.2f}x "
          f"({plain_s / cached_s:.2f}x faster)")
    print(f"prompt tokens reused: {stats['reused_tokens']:,} of {stats['prompt_tokens']:,} "
          f"({stats['reused_tokens'] / max(stats['prompt_tokens'], 1):.0%})")
    print(f"episodes with the same transcript: {same} of {len(plain)}")


if __name__ == "__main__":
    main()
