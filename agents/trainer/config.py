"""Trainer settings: one dataclass that round-trips through YAML or JSON.

>>> cfg = TrainerConfig(stage="mempo", group_size=4)
>>> TrainerConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

STAGES = ("sft", "grpo", "mempo")
REWARD_METRICS = ("em", "f1")
MEMORY_NORMS = ("turn", "group")
MEMORY_SCALES = ("std", "none")


def checked_objectives_weights(weights: Mapping[Any, Any]) -> dict[int, float]:
    """``objectives_weights`` in its one form, ``{int k: float weight}`` (JSON keys are strings):
    every weight >= 0 and, unless empty, one > 0. Raises ``ValueError`` otherwise."""
    try:
        checked = {int(k): float(w) for k, w in dict(weights).items()}
    except (TypeError, ValueError):
        raise ValueError(f"objectives_weights must map k to a weight, got {weights!r}") from None
    if any(w < 0 for w in checked.values()) or (checked and not any(checked.values())):
        raise ValueError(f"objectives_weights must be >= 0 with one > 0, got {checked}")
    return checked


@dataclass
class TrainerConfig:
    """Every setting of an SFT or RL run (see :mod:`mempo_agents.trainer.mempo` for the equations).

    Model / data:
        stage: ``"sft"`` (behaviour cloning), ``"grpo"`` (trajectory advantage only, the
            MEM1-like ablation) or ``"mempo"`` (trajectory + memory advantages).
        init_model: folder of a saved causal LM to start from (also the frozen reference
            policy of RL). Empty with ``model_config`` set: a fresh Llama of that shape.
        model_config: ``LlamaConfig`` keyword arguments for a from-scratch model.
        tokenizer: folder of a saved tokenizer (defaults to ``init_model``).
        env_id / env_kwargs: ``gym.make(env_id, **env_kwargs)``; ``env_sources`` lists
            several kwargs dicts (e.g. one per world), each merged over ``env_kwargs``.
        eval_env_sources: the same for held-out evaluation.
        instructions: passed to the env when not empty.
        objectives_schedule: curriculum as ``[[first_step, [k, ...]], ...]``; tasks with
            other numbers of objectives are not drawn from that step on. Empty: all tasks.
        objectives_weights: ``{k: weight}`` for drawing a step's tasks: first a ``k`` among the
            allowed ones in proportion to its weight (a missing ``k`` weighs 0), then a task of
            that ``k`` uniformly. Empty (default): every allowed task equally likely, so the
            ``k`` with the most tasks dominates. :func:`~mempo_agents.trainer.mempo.signal_weights`
            turns measured success rates into weights that favour groups with a signal.
    RL (Eq. 4-10):
        group_size: N trajectories per task; tasks_per_step: tasks per update.
        reward_metric: ``"em"`` or ``"f1"`` for R^T; format_penalty: subtracted from R^T
            when the episode was malformed or unanswered (R^T is then ``-format_penalty``).
        memory_weight: w of Eq. 9; memory_norm: ``"turn"`` (normalise R^M over the group at
            the same turn index, default) or ``"group"`` (over all memories of the group);
            memory_scale: ``"std"`` (Eq. 5: divide by the bucket's std, default) or ``"none"``
            (centre only, so A^M keeps the scale of R^M, a probability difference).
        memory_flat_groups: ``"apply"`` (default, the paper's rule) or ``"skip"``: whether a group
            whose trajectory rewards are all equal (A^T = 0) still gets its memory advantage
            (see :func:`~mempo_agents.trainer.mempo.memory_advantages`; the README's Training
            section has the measured ablation).
        log_memory_reward: also measure R^M (for the curves) when the stage does not use it.
        clip_eps, kl_beta: Eq. 10. ppo_epochs: passes over one batch of rollouts.
        temperature: sampling temperature of rollouts (log-probs use the same temperature).
        max_new_tokens: cap on tokens sampled per turn in rollouts (0 = the env's
            ``max_turn_tokens``); a turn cut by the cap is judged by the env as malformed.
    Model: lora_rank (0 = full fine-tune; > 0 = a LoRA adapter of that rank via peft, the
        base frozen), lora_alpha.
    Optimisation / bookkeeping: lr, weight_decay, warmup_steps, max_grad_norm, steps,
        minibatch_tokens (tokens per forward pass), mixed_precision (``"no"``/``"bf16"``),
        num_threads (CPU), seed, output_dir, save_every, eval_every, eval_tasks.
    SFT: sft_epochs, sft_batch_tokens, sft_lr.
    """

    stage: str = "mempo"
    init_model: str = ""
    model_config: dict[str, Any] = field(default_factory=dict)
    tokenizer: str = ""
    env_id: str = "MemPO-SynthWiki-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    env_sources: list[dict[str, Any]] = field(default_factory=list)
    eval_env_sources: list[dict[str, Any]] = field(default_factory=list)
    instructions: str = ""
    objectives_schedule: list[list[Any]] = field(default_factory=list)
    objectives_weights: dict[int, float] = field(default_factory=dict)
    # RL
    group_size: int = 8
    tasks_per_step: int = 4
    reward_metric: str = "f1"
    format_penalty: float = 0.0
    memory_weight: float = 1.0
    memory_norm: str = "turn"
    memory_scale: str = "std"
    memory_flat_groups: str = "apply"
    log_memory_reward: bool = False
    clip_eps: float = 0.2
    kl_beta: float = 0.01
    ppo_epochs: int = 1
    temperature: float = 1.0
    max_new_tokens: int = 0
    # model
    lora_rank: int = 0
    lora_alpha: int = 32
    # optimisation
    lr: float = 1e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    steps: int = 100
    minibatch_tokens: int = 4096
    mixed_precision: str = "no"
    num_threads: int = 0
    seed: int = 0
    output_dir: str = "runs/mempo"
    save_every: int = 50
    eval_every: int = 0
    eval_tasks: int = 64
    # SFT
    sft_epochs: float = 1.0
    sft_batch_tokens: int = 4096
    sft_lr: float = 2e-3

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.reward_metric not in REWARD_METRICS:
            raise ValueError(f"reward_metric must be one of {REWARD_METRICS}, got {self.reward_metric!r}")
        if self.memory_norm not in MEMORY_NORMS:
            raise ValueError(f"memory_norm must be one of {MEMORY_NORMS}, got {self.memory_norm!r}")
        if self.memory_scale not in MEMORY_SCALES:
            raise ValueError(f"memory_scale must be one of {MEMORY_SCALES}, got {self.memory_scale!r}")
        if self.memory_flat_groups not in ("skip", "apply"):
            raise ValueError(f"memory_flat_groups must be 'skip' or 'apply', got {self.memory_flat_groups!r}")
        if self.lora_rank < 0:
            raise ValueError(f"lora_rank must be >= 0, got {self.lora_rank}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be 'no', 'bf16' or 'fp16', got {self.mixed_precision!r}")
        for name in ("group_size", "tasks_per_step", "ppo_epochs", "minibatch_tokens", "sft_batch_tokens"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        self.objectives_weights = checked_objectives_weights(self.objectives_weights)
        if self.clip_eps <= 0 or self.kl_beta < 0 or self.temperature <= 0:
            raise ValueError("clip_eps > 0, kl_beta >= 0 and temperature > 0 are required")
        if not self.init_model and not self.model_config:
            raise ValueError("set init_model (a saved model folder) or model_config (a fresh Llama's shape)")

    @property
    def use_memory_reward(self) -> bool:
        """MemPO adds the memory advantage; plain GRPO (``stage="grpo"``) does not."""
        return self.stage == "mempo" and self.memory_weight != 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown trainer config keys {unknown}; known keys: {sorted(known)}")
        return cls(**dict(data))

    @classmethod
    def load(cls, path: str | Path) -> "TrainerConfig":
        """Read a ``.yaml``/``.yml`` or ``.json`` file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"trainer config {str(path)!r} does not exist")
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ValueError(f"trainer config must end in .yaml, .yml or .json, got {path.name!r}")
        if not isinstance(data, dict):
            raise ValueError(f"trainer config {path.name!r} must hold a mapping at top level")
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
        else:
            path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
