"""Full-context SFT, turn by turn against packed episodes (``pack_episodes``): CPU seconds for
one pass (forward + backward) over the same demonstrations with the embedded SmolLM2-135M and a
LoRA r=32 adapter, the tokens each way runs, and the summed NLL of both (it must agree: packing
changes what is computed, not the loss).

A full-context turn's context is the whole history, so turn by turn an episode of T turns runs
its history T times; packed, once. Self-memory turns never extend one another (packing leaves
them alone), so only the full-context counterpart's SFT changes.

    python benchmarks/sft_packing.py                 # ~4 CPU-min: 4 oracle episodes per k at k=1, 2, 4
    python benchmarks/sft_packing.py --episodes 2 --ks 1,2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def demonstrations(ks: Sequence[int], episodes: int) -> list[Any]:
    """Full-context oracle turns of the registered SynthWiki train split (world 1), in the
    recipe's format (``reproduce_mempo.py sft --memory full``)."""
    from reproduce_mempo import MEMORY_STYLE, MISTAKE_RATE, decoys_of, make_env

    from mempo_agents.trainer.mempo import task_refs
    from mempo_agents.trainer.oracle import CompactOracleAgent
    from mempo_agents.trainer.sft import collect_demonstrations
    from mempo_gym.tokenizer import load_hf_tokenizer

    tokenizer = load_hf_tokenizer()
    demos: list[Any] = []
    for k in ks:
        env = make_env(k, "train", 1, episodes, "full")
        agent = CompactOracleAgent(mistake_rate=MISTAKE_RATE, decoys=decoys_of(env), seed=k, style=MEMORY_STYLE,
                                   decision_reason="digits", numbering="n/k", note_tag="think")
        demos += collect_demonstrations(agent, [env], task_refs([env]), tokenizer)[0]
    return demos


def one_pass(demos: Sequence[Any]) -> tuple[float, float]:
    """(CPU seconds, summed NLL) of forward + backward over ``demos``, one sequence per step."""
    from reproduce_mempo import LORA_RANK

    from mempo_agents.trainer.policy import add_lora, load_base_model
    from mempo_agents.trainer.sft import sft_loss

    torch.manual_seed(0)
    model = add_lora(load_base_model(), rank=LORA_RANK, alpha=2 * LORA_RANK)  # as the recipe
    model.train()
    sft_loss(model, demos[:1], pad_id=0)[0].backward()  # warm-up
    model.zero_grad()
    total = 0.0
    started = time.process_time()
    for demo in demos:
        loss, n = sft_loss(model, [demo], pad_id=0)
        (loss * n).backward()
        total += float(loss.detach()) * n
    return time.process_time() - started, total


def main(argv: Sequence[str] | None = None) -> None:
    from mempo_agents.trainer.sft import pack_episodes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4, help="oracle episodes per k")
    parser.add_argument("--ks", default="1,2,4")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    turns = demonstrations([int(k) for k in args.ks.split(",")], args.episodes)
    packed = pack_episodes(turns)
    rows = []
    for name, demos in (("turn by turn", turns), ("packed", packed)):
        cpu, nll = one_pass(demos)
        tokens = sum(len(d.context_ids) + len(d.output_ids) for d in demos)
        targets = sum(len(d.target_positions()) for d in demos)
        rows.append((name, len(demos), tokens, targets, cpu, nll))
    print(f"full-context SFT, k in {{{args.ks}}}, {args.episodes} episodes per k, {args.threads} thread(s); "
          "forward + backward, LoRA r=32, fp32")
    print(f"{'':14} {'sequences':>9} {'tokens run':>10} {'targets':>8} {'CPU s':>7} {'targets/CPU-s':>13} "
          f"{'summed NLL':>11}")
    for name, sequences, tokens, targets, cpu, nll in rows:
        print(f"{name:14} {sequences:9d} {tokens:10d} {targets:8d} {cpu:7.1f} {targets / cpu:13.1f} {nll:11.3f}")
    (_, _, tok_t, _, cpu_t, nll_t), (_, _, tok_p, _, cpu_p, nll_p) = rows
    print(f"packed / turn by turn: tokens run {tok_p / tok_t:.2f}x, CPU time {cpu_p / cpu_t:.2f}x "
          f"({cpu_t / cpu_p:.1f}x faster); summed NLL differs by {abs(nll_p - nll_t) / abs(nll_t):.1e} (relative)")


if __name__ == "__main__":
    main()
