"""Building registered environments by id for the harness and the scorer."""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym

from mempo_gym.core.env import MemoryEnv

_REGISTRATION_MODULE = "mempo_gym.envs.registration"


def ensure_registered() -> None:
    """Register the MemPO-Gym env ids with Gymnasium (idempotent; no-op before they exist)."""
    try:
        module = importlib.import_module(_REGISTRATION_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name and _REGISTRATION_MODULE.startswith(exc.name):
            return  # this checkout has no registered envs yet
        raise
    register = getattr(module, "register_envs", None)
    if callable(register):
        register()


def core_env(env: gym.Env) -> MemoryEnv:
    """The :class:`MemoryEnv` under Gymnasium's wrappers."""
    core = env.unwrapped
    if not isinstance(core, MemoryEnv):
        raise TypeError(f"expected a mempo_gym MemoryEnv, got {type(core).__name__}")
    return core


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id, **kwargs)`` with MemPO-Gym ids registered; checks it is a MemoryEnv.

    ``env_id`` may be ``"module:EnvId"`` (Gymnasium imports the module first).
    """
    ensure_registered()
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        known = sorted(k for k in gym.registry if "MemPO" in k)
        raise ValueError(
            f"cannot make environment {env_id!r}: {exc}. MemPO-Gym ids: {', '.join(known) or 'none registered'}"
        ) from exc
    if not isinstance(env.unwrapped, MemoryEnv):
        env.close()
        raise TypeError(f"{env_id!r} is a {type(env.unwrapped).__name__}, not a mempo_gym MemoryEnv")
    return env
