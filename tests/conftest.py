"""Shared test set-up: caches in a known place, nothing fetched from any hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Tests keep every cache (converted tokenizer and model, indexes) inside the checkout,
# reused between runs and never written to the user's own cache.
os.environ.setdefault("MEMPO_GYM_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "tests"))

from mempo_gym.paths import cache_root  # noqa: E402

os.environ.setdefault("HF_HOME", str(cache_root() / "hf"))


def shared_data_dir() -> Path | None:
    """The real data samples (``MEMPO_GYM_DATA``, or ../shared/data beside the checkout)."""
    env = os.environ.get("MEMPO_GYM_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for path in candidates:
        if path.is_dir() and (path / "README.md").is_file():
            return path
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("real data samples not found: set MEMPO_GYM_DATA to the shared data folder")
    return path


@pytest.fixture(scope="session")
def tokenizer():
    from mempo_gym.tokenizer import load_tokenizer

    return load_tokenizer()


@pytest.fixture(scope="session")
def served_smollm2():
    """A real ``mempo-gym serve`` process serving the embedded SmolLM2 on 127.0.0.1."""
    pytest.importorskip("fastapi", reason="mempo-gym serve needs the 'serve' extra (fastapi, uvicorn)")
    pytest.importorskip("uvicorn", reason="mempo-gym serve needs the 'serve' extra (fastapi, uvicorn)")
    from tests.served_model import ServedModel

    with ServedModel(["--max-batch", "8"]) as server:
        yield server
