"""SFT cold start: behaviour cloning on correct demonstrations, loss on agent-written tokens only.

1. :func:`collect_demonstrations` plays a demonstrator agent (any :class:`mempo_gym.Agent`,
   e.g. the reference ``OracleAgent`` or :class:`~mempo_agents.trainer.oracle.CompactOracleAgent`)
   in the env, keeps episodes whose answer is fully correct (EM = 1), and turns every kept
   turn into ``(context ids, output ids)``. A demonstrator may inject deliberate mistakes
   (e.g. a garbled search) and report them through an ``excluded_turns(slot) -> set[int]``
   method: those turns are not targets, but the turn after them (which recovers from the
   failure) is, so the policy learns to retry, never to make the mistake.
2. :func:`pack_episodes` (optional) merges the turns of a full-context episode, where each
   turn's context is the previous context plus the previous output and information, into one
   demonstration whose loss covers every turn's output: under causal attention each target
   token sees exactly the tokens it saw as its own turn, so the loss is the same and the
   shared history is run once instead of once per turn. Self-memory turns (each context is
   rebuilt from the memory) never extend one another and stay as they are.
3. :func:`sft_train` minimises the mean NLL of output tokens (context tokens are masked),
   AdamW with linear warm-up and cosine decay, length-bucketed batches of ~``batch_tokens``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from mempo_gym.agent import Agent
from mempo_gym.rollout import play_batch


@dataclass(frozen=True)
class Demonstration:
    """One turn to imitate: the context the env showed and the tokens the agent wrote; a packed
    episode (:func:`pack_episodes`) also names the earlier outputs inside its context that are
    targets, as ``[start, end)`` spans of ``context_ids``."""

    context_ids: tuple[int, ...]
    output_ids: tuple[int, ...]
    earlier_outputs: tuple[tuple[int, int], ...] = ()

    def target_positions(self) -> list[int]:
        """Positions in ``context_ids + output_ids`` whose tokens carry the loss."""
        n = len(self.context_ids)
        return [j for a, b in self.earlier_outputs for j in range(a, b)] + list(range(n, n + len(self.output_ids)))


def collect_demonstrations(
    agent: Agent,
    envs: Sequence[Any],
    refs: Sequence[Any],
    tokenizer: Any,
    batch: int = 64,
) -> tuple[list[Demonstration], dict[str, float]]:
    """Run ``agent`` on every task ref (``.source``, ``.index``) and keep correct episodes' turns.

    The turns are the exact ids the env metered (its context ids and each turn's output ids),
    played by the shared loop :func:`mempo_gym.rollout.play_batch`."""
    from mempo_agents.trainer.mempo import clone_env

    demos: list[Demonstration] = []
    kept = episodes = 0
    for start in range(0, len(refs), batch):
        chunk = refs[start:start + batch]
        slots = [(clone_env(envs[ref.source]), {"task_index": ref.index}) for ref in chunk]
        played = play_batch(slots, agent.act_batch, on_start=lambda n, task: agent.reset(task, n), record_ids=True)
        for episode in played:
            episodes += 1
            excluded = agent.excluded_turns(episode.slot) if hasattr(agent, "excluded_turns") else set()
            metrics = episode.info["metrics"]
            if float(metrics.get("em", 0.0)) < 1.0 or metrics.get("malformed_turns", 0):
                continue
            kept += 1
            for number, turn in enumerate(episode.turns):
                if number in excluded:
                    continue
                assert turn.prompt_ids is not None
                demos.append(Demonstration(tuple(turn.prompt_ids), tuple(turn.completion_ids)))
    return demos, {"episodes": float(episodes), "kept": float(kept), "turns": float(len(demos))}


def pack_episodes(demos: Sequence[Demonstration]) -> list[Demonstration]:
    """Merge each run of consecutive demonstrations in which one's context starts with the
    previous one's context and output (the turns of a full-context episode, in order; a turn
    left out as a mistake stays in the context untargeted) into a single demonstration.

    Every target token keeps its exact context, so :func:`sft_loss` sums the same per-token
    NLL terms; only the forward passes are shared."""
    packed: list[Demonstration] = []
    for demo in demos:
        if packed:
            last = packed[-1]
            whole = last.context_ids + last.output_ids
            if len(demo.context_ids) >= len(whole) and demo.context_ids[:len(whole)] == whole:
                spans = (*last.earlier_outputs, (len(last.context_ids), len(whole)), *demo.earlier_outputs)
                packed[-1] = Demonstration(demo.context_ids, demo.output_ids, tuple(sorted(set(spans))))
                continue
        packed.append(demo)
    return packed


def token_batches(demos: Sequence[Demonstration], batch_tokens: int, rng: random.Random) -> list[list[Demonstration]]:
    """Shuffle, then group by length into batches of at most ``batch_tokens`` padded tokens."""
    order = list(demos)
    rng.shuffle(order)
    # sort within windows of 64 batches' worth so padding stays small but order stays random
    window = max(1, 64 * batch_tokens // max(1, max(len(d.context_ids) + len(d.output_ids) for d in order)))
    out: list[list[Demonstration]] = []
    for w in range(0, len(order), window):
        part = sorted(order[w:w + window], key=lambda d: len(d.context_ids) + len(d.output_ids))
        cur: list[Demonstration] = []
        for d in part:
            n = len(d.context_ids) + len(d.output_ids)
            if cur and n * (len(cur) + 1) > batch_tokens:
                out.append(cur)
                cur = []
            cur.append(d)
        if cur:
            out.append(cur)
    rng.shuffle(out)
    return out


def sft_loss(model: torch.nn.Module, batch: Sequence[Demonstration], pad_id: int, device: Any = None) -> tuple[torch.Tensor, int]:
    """Mean NLL over target tokens (each output, and a packed episode's earlier outputs); context
    tokens (prompt, memory shown, information) get no loss.

    Scored with :func:`~mempo_agents.trainer.policy.target_logprobs`, so logits are computed
    at target positions only.
    """
    from mempo_agents.trainer.policy import target_logprobs

    logp = target_logprobs(model, [d.context_ids + d.output_ids for d in batch],
                           [d.target_positions() for d in batch], pad_id=pad_id)
    n = logp.numel()
    return -logp.sum() / max(1, n), n


def sft_train(
    model: torch.nn.Module,
    demos: Sequence[Demonstration],
    pad_id: int,
    epochs: float = 1.0,
    batch_tokens: int = 4096,
    lr: float = 2e-3,
    weight_decay: float = 0.01,
    warmup_frac: float = 0.05,
    mixed_precision: str = "no",
    seed: int = 0,
    log: Callable[[int, dict[str, float]], None] | None = None,
    log_every: int = 20,
    time_limit_s: float | None = None,
) -> torch.nn.Module:
    """Behaviour cloning for ``epochs`` passes (fractional allowed) or until ``time_limit_s``."""
    import time

    from accelerate import Accelerator

    if not demos:
        raise ValueError("no demonstrations to train on: the demonstrator solved no episode")
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mixed_precision)
    rng = random.Random(seed)
    batches: list[list[Demonstration]] = []
    while len(batches) < max(1, math.ceil(epochs * len(token_batches(demos, batch_tokens, random.Random(seed))))):
        batches += token_batches(demos, batch_tokens, rng)
    total = max(1, math.ceil(epochs * len(token_batches(demos, batch_tokens, random.Random(seed)))))
    batches = batches[:total]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    warm = max(1, int(warmup_frac * total))
    started = time.perf_counter()

    def schedule(s: int) -> float:
        """Linear warm-up, then cosine decay over the planned steps. The schedule follows steps,
        never wall time: on a shared machine a time-based schedule decays to ~0 within a few steps."""
        return min((s + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    run_loss = run_tok = 0.0
    seen_tok = 0
    for step, batch in enumerate(batches, 1):
        with accelerator.autocast():
            loss, ntok = sft_loss(model, batch, pad_id, accelerator.device)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        run_loss += float(loss.detach()) * ntok
        run_tok += ntok
        seen_tok += sum(len(d.context_ids) + len(d.output_ids) for d in batch)
        elapsed = time.perf_counter() - started
        out_of_time = time_limit_s is not None and elapsed > time_limit_s
        if log is not None and (step % log_every == 0 or step == total or out_of_time):
            log(step, {"sft_loss": run_loss / max(1.0, run_tok), "lr": scheduler.get_last_lr()[0],
                       "tokens_per_s": seen_tok / max(1e-9, elapsed), "elapsed_s": elapsed})
            run_loss = run_tok = 0.0
        if out_of_time:
            break
    model.eval()
    return accelerator.unwrap_model(model)
