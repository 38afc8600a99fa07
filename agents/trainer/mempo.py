"""MemPO (Li et al. 2026) and plain GRPO for any transformers causal LM, in one file.

Read top to bottom: (1) batched sampling, (2) rollouts in :class:`~mempo_gym.core.env.MemoryEnv`
with ``SelfMemory``, (3) the trajectory reward and advantage, (4) the memory reward and
advantage (Eq. 4-5), (5) the combined token advantage (Eq. 9), (6) the clipped objective
with KL (Eq. 10), (7) the training loop.

Each agent turn is one model call and one training sequence: ``context ids`` (prompt,
previous ``<mem>``, ``<information>``: inserted by the env, never trained on) followed by
the ``generated ids`` (the policy's turn, trained on). Log-probs of the generated tokens
are recorded while sampling (the "old" policy of the PPO ratio).

Notation: a group holds N trajectories o_1..o_N of one task; trajectory i has turns
t = 0..T_i-1; |o_i| is its number of generated tokens over all turns.
"""

from __future__ import annotations

import contextlib
import copy
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from mempo_gym.core.context import ContextManager, FullContext, SelfMemory, TurnRecord
from mempo_gym.core.env import MemoryEnv
from mempo_gym.core.protocol import StopDetector, parse_turn

from mempo_agents.kv_cache import cache_keyword, output_cache


# =============================================================================================
# 1. Batched sampling with a KV cache
# =============================================================================================
@torch.no_grad()
def sample_batch(
    model: torch.nn.Module,
    contexts: Sequence[Sequence[int]],
    max_new_tokens: Sequence[int],
    stop: StopDetector,
    pad_id: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[list[list[int]], list[list[float]]]:
    """Sample one turn for every context at once (left padding + KV cache).

    ``temperature == 0`` is greedy. Returns the generated ids and, per token, the log-prob
    ``log softmax(logits / T)`` of the sampled token (for greedy: ``T = 1``).
    """
    device = next(model.parameters()).device
    b = len(contexts)
    width = max(len(c) for c in contexts)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    for i, ctx in enumerate(contexts):
        ids[i, width - len(ctx):] = torch.tensor(list(ctx), dtype=torch.long)
        mask[i, width - len(ctx):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache_arg = cache_keyword(model)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    past, logits = output_cache(out), out.logits[:, -1, :]  # the vocabulary at the last position only
    last_pos = positions[:, -1]
    generated: list[list[int]] = [[] for _ in range(b)]
    logprobs: list[list[float]] = [[] for _ in range(b)]
    active = [m > 0 for m in max_new_tokens]
    for _ in range(max(max_new_tokens, default=0)):
        if not any(active):
            break
        scaled = logits.float() / (temperature if temperature > 0 else 1.0)
        logp = torch.log_softmax(scaled, dim=-1)
        if temperature > 0:
            token = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)
        else:
            token = logp.argmax(-1)
        token_logp = logp.gather(-1, token[:, None]).squeeze(-1)
        for i in range(b):
            if not active[i]:
                continue
            generated[i].append(int(token[i]))
            logprobs[i].append(float(token_logp[i]))
            if stop(generated[i]) or len(generated[i]) >= max_new_tokens[i]:
                active[i] = False
        if not any(active):
            break
        feed = torch.where(torch.tensor(active, device=device), token, torch.full_like(token, pad_id))
        mask = torch.cat([mask, torch.ones((b, 1), dtype=mask.dtype, device=device)], dim=1)
        last_pos = last_pos + 1
        out = model(
            input_ids=feed[:, None], attention_mask=mask, position_ids=last_pos[:, None],
            use_cache=True, **{cache_arg: past},
        )
        past, logits = output_cache(out), out.logits[:, -1, :]
    return generated, logprobs


# =============================================================================================
# 2. Rollouts: groups of trajectories in the environment
# =============================================================================================
@dataclass
class Turn:
    """One model call: env-inserted context ids (no loss) + policy-generated ids (loss)."""

    context_ids: list[int]
    generated_ids: list[int]
    old_logprobs: list[float]
    mem_mask: list[bool] = field(default_factory=list)  # per generated token: inside <mem>…</mem>
    mem: str | None = None


@dataclass
class Trajectory:
    """One episode of one group member."""

    group: int
    task_id: str
    golds: list[tuple[str, ...]]
    prompt: str
    turns: list[Turn]
    records: list[TurnRecord]
    metrics: dict[str, Any]
    reward: float = 0.0  # R^T
    transcript: list[dict[str, Any]] = field(default_factory=list)


def clone_env(env: Any, memory: ContextManager | None = None) -> MemoryEnv:
    """A fresh :class:`MemoryEnv` sharing ``env``'s tasks, search tool and tokenizer (text mode)."""
    base = env.unwrapped if hasattr(env, "unwrapped") else env
    if not isinstance(base, MemoryEnv):
        raise TypeError(f"expected a MemoryEnv (or a wrapper of one), got {type(base).__name__}")
    return base.clone(memory=memory, action_mode="text")


def memory_token_mask(tokenizer: Any, ids: Sequence[int]) -> list[bool]:
    """Which generated tokens belong to the turn's last ``<mem> … </mem>`` block (tags included).

    Token i covers the characters ``[len(decode(ids[:i])), len(decode(ids[:i+1])))``; a token
    is a memory token when that span overlaps the block (the parser keeps the last block).
    """
    ids = list(ids)
    text = tokenizer.decode(ids)
    start = text.rfind("<mem>")
    end = text.find("</mem>", start + 1) if start >= 0 else -1
    if start < 0 or end < 0:
        return [False] * len(ids)
    end += len("</mem>")
    mask, prev = [], 0
    for i in range(len(ids)):
        cur = len(tokenizer.decode(ids[: i + 1]))
        mask.append(prev < end and cur > start and cur > prev)
        prev = cur
    return mask


def run_episodes(
    model: torch.nn.Module,
    tokenizer: Any,
    slots: Sequence[tuple[MemoryEnv, int]],
    temperature: float,
    groups: Sequence[int] | None = None,
    generator: torch.Generator | None = None,
    max_new_tokens: int = 0,
) -> list[Trajectory]:
    """Play one episode in every ``(env, task_index)`` slot, generating all live turns together.

    The episodes run in the library's one rollout loop (:func:`mempo_gym.rollout.play_batch`)
    and are token-exact: the model reads the env's ``context_ids`` and returns the sampled ids
    with their log-probs (a :class:`~mempo_gym.rollout.Completion`), so what is trained on is
    what was metered (no decode/encode round trip).
    """
    from mempo_gym.rollout import Completion, play_batch

    stop = StopDetector(tokenizer)  # the env's own rule, so turns end at the same token
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    prompts: dict[int, str] = {}

    def policy(_observations: list[Any], infos: list[dict[str, Any]], live: list[int]) -> list[Completion]:
        contexts = [list(info["context_ids"]) for info in infos]
        budgets = [
            max(0, min(slots[k][0].max_turn_tokens, max_new_tokens or slots[k][0].max_turn_tokens,
                       slots[k][0].context_budget - len(c)))
            for k, c in zip(live, contexts)
        ]
        gen, logp = sample_batch(model, contexts, budgets, stop, pad, temperature, generator)
        return [Completion(g, lp) for g, lp in zip(gen, logp)]

    def on_start(k: int, _task: Any) -> None:
        prompts[k] = slots[k][0].context  # the fixed prompt: the first context of the episode

    episodes = play_batch([(env, {"task_index": index}) for env, index in slots], policy, on_start=on_start)
    trajs = []
    for ep in episodes:
        env = slots[ep.key][0]
        task = env.task
        assert task is not None
        turns = [
            Turn(list(t.prompt_ids or ()), list(t.completion_ids), list(t.logprobs or []),
                 memory_token_mask(tokenizer, t.completion_ids), parse_turn(t.output).mem)
            for t in ep.turns
        ]
        trajs.append(Trajectory(
            group=groups[ep.key] if groups else ep.key, task_id=task.id, golds=task.golds, prompt=prompts[ep.key],
            turns=turns, records=env.turns, metrics=dict(ep.info["metrics"]), transcript=list(ep.info["transcript"]),
        ))
    return trajs


# =============================================================================================
# 3. Trajectory reward and advantage
# =============================================================================================
def trajectory_reward(metrics: dict[str, Any], metric: str = "f1", format_penalty: float = 0.0) -> float:
    """R^T: answer correctness (``em`` or ``f1``) of a well-formed, answered episode.

    An episode with a malformed turn or without an answer gets ``-format_penalty`` (0 by
    default), so format validity is part of the reward.
    """
    valid = bool(metrics.get("answered")) and int(metrics.get("malformed_turns", 0)) == 0
    return float(metrics.get(metric, 0.0)) if valid else -float(format_penalty)


def group_normalize(values: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(x - mean) / std over one group (sample std, as in GRPO implementations).

    Guarded: a group of one, or a group whose values are all equal (std < eps), gets 0
    advantage instead of dividing by ~0.
    """
    values = values.float()
    if values.numel() < 2:
        return torch.zeros_like(values)
    std = values.std(unbiased=True)
    if std < eps:
        return torch.zeros_like(values)
    return (values - values.mean()) / std


def trajectory_advantages(rewards: Sequence[float], groups: Sequence[int]) -> torch.Tensor:
    """A^T_i = (R^T_i - mean_group R^T) / std_group R^T, applied to every generated token of o_i."""
    rewards_t = torch.tensor(list(rewards), dtype=torch.float32)
    groups_t = torch.tensor(list(groups))
    adv = torch.zeros_like(rewards_t)
    for g in groups_t.unique():
        sel = groups_t == g
        adv[sel] = group_normalize(rewards_t[sel])
    return adv


# =============================================================================================
# 4. Memory reward (Eq. 4-5) and memory advantage
# =============================================================================================
@torch.no_grad()
def answer_probability(
    model: torch.nn.Module,
    prefixes: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    max_tokens_per_batch: int = 8192,
) -> torch.Tensor:
    """P(answer | prefix) = exp( (1/|a|) Σ_j log p(a_j | prefix, a_<j) ): the geometric mean
    of the policy's probabilities of the gold answer's tokens a_1..a_|a| (Eq. 5), nothing
    else (no closing tag). Forward passes only, logits at the answer positions only."""
    from mempo_agents.trainer.policy import completion_logprobs

    out = torch.zeros(len(prefixes))
    for chunk in _token_bounded_chunks([len(p) + len(t) for p, t in zip(prefixes, targets)], max_tokens_per_batch):
        if len(chunk) == 1 and len(prefixes[chunk[0]]) + len(targets[chunk[0]]) > max_tokens_per_batch:
            i = chunk[0]  # one row longer than the budget: prefill it in pieces through the KV cache
            out[i] = _long_row_logprob(model, prefixes[i], targets[i], min(max_tokens_per_batch, 2048)).exp()
            continue
        logp, mask = completion_logprobs(model, [prefixes[i] for i in chunk], [targets[i] for i in chunk])
        mean_logp = logp.sum(-1) / mask.sum(-1).clamp(min=1)
        out[torch.tensor(chunk)] = mean_logp.float().exp().cpu()
    return out


def _long_row_logprob(model: torch.nn.Module, prefix: Sequence[int], target: Sequence[int], piece: int) -> torch.Tensor:
    """Mean log p(target | prefix) of one row, its prefix fed ``piece`` tokens at a time through
    the KV cache: attention memory grows with piece x length, not length^2 (one pass over a k=8
    full history of ~10k tokens needs several GB of attention scores on its own)."""
    device = next(model.parameters()).device
    cache_arg = cache_keyword(model)
    if not prefix or not target:
        raise ValueError("a row needs at least one prefix and one target token")
    head, tail = list(prefix[:-1]), [prefix[-1], *target]
    past = None
    for start in range(0, len(head), piece):
        ids = torch.tensor([head[start:start + piece]], dtype=torch.long, device=device)
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1, **{cache_arg: past})
        past = output_cache(out)
    ids = torch.tensor([tail], dtype=torch.long, device=device)
    out = model(input_ids=ids, use_cache=True, logits_to_keep=len(tail), **{cache_arg: past})
    logits = out.logits[0, -len(tail):-1].float()  # position j predicts target token j
    gold = torch.tensor(list(target), dtype=torch.long, device=device)
    return torch.log_softmax(logits, dim=-1).gather(-1, gold[:, None]).mean().cpu()


def _token_bounded_chunks(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Indices grouped by length so that (rows x longest row) stays within ``max_tokens``."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    chunks: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and lengths[i] * (len(cur) + 1) > max_tokens:
            chunks.append(cur)
            cur = []
        cur.append(i)
    if cur:
        chunks.append(cur)
    return chunks


def gold_answer_text(golds: Sequence[Sequence[str]]) -> str:
    """The gold answer the memory must support: first alias per objective, ``a1 ; a2 ; …``
    (the answer format the trained agent writes)."""
    return " ; ".join(g[0] for g in golds)


def memory_reward_inputs(
    traj: Trajectory, tokenizer: Any
) -> list[tuple[int, list[int], list[int], list[int]]]:
    """For each turn t that wrote a ``<mem>``: (t, ids of q+mem_t, ids of q+history_<t, answer ids).

    ``q + mem_t`` = prompt + ``<mem>mem_t</mem>`` + ``<answer>``;
    ``q + history_<t`` = prompt + every turn before t with its information (the full
    context the memory replaces) + ``<answer>``. The target is the gold answer's tokens
    alone, encoded on their own (``" " + gold``), so every row scores the same tokens.
    """
    enc = lambda s: list(tokenizer.encode(s, add_special_tokens=False))  # noqa: E731
    answer = enc(" " + gold_answer_text(traj.golds))
    rows = []
    full = FullContext()
    for t, turn in enumerate(traj.turns):
        if turn.mem is None:
            continue
        with_mem = enc(traj.prompt + f"<mem>{turn.mem}</mem>\n<answer>")
        history = enc(full.build(traj.prompt, traj.records[:t]) + "<answer>")
        rows.append((t, with_mem, history, answer))
    return rows


def memory_rewards(
    model: torch.nn.Module, trajs: Sequence[Trajectory], tokenizer: Any, max_tokens_per_batch: int = 8192
) -> list[dict[int, float]]:
    """R^M_t = P(answer | q, mem_t) - P(answer | q, history_<t)   (Eq. 4).

    The second term is the baseline: a memory is rewarded for how much more (or less) it
    makes the gold answer likely than the full history it summarises.
    """
    return memory_rewards_and_probabilities(model, trajs, tokenizer, max_tokens_per_batch)[0]


def memory_rewards_and_probabilities(
    model: torch.nn.Module, trajs: Sequence[Trajectory], tokenizer: Any, max_tokens_per_batch: int = 8192
) -> tuple[list[dict[int, float]], list[float]]:
    """:func:`memory_rewards` plus every P(answer | q, mem_t) it computed (for the curves)."""
    rows = [(i, *r) for i, tr in enumerate(trajs) for r in memory_reward_inputs(tr, tokenizer)]
    result: list[dict[int, float]] = [{} for _ in trajs]
    if not rows:
        return result, []
    prefixes = [r[2] for r in rows] + [r[3] for r in rows]
    targets = [r[4] for r in rows] * 2
    probs = answer_probability(model, prefixes, targets, max_tokens_per_batch)
    n = len(rows)
    for j, (i, t, *_rest) in enumerate(rows):
        result[i][t] = float(probs[j] - probs[n + j])
    return result, [float(p) for p in probs[:n]]


def memory_advantages(
    rewards: Sequence[dict[int, float]],
    groups: Sequence[int],
    norm: str = "turn",
    trajectory_rewards: Sequence[float] | None = None,
    flat_groups: str = "apply",
    scale: str = "std",
) -> list[dict[int, float]]:
    """A^M_{i,t}: R^M normalised within the group (Eq. 5).

    ``norm="turn"`` (default): over the group members that wrote a memory at the same turn
    index t, so early and late memories (which differ in how much they must hold) are not
    compared. ``norm="group"``: over all memories written in the group.

    ``flat_groups``: what a group whose trajectory rewards R^T are all equal (so A^T = 0:
    all failed, say) does with its memory advantage. ``"apply"`` keeps it (the paper's
    rule: the memory term then moves ``<mem>`` tokens on its own); ``"skip"`` sets it to 0,
    so a group with no trajectory signal does not update at all.

    ``scale="std"`` (Eq. 5) divides each bucket by its std; ``"none"`` only subtracts its mean,
    so A^M stays a difference of probabilities: in a bucket of a few memories whose P(answer)
    differ by thousandths, ``"std"`` still gives them advantages of about +-1.
    """
    if scale not in ("std", "none"):
        raise ValueError(f"scale must be 'std' or 'none', got {scale!r}")
    if flat_groups not in ("apply", "skip"):
        raise ValueError(f"flat_groups must be 'apply' or 'skip', got {flat_groups!r}")
    if flat_groups == "skip" and trajectory_rewards is None:
        raise ValueError("flat_groups='skip' needs trajectory_rewards")
    adv: list[dict[int, float]] = [{} for _ in rewards]
    for g in sorted(set(groups)):
        members = [i for i, gi in enumerate(groups) if gi == g]
        if flat_groups == "skip" and trajectory_rewards is not None:
            values = [float(trajectory_rewards[i]) for i in members]
            if max(values) - min(values) < 1e-6:
                for i in members:
                    adv[i] = {t: 0.0 for t in rewards[i]}
                continue
        if norm == "turn":
            keys = sorted({t for i in members for t in rewards[i]})
            buckets = [[(i, t) for i in members if t in rewards[i]] for t in keys]
        else:
            buckets = [[(i, t) for i in members for t in sorted(rewards[i])]]
        for bucket in buckets:
            if not bucket:
                continue
            values = torch.tensor([rewards[i][t] for i, t in bucket])
            if scale == "std":
                normed = group_normalize(values)
            else:  # centred only; a bucket of one has nothing to compare with
                normed = values - values.mean() if len(bucket) > 1 else torch.zeros_like(values)
            for (i, t), a in zip(bucket, normed.tolist()):
                adv[i][t] = a
    return adv


# =============================================================================================
# 5. Combined token advantage (Eq. 9)
# =============================================================================================
def token_advantages(
    turn: Turn, traj_adv: float, mem_adv: float | None, memory_weight: float
) -> torch.Tensor:
    """A_tok = A^T + w·A^M_t for tokens inside turn t's ``<mem>`` block, A^T for the others."""
    adv = torch.full((len(turn.generated_ids),), float(traj_adv))
    if mem_adv is not None and memory_weight != 0.0:
        adv[torch.tensor(turn.mem_mask, dtype=torch.bool)] += memory_weight * float(mem_adv)
    return adv


# =============================================================================================
# 6. Clipped surrogate with KL to the reference policy (Eq. 10)
# =============================================================================================
@dataclass
class TrainSequence:
    """One turn ready for the loss: the env-inserted context (no loss), the generated ids
    (loss) and their per-token terms."""

    context_ids: list[int]
    generated_ids: list[int]
    old_logprobs: list[float]  # per generated token, as sampled (diagnostics; see update_policy)
    advantages: list[float]  # per generated token
    weight: float  # 1 / (G · |o_i|): per-trajectory length normalisation

    @property
    def length(self) -> int:
        return len(self.context_ids) + len(self.generated_ids)


def build_sequences(
    trajs: Sequence[Trajectory],
    traj_adv: torch.Tensor,
    mem_adv: Sequence[dict[int, float]] | None,
    memory_weight: float,
) -> list[TrainSequence]:
    """Turn every turn of every trajectory into a :class:`TrainSequence` (Eq. 9 advantages)."""
    seqs = []
    G = len(trajs)
    for i, tr in enumerate(trajs):
        n_gen = sum(len(t.generated_ids) for t in tr.turns)
        if n_gen == 0:
            continue
        for t, turn in enumerate(tr.turns):
            if not turn.generated_ids:
                continue
            a_m = mem_adv[i].get(t) if mem_adv is not None else None
            adv = token_advantages(turn, float(traj_adv[i]), a_m, memory_weight)
            seqs.append(TrainSequence(
                context_ids=list(turn.context_ids), generated_ids=list(turn.generated_ids),
                old_logprobs=list(turn.old_logprobs), advantages=adv.tolist(), weight=1.0 / (G * n_gen),
            ))
    return seqs


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(π || π_ref) with Schulman's k3 estimator: r - log r - 1, r = π_ref/π.

    Unbiased under samples from π and always >= 0.
    """
    log_ratio = ref_logp - logp
    return torch.exp(log_ratio) - log_ratio - 1.0


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """Per-token min(ρ·A, clip(ρ, 1-ε, 1+ε)·A), ρ = π/π_old."""
    ratio = torch.exp(logp - old_logp)
    return torch.minimum(ratio * adv, torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv)


def mempo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor | None,
    adv: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    clip_eps: float,
    kl_beta: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 10 (to minimise):

        L = -(1/G) Σ_i (1/|o_i|) Σ_{tokens j of o_i} [ min(ρ_j A_j, clip(ρ_j) A_j) - β·KL_j ]

    All tensors are ``(B, L)`` over token positions; ``mask`` selects generated tokens
    (env-inserted tokens never receive loss) and ``weight`` (B,) holds 1/(G·|o_i|) of each
    sequence's trajectory, so the sum over all mini-batches is the full objective.
    Token positions are those of :func:`~mempo_agents.trainer.policy.completion_logprobs`.
    """
    mask_f = mask.float()
    surr = clipped_surrogate(logp, old_logp, adv, clip_eps)
    per_token = -surr
    kl = torch.zeros_like(logp)
    if ref_logp is not None and kl_beta > 0:
        kl = kl_k3(logp, ref_logp)
        per_token = per_token + kl_beta * kl
    w = weight[:, None] * mask_f
    loss = (per_token * w).sum()
    with torch.no_grad():
        ratio = torch.exp(logp - old_logp)
        clipped = ((ratio - 1.0).abs() > clip_eps).float()
        n = mask_f.sum().clamp(min=1)
        stats = {
            "kl": float((kl * mask_f).sum() / n),
            "clip_frac": float((clipped * mask_f).sum() / n),
            "tokens": float(mask_f.sum()),
        }
    return loss, stats


def right_aligned(rows: Sequence[Sequence[float]], width: int) -> torch.Tensor:
    """Per-token values placed in the last ``len(row)`` columns (as :func:`completion_logprobs` lays
    out completion tokens)."""
    out = torch.zeros((len(rows), width))
    for r, row in enumerate(rows):
        if row:
            out[r, width - len(row):] = torch.tensor(list(row), dtype=torch.float32)
    return out


def minibatches(seqs: Sequence[TrainSequence], max_tokens: int) -> list[list[TrainSequence]]:
    """Length-sorted minibatches of at most ``max_tokens`` padded tokens (one sequence minimum)."""
    return [[seqs[i] for i in chunk] for chunk in _token_bounded_chunks([s.length for s in seqs], max_tokens)]


# =============================================================================================
# 7. The training loop
# =============================================================================================
@dataclass
class TaskRef:
    """Where a task lives: source env index and task index in that env."""

    source: int
    index: int
    objectives: int


def task_refs(envs: Sequence[Any]) -> list[TaskRef]:
    return [
        TaskRef(s, i, t.num_objectives)
        for s, env in enumerate(envs) for i, t in enumerate((env.unwrapped if hasattr(env, "unwrapped") else env).tasks)
    ]


def allowed_objectives(schedule: Sequence[Sequence[Any]], step: int) -> set[int] | None:
    """The curriculum: the ``k`` list of the last schedule entry whose first step <= ``step``."""
    chosen = None
    for first, ks in sorted(schedule, key=lambda e: int(e[0])):
        if step >= int(first):
            chosen = {int(k) for k in ks}
    return chosen


def signal_probability(success: float, group_size: int) -> float:
    """P(a group of N episodes has unequal rewards) = 1 - p^N - (1-p)^N, each episode right
    with probability p. Only such a group has A^T != 0: an all-right or all-wrong group
    moves GRPO's policy by nothing (Eq. 3 centres and scales within the group).

    >>> round(signal_probability(0.92, 4), 3), round(signal_probability(0.5, 4), 3)
    (0.284, 0.875)
    """
    p = min(1.0, max(0.0, float(success)))
    return 1.0 - p ** group_size - (1.0 - p) ** group_size


def signal_weights(success_by_k: Mapping[int, float], group_size: int) -> dict[int, float]:
    """``objectives_weights`` from a measured success rate per ``k`` (e.g. the start policy's EM
    on held-out tasks): each ``k`` weighted by :func:`signal_probability`, so the draw favours the
    ``k`` whose groups carry a trajectory signal. EM at k > 1 is a fraction of the ``k``
    questions, so treating it as one success rate is an approximation; it ranks the ``k`` s."""
    return {int(k): signal_probability(p, group_size) for k, p in success_by_k.items()}


def draw_tasks(pool: Sequence[TaskRef], count: int, rng: random.Random,
               weights: Mapping[int, float] | None = None) -> list[TaskRef]:
    """``count`` distinct tasks of ``pool``: uniformly (``rng.sample``, no ``weights``), or one at a
    time a ``k`` in proportion to ``weights[k]`` among the ``k`` s left in the pool, then a task of
    that ``k`` uniformly. Raises when no task of the pool has a positive weight."""
    if not weights:
        return rng.sample(list(pool), min(count, len(pool)))
    left = {}
    for r in pool:
        if weights.get(r.objectives, 0.0) > 0:
            left.setdefault(r.objectives, []).append(r)
    if not left:
        raise ValueError(f"no task with k in {sorted({r.objectives for r in pool})} has a positive weight in "
                         f"objectives_weights {dict(weights)}; give one of these k a weight > 0")
    chosen: list[TaskRef] = []
    while left and len(chosen) < count:
        ks = sorted(left)
        k = rng.choices(ks, weights=[weights[k] for k in ks])[0]
        chosen.append(left[k].pop(rng.randrange(len(left[k]))))
        if not left[k]:
            del left[k]
    return chosen


def collect_rollouts(
    policy: torch.nn.Module,
    tokenizer: Any,
    slots: Sequence[tuple[MemoryEnv, int]],
    groups: Sequence[int],
    cfg: Any,
    generator: torch.Generator | None = None,
) -> tuple[list[Trajectory], list[TrainSequence], list[dict[int, float]]]:
    """Rollouts → R^T, A^T → R^M (Eq. 4; only when MemPO uses it or ``cfg.log_memory_reward``)
    → A^M (Eq. 5, MemPO only) → per-token advantages (Eq. 9) as :class:`TrainSequence` s."""
    policy.eval()
    trajs = run_episodes(policy, tokenizer, slots, cfg.temperature, groups, generator, cfg.max_new_tokens)
    for tr in trajs:
        tr.reward = trajectory_reward(tr.metrics, cfg.reward_metric, cfg.format_penalty)
    rewards = [t.reward for t in trajs]
    a_traj = trajectory_advantages(rewards, groups)
    r_mem: list[dict[int, float]] = [{} for _ in trajs]
    if cfg.use_memory_reward or cfg.log_memory_reward:
        r_mem, p_mem = memory_rewards_and_probabilities(policy, trajs, tokenizer, cfg.minibatch_tokens)
        for tr in trajs:  # mean P(answer | q, mem) of the batch, for the training curves
            tr.metrics["p_answer_given_mem"] = float(np.mean(p_mem)) if p_mem else 0.0
    a_mem = (memory_advantages(r_mem, groups, cfg.memory_norm, rewards, cfg.memory_flat_groups, cfg.memory_scale)
             if cfg.use_memory_reward else None)
    seqs = build_sequences(trajs, a_traj, a_mem, cfg.memory_weight if cfg.use_memory_reward else 0.0)
    return trajs, seqs, r_mem


def _equalised(batches: list[list[TrainSequence]], accelerator: Any) -> list[list[TrainSequence]]:
    """Pad the minibatch list so every process runs (and all-reduces) the same number of times.

    Padding minibatches hold one zero-weight sequence: their forward/backward touches every
    parameter (as DDP requires) and adds exactly 0 to the gradient.
    """
    if accelerator.num_processes == 1:
        return batches
    count = torch.tensor([len(batches)], device=accelerator.device)
    target = int(accelerator.gather(count).max())
    filler = TrainSequence([0], [0], [0.0], [0.0], 0.0)
    return batches + [[filler] for _ in range(target - len(batches))]


def update_policy(
    policy: torch.nn.Module,
    ref_policy: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer,
    accelerator: Any,
    seqs: Sequence[TrainSequence],
    cfg: Any,
    pad_id: int,
    scheduler: Any = None,
) -> dict[str, float]:
    """``cfg.ppo_epochs`` optimizer steps of Eq. 10 on one batch (gradients accumulated over
    token-bounded minibatches, so each step uses the whole batch).

    One precision for every log-prob: old (π_old), reference and new log-probs all come from
    :func:`~mempo_agents.trainer.policy.completion_logprobs` under the same autocast. With
    ``ppo_epochs == 1`` the policy has not moved since sampling, so π_old = π exactly
    (``logp.detach()``: ratio 1, nothing clipped); with more epochs π_old is one no-grad pass
    before the first update. The sampler's own log-probs (KV-cached decoding) are kept only
    to report their gap (``sampler_logprob_gap``).
    """
    from mempo_agents.trainer.policy import completion_logprobs

    batches = _equalised(minibatches(seqs, cfg.minibatch_tokens), accelerator)

    def logprobs(model: torch.nn.Module, mb: Sequence[TrainSequence]) -> tuple[torch.Tensor, torch.Tensor]:
        with accelerator.autocast():
            return completion_logprobs(model, [s.context_ids for s in mb], [s.generated_ids for s in mb],
                                       cfg.temperature, pad_id)

    fixed: list[dict[str, torch.Tensor]] = []
    with torch.no_grad():
        for mb in batches:
            terms: dict[str, torch.Tensor] = {}
            if ref_policy is not None and cfg.kl_beta > 0:
                terms["ref"] = logprobs(ref_policy, mb)[0]
            if cfg.ppo_epochs > 1:
                terms["old"] = logprobs(policy, mb)[0]
            fixed.append(terms)
    policy.train()
    stats = {"loss": 0.0, "kl": 0.0, "clip_frac": 0.0, "grad_norm": 0.0, "sampler_logprob_gap": 0.0}
    n_tok = max(1.0, float(sum(len(s.advantages) for s in seqs)))
    device = accelerator.device
    for epoch in range(cfg.ppo_epochs):
        optimizer.zero_grad(set_to_none=True)
        for j, (mb, terms) in enumerate(zip(batches, fixed)):
            last = j == len(batches) - 1
            sync = accelerator.no_sync(policy) if (accelerator.num_processes > 1 and not last) else contextlib.nullcontext()
            with sync:
                logp, mask = logprobs(policy, mb)
                width = mask.shape[1]
                adv = right_aligned([s.advantages for s in mb], width).to(device)
                weight = torch.tensor([s.weight for s in mb], device=device)
                old = terms["old"] if "old" in terms else logp.detach()
                loss, st = mempo_loss(logp, old, terms.get("ref"), adv, mask, weight, cfg.clip_eps, cfg.kl_beta)
                accelerator.backward(loss)
            stats["loss"] += float(loss.detach()) / cfg.ppo_epochs
            stats["kl"] += st["kl"] * st["tokens"] / (cfg.ppo_epochs * n_tok)
            stats["clip_frac"] += st["clip_frac"] * st["tokens"] / (cfg.ppo_epochs * n_tok)
            if epoch == 0:
                sampled = right_aligned([s.old_logprobs for s in mb], width).to(device)
                stats["sampler_logprob_gap"] += float(((logp.detach() - sampled).abs() * mask).sum()) / n_tok
        if batches:
            norm = accelerator.clip_grad_norm_([p for p in policy.parameters() if p.requires_grad], cfg.max_grad_norm)
            stats["grad_norm"] += float(norm) / cfg.ppo_epochs
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
    stats["train_tokens"] = n_tok
    return stats


def rl_step(
    policy: torch.nn.Module,
    ref_policy: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer,
    accelerator: Any,
    tokenizer: Any,
    slots: Sequence[tuple[MemoryEnv, int]],
    groups: Sequence[int],
    cfg: Any,
    generator: torch.Generator | None = None,
    scheduler: Any = None,
) -> dict[str, float]:
    """One RL update: :func:`collect_rollouts` then :func:`update_policy`. Returns step stats."""
    trajs, seqs, r_mem = collect_rollouts(accelerator.unwrap_model(policy), tokenizer, slots, groups, cfg, generator)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    stats = update_policy(policy, ref_policy, optimizer, accelerator, seqs, cfg, pad, scheduler)
    mem_values = [v for d in r_mem for v in d.values()]
    by_group: dict[int, list[float]] = {}
    for t, g in zip(trajs, groups):
        by_group.setdefault(g, []).append(t.reward)
    mean = lambda key: float(np.mean([t.metrics.get(key, 0.0) for t in trajs])) if trajs else 0.0  # noqa: E731
    return {
        "reward": float(np.mean([t.reward for t in trajs])) if trajs else 0.0,
        "f1": mean("f1"),
        "em": mean("em"),
        "tokens_total": mean("tokens_total"),
        "tokens_peak": mean("tokens_peak"),
        "tokens_generated": mean("tokens_generated"),
        "turns": float(np.mean([len(t.turns) for t in trajs])) if trajs else 0.0,
        "memory_reward": float(np.mean(mem_values)) if mem_values else 0.0,
        "p_answer_given_mem": mean("p_answer_given_mem"),
        "groups": float(len(by_group)),
        "signal_groups": float(sum(max(r) > min(r) for r in by_group.values())),  # A^T != 0 somewhere
        "objectives": float(np.mean([len(t.golds) for t in trajs])) if trajs else 0.0,  # mean k drawn
        **stats,
    }


def evaluate(
    model: torch.nn.Module,
    tokenizer: Any,
    envs: Sequence[Any],
    refs: Sequence[TaskRef],
    memory_factory: Callable[[], ContextManager] = SelfMemory,
    batch_size: int = 32,
) -> list[dict[str, Any]]:
    """Greedy episodes on ``refs``; returns each episode's ``info["metrics"]`` plus ``objectives``."""
    model.eval()
    results: list[dict[str, Any]] = []
    for start in range(0, len(refs), batch_size):
        chunk = refs[start:start + batch_size]
        slots = [(clone_env(envs[r.source], memory_factory()), r.index) for r in chunk]
        for r, tr in zip(chunk, run_episodes(model, tokenizer, slots, temperature=0.0)):
            results.append({**tr.metrics, "objectives": r.objectives, "task_id": tr.task_id})
    return results


def summarize(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    keys = ("f1", "em", "tokens_total", "tokens_peak", "tokens_generated", "turns")
    return {k: float(np.mean([r.get(k, 0.0) for r in results])) if results else 0.0 for k in keys} | {"n": float(len(results))}


def sample_slots(
    envs: Sequence[Any], refs: Sequence[TaskRef], cfg: Any, rng: random.Random, step: int
) -> tuple[list[tuple[MemoryEnv, int]], list[int]]:
    """``tasks_per_step`` tasks (curriculum-filtered, drawn by :func:`draw_tasks` with
    ``cfg.objectives_weights``), each repeated ``group_size`` times."""
    allowed = allowed_objectives(cfg.objectives_schedule, step)
    pool = [r for r in refs if allowed is None or r.objectives in allowed]
    if not pool:
        raise ValueError(f"no training task has a number of objectives in {sorted(allowed or [])} at step {step}")
    chosen = draw_tasks(pool, cfg.tasks_per_step, rng, cfg.objectives_weights)
    slots, groups = [], []
    for g, r in enumerate(chosen):
        for _ in range(cfg.group_size):
            slots.append((clone_env(envs[r.source], SelfMemory()), r.index))
            groups.append(g)
    return slots, groups


def train_rl(
    cfg: Any,
    policy: torch.nn.Module,
    tokenizer: Any,
    envs: Sequence[Any],
    eval_envs: Sequence[Any] = (),
    log: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint: Callable[[int, torch.nn.Module, torch.optim.Optimizer], None] | None = None,
    start_step: int = 0,
    optimizer_state: dict[str, Any] | None = None,
    reference: torch.nn.Module | None = None,
) -> torch.nn.Module:
    """GRPO (``cfg.stage == "grpo"``) or MemPO (``"mempo"``) for ``cfg.steps`` updates. The KL
    reference is ``reference`` (the start policy: pass it when resuming), else a copy of ``policy``."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=cfg.mixed_precision)
    ref_policy = None
    if cfg.kl_beta > 0:  # the frozen start policy, prepared like the policy (device, precision)
        ref_policy = (reference if reference is not None else copy.deepcopy(policy)).eval()
        for p in ref_policy.parameters():
            p.requires_grad_(False)
        ref_policy = accelerator.prepare_model(ref_policy, evaluation_mode=True)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    warm = max(1, cfg.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warm))
    policy, optimizer = accelerator.prepare(policy, optimizer)
    seed = cfg.seed + 1000 * accelerator.process_index
    generator = torch.Generator().manual_seed(seed + start_step)
    refs = task_refs(envs)
    for step in range(start_step, cfg.steps):
        rng = random.Random(seed * 1_000_003 + step)  # per-step draws: a resumed run draws the same tasks
        slots, groups = sample_slots(envs, refs, cfg, rng, step)
        stats = rl_step(policy, ref_policy, optimizer, accelerator, tokenizer, slots, groups, cfg, generator, scheduler)
        stats["lr"] = scheduler.get_last_lr()[0]
        if cfg.eval_every and eval_envs and (step + 1) % cfg.eval_every == 0:
            eval_refs = task_refs(eval_envs)[: cfg.eval_tasks]
            summ = summarize(evaluate(accelerator.unwrap_model(policy), tokenizer, eval_envs, eval_refs))
            stats.update({f"eval_{k}": v for k, v in summ.items()})
        if log is not None and accelerator.is_main_process:
            log(step + 1, stats)
        if checkpoint is not None and accelerator.is_main_process and (
            (cfg.save_every and (step + 1) % cfg.save_every == 0) or step + 1 == cfg.steps
        ):
            checkpoint(step + 1, accelerator.unwrap_model(policy), optimizer)
    return accelerator.unwrap_model(policy)
