"""The agent interface every evaluated method implements, and the agent registry.

An agent writes one turn of text per call, given the observation the environment
produced (``observation["context"]`` is exactly what the model reads). Agents never
count tokens: the environment's meter does.

Batched evaluation steps several environments ("slots") together and calls
:meth:`Agent.act_batch` once per round, so backends can generate for all of them at
once. State that an agent keeps between turns must be kept per slot.

Agents are found by name through the ``mempo_gym.agents`` entry-point group, so the
CLI can run third-party agents without MemPO-Gym importing them. A package registers
``my-agent = my_package.module:make_my_agent`` in that group; the factory takes keyword
options (``model=...`` and agent-specific ones) and returns an :class:`Agent`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping, Sequence

from mempo_gym.records import Task

ENTRY_POINT_GROUP = "mempo_gym.agents"


class Agent(ABC):
    """One evaluated method: a policy that writes turns.

    Subclasses implement :meth:`act`; batched backends override :meth:`act_batch`.
    """

    name: str = "agent"

    def env_kwargs(self) -> dict[str, Any]:
        """Environment settings this method needs (``memory=``, ``instructions=``...)."""
        return {}

    def reset(self, task: Task, slot: int = 0) -> None:
        """A new episode starts in ``slot``. Only control agents (oracle) may read golds."""

    @abstractmethod
    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any], slot: int = 0) -> str:
        """Return the next turn's text for the episode in ``slot``."""

    def act_batch(
        self,
        observations: Sequence[Mapping[str, Any]],
        infos: Sequence[Mapping[str, Any]],
        slots: Sequence[int],
    ) -> list[str]:
        """One turn for several episodes at once (default: one :meth:`act` each)."""
        return [self.act(o, i, s) for o, i, s in zip(observations, infos, slots)]

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable settings recorded in run configs (never secrets)."""
        return {"name": self.name}


class EpisodeFailure(RuntimeError):
    """An agent could not write a turn for an episode (a timeout, a server error after retries).

    The harness records the episode as failed, with this message as its reason, and goes
    on; ``resume`` retries it. Errors of the run's settings (a wrong model name, a bad API
    key) are not episode failures: they stop the run, since every episode would fail.
    """


class AgentNotFoundError(LookupError):
    """No agent of that name is registered."""


def registered_agents() -> dict[str, Callable[..., Agent]]:
    """Agent factories by name from the ``mempo_gym.agents`` entry-point group (not loaded yet)."""
    from importlib.metadata import entry_points  # not at import time: it is ~10% of `import mempo_gym`

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}  # type: ignore[misc]


def make_agent(name: str, **options: Any) -> Agent:
    """Build a registered agent by name, e.g. ``make_agent("mempo", model="path/or/url")``."""
    eps = registered_agents()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none (is mempo-gym installed with `pip install -e .`?)"
        raise AgentNotFoundError(
            f"No agent named {name!r}. Registered agents: {known}. Third-party agents register "
            f"a factory in the {ENTRY_POINT_GROUP!r} entry-point group."
        )
    factory = eps[name].load()  # type: ignore[attr-defined]
    agent = factory(**options)
    if not isinstance(agent, Agent):
        raise TypeError(f"the factory of agent {name!r} returned {type(agent).__name__}, not a mempo_gym.Agent")
    return agent
