"""MemPO-Gym: environments, metrics and an evaluation harness for LLM agents that
manage their own memory.

>>> import gymnasium as gym, mempo_gym
>>> env = gym.make("MemPO-SynthWiki-v0")          # doctest: +SKIP
"""

from __future__ import annotations

# Importing the library changes no process-wide setting: nothing is fetched from a hub
# because every model/tokenizer load passes ``local_files_only=True`` where it happens.
# pandas and matplotlib are imported only by the functions that return tables or plots.

from mempo_gym.agent import Agent, make_agent, registered_agents  # noqa: E402
from mempo_gym.core.context import (  # noqa: E402
    ContextManager, ExternalMemory, FullContext, LatestBlockMemory, SelfMemory, SlidingWindow,
    ThinkStateMemory, TurnRecord, render_information, render_turn,
)
from mempo_gym.core.env import MemoryEnv  # noqa: E402
from mempo_gym.core.meter import TokenMeter  # noqa: E402
from mempo_gym.core.protocol import STOP_STRINGS, ParsedTurn, StopDetector, parse_turn  # noqa: E402
from mempo_gym.core.tokens import TokenCounter  # noqa: E402
from mempo_gym.core.tools import SearchTool  # noqa: E402
from mempo_gym.memory import make_memory, register_memory, registered_memories  # noqa: E402
from mempo_gym.paths import cache_dir, cache_root  # noqa: E402
from mempo_gym.rollout import Completion, Episode, Job, TurnSample, play_batch, rollout  # noqa: E402
from mempo_gym.records import Document, Question, Task  # noqa: E402
from mempo_gym.version import __version__  # noqa: E402
from mempo_gym.envs.registration import register_envs, registered_ids  # noqa: E402

register_envs()

from mempo_gym.harness import evaluate  # noqa: E402

__all__ = [
    "Agent", "Completion", "ContextManager", "Document", "Episode", "ExternalMemory", "FullContext", "Job",
    "LatestBlockMemory", "MemoryEnv", "ParsedTurn", "Question", "STOP_STRINGS", "SearchTool", "SelfMemory",
    "SlidingWindow", "StopDetector", "Task", "ThinkStateMemory", "TokenCounter", "TokenMeter", "TurnRecord",
    "TurnSample", "__version__", "cache_dir", "cache_root", "evaluate", "make_agent", "make_memory",
    "parse_turn", "play_batch", "register_envs", "register_memory", "registered_agents", "registered_ids",
    "registered_memories", "render_information", "render_turn", "rollout",
]
