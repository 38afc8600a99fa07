"""Can SFT teach the embedded SmolLM2-135M to decide a comparison? Two decision formats, same run.

The shipped MemPO adapter picks the winner of a comparison (``earlier Kiki 2018 , Futusi 2014
= ?``) at chance. This benchmark trains one LoRA copy per decision format on comparison drills
only (:mod:`mempo_agents.trainer.drills`), from the same start and with the same optimiser,
and every ``--eval-every`` steps greedily decodes held-out drills whose names come from the
test world (never trained on) and whose years are drawn afresh:

* ``plain``: the winner right after the years, ``... , Futusi 2014 = Futusi``;
* ``digits``: the years walked digit by digit to their first difference, then the winner,
  ``... , Futusi 2014 : 2 = 2 , 0 = 0 , 1 = 1 , 8 > 4 = Futusi``
  (:func:`~mempo_agents.trainer.oracle.digit_walk`), so that each generated token is a copy,
  an equality or a single-digit comparison.

It prints, per format and checkpoint, the winner accuracy and (for ``digits``) how often the
walk itself was exact, plus the ratio of the two formats' accuracies at equal steps::

    python benchmarks/comparison_formats.py --steps 300 --eval-every 60 --threads 1 \
        --out runs/comparison-formats
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "agents" / "checkpoints" / "mempo-smollm2-135m-lora"
FORMATS = ("plain", "digits")


def _reproduction() -> Any:
    """``benchmarks/reproduce_mempo.py``, for its registered-env helpers (``make_env``, ``worlds_of``)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import reproduce_mempo

    return reproduce_mempo


def held_out_world() -> Any:
    """The test-split world of the registered SynthWiki env (the one every held-out table uses)."""
    repro = _reproduction()
    return repro.worlds_of([repro.make_env(1, "test", 0, 1, "self")])[0]


def train_worlds(count: int) -> list[Any]:
    """Train-split worlds ``1..count`` (the reproduction's SFT worlds)."""
    repro = _reproduction()
    return repro.worlds_of([repro.make_env(1, "train", w, 1, "self") for w in range(1, count + 1)])


def evaluate(model: Any, tokenizer: Any, drills: Sequence[Any], batch: int = 50) -> dict[str, float]:
    """Greedy decoding of each drill's output; its winner is the name after the last ``= ``
    (the context of a ``plain`` drill ends with that ``=``; a ``digits`` drill's context has none)."""
    from mempo_agents.trainer.mempo import sample_batch

    winners = exact = 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(drills), batch):
            chunk = drills[start:start + batch]
            width = [len(d.output_ids) + 2 for d in chunk]
            out, _ = sample_batch(model, [d.context_ids for d in chunk], width, stop=lambda ids: False,
                                  pad_id=tokenizer.pad_token_id or 0, temperature=0.0)
            for d, ids in zip(chunk, out):
                want = tokenizer.decode(list(d.context_ids) + list(d.output_ids))
                got = tokenizer.decode(list(d.context_ids) + ids)
                exact += got.startswith(want)
                winners += "= " in got and got.rsplit("= ", 1)[1].startswith(want.rsplit("= ", 1)[1])
    model.train()
    return {"winner_accuracy": winners / len(drills), "exact": exact / len(drills)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of plain,digits")
    parser.add_argument("--init", default=str(SHIPPED),
                        help="adapter to start from (default: the shipped one, which already writes the digit walk; "
                             "the results file started from the adapter of commit d458544)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-drills", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--eval-every", type=int, default=60)
    parser.add_argument("--eval-drills", type=int, default=200)
    parser.add_argument("--train-worlds", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", default="", help="folder for log.jsonl (and the adapters with --save)")
    parser.add_argument("--save", action="store_true", help="save each format's final adapter under --out")
    args = parser.parse_args(argv)
    formats = args.formats.split(",")
    if unknown := [f for f in formats if f not in FORMATS]:
        parser.error(f"--formats: unknown format {unknown[0]!r}; use {', '.join(FORMATS)}")
    if args.threads:
        torch.set_num_threads(args.threads)

    from mempo_gym.tokenizer import load_hf_tokenizer

    from mempo_agents.trainer.drills import comparison_drills
    from mempo_agents.trainer.policy import load_policy_model, save_policy
    from mempo_agents.trainer.sft import sft_loss

    tokenizer = load_hf_tokenizer()
    worlds, test = train_worlds(args.train_worlds), held_out_world()
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, float]]] = {}
    for fmt in formats:
        reason = "digits" if fmt == "digits" else "none"
        held = comparison_drills([test], args.eval_drills, random.Random(10_000 + args.seed), tokenizer,
                                 reason=reason)
        train = comparison_drills(worlds, args.steps * args.batch_drills, random.Random(args.seed), tokenizer,
                                  reason=reason)
        torch.manual_seed(args.seed)
        model = load_policy_model(args.init, trainable=True)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr,
                                      weight_decay=0.01, betas=(0.9, 0.98))
        started = time.process_time()
        rows = results.setdefault(fmt, [])
        for step in range(args.steps + 1):
            if step % args.eval_every == 0 or step == args.steps:
                row = {"format": fmt, "step": step, "drills_seen": step * args.batch_drills,
                       **evaluate(model, tokenizer, held), "cpu_s": round(time.process_time() - started, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if out:
                    with open(out / "log.jsonl", "a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
            if step == args.steps:
                break
            for group in optimizer.param_groups:  # linear warm-up over 5% of the steps, then constant
                group["lr"] = args.lr * min(1.0, (step + 1) / max(1, args.steps // 20))
            loss, _ = sft_loss(model, train[step * args.batch_drills:(step + 1) * args.batch_drills],
                               pad_id=tokenizer.pad_token_id or 0)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if out and args.save:
            save_policy(model, out / fmt / "adapter")
    if set(results) == set(FORMATS):
        print("\nstep | plain winner | digits winner | digits walk exact | digits / plain")
        for p, d in zip(results["plain"], results["digits"]):
            ratio = d["winner_accuracy"] / p["winner_accuracy"] if p["winner_accuracy"] else float("inf")
            print(f"{p['step']} | {p['winner_accuracy']:.3f} | {d['winner_accuracy']:.3f} | {d['exact']:.3f} | {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
