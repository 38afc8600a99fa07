"""The verifiers environment ``mempo-gym-verifiers`` (verifiers loads environments by a
top-level module name): :mod:`mempo_gym.integrations.verifiers` under that name."""

from mempo_gym.integrations.verifiers import (
    MemPOEnvConfig, MemPOTasksetConfig, MemPOTaskset, MemPOVerifiersEnv, play_episode,
)

__all__ = ["MemPOTaskset", "MemPOVerifiersEnv"]
_ = (MemPOEnvConfig, MemPOTasksetConfig, play_episode)
