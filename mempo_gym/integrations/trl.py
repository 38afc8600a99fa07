"""Plain GRPO with TRL (``pip install trl``) on a MemPO-Gym env: a prompt dataset and a reward function.

TRL's ``GRPOTrainer`` samples one completion per prompt and scores it with reward
functions. Here a prompt is the first context of an episode (exactly what the env shows
the model) and the reward function plays the completion as that episode's turn in a fresh
env reset on the same task, returning the env's own reward. With the default
``max_turns=1`` this is one-turn GRPO: the model must answer from the first observation
(a ``<search>`` turn ends the episode with the truncation reward). Multi-turn rollouts
with self-memory need per-turn rows and MemPO's memory advantage:
``mempo_agents.trainer.trl_mempo``.

    from trl import GRPOConfig, GRPOTrainer
    from mempo_gym.integrations.trl import grpo_dataset, reward_function
    trainer = GRPOTrainer(model, reward_funcs=reward_function("MemPO-SynthWiki-v0"),
                          train_dataset=grpo_dataset("MemPO-SynthWiki-v0", 64), args=GRPOConfig(...))
"""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence

import gymnasium as gym

from mempo_gym.harness.task_order import DEFAULT_TASK_ORDER, reset_arguments


def _env(env_id: str, env_kwargs: dict[str, Any]) -> gym.Env:
    kwargs = {"max_turns": 1, **env_kwargs}
    if kwargs.get("action_mode", "text") != "text":
        raise ValueError("TRL rollouts are text turns: leave action_mode at 'text'")
    return gym.make(env_id, **kwargs)


def grpo_dataset(env_id: str, episodes: int, seed: int = 0, **env_kwargs: Any) -> Any:
    """A ``datasets.Dataset`` with ``prompt`` (the episode's first context), ``episode_seed``,
    ``task_index`` and ``task_id`` for episodes ``0..episodes-1`` (the harness's task order)."""
    try:
        from datasets import Dataset
    except ImportError as exc:
        raise ImportError("grpo_dataset needs the datasets package: pip install trl (or datasets)") from exc
    env = _env(env_id, env_kwargs)
    rows: dict[str, list[Any]] = {"prompt": [], "episode_seed": [], "task_index": [], "task_id": []}
    try:
        num_tasks = len(env.unwrapped.tasks)
        for index in range(int(episodes)):
            reset = reset_arguments(DEFAULT_TASK_ORDER, seed, env_id, index, num_tasks)
            observation, _ = env.reset(**reset)
            rows["prompt"].append(str(observation["context"]))
            rows["episode_seed"].append(reset["seed"])
            rows["task_index"].append(int((reset.get("options") or {}).get("task_index", -1)))
            rows["task_id"].append(env.unwrapped.task.id)
    finally:
        env.close()
    return Dataset.from_dict(rows)


def reward_function(env_id: str, **env_kwargs: Any) -> Callable[..., list[float]]:
    """A TRL reward function: ``f(prompts, completions, episode_seed, task_index, **columns) -> rewards``.

    Each completion is played as the turn of its episode (reset with its ``episode_seed`` and
    ``task_index`` columns, ``-1`` for a seeded draw); the reward is the env's (F1 by default). A completion that does not end the
    episode within ``max_turns`` gets the env's truncation reward.
    """
    env = _env(env_id, env_kwargs)

    def mempo_gym_reward(prompts: Sequence[Any], completions: Sequence[Any], episode_seed: Sequence[int],
                         task_index: Sequence[int] | None = None, **columns: Any) -> list[float]:
        rewards = []
        indices = list(task_index) if task_index is not None else [-1] * len(prompts)
        for prompt, completion, reset_seed, index in zip(prompts, completions, episode_seed, indices):
            options = {"task_index": int(index)} if int(index) >= 0 else None
            observation, _ = env.reset(seed=int(reset_seed), options=options)
            if isinstance(prompt, str) and prompt != observation["context"]:
                raise ValueError("a prompt differs from its episode's first context: build the dataset with "
                                 "grpo_dataset() and the same env settings")
            text = completion if isinstance(completion, str) else completion[-1]["content"]
            _, reward, terminated, truncated, _ = env.step(text)
            rewards.append(float(reward))
        return rewards

    mempo_gym_reward.__name__ = f"mempo_gym_{env_id.replace('-', '_')}"
    mempo_gym_reward.env_settings = json.dumps(env.unwrapped.describe(), default=str)[:2000]  # type: ignore[attr-defined]
    return mempo_gym_reward
