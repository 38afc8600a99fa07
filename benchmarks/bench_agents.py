"""Reference agents on SynthWiki: F1 and token use per agent, and batched generation speed.

For 1/2/4/8-objective SynthWiki tasks it runs the controls (oracle with self and full
memory, closed-book, random text) on ``--episodes`` tasks, and the LLM agents (MemPO,
full context, external memory, MEM1) with one shared embedded SmolLM2-135M-Instruct
backend on ``--llm-episodes`` tasks of ``--llm-objectives`` (slow on CPU). Episodes of one
agent run as parallel slots, so LLM turns are generated in batches. It then measures
generation throughput of the transformers backend, one batch of ``--batch`` prompts vs the
same prompts one at a time, in the same run.

    python benchmarks/bench_agents.py --episodes 20 --llm-episodes 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import gymnasium as gym

import mempo_gym  # noqa: F401  (registers env ids)
from mempo_gym.agent import Agent


def run_batched(agent: Agent, make_env: Callable[[], Any], task_indices: list[int]) -> list[dict[str, Any]]:
    """Run one episode per task index, all slots stepped together with ``act_batch``."""
    envs = [make_env() for _ in task_indices]
    obs, infos, metrics = [], [], [None] * len(envs)
    for slot, (env, index) in enumerate(zip(envs, task_indices)):
        o, i = env.reset(options={"task_index": index})
        agent.reset(env.unwrapped.task, slot)
        obs.append(o)
        infos.append(i)
    active = list(range(len(envs)))
    while active:
        actions = agent.act_batch([obs[s] for s in active], [infos[s] for s in active], active)
        still = []
        for slot, action in zip(active, actions):
            o, _, terminated, truncated, info = envs[slot].step(action)
            obs[slot], infos[slot] = o, info
            if terminated or truncated:
                metrics[slot] = info["metrics"]
            else:
                still.append(slot)
        active = still
    return metrics  # type: ignore[return-value]


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "f1": statistics.mean(r["f1"] for r in rows),
        "tokens_total": statistics.mean(r["tokens_total"] for r in rows),
        "tokens_peak": statistics.mean(r["tokens_peak"] for r in rows),
        "turns": statistics.mean(r["turns"] for r in rows),
        "malformed": statistics.mean(r["malformed_turns"] for r in rows),
    }


def throughput(backend: Any, batch: int, max_new_tokens: int) -> None:
    prompts = [
        f"Write a short paragraph about the city number {i} you like, and why." for i in range(batch)
    ]
    backend.generate(prompts[:1], max_new_tokens=2)  # warm-up
    start = time.perf_counter()
    batched = backend.generate(prompts, max_new_tokens=max_new_tokens, stop=[], seed=0)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    single = [backend.generate([p], max_new_tokens=max_new_tokens, stop=[], seed=0)[0] for p in prompts]
    t_single = time.perf_counter() - start
    n_batched = sum(g.usage["completion_tokens"] for g in batched)
    n_single = sum(g.usage["completion_tokens"] for g in single)
    rate_b, rate_s = n_batched / t_batched, n_single / t_single
    print(f"\nGeneration throughput ({backend.model_name}, dtype={backend.dtype}, {batch} prompts, "
          f"max_new_tokens={max_new_tokens}):")
    print(f"  batched   : {n_batched:5d} tokens in {t_batched:7.2f} s = {rate_b:7.2f} tok/s")
    print(f"  unbatched : {n_single:5d} tokens in {t_single:7.2f} s = {rate_s:7.2f} tok/s")
    print(f"  batched / unbatched throughput ratio: {rate_b / rate_s:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--episodes", type=int, default=20, help="episodes per control agent and objective count")
    parser.add_argument("--llm-episodes", type=int, default=2, help="episodes per LLM agent (0 skips LLM agents)")
    parser.add_argument("--llm-objectives", type=int, nargs="+", default=[1])
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch", type=int, default=4, help="prompts in the throughput measurement")
    parser.add_argument("--throughput-tokens", type=int, default=24)
    parser.add_argument("--num-threads", type=int, default=None, help="torch threads (1 is fastest on a busy CPU)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args()

    from mempo_agents.registry import (
        make_closed_book_agent, make_external_memory_agent, make_full_context_agent, make_mem1_agent,
        make_mempo_agent, make_oracle_agent, make_random_agent,
    )

    controls: dict[str, Callable[[], Agent]] = {
        "oracle (self mem)": lambda: make_oracle_agent(memory="self"),
        "oracle (full ctx)": lambda: make_oracle_agent(memory="full"),
        "closed-book": lambda: make_closed_book_agent(),
        "random-text": lambda: make_random_agent(seed=0),
    }
    results: list[tuple[str, int, int, dict[str, float], float]] = []
    for k in args.objectives:
        for name, factory in controls.items():
            agent = factory()
            start = time.perf_counter()
            rows = run_batched(
                agent, lambda: gym.make("MemPO-SynthWiki-v0", objectives=k, num_tasks=args.episodes, **agent.env_kwargs()),
                list(range(args.episodes)),
            )
            results.append((name, k, len(rows), summarise(rows), time.perf_counter() - start))

    backend = None
    if args.llm_episodes > 0:
        from mempo_agents.backends.transformers_backend import TransformersBackend

        start = time.perf_counter()
        backend = TransformersBackend(dtype=args.dtype, num_threads=args.num_threads)
        print(f"embedded model loaded in {time.perf_counter() - start:.1f} s")
        llm = {
            "mempo": make_mempo_agent, "full-context": make_full_context_agent,
            "external-memory": make_external_memory_agent, "mem1": make_mem1_agent,
        }
        for k in args.llm_objectives:
            for name, factory in llm.items():
                agent = factory(backend=backend, max_new_tokens=args.max_new_tokens)
                start = time.perf_counter()
                rows = run_batched(
                    agent, lambda: gym.make("MemPO-SynthWiki-v0", objectives=k, num_tasks=args.llm_episodes,
                                            **agent.env_kwargs()),
                    list(range(args.llm_episodes)),
                )
                results.append((f"{name} (smollm2)", k, len(rows), summarise(rows), time.perf_counter() - start))

    print(f"\n{'agent':<26}{'obj':>4}{'eps':>5}{'F1':>7}{'tok_total':>11}{'tok_peak':>10}{'turns':>7}{'malf':>6}{'wall_s':>8}")
    for name, k, n, s, wall in results:
        print(f"{name:<26}{k:>4}{n:>5}{s['f1']:>7.3f}{s['tokens_total']:>11.0f}{s['tokens_peak']:>10.0f}"
              f"{s['turns']:>7.1f}{s['malformed']:>6.1f}{wall:>8.1f}")
    by = {(name, k): s for name, k, _, s, _ in results}
    print("\nOracle token ratios, full context / self memory (same tasks):")
    for k in args.objectives:
        full, self_ = by[("oracle (full ctx)", k)], by[("oracle (self mem)", k)]
        print(f"  {k} objectives: tokens_total {full['tokens_total'] / self_['tokens_total']:.2f}x, "
              f"tokens_peak {full['tokens_peak'] / self_['tokens_peak']:.2f}x")
    if backend is not None:
        throughput(backend, args.batch, args.throughput_tokens)


if __name__ == "__main__":
    main()
