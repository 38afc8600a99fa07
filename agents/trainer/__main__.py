"""``python -m mempo_agents.trainer --config cfg.yaml [--resume]``: SFT, GRPO or MemPO.

The env comes from ``gym.make(cfg.env_id, **cfg.env_kwargs, **source)`` for every entry of
``cfg.env_sources`` (one entry = one env, e.g. one SynthWiki world), with the trainer's
tokenizer, ``memory="self"`` and ``action_mode="text"``. SFT uses the registered
``oracle`` agent (``mempo_gym.make_agent("oracle")``) as demonstrator.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from mempo_agents.trainer.checkpoint import StepLogger, load_checkpoint, save_checkpoint
from mempo_agents.trainer.config import TrainerConfig


def make_envs(cfg: TrainerConfig, sources: list[dict[str, Any]], tokenizer: Any) -> list[Any]:
    import gymnasium as gym

    import mempo_gym  # noqa: F401  (registers the envs)

    extra = {"instructions": cfg.instructions} if cfg.instructions else {}
    return [
        gym.make(cfg.env_id, **{**cfg.env_kwargs, **src, "tokenizer": tokenizer, "memory": "self",
                                "action_mode": "text", **extra})
        for src in (sources or [{}])
    ]


def load_policy(cfg: TrainerConfig) -> tuple[Any, Any]:
    """The policy and its tokenizer: ``init_model`` may be a saved model, a LoRA adapter folder
    or ``smollm2-135m-instruct`` (the embedded model); ``lora_rank > 0`` adds a fresh adapter
    to a full model (an adapter folder keeps training its own)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from mempo_gym.tokenizer import load_hf_tokenizer

    from mempo_agents.trainer.policy import EMBEDDED_BASE, add_lora, is_adapter_folder, load_policy_model

    if cfg.init_model:
        adapter = is_adapter_folder(cfg.init_model)
        model = load_policy_model(cfg.init_model, trainable=True) if cfg.init_model != EMBEDDED_BASE else None
        if model is None:
            from mempo_agents.trainer.policy import load_base_model

            model = load_base_model(EMBEDDED_BASE)
        if cfg.lora_rank and not adapter:
            model = add_lora(model, rank=cfg.lora_rank, alpha=cfg.lora_alpha)
        tok_path = cfg.tokenizer or (None if adapter or cfg.init_model == EMBEDDED_BASE else cfg.init_model)
        tokenizer = AutoTokenizer.from_pretrained(tok_path) if tok_path else load_hf_tokenizer()
        return model, tokenizer
    if not cfg.tokenizer:
        raise ValueError("set tokenizer (a saved tokenizer folder) when training a fresh model_config")
    tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer)
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, **cfg.model_config))
    if cfg.lora_rank:
        from mempo_agents.trainer.policy import add_lora

        model = add_lora(model, rank=cfg.lora_rank, alpha=cfg.lora_alpha)
    return model, tokenizer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mempo_agents.trainer", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="trainer config (.yaml or .json)")
    parser.add_argument("--resume", action="store_true", help="continue from <output_dir>/last")
    args = parser.parse_args(argv)
    cfg = TrainerConfig.load(args.config)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.yaml")
    logger = StepLogger(out / "log.csv", tensorboard_dir=out / "tb")
    start, opt_state = 0, None
    if args.resume and (out / "last" / "trainer_state.json").is_file():
        model, tokenizer, state, opt_state = load_checkpoint(out / "last")
        start = int(state["step"])
    else:
        model, tokenizer = load_policy(cfg)
    envs = make_envs(cfg, cfg.env_sources, tokenizer)
    eval_envs = make_envs(cfg, cfg.eval_env_sources, tokenizer) if cfg.eval_env_sources else []

    if cfg.stage == "sft":
        from mempo_gym.agent import make_agent

        from mempo_agents.trainer.mempo import task_refs
        from mempo_agents.trainer.sft import collect_demonstrations, sft_train

        demos, stats = collect_demonstrations(make_agent("oracle"), envs, task_refs(envs), tokenizer)
        logger(0, stats, prefix="demo_")
        model = sft_train(model, demos, tokenizer.pad_token_id or 0, epochs=cfg.sft_epochs,
                          batch_tokens=cfg.sft_batch_tokens, lr=cfg.sft_lr, mixed_precision=cfg.mixed_precision,
                          seed=cfg.seed, log=logger)
        save_checkpoint(out / "last", model, tokenizer, 1, cfg.to_dict())
        return 0

    from mempo_agents.trainer.mempo import train_rl

    def checkpoint(step: int, policy: Any, optimizer: Any) -> None:
        save_checkpoint(out / "last", policy, tokenizer, step, cfg.to_dict(), optimizer)

    train_rl(cfg, model, tokenizer, envs, eval_envs, log=logger, checkpoint=checkpoint,
             start_step=start, optimizer_state=opt_state, reference=kl_reference(cfg, start))
    return 0


def kl_reference(cfg: TrainerConfig, start_step: int) -> Any | None:
    """The frozen KL reference of a resumed RL run: the start policy rebuilt from the config
    (``init_model``, or the seeded fresh model), never the resumed weights. ``None`` on a fresh
    run (``train_rl`` then copies the policy it was given) or when the KL term is off."""
    if start_step <= 0 or cfg.kl_beta <= 0:
        return None
    return load_policy(cfg)[0]


if __name__ == "__main__":
    sys.exit(main())
