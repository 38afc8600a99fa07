"""A local checkpoint's mempo_env.json becomes the env settings its agents ask for."""

from __future__ import annotations

import json

import pytest

from mempo_agents.registry import checkpoint_env_kwargs, resolve_model


def test_checkpoint_env_settings_are_read_with_paths_resolved(tmp_path):
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "mempo_env.json").write_text(json.dumps({"tokenizer": "tokenizer", "name_style": "pool"}))
    settings = checkpoint_env_kwargs(str(tmp_path))
    assert settings == {"tokenizer": str((tmp_path / "tokenizer").resolve()), "name_style": "pool"}
    assert checkpoint_env_kwargs("http://localhost:1/v1") == {} and checkpoint_env_kwargs(None) == {}


def test_bad_checkpoint_env_file_is_a_clear_error(tmp_path):
    (tmp_path / "mempo_env.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="not valid JSON"):
        checkpoint_env_kwargs(str(tmp_path))


def test_unknown_names_are_left_to_the_backend():
    assert resolve_model("no-such-checkpoint") == "no-such-checkpoint"
