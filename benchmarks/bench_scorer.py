"""Scorer cost: CPU time and peak memory to replay-verify an honest submission and hostile ones.

Each scoring runs in a fresh interpreter (so its peak RSS is its own: ``VmHWM``, shown with the
peak after the imports and the tokenizer load) and is timed with ``time.process_time`` inside it
(env builds included).

1. honest: the oracle on ``MemPO-SynthWiki-v0`` with ``num_tasks=N`` (default 1,000), every task once;
2. refusals that must be cheap: an unlisted 256 MB member (refused from the central directory,
   nothing decompressed), 16 MB of forged contexts (refused at the first context), ``CartPole-v1``
   (refused before anything is built);
3. the largest work the limits allow: a "babbler" that never answers and writes ``max_turn_tokens``
   of text per turn under the widest settings the allowlist accepts (``memory="full"``,
   ``context_budget=32768``, ``max_turn_tokens=2048``, ``max_turns=64``), so every turn re-tokenises
   a context near the budget. It is measured on ``--hostile-episodes`` episodes and extrapolated
   linearly (replay is per-episode) to the bound that binds first: ``max_replay_tokens`` and the
   1 GiB ``episodes.jsonl`` member limit.

Run: ``python benchmarks/bench_scorer.py [--episodes 1000] [--hostile-episodes 4]`` (a few CPU-minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from mempo_gym.agent import Agent, make_agent
from mempo_gym.harness import evaluate
from mempo_gym.leaderboard import ArchiveLimits, submit_run
from mempo_gym.leaderboard.schema import manifest_entry

_CHILD = """
import json, sys, time
def hwm():  # VmHWM: this process's peak RSS (ru_maxrss would include the parent's at fork time)
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
from mempo_gym.leaderboard import SubmissionRejected, score_submission
import mempo_gym.tokenizer, mempo_gym.envs.registration
mempo_gym.tokenizer.load_tokenizer(None)
base = hwm()
start = time.process_time()
try:
    result = score_submission(sys.argv[1]); outcome = "accepted"
except SubmissionRejected as exc:
    outcome = "refused: " + str(exc)[:160]
print(json.dumps({"cpu_s": time.process_time() - start, "peak_mb": hwm(), "base_mb": base, "outcome": outcome}))
"""


class Babbler(Agent):
    """Never answers: each turn is ``words`` words of text without any tag (a malformed turn)."""

    name = "babbler"

    def __init__(self, words: int = 4000) -> None:
        self.text = " ".join(f"word{i % 97}" for i in range(words))

    def act(self, observation: Any, info: Any, slot: int = 0) -> str:
        return self.text


def score_in_child(path: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def repack(zip_path: Path, out: Path, *, episodes: bytes | None = None, config: dict | None = None,
           extra: dict[str, bytes] | None = None, fix: bool = True) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    if episodes is not None:
        members["episodes.jsonl"] = episodes
    if config is not None:
        members["config.json"] = json.dumps(config).encode()
    if fix:
        manifest = json.loads(members["manifest.json"])
        manifest["members"] = {n: manifest_entry(d) for n, d in members.items() if n != "manifest.json"}
        members["manifest.json"] = json.dumps(manifest).encode()
    members.update(extra or {})
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--hostile-episodes", type=int, default=4)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scorer-"))
    rows: list[tuple[str, str, dict[str, Any]]] = []

    start = time.process_time()
    run = tmp / "oracle"
    evaluate("MemPO-SynthWiki-v0", make_agent("oracle"), episodes=args.episodes, seed=0, out=run, batch_size=8,
             env_kwargs={"num_tasks": args.episodes}, progress=False)
    honest = submit_run(run, name="oracle", contact="bench")
    generate_s = time.process_time() - start
    size = honest.stat().st_size
    raw = (run / "episodes.jsonl").stat().st_size
    rows.append((f"honest oracle, {args.episodes} episodes", f"{size / 1e6:.1f} MB zip, {raw / 1e6:.1f} MB jsonl",
                 score_in_child(honest)))

    unlisted = tmp / "unlisted.zip"
    with zipfile.ZipFile(honest) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    with zipfile.ZipFile(unlisted, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        info = zipfile.ZipInfo("episodes.jsonl.bak")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as fh:  # 256 MB compressing ~20:1 (under the ratio limit)
            for _ in range(256 * 16):
                fh.write(os.urandom(3072) + b" " * (65536 - 3072))
    rows.append(("unlisted 256 MB member", f"{unlisted.stat().st_size / 1e6:.1f} MB zip", score_in_child(unlisted)))

    records = [json.loads(line) for line in members["episodes.jsonl"].splitlines()]
    pristine = [json.loads(line) for line in members["episodes.jsonl"].splitlines()[:10]]
    filler = " forged" * (16 * 1024 * 1024 // 7 // 40)
    for r in records[:40]:
        r["transcript"][0]["context"] += filler
    forged = "".join(json.dumps(r) + "\n" for r in records).encode()
    path = repack(honest, tmp / "contexts.zip", episodes=forged)
    rows.append(("16 MB of forged contexts", f"{len(forged) / 1e6:.1f} MB jsonl", score_in_child(path)))

    config = json.loads(members["config.json"])
    config["envs"][0]["id"] = "CartPole-v1"
    cart = b"".join(json.dumps({**r, "env_id": "CartPole-v1"}).encode() + b"\n" for r in pristine)
    path = repack(honest, tmp / "cartpole.zip", episodes=cart, config=config)
    rows.append(("CartPole-v1 id", "", score_in_child(path)))

    wide = {"num_tasks": max(args.hostile_episodes, 1), "memory": "full", "context_budget": 32768,
            "max_turn_tokens": 2048, "max_turns": 64}
    hostile_run = tmp / "babbler"
    evaluate("MemPO-SynthWiki-v0", Babbler(), episodes=args.hostile_episodes, seed=0, out=hostile_run,
             env_kwargs=wide, progress=False)
    hostile = submit_run(hostile_run, name="babbler", contact="bench")
    lines = (hostile_run / "episodes.jsonl").read_bytes().splitlines()
    tokens = sum(json.loads(line)["tokens_total"] for line in lines)
    measured = score_in_child(hostile)
    rows.append((f"max-work babbler, {args.hostile_episodes} episodes",
                 f"{sum(map(len, lines)) / 1e6:.1f} MB jsonl, {tokens / 1e6:.2f}M tokens", measured))

    print(f"generated the honest run in {generate_s:.1f} s CPU\n")
    print("| case | size | scorer CPU s | peak RSS MB (after imports) | outcome |\n|---|---|---|---|---|")
    for name, what, m in rows:
        print(f"| {name} | {what} | {m['cpu_s']:.2f} | {m['peak_mb']:.0f} ({m['base_mb']:.0f}) | {m['outcome'][:90]} |")
    limits = ArchiveLimits()
    per_token = measured["cpu_s"] / max(tokens, 1)
    per_byte = measured["cpu_s"] / max(sum(map(len, lines)), 1)
    bound_tokens = limits.max_replay_tokens * per_token
    bound_bytes = limits.max_member_bytes * per_byte
    print(f"\nmax-work replay: {tokens / max(measured['cpu_s'], 1e-9) / 1e6:.2f}M tokens/s CPU, "
          f"{sum(map(len, lines)) / max(measured['cpu_s'], 1e-9) / 1e6:.2f} MB/s of episodes.jsonl")
    print(f"largest hostile submission the limits allow: min(max_replay_tokens={limits.max_replay_tokens:,} -> "
          f"{bound_tokens:.0f} s, max_member_bytes={limits.max_member_bytes:,} -> {bound_bytes:.0f} s) = "
          f"{min(bound_tokens, bound_bytes):.0f} s CPU (extrapolated linearly); peak memory stays per-episode "
          f"(one line at a time, at most max_line_bytes={limits.max_line_bytes:,})")
    honest_m = rows[0][2]
    print(f"ratio honest-{args.episodes} scorer CPU / generating the run: {honest_m['cpu_s'] / generate_s:.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
