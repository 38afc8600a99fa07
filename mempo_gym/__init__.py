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
    ContextManager, ExternalMemory, FullContext, SelfMemory, SlidingWindow, TurnRecord,
)
from mempo_gym.core.env import MemoryEnv  # noqa: E402
from mempo_gym.core.meter import TokenMeter  # noqa: E402
from mempo_gym.core.protocol import ParsedTurn, parse_turn  # noqa: E402
from mempo_gym.core.tools import SearchTool  # noqa: E402
from mempo_gym.records import Document, Question, Task  # noqa: E402
from mempo_gym.version import __version__  # noqa: E402
from mempo_gym.envs.registration import register_envs, registered_ids  # noqa: E402

register_envs()

from mempo_gym.harness import evaluate  # noqa: E402

__all__ = [
    "Agent", "ContextManager", "Document", "ExternalMemory", "FullContext", "MemoryEnv",
    "ParsedTurn", "Question", "SearchTool", "SelfMemory", "SlidingWindow", "Task",
    "TokenMeter", "TurnRecord", "__version__", "make_agent", "parse_turn", "registered_agents",
    "evaluate", "register_envs", "registered_ids",
]
