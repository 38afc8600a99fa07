"""A verifiers environment (``pip install verifiers``, the v1 stack of verifiers 0.4) over MemPO-Gym.

verifiers loads an environment by a top-level module name, ``mempo-gym-verifiers``
(:mod:`mempo_gym_verifiers`, shipped with MemPO-Gym, re-exports this module). It holds a taskset
(:class:`MemPOTaskset`, one task per episode, seeded like the harness) and the env that
plays it (:class:`MemPOVerifiersEnv`)::

    vf-eval mempo-gym-verifiers --env.taskset.env-id MemPO-HotpotQA-v0 ...

    from verifiers.v1.utils.loaders import environment_class, load_taskset
    taskset = load_taskset(MemPOTasksetConfig(id="mempo-gym-verifiers", env_id="MemPO-SynthWiki-v0"))

Memory is the point of MemPO-Gym, so the env does not let verifiers keep a growing chat:
every turn is its own one-message interaction whose prompt is exactly the env's
``observation["context"]`` (self-memory: the question, the last ``<mem>`` and the newest
information). The episode's reward (F1 by default) and its token metrics are recorded on
every turn's trace (the trajectory-level reward each turn shares).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterator

import gymnasium as gym

try:
    import verifiers.v1 as vf
except ImportError as exc:  # pragma: no cover - exercised only without the package
    raise ImportError("mempo_gym.integrations.verifiers needs verifiers>=0.4: pip install verifiers") from exc

from mempo_gym.harness.task_order import DEFAULT_TASK_ORDER, reset_arguments

#: Metrics copied from the env's final ``info["metrics"]`` onto each trace.
TRACE_METRICS = ("f1", "em", "tokens_total", "tokens_peak", "tokens_generated", "turns", "searches",
                 "malformed_turns")


class MemPOTasksetConfig(vf.TasksetConfig):
    """Which MemPO-Gym env and episodes the taskset holds."""

    env_id: str = "MemPO-SynthWiki-v0"
    episodes: int = 100
    seed: int = 0
    env_kwargs: dict[str, Any] = {}


class MemPOData(vf.TaskData):
    info: dict
    """``env_id``, ``reset`` (the ``env.reset`` arguments), ``env_kwargs`` and the MemPO-Gym ``task_id``."""


class MemPOTask(vf.Task[MemPOData, vf.State, vf.TaskConfig]):
    pass


def _make_env(info: dict[str, Any]) -> gym.Env:
    kwargs = dict(info.get("env_kwargs") or {})
    if kwargs.get("action_mode", "text") != "text":
        raise ValueError("verifiers turns are text: leave action_mode at 'text'")
    return gym.make(info["env_id"], **kwargs)


class MemPOTaskset(vf.Taskset[MemPOTask, MemPOTasksetConfig]):
    """Episode ``i`` is reset as the harness resets it (:func:`~mempo_gym.harness.task_order.reset_arguments`)."""

    def load(self) -> Iterator[MemPOTask]:
        cfg = self.config
        env = _make_env({"env_id": cfg.env_id, "env_kwargs": cfg.env_kwargs})
        try:
            num_tasks = len(env.unwrapped.tasks)
            for index in range(cfg.episodes):
                reset = reset_arguments(DEFAULT_TASK_ORDER, cfg.seed, cfg.env_id, index, num_tasks)
                observation, _ = env.reset(**reset)
                task = env.unwrapped.task
                yield MemPOTask(MemPOData(
                    id=f"{cfg.env_id}#{index}", name=task.id, prompt=str(observation["context"]),
                    info={"env_id": cfg.env_id, "reset": reset, "env_kwargs": dict(cfg.env_kwargs),
                          "task_id": task.id},
                ), cfg.task)
        finally:
            env.close()


async def play_episode(info: dict[str, Any], turn: Callable[[str], Awaitable[str]]) -> dict[str, Any]:
    """Play one MemPO-Gym episode; ``turn(context)`` returns the model's turn. Returns the final info."""
    env = _make_env(info)
    try:
        observation, step_info = env.reset(**info["reset"])
        while True:
            action = await turn(str(observation["context"]))
            observation, _, terminated, truncated, step_info = env.step(action)
            if terminated or truncated:
                return dict(step_info)
    finally:
        env.close()


class MemPOEnvConfig(vf.EnvConfig):
    """One ``player`` seat on the ``null`` harness (a plain chat turn: no tools, no code execution)."""

    player: vf.AgentConfig = vf.AgentConfig(harness=vf.HarnessConfig(id="null"))


class MemPOVerifiersEnv(vf.Env[MemPOEnvConfig]):
    """Plays a :class:`MemPOTask`: one interaction per turn, prompted with the env's context."""

    async def run(self, task: Any, agents: Any) -> None:
        traces: list[Any] = []

        async def turn(context: str) -> str:
            async with agents.player.interaction(task.with_data(prompt=context)) as interaction:
                segment = await interaction.turn()
                traces.append(interaction.trace)
                return "" if segment.terminated else segment.last_reply

        final = await play_episode(task.data.info, turn)
        metrics = final.get("metrics", {})
        for trace in traces:
            trace.record_reward("mempo_gym_reward", float(metrics.get("reward", metrics.get("f1", 0.0)) or 0.0), 1.0)
            for name in TRACE_METRICS:
                if isinstance(metrics.get(name), (int, float)):
                    trace.record_metric(name, float(metrics[name]))


__all__ = ["MemPOTaskset", "MemPOVerifiersEnv"]
