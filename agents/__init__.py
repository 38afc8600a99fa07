"""Reference agents for MemPO-Gym (installed as ``mempo_agents``).

LLM agents (:class:`MemPOAgent`, :class:`FullContextAgent`, :class:`ExternalMemoryAgent`,
:class:`MEM1Agent`) run on a :mod:`mempo_agents.backends` backend; controls
(:class:`OracleAgent`, :class:`ClosedBookAgent`, :class:`RandomAgent`) need no model.
Build them by name with :func:`mempo_gym.make_agent` or the factories in
:mod:`mempo_agents.registry`.
"""

from mempo_agents.closed_book import ClosedBookAgent
from mempo_agents.llm_agents import ExternalMemoryAgent, FullContextAgent, LLMAgent, MEM1Agent, MemPOAgent
from mempo_agents.memory import ThinkStateMemory
from mempo_agents.oracle import OracleAgent
from mempo_agents.random_agent import RandomAgent

__all__ = [
    "ClosedBookAgent", "ExternalMemoryAgent", "FullContextAgent", "LLMAgent", "MEM1Agent",
    "MemPOAgent", "OracleAgent", "RandomAgent", "ThinkStateMemory",
]
