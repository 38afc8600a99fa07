"""Checkpoints (safetensors + JSON, never pickle) and step logs (CSV, TensorBoard when installed).

A checkpoint folder holds ``model.safetensors`` + ``config.json`` (``save_pretrained``), the
tokenizer files, ``optimizer.safetensors`` (every state tensor, keyed ``<param>.<name>``),
``trainer_state.json`` (step, optimizer hyper-parameters and scalar state) and
``trainer_config.json``. :func:`load_checkpoint` restores all of it for resuming.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def optimizer_to_flat(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in state["state"].items():
        for name, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    folder: str | Path,
    model: Any,
    tokenizer: Any,
    step: int,
    config: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a complete, resumable checkpoint to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    state: dict[str, Any] = {"step": int(step), **(extra or {})}
    if optimizer is not None:
        tensors, meta = optimizer_to_flat(optimizer.state_dict())
        if tensors:
            save_file(tensors, str(folder / "optimizer.safetensors"))
        state["optimizer"] = meta
    (folder / "trainer_state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    (folder / "trainer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


def load_checkpoint(folder: str | Path) -> tuple[Any, Any, dict[str, Any], dict[str, Any] | None]:
    """``(model, tokenizer, trainer_state, optimizer_state_dict or None)`` from ``folder``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    if not (folder / "trainer_state.json").is_file():
        raise FileNotFoundError(f"{folder} is not a trainer checkpoint (no trainer_state.json)")
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    opt = None
    if "optimizer" in state:
        tensors = load_file(str(folder / "optimizer.safetensors")) if (folder / "optimizer.safetensors").is_file() else {}
        opt = optimizer_from_flat(tensors, state["optimizer"])
    return model, tokenizer, state, opt


class StepLogger:
    """Appends one CSV row per step (columns grow as new keys appear) and mirrors to TensorBoard."""

    def __init__(self, path: str | Path, tensorboard_dir: str | Path | None = None, echo: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as f:
                self.rows = list(csv.DictReader(f))
        self.echo = echo
        self.writer = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(tensorboard_dir))
            except Exception:  # tensorboard not installed: CSV only
                self.writer = None

    def __call__(self, step: int, stats: dict[str, float], prefix: str = "") -> None:
        row = {"step": step, **{f"{prefix}{k}": v for k, v in stats.items()}}
        self.rows.append(row)
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        with self.path.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
        if self.writer is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.writer.add_scalar(k, v, step)
        if self.echo:
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
