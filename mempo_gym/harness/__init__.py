"""The evaluation harness: batched, resumable runs recorded in run folders."""

from mempo_gym.harness.envs import make_env
from mempo_gym.harness.episodes import episode_key, episode_seed
from mempo_gym.harness.runfiles import (
    CONFIG_FILE, EPISODES_FILE, RunFileError, read_config, read_episodes,
)
from mempo_gym.harness.runner import RunConfigMismatchError, RunExistsError, evaluate

__all__ = [
    "CONFIG_FILE", "EPISODES_FILE", "RunConfigMismatchError", "RunExistsError", "RunFileError",
    "episode_key", "episode_seed", "evaluate", "make_env", "read_config", "read_episodes",
]
