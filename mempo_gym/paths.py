"""Where MemPO-Gym keeps caches on disk (tokenizers, indexes, converted models).

``MEMPO_GYM_CACHE`` wins, then ``$XDG_CACHE_HOME/mempo_gym``, then ``~/.cache/mempo_gym``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The root cache folder (not created here)."""
    explicit = os.environ.get("MEMPO_GYM_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mempo_gym"


def cache_dir(*parts: str) -> Path:
    """A sub-folder of :func:`cache_root`, created on demand."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


__all__ = [
    "cache_dir", "cache_root"
]
