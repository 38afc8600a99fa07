"""MemPO on TRL's ``GRPOTrainer``: the reference equations, TRL's rollouts and sharded training.

:class:`MemPOGRPOTrainer` replaces one method of ``trl.GRPOTrainer``,
``_generate_and_score_completions``. Everything else (optimizer, scheduler, gradient
accumulation, accelerate/DeepSpeed/FSDP, PEFT, the vLLM weight sync, the clipped loss with
k3 KL, logging, checkpoints) is TRL's own.

What the override does for one generation batch:

1. Each dataset row names a task (env index, task index); TRL's sampler repeats it
   ``num_generations`` (= the MemPO group size N) times, possibly across processes.
2. Every row plays one episode under ``SelfMemory``: with vLLM (``use_vllm=True``) through
   TRL's ``VLLMGeneration``, otherwise with :func:`mempo.run_episodes` (batched,
   KV-cached transformers sampling; the reference trainer's own rollout code).
3. R^T, A^T (Eq. 3), R^M (Eq. 4) and A^M (Eq. 5) come from :mod:`mempo` over the *global*
   batch (scalars are gathered across processes, so a group split over two GPUs is
   normalised as one), and :func:`mempo.build_sequences` turns every agent turn into one
   training row with the per-token advantage A^T + w·A^M on ``<mem>`` tokens and A^T
   elsewhere (Eq. 9).
4. Eq. 10 weights each token by 1/(G·|o_i|). Folding that weight into the advantages
   would reach only the clipped surrogate, not the KL term, so it rides on the loss mask
   instead: TRL multiplies every per-token loss term (surrogate *and* β·KL) by
   ``completion_mask * tool_mask``, and under ``loss_type="dapo"`` (TRL's default) it
   divides the sum by ``num_items_in_batch / num_processes``. With
   ``tool_mask = N·w_i`` and ``num_items_in_batch = N`` (N = generated tokens in the
   global batch) the objective TRL differentiates is exactly the reference's
   :func:`mempo.mempo_loss` summed over the batch. The mask has mean 1 over the batch; it
   is 1 everywhere when all trajectories have the same length. TRL's importance-weighted
   KL (``use_bias_correction_kl``, on by default in TRL 1.16) is switched off: Eq. 10's KL
   term is the plain k3 estimator, and the weighted one has another gradient even where
   the ratio is exactly 1.

Launch: ``python -m mempo_agents.trainer.trl_mempo --config configs/trl_mempo.yaml``
(one device) or ``accelerate launch --config_file configs/accelerate_multi_gpu.yaml -m
mempo_agents.trainer.trl_mempo --config ...`` (see the README, "Which trainer").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from mempo_gym.core.context import SelfMemory
from mempo_gym.core.env import MemoryEnv
from mempo_gym.core.protocol import STOP_STRINGS, StopDetector, parse_turn

from mempo_agents.trainer.config import TrainerConfig
from mempo_agents.trainer.mempo import (
    TrainSequence,
    Trajectory,
    Turn,
    build_sequences,
    clone_env,
    memory_advantages,
    memory_rewards_and_probabilities,
    memory_token_mask,
    run_episodes,
    trajectory_advantages,
    trajectory_reward,
)

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
try:
    from accelerate.utils import gather_object
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer
    from trl.models import unwrap_model_for_generation
    from trl.models.utils import disable_gradient_checkpointing
    from trl.trainer.utils import pad, use_adapter
except ImportError as err:  # pragma: no cover - depends on the install
    raise ImportError(
        f"the TRL trainer needs trl>=1.16 and datasets ({err}); install them with `pip install 'mempo-gym[trl]'`"
    ) from err

LOSS_TYPE = "dapo"  # the only TRL loss type whose normalisation lets the mask carry Eq. 10's weights
# GRPOConfig fields set from the shared TrainerConfig (one place for each setting).
MAPPED_FIELDS = {
    "num_generations": "group_size", "beta": "kl_beta", "epsilon": "clip_eps", "temperature": "temperature",
    "num_iterations": "ppo_epochs", "learning_rate": "lr", "weight_decay": "weight_decay",
    "warmup_steps": "warmup_steps", "max_grad_norm": "max_grad_norm", "max_steps": "steps", "seed": "seed",
    "output_dir": "output_dir", "bf16": "mixed_precision", "fp16": "mixed_precision",
    "generation_batch_size": "tasks_per_step x group_size", "per_device_train_batch_size": "tasks_per_step x group_size",
    "steps_per_generation": "gradient_accumulation_steps", "loss_type": f"(fixed: {LOSS_TYPE!r})",
    "max_completion_length": "env max_turn_tokens",
    "use_bias_correction_kl": "(fixed: False, Eq. 10's plain k3 KL)",
}


# =============================================================================================
# Settings
# =============================================================================================
def load_config(path: str | Path, overrides: Sequence[str] = ()) -> tuple[TrainerConfig, dict[str, Any]]:
    """Read a YAML file with sections ``mempo:`` (:class:`TrainerConfig` keys, LoRA included:
    ``lora_rank``, ``lora_alpha``) and ``trl:`` (extra ``GRPOConfig`` keys).

    ``overrides`` are ``section.key=value`` strings (``value`` parsed as YAML), applied last.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TRL trainer config {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or set(data) - {"mempo", "trl"}:
        raise ValueError(f"{path.name}: top level must hold only the sections 'mempo' and 'trl'")
    sections = {k: dict(data.get(k) or {}) for k in ("mempo", "trl")}
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in sections:
            raise ValueError(f"override {item!r} must look like mempo.KEY=VALUE or trl.KEY=VALUE")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, bool) and value.strip().lower() not in ("true", "false"):
            parsed = value.strip()  # YAML 1.1 reads no/yes/on/off as booleans; mixed_precision=no means "no"
        sections[section][name] = parsed
    return TrainerConfig.from_dict(sections["mempo"]), sections["trl"]


def grpo_args(
    cfg: TrainerConfig,
    trl: Mapping[str, Any] | None = None,
    num_processes: int | None = None,
    max_turn_tokens: int | None = None,
) -> GRPOConfig:
    """The ``GRPOConfig`` of a MemPO run: shared settings from ``cfg``, the rest from ``trl``.

    One generation batch holds ``tasks_per_step × group_size`` trajectories over all
    processes; ``gradient_accumulation_steps`` (from ``trl``, default 1) splits each
    process's rows into that many micro-batches, and the optimizer steps once per batch and
    per ``ppo_epochs`` pass, as in the reference trainer.
    """
    if cfg.stage not in ("grpo", "mempo"):
        raise ValueError(f"the TRL trainer runs stage 'grpo' or 'mempo', got {cfg.stage!r} "
                         "(run SFT with `python -m mempo_agents.trainer`)")
    if cfg.objectives_schedule or cfg.objectives_weights:
        raise ValueError("objectives_schedule / objectives_weights (the curriculum) are not supported by the TRL trainer; "
                         "choose the tasks with env_kwargs/env_sources, or use `python -m mempo_agents.trainer`")
    trl = dict(trl or {})
    clash = sorted(set(trl) & set(MAPPED_FIELDS))
    if clash:
        raise ValueError(f"trl section sets {clash}; set them in the mempo section instead "
                         f"({', '.join(f'{k} <- {MAPPED_FIELDS[k]}' for k in clash)})")
    if num_processes is None:
        from accelerate import PartialState

        num_processes = PartialState().num_processes
    accum = int(trl.pop("gradient_accumulation_steps", 1))
    trajectories = cfg.tasks_per_step * cfg.group_size
    if trajectories % (num_processes * accum):
        raise ValueError(f"tasks_per_step x group_size = {trajectories} trajectories must be divisible by "
                         f"processes x gradient_accumulation_steps = {num_processes} x {accum}")
    defaults: dict[str, Any] = {
        "lr_scheduler_type": "constant_with_warmup",  # the reference: linear warm-up, then constant
        "logging_steps": 1, "report_to": [], "save_strategy": "steps" if cfg.save_every else "no",
        "use_cpu": not torch.cuda.is_available(), "disable_dropout": True,
    }
    if cfg.save_every:
        defaults["save_steps"] = cfg.save_every
    if trl.get("use_vllm") and "generation_kwargs" not in trl:
        # vLLM stops at the env's stop strings itself (truncate_turn still cuts at the exact token)
        defaults["generation_kwargs"] = {"stop": list(STOP_STRINGS), "include_stop_str_in_output": True}
    return GRPOConfig(**{
        **defaults, **trl,
        "num_generations": cfg.group_size, "beta": cfg.kl_beta, "epsilon": cfg.clip_eps,
        "temperature": cfg.temperature, "num_iterations": cfg.ppo_epochs, "learning_rate": cfg.lr,
        "weight_decay": cfg.weight_decay, "warmup_steps": cfg.warmup_steps, "max_grad_norm": cfg.max_grad_norm,
        "max_steps": cfg.steps, "seed": cfg.seed, "output_dir": cfg.output_dir,
        "bf16": cfg.mixed_precision == "bf16", "fp16": cfg.mixed_precision == "fp16",
        "per_device_train_batch_size": trajectories // (num_processes * accum),
        "gradient_accumulation_steps": accum, "steps_per_generation": accum, "loss_type": LOSS_TYPE,
        # TRL >= 1.16 multiplies the KL by the (differentiable) importance ratio by default, which changes
        # the KL gradient even on-policy (ratio 1); Eq. 10's KL is the plain k3 estimator.
        "use_bias_correction_kl": False,
        **({"max_completion_length": int(min(max_turn_tokens, cfg.max_new_tokens or max_turn_tokens))}
           if max_turn_tokens else {}),
    })


def task_dataset(envs: Sequence[Any]) -> Dataset:
    """One row per task of every env: ``source`` (env index), ``task_index``, ``objectives``
    and ``prompt`` (the questions; TRL logs it)."""
    rows = []
    for s, env in enumerate(envs):
        base = env.unwrapped if hasattr(env, "unwrapped") else env
        for i, task in enumerate(base.tasks):
            rows.append({"prompt": " | ".join(q.text for q in task.questions), "source": s, "task_index": i,
                         "objectives": int(task.num_objectives)})
    if not rows:
        raise ValueError("the training envs hold no tasks")
    return Dataset.from_list(rows)


class TrajectoryReward:
    """R^T of each episode (:func:`mempo.trajectory_reward`), the trainer's one reward function.

    Called as ``f(prompts=..., completions=..., metrics=[info["metrics"], ...])``; pass
    another callable with that signature as ``reward_func`` to change R^T.
    """

    __name__ = "trajectory_reward"

    def __init__(self, metric: str = "f1", format_penalty: float = 0.0) -> None:
        self.metric, self.format_penalty = metric, format_penalty

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], metrics: Sequence[Mapping[str, Any]],
                 **_: Any) -> list[float]:
        return [trajectory_reward(dict(m), self.metric, self.format_penalty) for m in metrics]


# =============================================================================================
# Rollouts with a pluggable sampler (the vLLM path)
# =============================================================================================
Sampler = Callable[[list[list[int]], list[int]], tuple[list[list[int]], list[list[float]]]]


def truncate_turn(ids: Sequence[int], logprobs: Sequence[float], stop: StopDetector, budget: int) -> tuple[list[int], list[float]]:
    """Cut an engine's completion where :func:`mempo.sample_batch` would have stopped: at the
    first token that ends a turn (``stop``) or after ``budget`` tokens. Sampling is
    autoregressive, so the kept prefix has the distribution of a turn sampled with the stop."""
    out: list[int] = []
    for token in list(ids)[: max(0, budget)]:
        out.append(int(token))
        if stop(out):
            break
    return out, [float(x) for x in list(logprobs)[: len(out)]]


def play_episodes(
    sample: Sampler,
    tokenizer: Any,
    slots: Sequence[tuple[MemoryEnv, int]],
    groups: Sequence[int] | None = None,
    keep_going: Callable[[bool], bool] = bool,
    max_new_tokens: int = 0,
) -> list[Trajectory]:
    """:func:`mempo.run_episodes` with the model call replaced by ``sample(contexts, budgets)``.

    ``keep_going(local_live)`` decides whether another round runs; engines whose generate
    call is collective (vLLM server mode) pass one that is true while any process has a live
    episode, so every process calls ``sample`` the same number of times (possibly with no
    contexts). The test suite checks that with a transformers sampler this reproduces
    :func:`mempo.run_episodes` token for token.
    """
    trajs: list[Trajectory] = []
    for k, (env, task_index) in enumerate(slots):
        env.reset(options={"task_index": task_index})
        task = env.task
        assert task is not None
        trajs.append(Trajectory(group=groups[k] if groups else k, task_id=task.id, golds=task.golds,
                                prompt=env.context, turns=[], records=[], metrics={}))
    live = list(range(len(slots)))
    while keep_going(bool(live)):
        contexts = [list(slots[k][0].context_ids) for k in live]
        budgets = [
            max(0, min(slots[k][0].max_turn_tokens, max_new_tokens or slots[k][0].max_turn_tokens,
                       slots[k][0].context_budget - len(c)))
            for k, c in zip(live, contexts)
        ]
        gen, logp = sample(contexts, budgets)
        still = []
        for k, ctx, g, lp in zip(live, contexts, gen, logp):
            env = slots[k][0]
            _o, _r, terminated, truncated, info = env.step(g)  # token-exact, as the reference
            parsed = parse_turn(tokenizer.decode(g, skip_special_tokens=True))
            trajs[k].turns.append(Turn(ctx, g, lp, memory_token_mask(tokenizer, g), parsed.mem))
            if terminated or truncated:
                trajs[k].metrics = dict(info["metrics"])
                trajs[k].records = env.turns
                trajs[k].transcript = list(info["transcript"])
            else:
                still.append(k)
        live = still
    return trajs


# =============================================================================================
# Turn rows in TRL's batch format
# =============================================================================================
def global_weights(seqs: Sequence[TrainSequence], local_trajectories: int, global_trajectories: int) -> list[float]:
    """1/(G·|o_i|) with G the trajectories of the whole (all-process) batch.

    :func:`mempo.build_sequences` sets ``weight = 1/(G_local·|o_i|)``; rescale by G_local/G."""
    return [s.weight * local_trajectories / global_trajectories for s in seqs]


def pack_rows(
    seqs: Sequence[TrainSequence],
    weights: Sequence[float],
    pad_id: int,
    total_tokens: int,
    multiple: int = 1,
) -> dict[str, torch.Tensor]:
    """TRL's batch dict for training rows (one per agent turn).

    ``prompt_ids`` are the env-inserted context (left-padded), ``completion_ids`` the
    generated turn (right-padded); ``advantages`` is per token (B, T); ``tool_mask`` is the
    per-token loss weight ``N·w_i`` (see the module docstring) and ``num_items_in_batch`` is
    N = ``total_tokens``. ``sampling_per_token_logps`` are the rollout's log-probs. Rows of
    zero weight pad the count to a multiple of ``multiple`` (TRL splits a batch into that
    many equal micro-batches).
    """
    prompts, completions, advs, masks, logps, keep = [], [], [], [], [], []
    for s, w in zip(seqs, weights):
        if not s.context_ids:
            raise ValueError("a training row needs at least one context token to condition on")
        prompts.append(torch.tensor(list(s.context_ids), dtype=torch.long))
        completions.append(torch.tensor(list(s.generated_ids), dtype=torch.long))
        advs.append(torch.tensor(s.advantages, dtype=torch.float32))
        masks.append(torch.full((len(s.advantages),), float(w) * float(total_tokens)))
        logps.append(torch.tensor(s.old_logprobs, dtype=torch.float32))
        keep.append(torch.ones(len(s.advantages), dtype=torch.long))
    while not prompts or len(prompts) % max(1, multiple):
        prompts.append(torch.tensor([pad_id], dtype=torch.long))
        completions.append(torch.tensor([pad_id], dtype=torch.long))
        advs.append(torch.zeros(1))
        masks.append(torch.zeros(1))
        logps.append(torch.zeros(1))
        keep.append(torch.zeros(1, dtype=torch.long))
    return {
        "prompt_ids": pad(prompts, padding_value=pad_id, padding_side="left"),
        "prompt_mask": pad([torch.ones_like(p) for p in prompts], padding_value=0, padding_side="left"),
        "completion_ids": pad(completions, padding_value=pad_id, padding_side="right"),
        "completion_mask": pad(keep, padding_value=0, padding_side="right"),
        "advantages": pad(advs, padding_value=0.0, padding_side="right"),
        "tool_mask": pad(masks, padding_value=0.0, padding_side="right"),
        "sampling_per_token_logps": pad(logps, padding_value=0.0, padding_side="right"),
        "num_items_in_batch": torch.tensor(float(total_tokens)),
    }


# =============================================================================================
# The trainer
# =============================================================================================
class MemPOGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose generation step plays MemPO-Gym episodes (see the module docstring).

    Args:
        model: a model id/folder or a ``PreTrainedModel`` (TRL loads the KL reference from
            the same folder, or disables the adapter under PEFT).
        envs: ``MemoryEnv`` s (or wrappers) in text mode, built with ``processing_class``
            as tokenizer; their tasks form the training set unless ``train_dataset`` is given.
        mempo_config: the shared :class:`TrainerConfig` (stage, rewards, memory weight ...).
        args: from :func:`grpo_args` (``loss_type="dapo"``, ``steps_per_generation`` equal to
            ``gradient_accumulation_steps``).
        reward_func: R^T (default :class:`TrajectoryReward` from ``mempo_config``).
    """

    _tag_names = ["trl", "grpo", "mempo"]

    def __init__(
        self,
        model: Any,
        envs: Sequence[Any],
        mempo_config: TrainerConfig,
        args: GRPOConfig,
        processing_class: Any = None,
        reward_func: Callable[..., list[float]] | None = None,
        train_dataset: Dataset | None = None,
        peft_config: Any = None,
        callbacks: Any = None,
    ) -> None:
        if args.loss_type != LOSS_TYPE:
            raise ValueError(f"MemPOGRPOTrainer needs loss_type={LOSS_TYPE!r} (Eq. 10 weights ride on the loss mask), "
                             f"got {args.loss_type!r}")
        if args.steps_per_generation != args.gradient_accumulation_steps:
            raise ValueError("MemPOGRPOTrainer needs steps_per_generation == gradient_accumulation_steps (one optimizer "
                             "step per generation batch and epoch); build the config with grpo_args()")
        if args.use_vllm and args.vllm_importance_sampling_correction and args.vllm_importance_sampling_mode not in (
                "token_truncate", "token_mask"):
            raise ValueError("MemPOGRPOTrainer supports vllm_importance_sampling_mode 'token_truncate' or 'token_mask'")
        if mempo_config.stage not in ("grpo", "mempo"):
            raise ValueError(f"stage must be 'grpo' or 'mempo', got {mempo_config.stage!r}")
        self.envs = [e.unwrapped if hasattr(e, "unwrapped") else e for e in envs]
        for e in self.envs:
            if not isinstance(e, MemoryEnv):
                raise TypeError(f"envs must be MemoryEnvs (or wrappers of one), got {type(e).__name__}")
        self.mempo_config = mempo_config
        reward = reward_func or TrajectoryReward(mempo_config.reward_metric, mempo_config.format_penalty)
        super().__init__(
            model=model, reward_funcs=[reward], args=args, train_dataset=train_dataset or task_dataset(envs),
            processing_class=processing_class, peft_config=peft_config, callbacks=callbacks,
        )
        tok = self.processing_class
        self.tokenizer_ = getattr(tok, "tokenizer", tok)
        self.stop = StopDetector(self.tokenizer_)
        pid = self.tokenizer_.pad_token_id
        self.pad_id = int(pid if pid is not None else (self.tokenizer_.eos_token_id or 0))
        self.rollout_generator = torch.Generator().manual_seed(args.seed + 1000 * self.accelerator.process_index)

    # ----------------------------------------------------------------------------- rollouts
    def slots_for(self, inputs: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[MemoryEnv, int]], list[int]]:
        """One fresh self-memory env per dataset row, and the row's group id in the global batch
        (TRL lays out a generation batch as consecutive runs of ``num_generations`` copies,
        each process holding a contiguous slice)."""
        offset = self.accelerator.process_index * len(inputs)
        slots = [(clone_env(self.envs[int(x["source"])], SelfMemory()), int(x["task_index"])) for x in inputs]
        groups = [(offset + k) // self.num_generations for k in range(len(inputs))]
        return slots, groups

    def _vllm_sample(self, contexts: list[list[int]], budgets: list[int]) -> tuple[list[list[int]], list[list[float]]]:
        if self.state.global_step != self._last_loaded_step:
            self.vllm_generation.sync_weights()
            self._last_loaded_step = self.state.global_step
        _, ids, logprobs, _ = self.vllm_generation.generate(prompts=contexts, images=None, num_generations=1)
        out = [truncate_turn(i, [lp[0] for lp in lps], self.stop, b) for i, lps, b in zip(ids, logprobs, budgets)]
        return [o[0] for o in out], [o[1] for o in out]

    def _any_live(self, live: bool) -> bool:
        flag = torch.tensor([1.0 if live else 0.0], device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)

    def play(self, slots: Sequence[tuple[MemoryEnv, int]], groups: Sequence[int]) -> tuple[list[Trajectory], list[dict[int, float]]]:
        """Episodes and the memory rewards R^M (MemPO, or ``log_memory_reward``), with the current policy."""
        cfg = self.mempo_config
        with (
            unwrap_model_for_generation(
                self.model_wrapped, self.accelerator, gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as policy,
            torch.no_grad(),
            self._dist.summon_full_params(self.model_wrapped, recurse=False),
        ):
            was_training = policy.training
            policy.eval()
            if self.use_vllm:
                lockstep = self.vllm_mode == "server" or self.vllm_tensor_parallel_size > 1
                trajs = play_episodes(self._vllm_sample, self.tokenizer_, slots, groups,
                                      keep_going=self._any_live if lockstep else bool,
                                      max_new_tokens=cfg.max_new_tokens)
            else:
                trajs = run_episodes(policy, self.tokenizer_, slots, cfg.temperature, groups, self.rollout_generator,
                                     cfg.max_new_tokens)
            r_mem: list[dict[int, float]] = [{} for _ in trajs]
            if cfg.use_memory_reward or cfg.log_memory_reward:
                r_mem, p_mem = memory_rewards_and_probabilities(policy, trajs, self.tokenizer_, cfg.minibatch_tokens)
                for tr in trajs:  # mean P(answer | q, mem) of this process's episodes, for the curves
                    tr.metrics["p_answer_given_mem"] = float(sum(p_mem) / len(p_mem)) if p_mem else 0.0
            if was_training:
                policy.train()
        return trajs, r_mem

    # ----------------------------------------------------------------------------- scoring
    def score(self, trajs: Sequence[Trajectory], r_mem: Sequence[Mapping[int, float]]) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """R^T, A^T, A^M over the global batch → this process's turn rows (Eq. 9) in TRL's format.

        Returns the batch and step statistics (means over the global batch)."""
        cfg = self.mempo_config
        rewards = self.reward_funcs[0](prompts=[t.prompt for t in trajs], completions=[
            "".join(self.tokenizer_.decode(turn.generated_ids) for turn in t.turns) for t in trajs],
            metrics=[t.metrics for t in trajs])
        for t, r in zip(trajs, rewards):
            t.reward = float(r)
        local = [(t.group, t.reward, dict(m), sum(len(turn.generated_ids) for turn in t.turns), t.metrics)
                 for t, m in zip(trajs, r_mem)]
        everything = gather_object(local) if self.accelerator.num_processes > 1 else local
        counts = gather_object([len(local)]) if self.accelerator.num_processes > 1 else [len(local)]
        start = sum(counts[: self.accelerator.process_index])
        groups_all = [x[0] for x in everything]
        a_traj_all = trajectory_advantages([x[1] for x in everything], groups_all)
        a_traj = a_traj_all[start:start + len(local)]
        a_mem = None
        if cfg.use_memory_reward:
            a_mem = memory_advantages([x[2] for x in everything], groups_all, cfg.memory_norm,
                                      [x[1] for x in everything], cfg.memory_flat_groups,
                                      cfg.memory_scale)[start:start + len(local)]
        seqs = build_sequences(trajs, a_traj, a_mem, cfg.memory_weight if cfg.use_memory_reward else 0.0)
        weights = global_weights(seqs, len(local), len(everything))
        total = sum(x[3] for x in everything)
        batch = pack_rows(seqs, weights, self.pad_id, total, self.args.steps_per_generation)
        device = self.accelerator.device
        batch = {k: v.to(device) for k, v in batch.items()}
        mean = lambda vals: float(sum(vals) / len(vals)) if vals else 0.0  # noqa: E731
        mems = [v for x in everything for v in x[2].values()]
        stats = {
            "reward": mean([x[1] for x in everything]),
            "frac_reward_zero_std": mean([float(all(r == grp[0] for r in grp)) for grp in _by_group(everything)]),
            **{f"episode/{k}": mean([float(x[4].get(k, 0.0)) for x in everything])
               for k in ("f1", "em", "tokens_total", "tokens_peak", "tokens_generated", "turns", "malformed_turns",
                         "p_answer_given_mem")},
            "memory_reward": mean(mems),
            "trajectories": float(len(everything)),
            "turn_rows": float(sum(gather_object([len(seqs)]) if self.accelerator.num_processes > 1 else [len(seqs)])),
        }
        return batch, stats

    # ----------------------------------------------------------------------------- TRL hook
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        mode = "train" if self.model.training else "eval"
        slots, groups = self.slots_for(inputs)
        trajs, r_mem = self.play(slots, groups)
        batch, stats = self.score(trajs, r_mem)
        self.add_policy_terms(batch)
        for key, value in stats.items():
            self._metrics[mode][key].append(value)
        return batch

    def add_policy_terms(self, batch: dict[str, torch.Tensor]) -> None:
        """Old log-probs (when the update is off-policy or the rollouts came from vLLM), the vLLM
        importance ratio, and the reference log-probs for the KL term, as TRL computes them."""
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        attn = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        keep = batch["completion_ids"].size(1)
        size = self.args.per_device_train_batch_size
        generate_every = self.args.steps_per_generation * self.num_iterations
        with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            if self.args.gradient_accumulation_steps % generate_every != 0 or (
                    self.use_vllm and self.vllm_importance_sampling_correction):
                batch["old_per_token_logps"] = self._get_per_token_logps_and_entropies(
                    self.model, ids, attn, keep, batch_size=size)[0]
            if self.use_vllm and self.vllm_importance_sampling_correction:
                diff = (batch["old_per_token_logps"] - batch["sampling_per_token_logps"]) * batch["completion_mask"]
                ratio = torch.exp(torch.nan_to_num(diff, nan=0.0))
                lo, hi = self.vllm_importance_sampling_clip_min, self.vllm_importance_sampling_clip_max
                if self.vllm_importance_sampling_mode == "token_truncate":
                    ratio = torch.clamp(ratio, min=lo, max=hi)
                else:
                    bad = (ratio < (lo if lo is not None else -float("inf"))) | (ratio > (hi if hi is not None else float("inf")))
                    ratio = ratio.masked_fill(bad, 0.0)
                batch["importance_sampling_ratio"] = ratio
            if self.beta != 0.0:
                if self.ref_model is not None:
                    batch["ref_per_token_logps"] = self._get_per_token_logps_and_entropies(
                        self.ref_model, ids, attn, keep, batch_size=size)[0]
                else:  # PEFT: the base model (or the "ref" adapter) is the reference
                    unwrapped = self.accelerator.unwrap_model(self.model)
                    with use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None):
                        batch["ref_per_token_logps"] = self._get_per_token_logps_and_entropies(
                            self.model, ids, attn, keep, batch_size=size)[0]


def _by_group(rows: Sequence[tuple[Any, ...]]) -> list[list[float]]:
    out: dict[int, list[float]] = {}
    for row in rows:
        out.setdefault(int(row[0]), []).append(float(row[1]))
    return list(out.values())


# =============================================================================================
# Command line
# =============================================================================================
def load_model(cfg: TrainerConfig) -> tuple[Any, Any]:
    """The reference trainer's loader (a saved model or LoRA adapter folder, the embedded
    ``smollm2-135m-instruct``, ``lora_rank`` for a fresh adapter, or ``model_config`` for a
    fresh Llama). TRL builds the KL reference from the policy's folder, or as a frozen copy
    of the adapter under LoRA, so a fresh Llama is saved first under ``output_dir/init``."""
    from mempo_agents.trainer.__main__ import load_policy

    model, tok = load_policy(cfg)
    if not cfg.init_model and not cfg.lora_rank:
        folder = Path(cfg.output_dir) / "init"
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(folder)
    return model, tok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mempo_agents.trainer.trl_mempo",
                                     description="MemPO / GRPO on TRL's GRPOTrainer (vLLM, DeepSpeed, FSDP via accelerate)")
    parser.add_argument("--config", required=True, help="YAML with sections mempo: and trl:")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one setting (repeatable), e.g. --set mempo.steps=2 --set trl.use_vllm=true")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in output_dir")
    args = parser.parse_args(argv)
    cfg, trl = load_config(args.config, args.set)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    from mempo_agents.trainer.__main__ import make_envs

    model, tok = load_model(cfg)
    envs = make_envs(cfg, cfg.env_sources, tok)
    grpo = grpo_args(cfg, trl, max_turn_tokens=max(e.unwrapped.max_turn_tokens for e in envs))
    trainer = MemPOGRPOTrainer(model, envs, cfg, grpo, processing_class=tok)
    trainer.train(resume_from_checkpoint=True if args.resume else None)
    out = Path(cfg.output_dir)
    trainer.save_model(str(out / "final"))
    if trainer.accelerator.is_main_process:
        (out / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1), encoding="utf-8")
        tok.save_pretrained(str(out / "final"))
        cfg.save(out / "final" / "mempo_config.yaml")
        if cfg.eval_env_sources:
            from mempo_agents.trainer.mempo import evaluate, summarize, task_refs

            eval_envs = make_envs(cfg, cfg.eval_env_sources, tok)
            policy = trainer.accelerator.unwrap_model(trainer.model)
            summary = summarize(evaluate(policy, tok, eval_envs, task_refs(eval_envs)[: cfg.eval_tasks]))
            (out / "final" / "eval.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
            print(json.dumps({"eval": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
