"""A ``gem.Env`` view of a MemPO-Gym environment (GEM, ``pip install gem-llm``).

GEM's observations and actions are strings: the observation is the env's
``observation["context"]`` (exactly what the model reads), the action one whole turn.
Rewards, ``terminated``/``truncated`` and ``info`` (``info["metrics"]`` at the end) are the
MemPO-Gym env's own.

>>> from mempo_gym.integrations.gem import register_gem_envs
>>> import gem; register_gem_envs()          # doctest: +SKIP
>>> env = gem.make("mempo/MemPO-SynthWiki-v0")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import random
from typing import Any

import gymnasium as gym

try:
    import gem
except ImportError as exc:  # pragma: no cover - exercised only without the package
    raise ImportError("mempo_gym.integrations.gem needs GEM: pip install gem-llm") from exc

from mempo_gym.envs.registration import registered_ids

#: Prefix of the ids registered in GEM's registry (``mempo/<MemPO-Gym id>``).
GEM_PREFIX = "mempo/"


class MemPOGemEnv(gem.Env):
    """GEM env over ``gym.make(env_id, **kwargs)`` in text mode.

    Args:
        env_id: a registered MemPO-Gym id, e.g. ``"MemPO-SynthWiki-v0"``.
        **kwargs: ``gym.make`` keywords (``memory=``, ``context_budget=`` ...).
    """

    def __init__(self, env_id: str = "MemPO-SynthWiki-v0", **kwargs: Any) -> None:
        if kwargs.get("action_mode", "text") != "text":
            raise ValueError("GEM envs take text actions: leave action_mode at 'text'")
        self.mempo_env_id, self.kwargs = env_id, dict(kwargs)  # gem.make sets env_id to its own id
        self.env = gym.make(env_id, **kwargs)
        self._rng = random.Random(0)

    def reset(self, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed)
        if seed is not None:
            self._rng.seed(seed)
        observation, info = self.env.reset(seed=seed)
        return str(observation["context"]), info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        return str(observation["context"]), float(reward), bool(terminated), bool(truncated), info

    def sample_random_action(self) -> str:
        """A random well-formed turn: a search for a word of the question, or an answer."""
        task = self.env.unwrapped.task
        words = " ".join(q.text for q in task.questions).split() if task is not None else []
        words = words or ["unknown"]
        word = self._rng.choice(words).strip("?,.")
        tag = self._rng.choice(["search", "answer"])
        return f"<mem>{word}</mem><{tag}>{word}</{tag}>"

    def spawn(self, same_state: bool = False, **kwargs: Any) -> "MemPOGemEnv":
        if same_state:
            raise NotImplementedError("MemPO-Gym envs cannot copy an episode in progress; spawn a fresh one")
        return MemPOGemEnv(self.mempo_env_id, **{**self.kwargs, **kwargs})

    def close(self) -> None:
        self.env.close()


def register_gem_envs() -> list[str]:
    """Register every MemPO-Gym id in GEM's registry as ``mempo/<id>``; returns the GEM ids."""
    from gem.envs.registration import ENV_REGISTRY

    added = []
    for env_id in registered_ids():
        gem_id = GEM_PREFIX + env_id
        if gem_id not in ENV_REGISTRY:
            gem.register(gem_id, entry_point=functools.partial(MemPOGemEnv, env_id))
        added.append(gem_id)
    return added
