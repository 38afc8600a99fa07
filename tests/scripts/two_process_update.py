"""One MemPO update (Eq. 10) on a fixed batch, in one process or under ``accelerate launch``.

Each process takes its own share of a fixed list of sequences, deliberately uneven so the
processes have different numbers of minibatches; the updated parameters are written to
``OUT`` (rank 0). With ``--world 1`` the single process takes every sequence with its
weight halved, which is the gradient DDP averages over two processes.
"""

from __future__ import annotations

import copy
import json
import sys

import torch
from accelerate import Accelerator
from transformers import LlamaConfig, LlamaForCausalLM

from mempo_agents.trainer.config import TrainerConfig
from mempo_agents.trainer.mempo import TrainSequence, update_policy


def sequences() -> list[list[TrainSequence]]:
    """Two shares: rank 0 gets four sequences (several minibatches), rank 1 one."""
    g = torch.Generator().manual_seed(0)
    shares: list[list[TrainSequence]] = [[], []]
    for i in range(5):
        ctx = torch.randint(3, 60, (20 + 7 * i,), generator=g).tolist()
        gen = torch.randint(3, 60, (5 + i,), generator=g).tolist()
        adv = (torch.randn(len(gen), generator=g)).tolist()
        shares[0 if i < 4 else 1].append(TrainSequence(ctx, gen, [-1.0] * len(gen), adv, 0.05))
    return shares


def main() -> None:
    out, world = sys.argv[1], int(sys.argv[2])
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256))
    ref = copy.deepcopy(model).eval()
    torch.manual_seed(1)
    with torch.no_grad():  # a reference that differs from the policy, so the KL term is live
        for p in ref.parameters():
            p.add_(0.01 * torch.randn_like(p))
    for p in ref.parameters():
        p.requires_grad_(False)
    accelerator = Accelerator(cpu=True)
    cfg = TrainerConfig(stage="grpo", init_model="x", lr=1e-2, kl_beta=0.1, clip_eps=0.2, minibatch_tokens=64)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    policy, optimizer = accelerator.prepare(model, optimizer)
    ref = accelerator.prepare_model(ref, evaluation_mode=True)
    shares = sequences()
    if world == 1:
        seqs = [TrainSequence(s.context_ids, s.generated_ids, s.old_logprobs, s.advantages, s.weight / 2)
                for share in shares for s in share]
    else:
        seqs = shares[accelerator.process_index]
    stats = update_policy(policy, ref, optimizer, accelerator, seqs, cfg, pad_id=0)
    if accelerator.is_main_process:
        params = {n: p.detach().flatten()[:50].tolist() for n, p in accelerator.unwrap_model(policy).named_parameters()}
        json.dump({"params": params, "stats": stats}, open(out, "w"))


if __name__ == "__main__":
    main()
