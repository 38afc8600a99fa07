"""The trained policy: a causal LM, optionally with a LoRA adapter (peft), and the two
routines that score tokens with it.

:func:`completion_logprobs` is used by RL (old, reference and new log-probs of Eq. 10, all
through the same call so they share one precision) and by the memory reward (the answer
probability of Eq. 5). It left-pads the batch, so every row's completion ends at the right
edge, and asks the model for logits of the last ``max completion + 1`` positions only
(``logits_to_keep``): the 49k-way vocabulary projection is never computed over the prompt.
:func:`target_logprobs` scores any set of positions of each sequence (SFT's NLL, where a
packed full-context episode has a target span per turn); logits are computed at those
positions only.

A LoRA policy is saved as a peft adapter folder (``adapter_config.json`` +
``adapter_model.safetensors``, a few MB) whose ``base_model_name_or_path`` names the base;
the embedded SmolLM2 is named ``smollm2-135m-instruct`` and resolved on load, so an adapter
trained here loads on any machine with the package installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

EMBEDDED_BASE = "smollm2-135m-instruct"
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def completion_logprobs(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    temperature: float = 1.0,
    pad_id: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """log π(c_j | prompt, c_<j) for every completion token, shape ``(B, C)`` with a mask.

    Rows are left-padded so completions are right-aligned: row ``r``'s ``C_r`` tokens sit
    in the last ``C_r`` columns. Logits are computed for the last ``C + 1`` positions only.
    """
    device = next(model.parameters()).device
    B = len(prompts)
    C = max((len(c) for c in completions), default=0)
    if B == 0 or C == 0:
        return torch.zeros((B, C), device=device), torch.zeros((B, C), dtype=torch.bool, device=device)
    width = max(len(p) + len(c) for p, c in zip(prompts, completions))
    ids = torch.full((B, width), pad_id, dtype=torch.long)
    attn = torch.zeros((B, width), dtype=torch.long)
    targets = torch.full((B, C), pad_id, dtype=torch.long)
    mask = torch.zeros((B, C), dtype=torch.bool)
    for r, (p, c) in enumerate(zip(prompts, completions)):
        seq = list(p) + list(c)
        if not p:
            raise ValueError("every completion needs at least one prompt token to condition on")
        ids[r, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
        attn[r, width - len(seq):] = 1
        if c:
            targets[r, C - len(c):] = torch.tensor(list(c), dtype=torch.long)
            mask[r, C - len(c):] = True
    ids, attn, targets, mask = ids.to(device), attn.to(device), targets.to(device), mask.to(device)
    positions = (attn.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=attn, position_ids=positions, logits_to_keep=C + 1)
    logits = out.logits[:, -(C + 1):-1].float()  # position i predicts token i + 1
    logp = torch.log_softmax(logits / temperature, dim=-1).gather(-1, targets[..., None]).squeeze(-1)
    return logp * mask, mask


def target_logprobs(
    model: torch.nn.Module,
    sequences: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    pad_id: int = 0,
) -> torch.Tensor:
    """log π(x_j | x_<j) at each target position ``j`` of each sequence, flattened row by row.

    Rows are right-padded (positions 0, 1, ... as the model saw them in the env) and the
    vocabulary projection runs at the positions before targets only (a boolean
    ``logits_to_keep``), so the cost does not grow with the untargeted context.
    """
    device = next(model.parameters()).device
    if not sequences or not any(targets):
        return torch.zeros(0, device=device)
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(sequences), width), dtype=torch.long)
    keep = torch.zeros((len(sequences), width), dtype=torch.bool)
    wanted: list[int] = []
    for r, (seq, positions) in enumerate(zip(sequences, targets)):
        ordered = sorted(set(positions))
        if ordered and (ordered[0] < 1 or ordered[-1] >= len(seq)):
            raise ValueError(f"target positions must lie in 1..{len(seq) - 1} (a token needs one before it)")
        ids[r, :len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        attn[r, :len(seq)] = 1
        keep[r, [j - 1 for j in ordered]] = True  # position j - 1 predicts token j
        wanted += [seq[j] for j in ordered]
    ids, attn, keep = ids.to(device), attn.to(device), keep.to(device)
    logits = model(input_ids=ids, attention_mask=attn, logits_to_keep=keep).logits.float()  # (N, V), row-major
    return torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(wanted, device=device)[:, None]).squeeze(-1)


def load_base_model(name_or_path: str | None = None) -> Any:
    """The embedded SmolLM2 (``None`` or ``"smollm2-135m-instruct"``) or a saved causal LM."""
    if name_or_path in (None, "", EMBEDDED_BASE):
        from mempo_agents.backends.embedded_model import load_embedded_model

        return load_embedded_model()
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(name_or_path))


def add_lora(model: Any, rank: int = 16, alpha: int = 32, dropout: float = 0.0,
             targets: Sequence[str] = LORA_TARGETS) -> Any:
    """Wrap ``model`` with a trainable LoRA adapter (peft); the base weights are frozen."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets),
                        task_type="CAUSAL_LM", bias="none")
    return get_peft_model(model, config)


def is_adapter_folder(path: str | Path) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def load_policy_model(path: str | Path, trainable: bool = False) -> Any:
    """A saved model folder, or a LoRA adapter folder over its base (the embedded SmolLM2 by name)."""
    path = Path(path)
    if not is_adapter_folder(path):
        return load_base_model(str(path))
    from peft import PeftModel

    config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    base = load_base_model(config.get("base_model_name_or_path") or EMBEDDED_BASE)
    return PeftModel.from_pretrained(base, str(path), is_trainable=trainable)


def save_policy(model: Any, folder: str | Path, base_name: str = EMBEDDED_BASE) -> Path:
    """Save a LoRA policy as its adapter (base named ``base_name``), or a full model."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    cfg_path = folder / "adapter_config.json"
    if cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg["base_model_name_or_path"] = base_name
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True), encoding="utf-8")
    return folder


def export_adapter(src: str | Path, dst: str | Path, command: str, settings: dict[str, Any]) -> Path:
    """Copy a trained adapter into a shippable folder: weights in bfloat16 (half the size; they
    load into a float32 model as is), ``adapter_config.json``, ``mempo_agent.json`` (backend
    settings it was trained with) and ``COMMAND.txt`` (the commands that made it)."""
    from safetensors.torch import load_file, save_file

    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(src / "adapter_model.safetensors"))
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()}, str(dst / "adapter_model.safetensors"),
              metadata={"format": "pt"})
    (dst / "adapter_config.json").write_text((src / "adapter_config.json").read_text(encoding="utf-8"), encoding="utf-8")
    (dst / "mempo_agent.json").write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (dst / "COMMAND.txt").write_text(command.rstrip() + "\n", encoding="utf-8")
    return dst
