"""Episodes per second against a real ``mempo-gym serve`` process, by requests in flight.

Starts ``python -m mempo_agents.serve`` on 127.0.0.1 (the embedded SmolLM2-135M-Instruct by
default, ``--model`` for another; ``--server-url`` uses a running server instead), then
evaluates the MemPO agent through the OpenAI backend on SynthWiki with 1, 4 and 16
episodes in flight (``batch_size`` = backend ``concurrency`` = N), the same episodes for
each N. Prints wall-clock episodes/s, the speed-up over N=1, and CPU seconds per episode of
the client (``time.process_time``) and of the server process (from ``/proc``).

    python benchmarks/bench_served.py --episodes 16 --max-new-tokens 16
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from mempo_gym.agent import make_agent  # noqa: E402
from mempo_gym.harness import evaluate  # noqa: E402
from mempo_agents.serve import ServerProcess  # noqa: E402


def process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``); 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(url: str, pid: int | None, args: argparse.Namespace) -> None:
    rows = []
    for n in args.concurrency:
        agent = make_agent("mempo", model=url, max_new_tokens=args.max_new_tokens, concurrency=n,
                           timeout_s=300.0)
        with tempfile.TemporaryDirectory() as tmp:
            cpu0, server0, wall0 = time.process_time(), process_cpu_s(pid), time.perf_counter()
            frame = evaluate(args.env, agent, episodes=args.episodes, seed=0, out=Path(tmp) / "run",
                             batch_size=n, progress=False, env_kwargs={"max_turns": args.max_turns})
            wall = time.perf_counter() - wall0
            cpu, server = time.process_time() - cpu0, process_cpu_s(pid) - server0
        failed = int(frame["failed"].eq(True).sum()) if "failed" in frame.columns else 0
        rows.append((n, len(frame), failed, wall, cpu, server))
    base = rows[0][1] / rows[0][3]
    print(f"{args.episodes} episodes of {args.env}, max_turns={args.max_turns}, "
          f"max_new_tokens={args.max_new_tokens}, server {url}")
    print("| in flight | episodes | failed | wall s | episodes/s | vs 1 | client CPU s/ep | server CPU s/ep |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, count, failed, wall, cpu, server in rows:
        rate = count / wall
        print(f"| {n} | {count} | {failed} | {wall:.1f} | {rate:.3f} | {rate / base:.2f}x | {cpu / count:.3f} | "
              f"{server / count:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="what the started server serves (default: the embedded SmolLM2)")
    parser.add_argument("--server-url", help="use this running server instead of starting one")
    parser.add_argument("--env", default="MemPO-SynthWiki-v0")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--max-turns", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-batch", type=int, default=16, help="server: most requests generated together")
    args = parser.parse_args()
    if args.server_url:
        run(args.server_url, None, args)
        return
    model = ["--model", args.model] if args.model else []
    with ServerProcess([*model, "--max-batch", str(args.max_batch), "--num-threads", "1"]) as server:
        assert server.process is not None
        run(server.base_url, server.process.pid, args)


if __name__ == "__main__":
    main()
