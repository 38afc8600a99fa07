"""Where dataset files live: ``data_dir=`` argument, else ``$MEMPO_GYM_DATA``, else cache.

The default is ``<cache>/data`` with ``<cache>`` from :func:`mempo_gym.paths.cache_root`
(``$MEMPO_GYM_CACHE``, else ``$XDG_CACHE_HOME/mempo_gym``, else ``~/.cache/mempo_gym``).
"""

from __future__ import annotations

import os
from pathlib import Path

from mempo_gym.paths import cache_root

DATA_DIR_ENV = "MEMPO_GYM_DATA"


def default_data_dir() -> Path:
    """The user cache folder used when neither an argument nor the env var is given."""
    return cache_root() / "data"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory to use (not created here; ``~`` is expanded).

    An explicit ``data_dir`` wins; then a non-empty ``MEMPO_GYM_DATA``; then
    :func:`default_data_dir`.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    return default_data_dir()
