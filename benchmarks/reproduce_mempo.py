"""MemPO on the embedded SmolLM2-135M-Instruct, on CPU: SFT -> GRPO / MemPO, plus a
full-context counterpart, on the SynthWiki envs users get from ``gym.make``.

Every env is a registered id with its own defaults (BM25 search, the standard
instructions, syllable names, bridge + comparison questions, 1-4 hops, 120 entities):
``MemPO-SynthWiki-v0`` / ``-{2,4,8}obj-v0`` with ``split="train"`` worlds for training and
``split="test"`` worlds (disjoint names) for evaluation.

Stages (each writes a folder under ``--out``):

* ``sft``  — demonstrations of :class:`~mempo_agents.trainer.oracle.CompactOracleAgent`
  (compact memory, decoy searches whose *recovery* is trained, correct episodes only) on
  train worlds, k in {1, 2, 4, 8}; LoRA SFT of the embedded model. ``--memory self``
  (``<mem>`` notes, self-memory env: the MemPO agent) or ``--memory full`` (the same notes
  in ``<think>``, full-context env: the counterpart trained for its own memory mode).
* ``rl``   — ``--stage grpo`` (trajectory advantage only) or ``--stage mempo`` (plus the
  memory advantage, Eq. 4-9) from an SFT adapter, with a curriculum over k.
* ``eval`` — greedy episodes on held-out test worlds for every model and k; prints the
  table and writes ``results.json``.
* ``decisions`` — teacher-forced comparison decisions of each model on the oracle's decision
  turns of the test world (:mod:`mempo_agents.trainer.drills`).

``--precision`` sets SFT / RL autocast and the evaluation dtype: ``auto`` (default) is bf16 on a CPU
with bf16 units and fp32 elsewhere (on an Intel Xeon without them fp32 was 3.2x faster per SFT step,
on an AMD EPYC with them bf16 1.7x faster: ``benchmarks/cpu_precision.py``); ``fp32`` / ``bf16`` force one.

Usage: the whole recipe in one command (``all`` runs its stages as jobs, ``--jobs`` at a time, and
writes ``OUT/results.md``; a stopped run continues where it stopped)::

    python benchmarks/reproduce_mempo.py all --preset shipped --jobs 2 --out runs/shipped  # the shipped rounds
    python benchmarks/reproduce_mempo.py all --preset hour --jobs 2 --out runs/hour  # 46 min (bf16, AMD EPYC), ~57 (fp32, Intel)

The rounds behind the shipped adapters, stage by stage (the exact commands and timings land in the
results file)::

    python benchmarks/reproduce_mempo.py sft --memory self --name sft-self-r1 --out runs/repro   # 350 steps
    python benchmarks/reproduce_mempo.py sft --memory self --init runs/repro/sft-self-r1/adapter --name sft-self \
        --seed 1 --sft-steps 400 --sft-lr 1e-3 --out runs/repro                                  # round 2
    python benchmarks/reproduce_mempo.py sft --memory full --name sft-full-r1 --out runs/repro   # likewise
    python benchmarks/reproduce_mempo.py sft --memory full --init runs/repro/sft-full-r1/adapter --name sft-full \
        --seed 1 --sft-steps 400 --sft-lr 1e-3 --out runs/repro
    python benchmarks/reproduce_mempo.py rl --algo grpo --out runs/repro   # from runs/repro/sft-self/adapter
    python benchmarks/reproduce_mempo.py rl --algo mempo --out runs/repro   # into runs/repro/mempo-apply (--flat-groups apply, the default)
    python benchmarks/reproduce_mempo.py rl --algo mempo --rl-steps 12 --init agents/checkpoints/mempo-smollm2-135m-lora \
        --out runs/repro   # from the shipped adapter; a killed run continues with --resume
    python benchmarks/reproduce_mempo.py sft --memory self --init agents/checkpoints/mempo-smollm2-135m-lora \
        --name sft-self-r3 --seed 2 --sft-steps 400 --sft-lr 1e-3 --open-all --check-digits --key-turn-repeats 2 \
        --out runs/repro      # the third round measured in benchmarks/results/mempo_smollm2_r3.md (not shipped)
    python benchmarks/reproduce_mempo.py sft --memory self --init agents/checkpoints/mempo-smollm2-135m-lora \
        --name sft-self-r4 --seed 3 --sft-steps 700 --sft-lr 1e-3 --comparison-drills 6000 \
        --out runs/repro      # the fourth round (fp32, drills) in benchmarks/results/mempo_smollm2_r4.md (not shipped)
    python benchmarks/reproduce_mempo.py sft --memory self --init agents/checkpoints/mempo-smollm2-135m-lora \
        --name sft-self-r6 --seed 5 --sft-steps 600 --sft-lr 5e-4 --decision-reason digits --comparison-drills 8000 \
        --out runs/repro      # the fifth round (digit walk), shipped since; benchmarks/results/mempo_smollm2_r6.md
    python benchmarks/reproduce_mempo.py sft --memory full --init agents/checkpoints/full-context-smollm2-135m-lora \
        --name sft-full-r6 --seed 5 --sft-steps 600 --sft-lr 5e-4 --decision-reason digits --comparison-drills 8000 \
        --out runs/repro      # its full-context counterpart
    python benchmarks/reproduce_mempo.py sft --memory full --init runs/repro-fp32/sft-full-r9/adapter \
        --name sft-full-r10 --seed 9 --sft-steps 400 --sft-lr 5e-4 --decision-reason digits --numbering n/k \
        --comparison-drills 1000 --transition-drills 2000 --transition-repeats 4 --out runs/repro-fp32
        # a counterpart round that repeats its own transition turns (benchmarks/results/mempo_smollm2_r10.md)
    python benchmarks/reproduce_mempo.py rl --algo grpo --init agents/checkpoints/mempo-smollm2-135m-lora \
        --name grpo-r8-fp0.5-s8 --seed 8 --rl-steps 8 --format-penalty 0.5 --rl-max-new-tokens 192 \
        --out runs/repro-fp32   # and --algo mempo --name mempo-apply-r8-fp0.5-s8: RL from the shipped round 8
    python benchmarks/reproduce_mempo.py decisions --models sft,sft-self-r4 --out runs/repro  # comparison decisions
    python benchmarks/reproduce_mempo.py eval --out runs/repro
    python benchmarks/reproduce_mempo.py eval --models sft --ks 1 --repeat-temperature 0.7 --out runs/repro  # row sft-rt0.7
    python benchmarks/reproduce_mempo.py eval --models sft-self-r3 --ks 1,2,4 --max-new-tokens 192 --out runs/repro
    python benchmarks/reproduce_mempo.py all --preset smoke --out runs/smoke   # ~5 min check
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Round:
    """One SFT round of ``all``: its steps, peak lr, data-order seed and demonstration options
    (``(dest, value)`` pairs of this script's options); each round continues the one before it."""
    steps: int
    lr: float
    seed: int
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Preset:
    train_worlds: int  # train-split world seeds 1..N
    tasks_per_k: dict[int, int]  # tasks per train world
    sft_steps: int  # the sft stage's default
    sft_batch_tokens: int
    rl_steps: int
    group_size: int
    tasks_per_step: int
    eval_per_k: dict[int, int]  # held-out episodes per k (the registered test world, each task once)
    rounds: dict[str, tuple[Round, ...]]  # `all`: the SFT rounds of each memory mode (self / full), in order
    rl_worlds: int = 8
    recipe: tuple[tuple[str, Any], ...] = ()  # `all`: option defaults of this preset (dest, value)


SFT_LR = 1.5e-3  # LoRA r=32 at 1.5e-3 matched full fine-tuning at 3e-4 per step (measured, CHANGELOG)
SECOND_ROUND_LR = 1e-3  # the second SFT round continues the first (another data order, --seed 1)


# `--preset hour`: one SFT round per memory mode from the base model in the first rounds' formats (plain
# entries, no drills); the counterpart's episodes packed (`--pack`, 5.2x less CPU for the same loss), with 140
# steps of whole episodes (0.42 of an epoch) against the MemPO agent's 600 steps of single turns (0.3). Measured
# from the base model with 650 steps: the plain format scored EM 0.75 at k=1 and 0.325 at k=2 (20 tasks each);
# the shipped formats (digit walk, n/k labels) 0.40 and 0.275, and with 1,000 comparison and transition drills
# and 400 steps 0.00 (every episode looped: benchmarks/results/mempo_smollm2_hour.md): the shipped formats
# need the later rounds.
HOUR_ROUNDS = {"self": (Round(600, SFT_LR, 0),), "full": (Round(140, SFT_LR, 0, (("pack", True),)),)}
# The rounds behind the shipped adapters, as their COMMAND.txt records them (tests/test_reproduce_mempo_all.py
# checks the two agree): two plain rounds, the digit walk, n/k labels, transition drills, transition turns 4 times.
_DIGITS, _NK = ("decision_reason", "digits"), ("numbering", "n/k")
SHIPPED_ROUNDS = {
    "self": (Round(350, SFT_LR, 0), Round(400, SECOND_ROUND_LR, 1),
             Round(600, 5e-4, 5, (_DIGITS, ("comparison_drills", 8000))),
             Round(600, 5e-4, 6, (_DIGITS, _NK, ("comparison_drills", 8000))),
             Round(500, 5e-4, 7, (_DIGITS, _NK, ("comparison_drills", 4000), ("transition_drills", 10000))),
             Round(400, 5e-4, 8, (_DIGITS, _NK, ("comparison_drills", 2000), ("transition_drills", 2000),
                                  ("transition_repeats", 4)))),
    "full": (Round(350, SFT_LR, 0), Round(400, SECOND_ROUND_LR, 1),
             Round(600, 5e-4, 5, (_DIGITS, ("comparison_drills", 8000))),
             Round(600, 5e-4, 6, (_DIGITS, _NK, ("comparison_drills", 8000))),
             Round(500, 5e-4, 7, (_DIGITS, _NK, ("comparison_drills", 4000), ("transition_drills", 10000))),
             Round(400, 5e-4, 8, (_DIGITS, _NK, ("comparison_drills", 2000), ("transition_drills", 10000))),
             Round(400, 5e-4, 9, (_DIGITS, _NK, ("comparison_drills", 1000), ("transition_drills", 2000),
                                  ("transition_repeats", 4)))),
}
PRESETS = {
    "smoke": Preset(train_worlds=2, tasks_per_k={1: 4, 2: 2, 4: 1, 8: 1}, sft_steps=4, sft_batch_tokens=1024,
                    rl_steps=1, group_size=2, tasks_per_step=2, eval_per_k={1: 4, 2: 2, 4: 2, 8: 1}, rl_worlds=1,
                    rounds={m: (Round(4, SFT_LR, 0), Round(2, SECOND_ROUND_LR, 1)) for m in ("self", "full")}),
    "full": Preset(train_worlds=12, tasks_per_k={1: 16, 2: 8, 4: 4, 8: 2}, sft_steps=350, sft_batch_tokens=512,
                   rl_steps=4, group_size=4, tasks_per_step=2, eval_per_k={1: 100, 2: 100, 4: 50, 8: 50},
                   rounds={m: (Round(350, SFT_LR, 0), Round(400, SECOND_ROUND_LR, 1)) for m in ("self", "full")}),
    # `all --preset hour --jobs 2`: the 60-minute budget (both SFTs, GRPO, MemPO, a small evaluation)
    "hour": Preset(train_worlds=12, tasks_per_k={1: 16, 2: 8, 4: 4, 8: 2}, sft_steps=600, sft_batch_tokens=512,
                   rl_steps=4, group_size=4, tasks_per_step=2, eval_per_k={1: 20, 2: 20, 4: 0, 8: 0},
                   rounds=HOUR_ROUNDS, recipe=(("format_penalty", 0.5),)),
    # `all --preset shipped --jobs 2`: the shipped adapters' rounds, then GRPO and MemPO from the last self round;
    # from the rounds' recorded CPU times ~7 CPU-hours of training and ~6 of evaluation; the self rounds re-run as
    # one chain (bf16, AMD EPYC, --threads 2) took 160.7 CPU-min and made the shipped MemPO adapter, and the two RL
    # jobs from it 17.4 / 24.4 CPU-min (benchmarks/results/mempo_smollm2_shipped_bf16.md)
    "shipped": Preset(train_worlds=12, tasks_per_k={1: 16, 2: 8, 4: 4, 8: 2}, sft_steps=350, sft_batch_tokens=512,
                      rl_steps=8, group_size=4, tasks_per_step=2, eval_per_k={1: 100, 2: 100, 4: 50, 8: 0},
                      rounds=SHIPPED_ROUNDS,
                      recipe=(("format_penalty", 0.5), ("rl_max_new_tokens", 192), ("seed", 8))),
}
LORA_RANK = 32  # 19.5 MB in bf16 over all projections of the 135M model
# RL forward passes of at most 1,024 tokens: one GRPO update from the hour preset's SFT adapter peaked at 5.3 GB
# resident and 143 CPU-s, against 8.4 GB / 169 s at 2,048 and ~15 GB / 184 s at 4,096 (the earlier default, with
# which GRPO beside MemPO was OOM-killed), with the same gradient (grad norm 0.0848138 in all three)
RL_MINIBATCH_TOKENS = 1024
MISTAKE_RATE = 0.1
MEMORY_STYLE = "relations"  # the oracle's memory entries keep the relations still to follow
EVAL_MAX_NEW_TOKENS = 128  # per turn; --open-all demonstrations need ~150 at k=8 (pass --max-new-tokens 192)
INSTRUCTIONS_OF = {"self": "mempo", "full": "react"}  # as MemPOAgent / FullContextAgent ask for
# `--precision auto` picks one of these per CPU (resolve_precision: why, with the measurements)
PRECISIONS = {"fp32": ("no", "float32"), "bf16": ("bf16", "bfloat16")}  # --precision -> (autocast, backend dtype)


def resolve_precision(name: str) -> str:
    """``--precision``: ``auto`` is bf16 on a CPU with bf16 units (AVX512-BF16 / AMX), where a LoRA SFT step
    took 0.58x the CPU time of fp32 (AMD EPYC, benchmarks/results/cpu_precision.md), else fp32 (3.25x faster
    than bf16 on an Intel Xeon without them; `all --preset hour` took 46.1 min in bf16 against 66.8 in fp32 on
    the AMD host); a named precision is kept. ``all`` passes the resolved value to
    its jobs, so their commands say which precision ran. ``bf16`` named on a CPU without bf16 units
    is kept, with a warning on stderr: there it is several times slower than fp32."""
    from mempo_agents.hardware import has_bf16_units

    if name == "auto":
        return "bf16" if has_bf16_units() else "fp32"
    if name == "bf16" and not has_bf16_units():
        print("warning: --precision bf16 on a CPU without bf16 units (AVX512-BF16 / AMX): bf16 is emulated there, "
              "several times slower than fp32 (benchmarks/results/cpu_precision.md); pass --precision auto or fp32 "
              "unless you must match bf16 results", file=sys.stderr)
    return name


def env_id(k: int) -> str:
    return "MemPO-SynthWiki-v0" if k == 1 else f"MemPO-SynthWiki-{k}obj-v0"


def make_env(k: int, split: str, seed: int, num_tasks: int, memory: str) -> Any:
    """A registered SynthWiki env with its defaults; only the world and the memory mode chosen."""
    import gymnasium as gym

    import mempo_gym  # noqa: F401
    from mempo_gym.prompts import INSTRUCTIONS

    return gym.make(env_id(k), split=split, seed=seed, num_tasks=num_tasks, memory=memory,
                    instructions=INSTRUCTIONS[INSTRUCTIONS_OF[memory]])


def train_envs(preset: Preset, memory: str) -> list[Any]:
    return [make_env(k, "train", w, n, memory) for w in range(1, preset.train_worlds + 1)
            for k, n in preset.tasks_per_k.items() if n]


def worlds_of(envs: Sequence[Any]) -> list[Any]:
    """The SynthWiki worlds behind ``envs`` (each once), rebuilt from the config each env records."""
    from mempo_gym.tasks.synthwiki import WORLD_FIELDS, SynthWikiConfig, generate_world

    configs = {}
    for env in envs:
        recorded = env.unwrapped.env_config["synthwiki"]
        config = SynthWikiConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()})
        configs.setdefault(tuple(getattr(config, f) for f in WORLD_FIELDS), config)
    return [generate_world(config) for config in configs.values()]


def decoys_of(env: Any) -> list[str]:
    """Names of the world (every supporting title of every task): decoy queries."""
    return sorted({t for task in env.unwrapped.tasks for q in task.questions for t in q.supporting_titles})


def record_command(out: Path, parent: Path | None = None) -> None:
    """Write the commands that made ``out`` to its COMMAND.txt: those of the stage it continued
    (``parent``, an adapter folder) followed by this one."""
    previous = ""
    if parent is not None:  # a stage's adapter/ (COMMAND.txt beside it) or a shipped folder (inside it)
        for recorded in (parent.parent / "COMMAND.txt", parent / "COMMAND.txt"):
            if recorded.is_file():
                previous = recorded.read_text(encoding="utf-8")
                previous += "" if previous.endswith("\n") else "\n"
                break
    line = "python benchmarks/reproduce_mempo.py " + " ".join(sys.argv[1:])
    (out / "COMMAND.txt").write_text(previous + line + "\n", encoding="utf-8")


def log_line(path: Path, row: dict[str, Any], echo: bool = True) -> None:
    """Append ``row`` to a JSON-lines log (and print it, unless ``echo`` is off)."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
    if echo:
        print(json.dumps(row), flush=True)


# ----------------------------------------------------------------------------------- SFT
def stage_sft(args: argparse.Namespace, preset: Preset) -> Path:
    from mempo_gym.tokenizer import load_hf_tokenizer

    from mempo_agents.trainer.mempo import task_refs
    from mempo_agents.trainer.oracle import CompactOracleAgent
    from mempo_agents.trainer.policy import add_lora, load_base_model, save_policy
    from mempo_agents.trainer.sft import collect_demonstrations, pack_episodes, sft_train, token_batches

    out = Path(args.out) / (args.name or f"sft-{args.memory}")
    out.mkdir(parents=True, exist_ok=True)
    record_command(out, Path(args.init) if args.init else None)
    log = out / "log.jsonl"
    started = time.process_time()
    tokenizer = load_hf_tokenizer()
    envs = train_envs(preset, args.memory)
    demos = []
    stats = {"episodes": 0.0, "kept": 0.0, "turns": 0.0}
    for e, env in enumerate(envs):
        names = decoys_of(env)
        agent = CompactOracleAgent(mistake_rate=MISTAKE_RATE, decoys=names, seed=e, style=MEMORY_STYLE,
                                   open_all=args.open_all, decision_reason=args.decision_reason,
                                   numbering=args.numbering,
                                   note_tag="mem" if args.memory == "self" else "think")
        d, st = collect_demonstrations(agent, [env], task_refs([env]), tokenizer)
        demos += d
        for key in stats:
            stats[key] += st[key]
    demos = repeat_key_turns(demos, tokenizer, args.key_turn_repeats, args.transition_repeats)
    if args.comparison_drills:
        from mempo_agents.trainer.drills import comparison_drills

        demos += comparison_drills(worlds_of(envs), args.comparison_drills, random.Random(args.seed), tokenizer,
                                   reason=args.decision_reason, numbering=args.numbering)
    if args.transition_drills:
        from mempo_agents.trainer.drills import transition_drills

        demos += transition_drills(worlds_of(envs), args.transition_drills, random.Random(args.seed + 1), tokenizer,
                                   reason=args.decision_reason, note_tag="mem" if args.memory == "self" else "think")
    turns = len(demos)
    if args.pack:
        demos = pack_episodes(demos)
    log_line(log, {"stage": "demos", **stats, "key_turn_repeats": args.key_turn_repeats,
                   "transition_repeats": args.transition_repeats,
                   "comparison_drills": args.comparison_drills, "transition_drills": args.transition_drills,
                   "demo_turns": turns, "pack": args.pack, "sequences": len(demos),
                   "tokens": sum(len(d.context_ids) + len(d.output_ids) for d in demos),
                   "cpu_s": time.process_time() - started})
    torch.manual_seed(args.seed)
    if args.init:  # continue an SFT adapter (a later data order: pass another --seed)
        from mempo_agents.trainer.policy import load_policy_model

        model = load_policy_model(args.init, trainable=True)
    else:
        model = add_lora(load_base_model(), rank=LORA_RANK, alpha=2 * LORA_RANK)
    steps = args.sft_steps or preset.sft_steps
    per_epoch = len(token_batches(demos, preset.sft_batch_tokens, random.Random(args.seed)))
    epochs = steps / max(1, per_epoch)
    sft_train(model, demos, pad_id=tokenizer.pad_token_id or 0, epochs=epochs, batch_tokens=preset.sft_batch_tokens,
              lr=args.sft_lr or SFT_LR, mixed_precision=PRECISIONS[args.precision][0], seed=args.seed, log_every=5,
              log=lambda step, row: log_line(log, {"stage": "sft", "step": step, **row,
                                                   "cpu_s": time.process_time() - started}))
    save_policy(model, out / "adapter")
    settings = agent_settings(args.memory, PRECISIONS[args.precision][1], open_all=args.open_all,
                              decision_reason=args.decision_reason, numbering=args.numbering,
                              key_turn_repeats=args.key_turn_repeats, transition_repeats=args.transition_repeats,
                              comparison_drills=args.comparison_drills, transition_drills=args.transition_drills,
                              pack=args.pack)
    (out / "adapter" / "mempo_agent.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    log_line(log, {"stage": "sft-done", "cpu_s": time.process_time() - started, "demo_turns": turns,
                   "steps": steps, "epochs": epochs, "init": args.init, "seed": args.seed})
    return out


def is_key_turn(context: str, output: str) -> bool:
    """The turns on which the observed failures happen: the first (no memory shown yet: the
    plan is written from the questions alone) and each comparison's decision (the oracle's entry
    :data:`~mempo_agents.trainer.drills.DECISION`, with any ``--decision-reason``)."""
    from mempo_agents.trainer.drills import DECISION

    return "<information>" not in _after_questions(context) or bool(DECISION.search(output))


def _after_questions(context: str) -> str:
    """The context after its instructions (which name the tags too)."""
    return context.split("\nQuestion", 1)[-1]


ENTRY = re.compile(r"(?:^|\|)\s*\d+(?:/\d+)? :")  # an entry's label in a note: "1/2 :" / "| 2 :"
NOTE = re.compile(r"<(mem|think)>(.*?)</\1>", re.S)  # every note of a context (parse_turn reads one turn)


def entries_in(note: str) -> int:
    """How many labelled entries a memory / think note holds."""
    return len(ENTRY.findall(note.strip()))


def is_transition_turn(context: str, output: str) -> bool:
    """The turns that go from one question to the next: the output's note holds more entries
    than the newest note in the context (the previous memory, or the last ``<think>`` of a full
    context), or the turn answers a task of several questions. A counterpart trained with bare
    transition drills (:func:`~mempo_agents.trainer.drills.transition_drills`, no prompt) still
    closed its note after the first entry at k=4 (``full-context-r9``); these are the same
    decisions in their own contexts."""
    from mempo_gym.core.protocol import parse_turn

    turn = parse_turn(output)
    note = turn.mem if turn.mem is not None else turn.think
    if note is None:
        return False
    written = entries_in(note)
    if turn.action == "answer":
        return written > 1
    before = NOTE.findall(_after_questions(context))
    return written > (entries_in(before[-1][1]) if before else 1)


def repeat_key_turns(demos: list[Any], tokenizer: Any, repeats: int, transition_repeats: int = 1) -> list[Any]:
    """Each key turn (:func:`is_key_turn`) ``repeats`` times, each transition turn
    (:func:`is_transition_turn`) ``transition_repeats`` times (the larger where both hold),
    every other turn once."""
    if repeats < 1:
        raise SystemExit(f"error: --key-turn-repeats must be >= 1, got {repeats}")
    if transition_repeats < 1:
        raise SystemExit(f"error: --transition-repeats must be >= 1, got {transition_repeats}")
    out = []
    for d in demos:
        times = 1
        if repeats > 1 or transition_repeats > 1:
            context, output = tokenizer.decode(d.context_ids), tokenizer.decode(d.output_ids)
            times = max(repeats if is_key_turn(context, output) else 1,
                        transition_repeats if is_transition_turn(context, output) else 1)
        out += [d] * times
    return out


# ----------------------------------------------------------------------------------- RL
RL_SCHEDULE = [[0, [1, 2]], [2, [1, 2, 4]], [6, [1, 2, 4, 8]]]  # curriculum over k (first step, ks)


def rl_config(stage: str, init: Path, preset: Preset, seed: int, flat_groups: str,
              minibatch_tokens: int = RL_MINIBATCH_TOKENS,
              memory_scale: str = "std", format_penalty: float = 0.0, precision: str = "fp32",
              max_new_tokens: int = 96, k_weights: dict[int, float] | None = None) -> Any:
    """The RL settings. Paper-faithful: EM reward with format validity (an invalid or unanswered
    episode scores 0; ``format_penalty`` P > 0 scores it -P, below a wrong answer), group-relative
    advantages, clipped surrogate (eps 0.2), k3 KL to the start policy, memory weight 1. CPU
    recipe: LoRA instead of full fine-tuning, a group of 4 (paper-scale runs use 5-8) and a few
    steps of 8 episodes (hundreds of steps at scale), lr 1e-4 (LoRA moves slower per step than
    full fine-tuning at 1e-6), fp32 (``precision="bf16"``: autocast, for GPUs; slower on this CPU).
    ``max_new_tokens`` per turn: 96 fits ``n`` labels up to k=4; ``n/k`` memories at k=8 need ~170.
    ``k_weights``: how the curriculum's allowed ``k`` s are drawn (default: every task alike, see
    :func:`parse_k_weights`)."""
    from mempo_agents.trainer.config import TrainerConfig

    return TrainerConfig(
        stage=stage, init_model=str(init), group_size=preset.group_size, tasks_per_step=preset.tasks_per_step,
        steps=preset.rl_steps, reward_metric="em", format_penalty=format_penalty, memory_weight=1.0, memory_norm="turn",
        memory_flat_groups=flat_groups, memory_scale=memory_scale, log_memory_reward=stage == "mempo", clip_eps=0.2, kl_beta=0.01, ppo_epochs=1,
        temperature=1.0, max_new_tokens=max_new_tokens, lr=1e-4, warmup_steps=1, mixed_precision=PRECISIONS[precision][0],
        minibatch_tokens=minibatch_tokens, seed=seed,
        objectives_schedule=RL_SCHEDULE, objectives_weights=dict(k_weights or {}), lora_rank=LORA_RANK,
        output_dir="", save_every=0,
    )


def parse_k_weights(spec: str, group_size: int) -> dict[int, float]:
    """``--k-weights``: ``K=W,...`` (weights as given) or ``signal:K=P,...`` (P a measured success
    rate at that ``k``, e.g. the start adapter's held-out EM, turned into the chance that a group of
    ``group_size`` has unequal rewards: :func:`~mempo_agents.trainer.mempo.signal_weights`).
    Empty: ``{}``, every task alike."""
    from mempo_agents.trainer.config import checked_objectives_weights
    from mempo_agents.trainer.mempo import signal_weights

    body = spec.removeprefix("signal:")
    try:
        pairs = {int(k): float(v) for k, v in (item.split("=") for item in filter(None, body.split(",")))}
    except ValueError:
        raise SystemExit(f"error: --k-weights {spec!r} is not K=W,... or signal:K=P,...; "
                         "e.g. 4=1,8=1 or signal:1=0.92,2=0.89,4=0.66,8=0.24") from None
    if spec.startswith("signal:"):
        if any(not 0.0 <= p <= 1.0 for p in pairs.values()):
            raise SystemExit(f"error: --k-weights {spec!r}: success rates must lie in [0, 1]")
        pairs = signal_weights(pairs, group_size)
    try:
        return checked_objectives_weights(pairs)
    except ValueError:
        raise SystemExit(f"error: --k-weights {spec!r}: weights must be >= 0 with one > 0") from None


def rl_run_name(stage: str, flat_groups: str, memory_scale: str, seed: int = 0, format_penalty: float = 0.0,
                weighted: bool = False) -> str:
    """Default run folder: ``grpo``, or ``mempo-apply`` / ``mempo-skip`` (the flat-groups rule, the
    ablated setting, is always named) plus ``-center`` when A^M is only centred; ``-fpP`` for a
    format penalty P > 0; ``-kw`` when ``--k-weights`` draws the ``k`` s; ``-sN`` for seed N > 0."""
    name = "grpo" if stage == "grpo" else f"{stage}-{flat_groups}" + ("-center" if memory_scale == "none" else "")
    return (name + (f"-fp{format_penalty:g}" if format_penalty else "") + ("-kw" if weighted else "")
            + (f"-s{seed}" if seed else ""))


def stage_rl(args: argparse.Namespace, preset: Preset) -> Path:
    """GRPO or MemPO from an SFT adapter (``--init``, default ``OUT/sft-self/adapter``). The
    adapter, optimizer state and step are saved after every step (``OUT/<run>/adapter``,
    ``optimizer.safetensors``, ``trainer_state.json``; safetensors + JSON), so ``--resume``
    continues a killed run where it stopped and a stopped run still leaves its latest policy."""
    from safetensors.torch import load_file, save_file

    from mempo_gym.tokenizer import load_hf_tokenizer

    from mempo_agents.trainer.checkpoint import optimizer_from_flat, optimizer_to_flat
    from mempo_agents.trainer.mempo import train_rl
    from mempo_agents.trainer.policy import load_policy_model, save_policy

    init = Path(args.init) if args.init else Path(args.out) / "sft-self" / "adapter"
    k_weights = parse_k_weights(args.k_weights, preset.group_size)
    name = args.name or rl_run_name(args.rl_stage, args.flat_groups, args.memory_scale, args.seed, args.format_penalty,
                                    bool(k_weights))
    out = Path(args.out) / name
    state_path = out / "trainer_state.json"
    start, optimizer_state = 0, None
    if args.resume and state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        start, init = int(state["step"]), Path(state["init"])  # the run's own start adapter
        tensors = load_file(str(out / "optimizer.safetensors")) if (out / "optimizer.safetensors").is_file() else {}
        optimizer_state = optimizer_from_flat(tensors, state["optimizer"])
        policy_from = out / "adapter"
    elif state_path.is_file():
        raise SystemExit(f"error: {out} already holds an RL run (step {json.loads(state_path.read_text())['step']}); "
                         "pass --resume to continue it or --name to start another")
    else:
        if not (init / "adapter_config.json").is_file():
            raise SystemExit(f"error: {init} is not an adapter folder; run the sft stage first or pass --init FOLDER")
        out.mkdir(parents=True, exist_ok=True)
        record_command(out, init)
        policy_from = init
    log = out / "log.jsonl"
    started = time.process_time()
    cfg = rl_config(args.rl_stage, init, preset, args.seed, args.flat_groups, args.minibatch_tokens, args.memory_scale,
                    args.format_penalty, args.precision, args.rl_max_new_tokens, k_weights)
    if args.rl_steps:
        cfg.steps = args.rl_steps
    if start:
        check_resumed_config(out, cfg)
    cfg.save(out / "config.yaml")
    tokenizer = load_hf_tokenizer()
    policy = load_policy_model(policy_from, trainable=True)
    envs = [make_env(k, "train", 100 + w, n, "self") for w in range(preset.rl_worlds)
            for k, n in {1: 8, 2: 4, 4: 2, 8: 1}.items()]
    recorded = Path(init) / "mempo_agent.json"  # the start adapter's settings carry over
    settings = recorded.read_text(encoding="utf-8") if recorded.is_file() else json.dumps(agent_settings("self"), indent=2)

    def checkpoint(step: int, model: Any, optimizer: torch.optim.Optimizer) -> None:
        save_policy(model, out / "adapter")
        (out / "adapter" / "mempo_agent.json").write_text(settings, encoding="utf-8")
        tensors, meta = optimizer_to_flat(optimizer.state_dict())
        save_file(tensors, str(out / "optimizer.safetensors"))
        tmp = state_path.with_suffix(".tmp")  # the step is written last: it names a complete checkpoint
        tmp.write_text(json.dumps({"step": step, "optimizer": meta, "init": str(init)}), encoding="utf-8")
        tmp.replace(state_path)

    cfg.save_every = 1
    reference = load_policy_model(init) if start else None  # KL to the start policy, also when resumed
    train_rl(cfg, policy, tokenizer, envs, checkpoint=checkpoint, start_step=start, optimizer_state=optimizer_state,
             reference=reference,
             log=lambda step, row: log_line(log, {"stage": name, "step": step, **row,
                                                  "cpu_s": time.process_time() - started}))
    return out


def check_resumed_config(out: Path, cfg: Any) -> None:
    """A resumed RL run keeps the settings it was started with (``OUT/NAME/config.yaml``); only the
    number of steps may grow. Exits with the names of the settings that differ."""
    from mempo_agents.trainer.config import TrainerConfig

    if not (out / "config.yaml").is_file():
        return
    before = TrainerConfig.load(out / "config.yaml").to_dict()
    changed = sorted(k for k, v in cfg.to_dict().items() if k != "steps" and before.get(k) != v)
    if changed:
        raise SystemExit(f"error: {out} was started with other {', '.join(changed)}; resume it with the options it "
                         "was started with (its COMMAND.txt), changing at most --rl-steps")


def agent_settings(memory: str, dtype: str = "float32", **demonstrations: Any) -> dict[str, Any]:
    """What an agent built on this adapter needs: raw contexts (no chat template) and the dtype it
    was trained in; ``trained_on`` also names the demonstrator's options (``open_all``, ...)."""
    return {"agent": "mempo" if memory == "self" else "full-context", "backend": {"chat_template": False, "dtype": dtype},
            "trained_on": {"env_ids": [env_id(k) for k in (1, 2, 4, 8)], "split": "train",
                           "memory": memory, "instructions": INSTRUCTIONS_OF[memory], "oracle_style": MEMORY_STYLE,
                           **demonstrations}}


# ----------------------------------------------------------------------------------- evaluation
def make_eval_agent(model: str, out: Path, repeat_temperature: float | None = None,
                    max_new_tokens: int = EVAL_MAX_NEW_TOKENS, dtype: str = "float32",
                    prefix_cache_tokens: int = 0) -> Any:
    """The agent of a table row; ``repeat_temperature`` samples the turns whose context repeats
    one already seen in the episode (greedy otherwise; ``LLMAgent``); ``prefix_cache_tokens``
    reuses the keys and values of earlier prompts' shared prefixes (``TransformersBackend``)."""
    from mempo_gym.agent import make_agent

    if model == "oracle":
        return make_agent("oracle")
    llm = {"max_new_tokens": max_new_tokens, "dtype": dtype, "repeat_temperature": repeat_temperature,
           **({"prefix_cache_tokens": prefix_cache_tokens} if prefix_cache_tokens else {})}
    if model == "base":  # the untrained embedded model, prompted (chat template on)
        return make_agent("mempo", model="smollm2-135m-instruct", **llm)
    agent = "full-context" if model.startswith("full-context") else "mempo"
    return make_agent(agent, model=str(adapter_of(model, out)), **llm)


def adapter_of(model: str, out: Path) -> Path:
    """The adapter folder of a table row: ``sft`` / ``sft-r1`` (the self-memory SFT rounds),
    ``full-context`` / ``full-context-r1`` (their full-context counterparts), any other stage
    folder in ``out`` by its name, or an adapter folder given by path."""
    if Path(model).is_dir():
        return Path(model)
    if model.startswith("full-context"):
        return shipped(out / ("sft-full" + model[len("full-context"):]))
    return shipped(out / {"sft": "sft-self", "sft-r1": "sft-self-r1"}.get(model, model))


def eval_name(model: str, repeat_temperature: float | None) -> str:
    """The table's row name of a model evaluated with loop-breaking sampling: ``sft-rt0.7``."""
    return model if repeat_temperature is None else f"{model}-rt{repeat_temperature:g}"


def shipped(stage_dir: Path) -> Path:
    """The exported (bf16) adapter of a stage when there is one, else its training output."""
    return stage_dir / "export" if (stage_dir / "export" / "adapter_config.json").is_file() else stage_dir / "adapter"


def stage_export(args: argparse.Namespace) -> None:
    """Export every trained adapter in ``--out`` as shipped (bf16, settings, commands)."""
    from mempo_agents.trainer.policy import export_adapter

    for stage_dir in sorted(Path(args.out).iterdir()):
        if not (stage_dir / "adapter" / "adapter_config.json").is_file():
            continue
        memory = "full" if stage_dir.name.startswith("sft-full") else "self"
        command = (stage_dir / "COMMAND.txt").read_text(encoding="utf-8") if (stage_dir / "COMMAND.txt").is_file() else ""
        recorded = stage_dir / "adapter" / "mempo_agent.json"  # the settings the stage trained with
        settings = json.loads(recorded.read_text(encoding="utf-8")) if recorded.is_file() else agent_settings(memory)
        export_adapter(stage_dir / "adapter", stage_dir / "export", command, settings)
        print(f"exported {stage_dir / 'export'}")


def stage_eval(args: argparse.Namespace, preset: Preset) -> None:
    """Greedy episodes of every (model, k) cell on the registered test world (held out: train
    worlds are another split with disjoint names), each task once, through the harness."""
    from mempo_gym.harness import evaluate

    out = Path(args.out)
    per_k = {k: (0, n) for k, n in preset.eval_per_k.items()}
    for item in filter(None, args.episodes.split(",")):
        k, _, n = item.partition("=")
        if not k.strip().isdigit():
            raise SystemExit(f"error: --episodes item {item!r} is not K=N or K=FIRST:END (e.g. 4=50 or 4=41:50)")
        per_k[int(k)] = episode_range(n, "--episodes")
    hotpotqa = episode_range(str(args.hotpotqa), "--hotpotqa") if str(args.hotpotqa) not in ("", "0") else None
    for model in args.models.split(","):
        agent = make_eval_agent(model, out, args.repeat_temperature, args.max_new_tokens, PRECISIONS[args.precision][1],
                                args.prefix_cache_tokens)
        model = eval_name(model, None if model == "oracle" else args.repeat_temperature)
        if hotpotqa:  # the real HotpotQA sample (data directory: $MEMPO_GYM_DATA), same agent settings
            folder = out / "eval" / f"{model}-hotpotqa"
            started = time.process_time()
            evaluate(["MemPO-HotpotQA-v0"], agent, episodes=hotpotqa[1], first=hotpotqa[0], seed=0, out=folder,
                     batch_size=8, resume=(folder / "config.json").is_file(), progress=False)
            log_line(out / "eval" / "log.jsonl", {"model": model, "k": "hotpotqa", "episodes": hotpotqa[1] - hotpotqa[0],
                                                  "first": hotpotqa[0], "cpu_s": time.process_time() - started})
        for k in (int(x) for x in filter(None, args.ks.split(","))):
            folder = out / "eval" / f"{model}-k{k}"
            started = time.process_time()
            first, end = per_k[k]
            evaluate([env_id(k)], agent, episodes=end, first=first, seed=0, out=folder, batch_size=16,
                     resume=(folder / "config.json").is_file(), progress=False)
            log_line(out / "eval" / "log.jsonl", {"model": model, "k": k, "episodes": end - first, "first": first,
                                                  "cpu_s": time.process_time() - started})


def episode_range(text: str, option: str) -> tuple[int, int]:
    """``N`` (episodes 0..N-1 of the task order) or ``FIRST:END`` (a shard: episodes FIRST..END-1,
    the same tasks as in a full run of END episodes; its scores pair with other runs by index)."""
    first, _, end = text.rpartition(":") if ":" in text else ("0", "", text)
    if not (first.strip().isdigit() and end.strip().isdigit()) or int(first) >= int(end):
        raise SystemExit(f"error: {option} {text!r} is not N or FIRST:END with FIRST < END (e.g. 50 or 41:50)")
    return int(first), int(end)


def stage_decisions(args: argparse.Namespace) -> None:
    """Teacher-forced comparison decisions (:func:`~mempo_agents.trainer.drills.decision_accuracy`)
    of each model on the oracle's decision turns of the held-out test world (the first 100 k=1 and
    40 k=2 tasks of the eval order): how often the right winner is the likelier name. Each model is
    scored in the decision format it was trained to write (:func:`decision_reason_of`), its reason
    teacher-forced too."""
    from mempo_gym.tokenizer import load_hf_tokenizer

    from mempo_agents.trainer.drills import decision_accuracy, decision_points
    from mempo_agents.trainer.mempo import task_refs
    from mempo_agents.trainer.oracle import CompactOracleAgent
    from mempo_agents.trainer.policy import load_base_model, load_policy_model
    from mempo_agents.trainer.sft import collect_demonstrations

    out = Path(args.out)
    tokenizer = load_hf_tokenizer()
    points_of: dict[tuple[str, str], list[Any]] = {}  # (reason, numbering) -> the oracle's decision points
    for model in args.models.split(","):
        adapter = None if model == "base" else adapter_of(model, out)
        reason = "none" if adapter is None else decision_reason_of(adapter)
        numbering = "n" if adapter is None else numbering_of(adapter)
        if (reason, numbering) not in points_of:
            demos = []
            for k, n in ((1, 100), (2, 40)):
                env = make_env(k, "test", 0, n, "self")
                agent = CompactOracleAgent(style=MEMORY_STYLE, decision_reason=reason, numbering=numbering)
                demos += collect_demonstrations(agent, [env], task_refs([env]), tokenizer)[0]
            points_of[reason, numbering] = decision_points(demos, tokenizer)
        points = points_of[reason, numbering]
        started = time.process_time()
        net = load_base_model() if adapter is None else load_policy_model(adapter)
        net.eval()
        log_line(out / "decisions.jsonl", {"model": model, "decision_reason": reason, "numbering": numbering,
                                           "decisions": len(points),
                                           "accuracy": decision_accuracy(net, points, tokenizer),
                                           "cpu_s": time.process_time() - started})


def trained_on(adapter: Path) -> dict[str, Any]:
    """The demonstrations' settings an adapter records (``trained_on`` in its ``mempo_agent.json``)."""
    settings = adapter / "mempo_agent.json"
    return json.loads(settings.read_text(encoding="utf-8")).get("trained_on", {}) if settings.is_file() else {}


def decision_reason_of(adapter: Path) -> str:
    """The decision format an adapter was trained to write (adapters of the third round
    recorded ``check_digits``)."""
    recorded = trained_on(adapter)
    return recorded.get("decision_reason", "first-digit" if recorded.get("check_digits") else "none")


def numbering_of(adapter: Path) -> str:
    """How an adapter was trained to label its memory entries (``"n"`` before ``--numbering``)."""
    return trained_on(adapter).get("numbering", "n")


def stage_table(args: argparse.Namespace) -> None:
    """One table from the eval run folders: F1/EM with 95% bootstrap intervals and token means."""
    from mempo_gym.harness.runfiles import read_config, read_episodes

    if not (Path(args.out) / "eval").is_dir():
        raise SystemExit(f"error: {Path(args.out) / 'eval'} does not exist; run the eval stage into --out first")
    cells: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for folder in sorted((Path(args.out) / "eval").glob("*-*")):
        if folder.name.endswith("-hotpotqa"):
            model, k = folder.name[: -len("-hotpotqa")], "hotpotqa"
        elif "-k" in folder.name and folder.name.rsplit("-k", 1)[1].isdigit():
            model, k = folder.name.rsplit("-k", 1)
        else:
            continue
        first = int(read_config(folder).get("first", 0)) if (folder / "config.json").is_file() else 0
        eps = complete_prefix(read_episodes(folder / "episodes.jsonl").records, first)
        if eps:
            cells[(model, int(k) if k.isdigit() else k)] = eps
    for path in getattr(args, "scores", None) or ():
        for key, eps in read_scores(Path(path)).items():
            merge_scores(cells, key, eps, f"{Path(args.out) / 'eval'}", str(path))
    check_same_tasks(cells)
    cells = dict(sorted(cells.items(), key=lambda cell: cell_rank(*cell[0])))
    rows = [{"model": model, "k": k, "n": len(eps), **summary(eps)} for (model, k), eps in cells.items()]
    out = Path(args.out)
    runs = sorted((d.name for d in out.iterdir() if (d / "trainer_state.json").is_file() and (d / "log.jsonl").is_file()),
                  key=model_rank)
    curves = {name: [json.loads(line) for line in (out / name / "log.jsonl").read_text().splitlines()
                     if '"step"' in line] for name in runs}
    diffs, pooled = paired_differences(cells), seed_pooled_differences(cells)
    (out / "results.json").write_text(json.dumps({"table": rows, "paired": diffs, "pooled_over_seeds": pooled,
                                                  "curves": curves}, indent=2), encoding="utf-8")
    write_scores(out / "scores.jsonl", cells)
    text = markdown_table(rows)
    if diffs:
        text += "\n\n" + markdown_differences(diffs)
    if pooled:
        text += "\n\n" + markdown_pooled(pooled)
    print(text)
    if args.results:
        write_results(Path(args.results), out, text, curves)


def memory_reward_logged(run_dir: Path) -> bool:
    """Whether an RL run computed R^M and P(answer | q, mem) (its ``config.yaml``); a run without
    one counts as MemPO when its folder says so."""
    from mempo_agents.trainer.config import TrainerConfig

    config = run_dir / "config.yaml"
    return TrainerConfig.load(config).log_memory_reward if config.is_file() else run_dir.name.startswith("mempo")


def write_results(path: Path, out: Path, table: str, curves: dict[str, list[dict[str, Any]]]) -> None:
    """The results file: the table, the RL curves, the commands and CPU time of every stage."""
    lines = ["# MemPO on the embedded SmolLM2-135M (CPU): results", "",
             f"Written by `python benchmarks/reproduce_mempo.py table --out {out.as_posix()} --results <this file>`.", "",
             "## Held-out evaluation (registered SynthWiki envs, test world; greedy; each task once)", "", table, ""]
    lines += ["## RL curves (per step: trajectory reward R^T = EM, mean P(answer | q, mem), memory reward R^M)", "",
              "| run | step | R^T | EM | P(answer given mem) | R^M | KL | grad norm | CPU s |", "|" + "---|" * 9]
    for name, rows in curves.items():
        measured = memory_reward_logged(out / name)  # GRPO runs log_memory_reward off: R^M is not computed
        for r in rows:
            p_mem = f"{r['p_answer_given_mem']:.3f}" if measured else "n/a"
            r_mem = f"{r['memory_reward']:.4f}" if measured else "n/a"
            lines.append(f"| {name} | {r['step']} | {r['reward']:.3f} | {r['em']:.3f} | {p_mem} | {r_mem} | "
                         f"{r['kl']:.5f} | {r['grad_norm']:.3f} | {r['cpu_s']:.0f} |")
    lines += ["", "## Commands and CPU time", ""]
    for stage_dir in sorted(out.iterdir()):
        if (stage_dir / "COMMAND.txt").is_file():
            log = [json.loads(x) for x in (stage_dir / "log.jsonl").read_text().splitlines()] if (stage_dir / "log.jsonl").is_file() else []
            cpu = max((float(r.get("cpu_s", 0.0)) for r in log), default=0.0)
            spent = f"{cpu / 60:.1f} CPU-min in its last command" if log else "no training log in this run folder"
            lines += [f"### {stage_dir.name} ({spent})", "", "```",
                      (stage_dir / "COMMAND.txt").read_text(encoding="utf-8").strip(), "```", ""]
    evals = out / "eval" / "log.jsonl"
    if evals.is_file():
        rows = [json.loads(x) for x in evals.read_text().splitlines()]
        lines += ["### evaluation CPU time", "", "| model | k | episodes | CPU s |", "|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['k']} | {r['episodes']} | {r['cpu_s']:.0f} |" for r in rows]
    lines += jobs_section(out / "jobs.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def jobs_section(record: Path) -> list[str]:
    """The results file's account of ``all`` runs (:func:`run_jobs`): each finished job's command,
    wall and CPU time and peak memory (:func:`resident_peak_gb`, read every 0.2 s while it runs), and
    each run's wall time; nothing when ``all`` did not run here."""
    if not record.is_file():
        return []
    rows = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    lines = ["", "### `reproduce_mempo.py all` jobs", "", "| job | wall min | CPU-min | peak GB | command |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['job']} | {r['wall_s'] / 60:.1f} | {r['cpu_s'] / 60:.1f} | "
              f"{r['max_rss_gb'] if 'max_rss_gb' in r else 'n/a'} | "
              f"`python benchmarks/reproduce_mempo.py {' '.join(r['argv'])}` |" for r in rows if r.get("rc") == 0]
    runs = [r for r in rows if r["job"] == "all"]
    lines += ["", *[f"An `all` run with {r['workers']} workers" + (f" on {r['cpu']}" if r.get("cpu") else "")
                    + f": {r['wall_s'] / 60:.1f} min wall"
                    + (f", not finished: {', '.join(r['failed'])}." if r["failed"] else ".") for r in runs]]
    return lines


MODEL_ORDER = ["base", "sft-r1", "sft", "sft-temp0.7", "grpo", "mempo", "full-context-r1", "full-context", "oracle"]


def cell_rank(model: str, k: Any) -> tuple[bool, tuple[int, str], str]:
    """Table order of a (model, k) cell: SynthWiki before HotpotQA, then :func:`model_rank`, then k."""
    return isinstance(k, str), model_rank(model), str(k).zfill(3)


def model_rank(model: str) -> tuple[int, str]:
    """Table order: MODEL_ORDER, an RL run (``grpo-s2``, ``mempo-apply``) beside its algorithm."""
    base = model if model in MODEL_ORDER else model.split("-")[0]
    return (MODEL_ORDER.index(base) if base in MODEL_ORDER else len(MODEL_ORDER), model)


COLUMNS = ("f1", "em", "tokens_total", "tokens_peak", "tokens_generated", "turns", "malformed_turns")


def complete_prefix(episodes: Sequence[dict[str, Any]], first: int = 0) -> list[dict[str, Any]]:
    """Episodes first..m-1 of the task order, m as large as finished (``first``: where the run, a
    shard, began; its config's ``first``).

    The harness refills its batch as episodes end, so a stopped cell holds the quick episodes
    of the tasks after the prefix and not yet the slow ones; scoring only the prefix keeps a
    stopped cell an unbiased sample (the tasks first..m-1 of the seeded permutation)."""
    by_index = {int(e["episode_index"]): e for e in episodes if "episode_index" in e}
    m = first
    while m in by_index:
        m += 1
    if m - first < len(episodes):
        print(f"note: {len(episodes) - (m - first)} finished episode(s) outside episodes {first}..{m - 1} of the task "
              "order are left out", file=sys.stderr)
    return [by_index[i] for i in range(first, m)]


def merge_scores(cells: dict[tuple[str, Any], list[dict[str, Any]]], key: tuple[str, Any],
                 eps: list[dict[str, Any]], folder: str, path: str) -> None:
    """Add a ``--scores`` cell to the table's cells: new, or pooled with the cell of the same model
    and k where the two scored disjoint episodes (shards of one task order, e.g. ``--episodes
    4=25`` here and ``4=25:50`` elsewhere); where they overlap, the eval folder's cell is kept."""
    model, k = key
    if key not in cells:
        cells[key] = eps
        return
    mine = {int(e["episode_index"]) for e in cells[key]}
    if mine & {int(e["episode_index"]) for e in eps}:
        print(f"note: {model} at k={k} is already scored (in {folder} or an earlier --scores) on some of the same "
              f"tasks; its scores in {path} are left out", file=sys.stderr)
        return
    cells[key] = sorted(cells[key] + eps, key=lambda e: int(e["episode_index"]))
    print(f"note: {model} at k={k}: {len(eps)} episode(s) from {path} pooled with the {len(mine)} already scored",
          file=sys.stderr)


SCORE_KEYS = ("model", "k", "episode_index", "task_id")


def write_scores(path: Path, cells: dict[tuple[str, Any], list[dict[str, Any]]]) -> None:
    """Every scored episode of the table as one JSON line: its cell, its task and :data:`COLUMNS`;
    small enough to commit beside a results file, so that a later table (``--scores``) can pair new
    runs with these cells without replaying them."""
    from mempo_gym.harness.runfiles import write_bytes_atomic

    lines = [json.dumps({"model": model, "k": k, "episode_index": int(e["episode_index"]),
                         "task_id": str(e.get("task_id", "")), **{c: e.get(c) for c in COLUMNS}})
             for (model, k), eps in cells.items() for e in eps]
    write_bytes_atomic(path, "".join(line + "\n" for line in lines).encode("utf-8"))


def read_scores(path: Path) -> dict[tuple[str, Any], list[dict[str, Any]]]:
    """The cells of a scores file that :func:`write_scores` wrote, checked line by line (plain
    JSON: a file from elsewhere is data, never code)."""
    if not path.is_file():
        raise SystemExit(f"error: --scores {path}: no such file; give a scores.jsonl written by the table stage")
    cells: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        where = f"error: --scores {path} line {number}"
        if not isinstance(record, dict) or any(key not in record for key in SCORE_KEYS):
            raise SystemExit(f"{where} is not a score line (a JSON object with {', '.join(SCORE_KEYS)}); "
                             "give a scores.jsonl written by the table stage")
        k, index = record["k"], record["episode_index"]
        if (not isinstance(record["model"], str) or not record["model"] or isinstance(index, bool)
                or not isinstance(index, int) or index < 0 or not isinstance(record["task_id"], str)
                or not (k == "hotpotqa" or (isinstance(k, int) and not isinstance(k, bool) and k > 0))):
            raise SystemExit(f"{where}: model, k (a positive int or 'hotpotqa'), episode_index (an int >= 0) or "
                             "task_id (a string) has the wrong type; give a scores.jsonl written by the table stage")
        bad = [c for c in COLUMNS if record.get(c) is not None and (isinstance(record[c], bool)
                                                                    or not isinstance(record[c], (int, float)))]
        if bad:
            raise SystemExit(f"{where}: {', '.join(bad)} must be numbers; give a scores.jsonl written by the table stage")
        cell = cells.setdefault((record["model"], k), [])
        cell.append({key: record[key] for key in ("episode_index", "task_id")} | {c: record.get(c) for c in COLUMNS})
    for (model, k), eps in cells.items():
        indices = [e["episode_index"] for e in eps]
        if len(set(indices)) != len(indices):
            raise SystemExit(f"error: --scores {path}: {model} at k={k} scores a task twice; "
                             "give a scores.jsonl written by the table stage")
    return cells


def check_same_tasks(cells: dict[tuple[str, Any], list[dict[str, Any]]]) -> None:
    """Pairing by ``episode_index`` is only valid if every cell of a k played the same task there:
    stop, naming both cells, where two of them recorded different task ids (another seed, world or
    task order)."""
    seen: dict[tuple[Any, int], tuple[str, str]] = {}
    for (model, k), eps in cells.items():
        for e in eps:
            task = str(e.get("task_id") or "")
            if not task:
                continue
            first = seen.setdefault((k, int(e["episode_index"])), (task, model))
            if first[0] != task:
                raise SystemExit(f"error: {model} and {first[1]} at k={k} played different tasks as episode "
                                 f"{e['episode_index']} ({task!r} vs {first[0]!r}); their cells cannot be paired: "
                                 "evaluate both with the same env, seed and task order")


def bootstrap_ci(values: Sequence[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    arr = np.asarray(values, dtype=float)
    means = arr[rng.integers(0, len(arr), size=(n, len(arr)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summary(episodes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in COLUMNS:
        values = [float(e.get(key) or 0.0) for e in episodes]
        out[key] = float(np.mean(values))
        if key in ("f1", "em"):
            out[f"{key}_ci"] = bootstrap_ci(values)
    return out


def seed_suffix(model: str) -> str:
    """``-s2`` for ``mempo-apply-s2``, ``""`` for a run of seed 0."""
    last = model.rsplit("-", 1)[-1]
    return "-" + last if len(last) > 1 and last[0] == "s" and last[1:].isdigit() else ""


def penalty_suffix(model: str) -> str:
    """``-fp0.5`` for ``mempo-apply-fp0.5-s2``, ``""`` for a run without a format penalty."""
    return next(("-" + part for part in model.split("-")[1:] if re.fullmatch(r"fp[0-9.]+", part)), "")


def weights_suffix(model: str) -> str:
    """``-kw`` for ``grpo-fp0.5-kw-s9``, a run whose tasks were drawn by ``--k-weights``."""
    return "-kw" if "kw" in model.split("-")[1:] else ""


def start_suffix(model: str) -> str:
    """``-r8`` for ``grpo-r8-fp0.5-s8``, an RL run from SFT round 8 (``sft-self-r8``); ``""`` for
    a run from the first shipped ``sft``."""
    return next(("-" + part for part in model.split("-")[1:] if re.fullmatch(r"r\d+", part)), "")


def comparison_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs (A, B) the table differences: every MemPO run against the GRPO run of its start
    round, seed, format penalty and task draw (``-kw``), every RL run against its SFT start (``sft``, or
    ``sft-self-r8`` for ``grpo-r8-…``), a seed replicate against its seed-0 run, a run with a
    format penalty or ``--k-weights`` against the same run without, and SFT against the full-context counterpart; a
    later SFT round (``sft-self-r3``) against the full-context counterpart of the same round, the
    first shipped ``sft`` and the evaluated round before it (``sft-self-r8`` against
    ``sft-self-r7``); a full-context round retrained without a self round of its number
    (``full-context-r9``) against the newest self round before it; a loop-breaking evaluation
    (``sft-rt0.7``) against the same model greedy."""
    rl = [m for m in sorted(set(models), key=model_rank) if m.startswith(("grpo", "mempo"))]
    pairs = [(m, "grpo" + start_suffix(m) + penalty_suffix(m) + weights_suffix(m) + seed_suffix(m))
             for m in rl if m.startswith("mempo")]
    pairs += [(m, "sft-self" + start_suffix(m) if start_suffix(m) else "sft") for m in rl]
    pairs += [(m, m[: -len(seed_suffix(m))]) for m in rl if seed_suffix(m)]
    pairs += [(m, m.replace(penalty_suffix(m), "", 1)) for m in rl if penalty_suffix(m)]
    pairs += [(m, m.replace("-kw", "", 1)) for m in rl if weights_suffix(m)]  # drawn by k against drawn alike
    names = sorted(set(models))
    rounds = sorted((m for m in names if re.fullmatch(r"sft-self-r\d+", m)), key=lambda m: int(m.rsplit("-r", 1)[1]))
    pairs += [(m, "full-context-" + m.rsplit("-", 1)[1]) for m in rounds] + [(m, "sft") for m in rounds]
    pairs += list(zip(rounds[1:], rounds[:-1]))  # each evaluated round against the one before it
    number = {m: int(m.rsplit("-r", 1)[1]) for m in rounds}
    for counterpart in (m for m in names if re.fullmatch(r"full-context-r\d+", m)):
        n = int(counterpart.rsplit("-r", 1)[1])
        before = [m for m in rounds if number[m] < n]
        if f"sft-self-r{n}" not in number and before:
            pairs.append((before[-1], counterpart))
    pairs += [(m, m.rsplit("-rt", 1)[0]) for m in names if re.search(r"-rt[\d.]+$", m)]
    return pairs + [("sft", "full-context")]


def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of mean(a - b) resampling *tasks* (both models played the same tasks)."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return bootstrap_ci(diff.tolist(), n=n, seed=seed)


def paired_differences(cells: dict[tuple[str, Any], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Model A minus model B on the tasks both played (same env, seed and task order: the same
    ``episode_index`` is the same task), for every pair of :func:`comparison_pairs` and every k."""
    out = []
    pairs = comparison_pairs([model for model, _ in cells])
    for (model, k), eps in cells.items():
        for a, b in pairs:
            if model != a or (b, k) not in cells:
                continue
            other = {int(e["episode_index"]): e for e in cells[(b, k)]}
            common = [(e, other[int(e["episode_index"])]) for e in eps if int(e["episode_index"]) in other]
            if not common:
                continue
            row: dict[str, Any] = {"a": a, "b": b, "k": k, "n": len(common)}
            for key in ("f1", "em", "tokens_total"):
                va = [float(x.get(key) or 0.0) for x, _ in common]
                vb = [float(y.get(key) or 0.0) for _, y in common]
                row[key] = float(np.mean(va) - np.mean(vb))
                row[f"{key}_ci"] = paired_bootstrap_ci(va, vb)
            row["a_only"] = sum(float(x.get("em") or 0) > float(y.get("em") or 0) for x, y in common)
            row["b_only"] = sum(float(y.get("em") or 0) > float(x.get("em") or 0) for x, y in common)
            out.append(row)
    out.sort(key=lambda r: (pairs.index((r["a"], r["b"])), str(r["k"]).zfill(3)))
    return out


def seed_pooled_differences(cells: dict[tuple[str, Any], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """A - B pooled over seeds: for each pair of :func:`comparison_pairs` run at two or more seeds
    (``mempo-apply-fp0.5-s8`` - ``grpo-fp0.5-s8`` and the same at ``-s9``: A and B of one seed, or
    B without a seed, such as ``sft``), the per-task mean over the seeds of A - B, on the tasks
    every cell of the group played, with a 95% bootstrap over tasks. Seeds are not resampled: with
    a few seeds the interval shows the task spread, not the seed-to-seed spread."""
    groups: dict[tuple[str, str, Any], dict[str, tuple[str, str]]] = {}
    for a, b in comparison_pairs([model for model, _ in cells]):
        seed = seed_suffix(a)
        stem_a, stem_b = a[: len(a) - len(seed)], b[: len(b) - len(seed_suffix(b))]
        if seed_suffix(b) not in ("", seed) or stem_a == stem_b:
            continue
        for k in {k for model, k in cells if model == a}:
            if (b, k) in cells:
                groups.setdefault((stem_a, stem_b, k), {})[seed or "-s0"] = (a, b)
    out = []
    for (stem_a, stem_b, k), by_seed in groups.items():
        if len(by_seed) < 2:
            continue
        by_task = {name: {int(e["episode_index"]): e for e in cells[(name, k)]}
                   for pair in by_seed.values() for name in pair}
        tasks = sorted(set.intersection(*(set(eps) for eps in by_task.values())))
        if not tasks:
            continue
        row: dict[str, Any] = {"a": stem_a, "b": stem_b, "k": k, "n": len(tasks),
                               "seeds": ",".join(sorted((s[2:] for s in by_seed), key=int))}
        for key in ("f1", "em"):
            per_task = [float(np.mean([float(by_task[a][t].get(key) or 0.0) - float(by_task[b][t].get(key) or 0.0)
                                       for a, b in by_seed.values()])) for t in tasks]
            row[key], row[f"{key}_ci"] = float(np.mean(per_task)), bootstrap_ci(per_task)
        out.append(row)
    out.sort(key=lambda r: (r["a"], r["b"], str(r["k"]).zfill(3)))
    return out


def markdown_pooled(pooled: Sequence[dict[str, Any]]) -> str:
    lines = ["Pooled over seeds (A - B per task, averaged over the seeds' runs, on the tasks all of them played; "
             "95% bootstrap over tasks, seeds not resampled):", "",
             "| A - B | seeds | k | n | F1 diff [95% CI] | EM diff [95% CI] |", "|" + "---|" * 6]
    for r in pooled:
        ci = lambda key: f"{r[key]:+.3f} [{r[key + '_ci'][0]:+.2f}, {r[key + '_ci'][1]:+.2f}]"  # noqa: E731
        lines.append(f"| {r['a']} - {r['b']} | {r['seeds']} | {r['k']} | {r['n']} | {ci('f1')} | {ci('em')} |")
    return "\n".join(lines)


def markdown_differences(diffs: Sequence[dict[str, Any]]) -> str:
    lines = ["Paired differences (A - B on the same tasks; 95% bootstrap over tasks; "
             "EM wins = tasks on which A / B scored the higher EM):", "",
             "| A - B | k | n | F1 diff [95% CI] | EM diff [95% CI] | tokens_total diff | EM wins A / B |",
             "|" + "---|" * 7]
    for r in diffs:
        ci = lambda key: f"{r[key]:+.3f} [{r[key + '_ci'][0]:+.2f}, {r[key + '_ci'][1]:+.2f}]"  # noqa: E731
        lines.append(f"| {r['a']} - {r['b']} | {r['k']} | {r['n']} | {ci('f1')} | {ci('em')} | "
                     f"{r['tokens_total']:+.0f} | {r['a_only']} / {r['b_only']} |")
    return "\n".join(lines)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    head = "| model | k | n | F1 [95% CI] | EM [95% CI] | tokens_total | tokens_peak | tokens_generated | turns | malformed |"
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        ci = lambda key: f"{r[key]:.3f} [{r[key + '_ci'][0]:.2f}, {r[key + '_ci'][1]:.2f}]"  # noqa: E731
        lines.append(f"| {r['model']} | {r['k']} | {r['n']} | {ci('f1')} | {ci('em')} | {r['tokens_total']:.0f} | "
                     f"{r['tokens_peak']:.0f} | {r['tokens_generated']:.0f} | {r['turns']:.2f} | {r['malformed_turns']:.2f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- all
@dataclass(frozen=True)
class Job:
    """One stage of the recipe: this script's arguments, and the jobs that must finish first. A
    ``heavy`` job never runs beside another heavy one: RL with minibatches larger than the default
    (two runs with 4,096-token minibatches, ~15 GB resident each, were killed by the out-of-memory
    killer on this 24 GB machine). At the default 1,024 GRPO and MemPO peaked at 5.1 and 5.5 GB in
    ``all --preset hour`` and run side by side."""
    name: str
    argv: tuple[str, ...]
    after: tuple[str, ...] = ()
    heavy: bool = False


SFT_OPTIONS = ("decision_reason", "numbering", "comparison_drills", "transition_drills", "transition_repeats",
               "key_turn_repeats", "open_all", "pack")
RL_OPTIONS = ("flat_groups", "memory_scale", "format_penalty", "rl_max_new_tokens", "minibatch_tokens", "k_weights")


def given_options(argv: Sequence[str]) -> set[str]:
    """The options a command line names (whatever their values), as argparse dests."""
    parser, unset = build_parser(), object()
    names = vars(parser.parse_args(["all"]))  # a namespace that has every option keeps its values for unnamed ones
    parsed = parser.parse_args(argv, namespace=argparse.Namespace(**{name: unset for name in names}))
    return {name for name, value in vars(parsed).items() if value is not unset}


def recipe_settings(args: argparse.Namespace, preset: Preset, given: set[str]) -> dict[str, Any]:
    """The options of ``all``: the preset's recipe for each option the command line does not name."""
    return {**vars(args), **{name: value for name, value in preset.recipe if name not in given}}


def option_argv(settings: dict[str, Any], names: Sequence[str]) -> list[str]:
    """``--flag value`` for each option (a true switch alone, a false one left out)."""
    argv: list[str] = []
    for name in names:
        flag, value = "--" + name.replace("_", "-"), settings[name]
        if isinstance(value, bool):
            argv += [flag] if value else []
        else:
            argv += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return argv


def recipe_jobs(args: argparse.Namespace, preset: Preset, given: set[str] = frozenset()) -> list[Job]:
    """The whole recipe as jobs: the SFT rounds of the MemPO agent and of its full-context
    counterpart (``preset.rounds``; an SFT option named on the command line, ``--sft-steps``
    and ``--sft-lr`` included, holds for every round), GRPO and MemPO from the self-memory SFT
    adapter with equal budgets, and an evaluation of every model (plus the untrained base and the
    oracle) on the preset's held-out cells (``all`` then writes the table to ``OUT/results.md``).
    Listed in the order a free worker takes them: the longest chain (the counterpart's) starts first."""
    settings = recipe_settings(args, preset, given)
    out = Path(args.out)
    common = ["--preset", args.preset, "--out", args.out, "--threads", str(args.threads),
              "--precision", args.precision]
    jobs: list[Job] = []
    trained_by = {}  # table model -> the job that trains it
    for memory, model in (("full", "full-context"), ("self", "sft")):
        rounds, previous = preset.rounds[memory], None
        for i, round_ in enumerate(rounds, 1):
            name = f"sft-{memory}" if i == len(rounds) else f"sft-{memory}-r{i}"
            options = {**dict(round_.options), **{n: settings[n] for n in SFT_OPTIONS if n in given}}
            steps = settings["sft_steps"] if "sft_steps" in given else round_.steps
            lr = settings["sft_lr"] if "sft_lr" in given else round_.lr
            init = ["--init", str(out / previous / "adapter")] if previous else []
            jobs.append(Job(name, ("sft", "--memory", memory, "--name", name, *init, "--seed", str(round_.seed),
                                   "--sft-steps", str(steps), "--sft-lr", f"{lr:g}",
                                   *option_argv(options, [n for n in SFT_OPTIONS if n in options]), *common),
                            after=(previous,) if previous else ()))
            previous = name
        trained_by[model] = previous
    for algo in ("grpo", "mempo"):  # equal budgets from one SFT adapter
        name = rl_run_name(algo, settings["flat_groups"], settings["memory_scale"], settings["seed"],
                           settings["format_penalty"], bool(settings["k_weights"]))
        steps = ["--rl-steps", str(args.rl_steps)] if args.rl_steps else []
        jobs.append(Job(name, ("rl", "--algo", algo, "--name", name, "--init", str(out / "sft-self" / "adapter"),
                               "--seed", str(settings["seed"]), "--resume", *steps,
                               *option_argv(settings, RL_OPTIONS), *common), after=("sft-self",),
                        heavy=settings["minibatch_tokens"] > RL_MINIBATCH_TOKENS))
        trained_by[name] = name
    ks = ",".join(str(k) for k, n in preset.eval_per_k.items() if n)
    evals = []
    cached = ("--prefix-cache-tokens", str(args.prefix_cache_tokens)) if args.prefix_cache_tokens else ()
    for model in ("full-context", "sft", *[m for m in trained_by if m not in ("full-context", "sft")], "base",
                  "oracle"):
        evals.append(Job(f"eval-{model}", ("eval", "--models", model, "--ks", ks,
                                           "--max-new-tokens", str(args.max_new_tokens), *cached, *common),
                         after=(trained_by[model],) if model in trained_by else ()))
    return jobs + evals


def resident_peak_gb(pid: int) -> float:
    """The largest resident set of process ``pid`` since it started its program (``VmHWM`` in
    ``/proc/PID/status``; 0.0 where that cannot be read). Unlike ``ru_maxrss`` it does not count the
    launcher's memory that a forked child starts with."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return 0.0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) / 2**20 if found else 0.0


def run_jobs(jobs: Sequence[Job], workers: int, out: Path, script: Path | None = None) -> None:
    """Run ``jobs`` (stages of ``script``, this file by default) as up to ``workers`` processes at
    once, each as soon as its ``after`` jobs have finished (and no other ``heavy`` job runs, if it is
    heavy), in list order. A job that an earlier run
    finished with the same arguments (``OUT/jobs.jsonl``) is skipped, so a stopped run continues
    where it stopped; a failed job skips the jobs after it and the rest go on. Each job writes
    ``OUT/logs/NAME.log``; its wall and CPU time (the process and its children) go to jobs.jsonl."""
    script = script or Path(__file__).resolve()
    record, logs = out / "jobs.jsonl", out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    finished = {(row["job"], tuple(row["argv"])) for row in map(json.loads, record.read_text().splitlines())
                if row.get("rc") == 0} if record.is_file() else set()
    if workers < 1:
        raise SystemExit(f"error: --jobs must be at least 1, got {workers}")
    names = {job.name for job in jobs}
    unknown = sorted({a for job in jobs for a in job.after} - names)
    if unknown or len(names) < len(jobs):
        raise ValueError(f"jobs wait for jobs not in the list ({', '.join(unknown)}) or repeat a name")
    pending, running, done, failed = list(jobs), {}, set(), {}
    peak: dict[int, float] = {}  # pid -> the largest resident set seen (GB)
    started = time.monotonic()
    while pending or running:
        for job in list(pending):
            if any(a in failed for a in job.after):
                pending.remove(job)
                failed[job.name] = "skipped: " + ", ".join(a for a in job.after if a in failed) + " failed"
                print(f"skip  {job.name} ({failed[job.name]})", flush=True)
                continue
            if (job.name, job.argv) in finished:
                pending.remove(job)
                done.add(job.name)
                print(f"done  {job.name} (an earlier run)", flush=True)
            elif (len(running) < workers and all(a in done for a in job.after)
                  and not (job.heavy and any(other.heavy for other, *_ in running.values()))):
                pending.remove(job)
                log = (logs / f"{job.name}.log").open("w", encoding="utf-8")
                proc = subprocess.Popen([sys.executable, str(script), *job.argv], stdout=log,
                                        stderr=subprocess.STDOUT)
                running[proc.pid] = (job, proc, log, time.monotonic())
                print(f"start {job.name}: {' '.join(job.argv)}", flush=True)
        if not running:
            continue
        time.sleep(0.2)
        for pid in list(running):
            peak[pid] = max(peak.get(pid, 0.0), resident_peak_gb(pid))
            reaped, status, usage = os.wait4(pid, os.WNOHANG)
            if not reaped:
                continue
            job, proc, log, began = running.pop(pid)
            log.close()
            proc.returncode = rc = os.waitstatus_to_exitcode(status)
            cpu, wall = usage.ru_utime + usage.ru_stime, time.monotonic() - began
            log_line(record, {"job": job.name, "argv": list(job.argv), "rc": rc, "wall_s": round(wall, 1),
                              "cpu_s": round(cpu, 1), "max_rss_gb": round(peak.pop(pid), 2)}, echo=False)
            if rc == 0:
                done.add(job.name)
            else:
                killed = " (signal 9: most likely the out-of-memory killer)" if rc == -9 else ""
                failed[job.name] = f"exit {rc}{killed}, see {logs / (job.name + '.log')}"
            print(f"{'done ' if rc == 0 else 'FAIL '} {job.name}: {wall / 60:.1f} min wall, {cpu / 60:.1f} CPU-min"
                  + ("" if rc == 0 else f" ({failed[job.name]})"), flush=True)
    wall = time.monotonic() - started
    from mempo_agents.hardware import describe_cpu

    log_line(record, {"job": "all", "workers": workers, "wall_s": round(wall, 1), "failed": sorted(failed),
                      "cpu": describe_cpu()}, echo=False)
    print(f"all: {wall / 60:.1f} min wall, {len(jobs) - len(failed)} of {len(jobs)} jobs done", flush=True)
    if failed:
        raise SystemExit(f"error: {len(failed)} of {len(jobs)} jobs did not finish: "
                         + "; ".join(f"{name} ({why})" for name, why in failed.items()))


def build_parser() -> argparse.ArgumentParser:
    from mempo_agents.trainer.oracle import DECISION_REASONS, NUMBERINGS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["sft", "rl", "eval", "decisions", "table", "export", "all"])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full")
    parser.add_argument("--out", default="runs/repro")
    parser.add_argument("--memory", choices=["self", "full"], default="self")
    parser.add_argument("--algo", dest="rl_stage", choices=["grpo", "mempo"], default="mempo", help="rl: GRPO or MemPO")
    parser.add_argument("--flat-groups", choices=["skip", "apply"], default="apply",
                        help="MemPO: memory advantage in groups without trajectory signal")
    parser.add_argument("--memory-scale", choices=["std", "none"], default="std",
                        help="MemPO: divide A^M by its bucket's std (Eq. 5) or only centre it")
    parser.add_argument("--format-penalty", type=float, default=0.0,
                        help="rl: R^T of an unanswered or malformed episode is -P (default 0: the paper's validity rule)")
    parser.add_argument("--models", default="base,sft,grpo,mempo-apply,full-context,oracle")
    parser.add_argument("--ks", default="1,2,4,8")
    parser.add_argument("--episodes", default="",
                        help="override episodes per k, e.g. 1=50,2=50; K=FIRST:END plays only episodes FIRST..END-1 "
                             "of the task order (a shard, e.g. 4=41:50)")
    parser.add_argument("--repeat-temperature", type=float, default=None,
                        help="eval: sample a turn whose context repeats one seen in the episode at this temperature "
                        "(greedy otherwise); the rows are named MODEL-rtT")
    parser.add_argument("--max-new-tokens", type=int, default=EVAL_MAX_NEW_TOKENS,
                        help="eval: tokens one turn may generate")
    parser.add_argument("--prefix-cache-tokens", type=int, default=0,
                        help="eval (and all's evaluations): reuse the keys and values of up to this many positions "
                             "of earlier prompts (TransformersBackend prefix_cache_tokens; ~46 KB each in fp32); 0 "
                             "recomputes every prompt (benchmarks/prefix_cache.py measures both)")
    parser.add_argument("--rl-max-new-tokens", type=int, default=96,
                        help="rl: tokens one sampled turn may generate (192 for n/k memories at k=8)")
    parser.add_argument("--hotpotqa", default="",
                        help="eval: also play N episodes of MemPO-HotpotQA-v0 (real sample; $MEMPO_GYM_DATA), "
                             "or FIRST:END for episodes FIRST..END-1")
    parser.add_argument("--init", default="", help="sft: continue this adapter folder; rl: start from it "
                        "(default OUT/sft-self/adapter)")
    parser.add_argument("--name", default="", help="sft / rl: output folder name (default sft-MEMORY / the algorithm)")
    parser.add_argument("--rl-steps", type=int, default=0, help="rl: policy updates (default: the preset's)")
    parser.add_argument("--resume", action="store_true", help="rl: continue the run in OUT/NAME from its last step")
    parser.add_argument("--k-weights", default="",
                        help="rl: draw each step's tasks by k with these weights, K=W,... or signal:K=P,... "
                             "(P: the start adapter's success rate at k; weight = P(a group has unequal rewards)); "
                             "default: every task alike")
    parser.add_argument("--sft-steps", type=int, default=0, help="sft: optimizer steps (default: the preset's)")
    parser.add_argument("--open-all", action="store_true",
                        help="sft: the demonstrator writes every question's entry from the first turn")
    parser.add_argument("--pack", action="store_true",
                        help="sft: train each full-context episode as one sequence with every turn's output a target "
                             "(the same per-token loss, the history run once; self-memory turns are unchanged); "
                             "a step then holds a whole episode")
    parser.add_argument("--decision-reason", choices=tuple(DECISION_REASONS), default="none",
                        help="sft: what the demonstrator (and the drills) write before a comparison's winner: nothing, "
                             "the first differing digits (': 8 > 4') or the digit walk to them "
                             "(': 2 = 2 , 0 = 0 , 1 = 1 , 8 > 4'); see oracle.decision_entry")
    parser.add_argument("--check-digits", dest="decision_reason", action="store_const", const="first-digit",
                        help="sft: the same as --decision-reason first-digit (the third round's flag)")
    parser.add_argument("--numbering", choices=NUMBERINGS, default="n",
                        help="sft: label memory entries 'n : …' or 'n/k : …' (with the number of questions)")
    parser.add_argument("--transition-drills", type=int, default=0,
                        help="sft: add N drills of opening the next question or answering after a finished entry "
                             "(needs --numbering n/k)")
    parser.add_argument("--transition-repeats", type=int, default=1,
                        help="sft: demonstration turns that open the next question or answer, this many times")
    parser.add_argument("--key-turn-repeats", type=int, default=1,
                        help="sft: repeat each first turn and comparison decision this many times in the demonstrations")
    parser.add_argument("--sft-lr", type=float, default=0.0, help="sft: peak learning rate (default SFT_LR, 1.5e-3)")
    parser.add_argument("--minibatch-tokens", type=int, default=RL_MINIBATCH_TOKENS,
                        help="rl: tokens per forward pass (memory only: gradients are accumulated over the batch)")
    parser.add_argument("--results", default="", help="table: also write the results Markdown file here")
    parser.add_argument("--scores", action="append", default=[],
                        help="table: also use the per-task scores of earlier evaluations (a scores.jsonl the table "
                             "stage wrote; repeatable); the cells in --out's eval folder take precedence")
    parser.add_argument("--comparison-drills", type=int, default=0,
                        help="sft: add N comparison drills (agents/trainer/drills.py) to the demonstrations")
    parser.add_argument("--precision", choices=["auto", *sorted(PRECISIONS)], default="auto",
                        help="sft / rl: fp32 or bf16 autocast; eval: the backend dtype (fp32 is faster on CPUs without "
                        "bf16 units); auto: bf16 where the CPU has them, else fp32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1,
                        help="all: stages run at once as separate processes (2 on a 2-core CPU, with --threads 1)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, checked, with ``--precision auto`` resolved for this CPU."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.precision = resolve_precision(args.precision)
    if args.transition_drills and args.numbering != "n/k":
        parser.error("--transition-drills needs --numbering n/k: the drills decide by an entry's n/k label")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    preset = PRESETS[args.preset]
    if args.stage == "sft":
        stage_sft(args, preset)
    elif args.stage == "rl":
        stage_rl(args, preset)
    elif args.stage == "eval":
        stage_eval(args, preset)
    elif args.stage == "decisions":
        stage_decisions(args)
    elif args.stage == "table":
        stage_table(args)
    elif args.stage == "export":
        stage_export(args)
    else:  # all: the whole recipe as jobs, --jobs at a time (recipe_jobs)
        given = given_options(sys.argv[1:] if argv is None else argv)
        run_jobs(recipe_jobs(args, preset, given), args.jobs, Path(args.out))
        stage_table(argparse.Namespace(out=args.out, results=str(Path(args.out) / "results.md")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
