"""fp32 against bf16 autocast for the embedded SmolLM2-135M on this CPU: one LoRA SFT step and
batched greedy generation, CPU seconds per token, with the ratio measured in the same run.

On a CPU without bf16 arithmetic units (no AVX512-BF16 / AMX) bf16 autocast pays for the
conversions and gains nothing; it is what the reproduction ran with before this benchmark
(``reproduce_mempo.py --precision``: fp32 is now the default, bf16 stays for GPUs).

    python benchmarks/cpu_precision.py            # ~2 CPU-min
    python benchmarks/cpu_precision.py --steps 5 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from mempo_agents.hardware import describe_cpu


def sft_step_seconds(precision: str, steps: int, batch: int, length: int) -> float:
    """CPU seconds of one optimizer step of LoRA SFT (r=32, loss on the last 40 tokens)."""
    from mempo_agents.trainer.policy import add_lora, completion_logprobs, load_base_model

    torch.manual_seed(0)
    model = add_lora(load_base_model(), rank=32, alpha=64)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    prompts = [torch.randint(100, 40000, (length - 40,)).tolist() for _ in range(batch)]
    completions = [torch.randint(100, 40000, (40,)).tolist() for _ in range(batch)]

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logp, mask = completion_logprobs(model, prompts, completions)
        loss = -logp.sum() / mask.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    started = time.process_time()
    for _ in range(steps):
        step()
    return (time.process_time() - started) / steps


def generation_seconds(precision: str, batch: int, length: int, new_tokens: int) -> float:
    """CPU seconds of greedy generation of ``new_tokens`` for ``batch`` contexts (weights in
    the given dtype, as :class:`~mempo_agents.backends.TransformersBackend` loads them)."""
    from mempo_agents.trainer.policy import load_base_model

    model = load_base_model().to(torch.bfloat16 if precision == "bf16" else torch.float32).eval()
    ids = torch.randint(100, 40000, (batch, length))
    with torch.no_grad():
        model.generate(ids, max_new_tokens=2, do_sample=False, pad_token_id=0)
        started = time.process_time()
        model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU: {describe_cpu()}")
    batch, length, new = 2, 320, 40
    sft = {p: sft_step_seconds(p, args.steps, batch, length) for p in ("fp32", "bf16")}
    gen = {p: generation_seconds(p, 8, 250, new) for p in ("fp32", "bf16")}
    print("| workload | fp32 CPU-s | bf16 CPU-s | fp32 tokens/CPU-s | bf16 tokens/CPU-s | bf16 / fp32 time |")
    print("|---|---|---|---|---|---|")
    print(f"| LoRA SFT step, {batch} x {length} tokens | {sft['fp32']:.2f} | {sft['bf16']:.2f} | "
          f"{batch * length / sft['fp32']:.0f} | {batch * length / sft['bf16']:.0f} | {sft['bf16'] / sft['fp32']:.2f}x |")
    print(f"| greedy generation, 8 x {new} new tokens after 250 | {gen['fp32']:.1f} | {gen['bf16']:.1f} | "
          f"{8 * new / gen['fp32']:.1f} | {8 * new / gen['bf16']:.1f} | {gen['bf16'] / gen['fp32']:.2f}x |")


if __name__ == "__main__":
    main()
