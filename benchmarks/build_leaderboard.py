"""Build the reference leaderboard: run reference agents on SynthWiki, submit, score, rank.

    python benchmarks/build_leaderboard.py --out leaderboard_build --episodes 20

For each agent (registered names; those that cannot be built here, e.g. an LLM agent
without its model, are reported and skipped) it runs ``mempo_gym.evaluate`` into
``OUT/runs/AGENT``, packs it with ``submit_run``, scores it with ``score_submission``
(the full verification path) and finally writes ``OUT/board/leaderboard.md`` and
``OUT/board/index.html``. It prints each agent's F1, token counts and the wall time of
running vs. scoring it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mempo_gym.agent import make_agent
from mempo_gym.harness import evaluate
from mempo_gym.leaderboard import build_leaderboard, score_submission, submit_run, write_result

DEFAULT_AGENTS = "oracle,closed-book,random"
DEFAULT_LLM_AGENTS = "mempo,full-context"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="leaderboard_build")
    parser.add_argument("--env", default="MemPO-SynthWiki-v0")
    parser.add_argument("--agents", default=DEFAULT_AGENTS, help="comma-separated registered control agents")
    parser.add_argument("--llm-agents", default=DEFAULT_LLM_AGENTS,
                        help="comma-separated LLM agents (embedded SmolLM2 unless --model); '' for none")
    parser.add_argument("--model", help="model path or URL for the LLM agents")
    parser.add_argument("--episodes", type=int, default=20, help="episodes of each control agent")
    parser.add_argument("--llm-episodes", type=int, default=2, help="episodes of each LLM agent (slow on CPU)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="LLM agents' tokens per turn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--num-tasks", type=int, default=50, help="SynthWiki tasks in the env (small setting)")
    args = parser.parse_args(argv)

    out = Path(args.out)
    results = out / "results"
    built = 0
    plan = [(a.strip(), {}, args.episodes) for a in args.agents.split(",") if a.strip()]
    llm_options = {"max_new_tokens": args.max_new_tokens, **({"model": args.model} if args.model else {})}
    plan += [(a.strip(), llm_options, args.llm_episodes) for a in args.llm_agents.split(",") if a.strip()]
    for name, options, episodes in plan:
        try:
            agent = make_agent(name, **options)
        except Exception as exc:  # an agent whose model or package is absent here is skipped, not fatal
            print(f"{name:14s} skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        run = out / "runs" / name
        started = time.perf_counter()
        frame = evaluate(args.env, agent, episodes=episodes, seed=args.seed, out=run,
                         batch_size=args.batch_size, resume=run.exists(), env_kwargs={"num_tasks": args.num_tasks},
                         progress=False)
        run_s = time.perf_counter() - started
        started = time.perf_counter()
        zip_path = submit_run(run, name=f"reference/{name}", contact="mempo-gym maintainers", out=out / f"{name}.zip")
        result = score_submission(zip_path)
        score_s = time.perf_counter() - started
        write_result(result, results / f"{name}.score.json")
        env = result["envs"][args.env]
        print(f"{name:14s} n={env['n']:3d} F1={env['f1']:.3f} (claimed {frame['f1'].mean():.3f}) "
              f"tokens_total={env['tokens_total']:8.1f} tokens_peak={env['tokens_peak']:7.1f} "
              f"run={run_s:6.1f}s score={score_s:5.1f}s score/run={score_s / max(run_s, 1e-9):.3f}")
        built += 1
    if not built:
        print("no agent could be built; is mempo_agents installed (pip install -e .)?", file=sys.stderr)
        return 1
    paths = build_leaderboard(results, out / "board")
    print(f"leaderboard: {paths['markdown']} and {paths['html']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
