"""Adapters to GEM, TRL and verifiers, each against the real package."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import gymnasium as gym
import pytest

import mempo_gym  # noqa: F401  (registers the env ids)

ENV_ID = "MemPO-SynthWiki-v0"


def gold_answer(env: gym.Env) -> str:
    return "; ".join(q.answers[0] for q in env.unwrapped.task.questions)


def test_import_mempo_gym_imports_no_framework() -> None:
    code = ("import sys, mempo_gym, gymnasium as gym; gym.make('MemPO-SynthWiki-v0').reset(seed=0); "
            "print(sorted(m for m in ('gem', 'trl', 'verifiers', 'datasets', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_gem_view_plays_an_episode_through_gem_make() -> None:
    gem = pytest.importorskip("gem", reason="pip install gem-llm")
    from mempo_gym.integrations.gem import MemPOGemEnv, register_gem_envs

    assert f"mempo/{ENV_ID}" in register_gem_envs()
    register_gem_envs()  # idempotent
    env = gem.make(f"mempo/{ENV_ID}", memory="self")
    assert isinstance(env, gem.Env) and isinstance(env, MemPOGemEnv)
    obs, info = env.reset(seed=3)
    assert isinstance(obs, str) and "<mem>" in obs
    assert env.reset(seed=3)[0] == obs  # seeded
    obs, reward, terminated, truncated, info = env.step("<mem>m</mem><search>anything</search>")
    assert isinstance(obs, str) and "<information>" in obs and not (terminated or truncated)
    obs, reward, terminated, truncated, info = env.step(f"<mem>m</mem><answer>{gold_answer(env.env)}</answer>")
    assert terminated and reward == 1.0 and info["metrics"]["f1"] == 1.0 and info["metrics"]["turns"] == 2
    action = env.sample_random_action()
    assert action.startswith("<mem>")
    child = env.spawn()
    assert child.reset(seed=3)[0] == env.reset(seed=3)[0]


def test_trl_dataset_and_reward_function() -> None:
    pytest.importorskip("trl", reason="pip install trl")
    from mempo_gym.integrations.trl import grpo_dataset, reward_function

    data = grpo_dataset(ENV_ID, 3, seed=1)
    assert data.column_names == ["prompt", "episode_seed", "task_index", "task_id"] and len(data) == 3
    env = gym.make(ENV_ID, max_turns=1)
    golds = []
    for prompt, reset_seed, index in zip(data["prompt"], data["episode_seed"], data["task_index"]):
        obs, _ = env.reset(seed=reset_seed, options={"task_index": index})
        assert obs["context"] == prompt
        golds.append(gold_answer(env))
    reward = reward_function(ENV_ID)
    completions = [f"<mem>x</mem><answer>{golds[0]}</answer>", "<search>x</search>", "no tags"]
    assert reward(data["prompt"], completions, data["episode_seed"], data["task_index"]) == [1.0, 0.0, 0.0]
    # conversational completions, as TRL passes them for chat datasets
    chat = [[{"role": "assistant", "content": f"<answer>{golds[1]}</answer>"}]]
    assert reward(data["prompt"][1:2], chat, data["episode_seed"][1:2], data["task_index"][1:2]) == [1.0]
    with pytest.raises(ValueError, match="grpo_dataset"):
        reward(["another prompt"], ["<answer>x</answer>"], data["episode_seed"][:1], data["task_index"][:1])


@pytest.mark.slow  # imports and runs TRL's trainer (minutes on a shared CPU)
def test_trl_grpo_trainer_step_with_the_reward_function(tmp_path) -> None:
    pytest.importorskip("trl", reason="pip install trl")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from mempo_gym.integrations.trl import grpo_dataset, reward_function

    from tests.helpers import tiny_llama

    path = tiny_llama(tmp_path / "model")
    env_kwargs: dict = {}
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=12, max_steps=1, use_cpu=True, report_to=[], logging_steps=1,
                      save_strategy="no")
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(path), processing_class=tokenizer,
                          reward_funcs=reward_function(ENV_ID, **env_kwargs),
                          train_dataset=grpo_dataset(ENV_ID, 4, **env_kwargs), args=args)
    trainer.train()
    logged = trainer.state.log_history[0]
    assert trainer.state.global_step == 1
    assert f"rewards/mempo_gym_{ENV_ID.replace('-', '_')}/mean" in logged


def test_verifiers_loads_the_environment_by_name_and_plays_turns() -> None:
    pytest.importorskip("verifiers", reason="pip install verifiers")
    from verifiers.v1.utils.loaders import environment_class, load_taskset

    from mempo_gym.integrations.verifiers import (
        MemPOEnvConfig, MemPOTasksetConfig, MemPOVerifiersEnv, play_episode,
    )

    config = MemPOTasksetConfig(id="mempo-gym-verifiers", env_id=ENV_ID, episodes=2, seed=0)
    tasks = list(load_taskset(config))
    assert [t.data.id for t in tasks] == [f"{ENV_ID}#0", f"{ENV_ID}#1"]
    assert environment_class("mempo-gym-verifiers") is MemPOVerifiersEnv
    env = MemPOVerifiersEnv(MemPOEnvConfig(taskset=config))
    assert type(env._harnesses["player"]).__name__ == "NullHarness"  # a chat turn, no code execution
    assert [t.data.id for t in env.taskset] == [t.data.id for t in tasks]

    probe = gym.make(ENV_ID)
    probe.reset(**tasks[0].data.info["reset"])
    gold = gold_answer(probe)
    seen: list[str] = []

    async def turn(context: str) -> str:  # what the verifiers agent is prompted with, turn by turn
        seen.append(context)
        return "<mem>need it</mem><search>x</search>" if len(seen) == 1 else f"<mem>m</mem><answer>{gold}</answer>"

    final = asyncio.run(play_episode(tasks[0].data.info, turn))
    assert seen[0] == tasks[0].data.prompt
    assert "<information>" in seen[1] and "need it" in seen[1]  # the next prompt is the env's self-memory context
    assert final["metrics"]["f1"] == 1.0 and final["metrics"]["turns"] == 2
