"""Miniature MemPO reproduction on CPU: SFT -> GRPO (no memory term) -> MemPO, on SynthWiki.

A small Llama (default 4 layers, hidden 256, ~3.4M parameters) is trained from scratch with
a word-level tokenizer on procedurally generated fictional worlds (single-token pooled
names, 2-hop bridge questions, k objectives per episode), then evaluated on held-out test
worlds at k = 1/2/4/8: F1, EM, tokens_total and tokens_peak of the random-init base model,
SFT, GRPO and MemPO with self-memory, and of the MemPO model run with full context.

Design (after /work/shared/notes/tiny-model-feasibility.md):
* names: ``name_style="pool"`` (every entity name is one token, re-assigned per world);
* search: exact-title lookup over the world's documents (``No results.`` otherwise);
* instructions: none (the context is the question block + memory + information only);
* SFT demonstrations: :class:`CompactOracleAgent` (compact ``i : X`` / ``i = A`` memory,
  no ``<think>``), with decoy searches whose *recovery* turn is trained; correct episodes only;
* curriculum over k in SFT (k<=2 first, then all) and RL on k in {1, 2} (`--rl-ks`);
* `--sft-from DIR` reuses a finished SFT checkpoint (RL + evaluation only).

Usage::

    python benchmarks/reproduce_mempo.py --preset smoke   # ~3 min end to end
    python benchmarks/reproduce_mempo.py --preset full    # ~40 min, writes results + checkpoint
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HOME", "/tmp/mempo-hf-home")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mempo_gym.core.context import FullContext, SelfMemory  # noqa: E402
from mempo_gym.core.env import MALFORMED_FEEDBACK, MemoryEnv  # noqa: E402
from mempo_gym.prompts import render_questions  # noqa: E402
from mempo_gym.records import Document, Task  # noqa: E402
from mempo_gym.tasks.names import name_pool  # noqa: E402
from mempo_gym.tasks.synthwiki import SynthWikiConfig, generate_tasks, generate_world, synthwiki_vocabulary  # noqa: E402

from mempo_agents.trainer.checkpoint import StepLogger, save_checkpoint  # noqa: E402
from mempo_agents.trainer.config import TrainerConfig  # noqa: E402
from mempo_agents.trainer.mempo import TaskRef, evaluate, summarize, task_refs, train_rl  # noqa: E402
from mempo_agents.trainer.oracle import CompactOracleAgent  # noqa: E402
from mempo_agents.trainer.sft import collect_demonstrations, sft_train  # noqa: E402
from mempo_agents.trainer.word_tokenizer import build_word_tokenizer, vocabulary_from_texts  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
from mempo_gym.retrieval.search_tool import NO_RESULTS  # noqa: E402
from mempo_gym.retrieval.title_lookup import TitleLookupTool  # noqa: E402


@dataclass(frozen=True)
class Preset:
    train_worlds: int
    test_worlds: int
    entities: int
    tasks_per_k: Mapping[int, int]  # per train world
    test_tasks_per_k: int  # per k, over all test worlds
    layers: int
    hidden: int
    sft_epochs: float
    sft_minutes: float
    rl_steps: int
    rl_minutes: float
    group_size: int
    tasks_per_step: int
    sft_batch_tokens: int = 1024
    eval_ks: tuple[int, ...] = (1, 2, 4, 8)


PRESETS = {
    "smoke": Preset(train_worlds=6, test_worlds=2, entities=60, tasks_per_k={1: 10, 2: 6, 4: 3, 8: 1},
                    test_tasks_per_k=4, layers=2, hidden=64, sft_epochs=1.0, sft_minutes=0.5,
                    rl_steps=2, rl_minutes=0.5, group_size=4, tasks_per_step=2),
    "full": Preset(train_worlds=150, test_worlds=8, entities=100, tasks_per_k={1: 12, 2: 8, 4: 5, 8: 1},
                   test_tasks_per_k=32, layers=4, hidden=128, sft_epochs=8.0, sft_minutes=20.0,
                   rl_steps=60, rl_minutes=5.0, group_size=8, tasks_per_step=2),
}
POOL_SIZE = 300
MAX_TURNS = 20  # 2 hops x 8 objectives + answer + room for retries
ENV_KW = dict(context_budget=1024, max_turns=MAX_TURNS, max_turn_tokens=48, reward="f1", instructions="")


def make_tokenizer(folder: Path) -> Any:
    cfg = SynthWikiConfig(name_style="pool", pool_size=POOL_SIZE)
    extra = [render_questions(["a", "b"]), render_questions(["a"]), NO_RESULTS, MALFORMED_FEEDBACK,
             "1 = A | 2 : B ; C",  # the compact memory's and the answer's separators
             "the turn ended without </search> or </answer> the answer was empty the search query was empty "
             "the turn was empty is nested inside close each block before opening the next appears without "
             "a matching is never closed only the environment writes do not write it yourself"]
    tok = build_word_tokenizer(synthwiki_vocabulary(cfg) + vocabulary_from_texts(extra), save_dir=folder)
    for needed in ("=", "|", ":", ";", "<mem>", "</answer>"):
        if tok.convert_tokens_to_ids(needed) == tok.unk_token_id:
            raise RuntimeError(f"the tokenizer lacks {needed!r}, which the oracle's memory format uses")
    return tok


def make_world_envs(split: str, worlds: int, entities: int, tasks_per_k: Mapping[int, int], tokenizer: Any,
                    seed_offset: int = 0) -> tuple[list[MemoryEnv], dict[str, list[str]]]:
    """One env per world (its own search tool); returns envs and per-world decoy words."""
    envs, decoys = [], {}
    pool = name_pool(POOL_SIZE, 0)
    for w in range(worlds):
        base = SynthWikiConfig(seed=seed_offset + w, split=split, num_entities=entities, name_style="pool",
                               pool_size=POOL_SIZE, hops=2, kinds=("bridge",))
        world = generate_world(base)
        tasks: list[Task] = []
        for k, n in tasks_per_k.items():
            if n:
                tasks += generate_tasks(world, replace(base, objectives=k, num_tasks=n, task_seed=k))
        envs.append(MemoryEnv(tasks, TitleLookupTool(world.documents), tokenizer=tokenizer, memory=SelfMemory(),
                              **ENV_KW))
        titles = {d.title for d in world.documents}
        decoys[world.world_id] = [p for p in pool if p not in titles]
    return envs, decoys


def make_model(tokenizer: Any, layers: int, hidden: int, seed: int) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=3 * hidden,
                      num_hidden_layers=layers, num_attention_heads=max(1, hidden // 32), num_key_value_heads=max(1, hidden // 32),
                      max_position_embeddings=1024, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(cfg)


def eval_refs(envs: Sequence[MemoryEnv], ks: Sequence[int], per_k: int) -> list[TaskRef]:
    refs = task_refs(envs)
    out = []
    for k in ks:
        of_k = [r for r in refs if r.objectives == k]
        # round-robin over worlds so every test world contributes
        by_world: dict[int, list[TaskRef]] = {}
        for r in of_k:
            by_world.setdefault(r.source, []).append(r)
        chosen: list[TaskRef] = []
        while len(chosen) < per_k and any(by_world.values()):
            for s in sorted(by_world):
                if by_world[s] and len(chosen) < per_k:
                    chosen.append(by_world[s].pop(0))
        out += chosen
    return out


def eval_table(model: Any, tokenizer: Any, envs: Sequence[MemoryEnv], refs: Sequence[TaskRef], memory: str) -> dict[int, dict[str, float]]:
    factory = SelfMemory if memory == "self" else FullContext
    results = evaluate(model, tokenizer, envs, refs, memory_factory=factory, batch_size=48)
    return {k: summarize([r for r in results if r["objectives"] == k]) for k in sorted({r["objectives"] for r in results})}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="smoke")
    parser.add_argument("--work-dir", default="/tmp/mempo-repro")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is far faster than 2 when other jobs share the 2 cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr-rl", type=float, default=2e-4)
    parser.add_argument("--kl-beta", type=float, default=0.01)
    parser.add_argument("--sft-from", default="",
                        help="skip SFT: start RL from this saved SFT checkpoint (a previous run's <work-dir>/<preset>/sft)")
    parser.add_argument("--rl-ks", default="1,2", help="numbers of objectives drawn in RL (comma-separated)")
    parser.add_argument("--rl-minutes", type=float, default=0.0, help="override the preset's RL minutes per stage")
    parser.add_argument("--publish", action="store_true",
                        help="write benchmarks/results/mempo_reproduction.md, the PNG and the checkpoint into the repo")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    p = PRESETS[args.preset]
    work = Path(args.work_dir) / args.preset
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("*_log.csv"):
        old.unlink()  # StepLogger appends to existing logs (resume); a new run starts clean
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    random.seed(args.seed)

    tokenizer = make_tokenizer(work / "tokenizer")
    train_envs, train_decoys = make_world_envs("train", p.train_worlds, p.entities, p.tasks_per_k, tokenizer)
    test_envs, _ = make_world_envs("test", p.test_worlds, p.entities, {k: max(1, -(-p.test_tasks_per_k // p.test_worlds)) for k in p.eval_ks}, tokenizer)
    refs_test = eval_refs(test_envs, p.eval_ks, p.test_tasks_per_k)
    print(f"vocab={len(tokenizer)} train tasks={sum(len(e.tasks) for e in train_envs)} test tasks={len(refs_test)}", flush=True)

    if args.rl_minutes:
        p = replace(p, rl_minutes=args.rl_minutes)
    rl_ks = [int(k) for k in args.rl_ks.split(",")]
    # ---- SFT on compact oracle demonstrations (curriculum: k <= 2 first, then all k)
    t = time.perf_counter()
    oracle = CompactOracleAgent(mistake_rate=0.1, decoys=lambda task: train_decoys[task.meta["world"]], seed=args.seed)
    refs_train = task_refs(train_envs)
    base = make_model(tokenizer, p.layers, p.hidden, args.seed)  # the untrained base for the table
    n_params = sum(x.numel() for x in base.parameters())
    print(f"model parameters: {n_params / 1e6:.2f}M", flush=True)
    if args.sft_from:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(args.sft_from).eval()
        sft_state = json.loads((Path(args.sft_from) / "trainer_state.json").read_text())
        demo_stats, demo_tokens = sft_state.get("demo_stats", {}), sft_state.get("demo_tokens", 0)
        timings["sft_s"] = float(sft_state.get("sft_s", 0.0))
        if (Path(args.sft_from).parent / "sft_log.csv").is_file() and Path(args.sft_from).parent != work:
            import shutil

            shutil.copy(Path(args.sft_from).parent / "sft_log.csv", work / "sft_log.csv")
    else:
        demos, demo_stats = collect_demonstrations(oracle, train_envs, refs_train, tokenizer)
        demo_tokens = sum(len(d.context_ids) + len(d.output_ids) for d in demos)
        print(f"demonstrations: {demo_stats} tokens={demo_tokens} ({time.perf_counter() - t:.1f}s)", flush=True)
        timings["demos_s"] = time.perf_counter() - t
        model = make_model(tokenizer, p.layers, p.hidden, args.seed)
        sft_log = StepLogger(work / "sft_log.csv")
        t = time.perf_counter()
        # curriculum: phase 1 on demonstrations from k <= 2 episodes (short prompts), phase 2 on all
        short = [d for d in demos if d.context_ids.count(tokenizer.convert_tokens_to_ids("?")) <= 2]
        model = sft_train(model, short, tokenizer.pad_token_id, epochs=max(0.5, p.sft_epochs / 4), batch_tokens=p.sft_batch_tokens,
                          lr=2e-3, mixed_precision="no", seed=args.seed, log=sft_log, time_limit_s=p.sft_minutes * 60 * 0.3)
        model = sft_train(model, demos, tokenizer.pad_token_id, epochs=p.sft_epochs, batch_tokens=p.sft_batch_tokens, lr=1e-3,
                          mixed_precision="no", seed=args.seed + 1, log=lambda s, st: sft_log(s + 100000, st),
                          time_limit_s=p.sft_minutes * 60 * 0.7)
        timings["sft_s"] = time.perf_counter() - t
        save_checkpoint(work / "sft", model, tokenizer, 0, {"preset": args.preset, "stage": "sft"},
                        extra={"demo_stats": demo_stats, "demo_tokens": demo_tokens, "sft_s": timings["sft_s"]})


    # ---- RL: GRPO (no memory term) and MemPO, both from the SFT model, same seeds and tasks
    from transformers import AutoModelForCausalLM

    rl_models: dict[str, Any] = {}
    for stage in ("grpo", "mempo"):
        cfg = TrainerConfig(stage=stage, init_model=str(Path(args.sft_from) if args.sft_from else work / "sft"), group_size=p.group_size,
                            tasks_per_step=p.tasks_per_step, reward_metric="f1", memory_weight=1.0,
                            memory_norm="turn", clip_eps=0.2, kl_beta=args.kl_beta, lr=args.lr_rl,
                            warmup_steps=3, steps=p.rl_steps, minibatch_tokens=4096, seed=args.seed,
                            objectives_schedule=[[0, rl_ks]], output_dir=str(work / stage), save_every=0)
        cfg.save(work / f"{stage}_config.yaml")
        policy = AutoModelForCausalLM.from_pretrained(cfg.init_model)
        log = StepLogger(work / f"{stage}_log.csv")
        t = time.perf_counter()
        deadline = t + p.rl_minutes * 60

        class TimeBudget(Exception):
            pass

        def log_and_stop(step: int, stats: dict[str, float], _log: StepLogger = log, _deadline: float = deadline) -> None:
            _log(step, stats)
            if time.perf_counter() > _deadline:
                raise TimeBudget

        holder: dict[str, Any] = {}

        def keep(step: int, pol: Any, opt: Any, _h: dict[str, Any] = holder) -> None:
            _h["model"] = pol

        try:
            policy = train_rl(cfg, policy, tokenizer, train_envs, log=log_and_stop, checkpoint=keep)
        except TimeBudget:
            pass  # the policy object was updated in place; stop at the time budget
        timings[f"{stage}_s"] = time.perf_counter() - t
        timings[f"{stage}_steps"] = float(len(log.rows))
        policy.eval()
        rl_models[stage] = policy
        save_checkpoint(work / stage / "final", policy, tokenizer, len(log.rows), cfg.to_dict())

    # ---- evaluation on held-out test worlds
    t = time.perf_counter()
    rows: dict[str, dict[int, dict[str, float]]] = {}
    rows["base (random init), self-memory"] = eval_table(base, tokenizer, test_envs, refs_test, "self")
    rows["SFT, self-memory"] = eval_table(model, tokenizer, test_envs, refs_test, "self")
    rows["GRPO (no memory term), self-memory"] = eval_table(rl_models["grpo"], tokenizer, test_envs, refs_test, "self")
    rows["MemPO, self-memory"] = eval_table(rl_models["mempo"], tokenizer, test_envs, refs_test, "self")
    rows["MemPO model, full context"] = eval_table(rl_models["mempo"], tokenizer, test_envs, refs_test, "full")
    rows["SFT model, full context"] = eval_table(model, tokenizer, test_envs, refs_test, "full")
    timings["eval_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0

    summary = {"preset": args.preset, "params": n_params, "vocab": len(tokenizer), "demo_stats": demo_stats,
               "demo_tokens": demo_tokens, "timings": timings, "results": {m: {str(k): v for k, v in r.items()} for m, r in rows.items()},
               "args": vars(args)}
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    table = render_table(rows, p.eval_ks)
    print(table, flush=True)
    print(json.dumps(timings), flush=True)
    plot = work / "mempo_training_curves.png"
    plot_curves(work, plot)
    if args.publish:
        publish(work, plot, rows, summary, table, rl_models["mempo"], tokenizer, argv)
    return 0


def render_table(rows: Mapping[str, Mapping[int, Mapping[str, float]]], ks: Sequence[int]) -> str:
    head = "| model / context | " + " | ".join(f"k={k} F1 | k={k} EM | k={k} tok_total | k={k} tok_peak" for k in ks) + " |"
    sep = "|---|" + "---|" * (4 * len(ks))
    lines = [head, sep]
    for name, per_k in rows.items():
        cells = []
        for k in ks:
            r = per_k.get(k, {})
            cells += [f"{r.get('f1', 0):.3f}", f"{r.get('em', 0):.3f}", f"{r.get('tokens_total', 0):.0f}", f"{r.get('tokens_peak', 0):.0f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(work: Path, out: Path) -> None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def read(name: str) -> list[dict[str, str]]:
        path = work / name
        return list(csv.DictReader(path.open())) if path.is_file() else []

    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    sft = read("sft_log.csv")
    if sft:
        xs = list(range(len(sft)))
        axes[0].plot(xs, [float(r["sft_loss"]) for r in sft])
        axes[0].set(title="SFT loss (running mean per phase)", xlabel="log point", ylabel="NLL / token")
    for stage, color in (("grpo", "tab:orange"), ("mempo", "tab:green")):
        rows = read(f"{stage}_log.csv")
        if not rows:
            continue
        steps = [int(r["step"]) for r in rows]
        for ax, key in zip(axes[1:], ("f1", "tokens_total", "memory_reward")):
            vals = np.array([float(r[key]) for r in rows])
            smooth = np.convolve(vals, np.ones(5) / 5, mode="valid") if len(vals) >= 5 else vals
            ax.plot(steps, vals, color=color, alpha=0.25)
            ax.plot(steps[len(steps) - len(smooth):], smooth, color=color, label=stage)
            ax.set(title=f"RL {key} (train rollouts)", xlabel="RL step")
            ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def publish(work: Path, plot: Path, rows: Any, summary: dict[str, Any], table: str, mempo_model: Any, tokenizer: Any,
            argv: Sequence[str] | None) -> None:
    import shutil

    results = REPO / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    shutil.copy(plot, results / "mempo_training_curves.png")
    command = "python benchmarks/reproduce_mempo.py " + " ".join(argv if argv is not None else sys.argv[1:])
    t = summary["timings"]
    md = [
        "# MemPO miniature reproduction (SynthWiki, CPU)",
        "",
        f"Command: `{command}` ({torch.get_num_threads()} torch thread(s), torch {torch.__version__}); total {t['total_s'] / 60:.1f} min.",
        f"Model: Llama from scratch, {summary['params'] / 1e6:.2f}M parameters, word-level tokenizer of {summary['vocab']} tokens.",
        f"SFT demonstrations: {summary['demo_stats']}, {summary['demo_tokens']} tokens; SFT {t['sft_s'] / 60:.1f} min.",
        f"RL: GRPO {t['grpo_steps']:.0f} steps in {t['grpo_s'] / 60:.1f} min, MemPO {t['mempo_steps']:.0f} steps in {t['mempo_s'] / 60:.1f} min.",
        "",
        table,
        "",
        "![training curves](mempo_training_curves.png)",
        "",
    ]
    (results / "mempo_reproduction.md").write_text("\n".join(md), encoding="utf-8")
    (results / "mempo_reproduction.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    ckpt = REPO / "agents" / "checkpoints" / "mempo-synthwiki-tiny"
    save_checkpoint(ckpt, mempo_model, tokenizer, int(t["mempo_steps"]), {"command": command, **summary["args"]})
    (ckpt / "COMMAND.txt").write_text(command + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
