"""LLM agents: one backend call per turn, the env's context is the prompt.

All four methods share :class:`LLMAgent` and differ only in the environment settings they
ask for (:meth:`~mempo_gym.agent.Agent.env_kwargs`): the instruction text and the memory
method.

* :class:`MemPOAgent` — ``<mem>`` self-memory (MemPO), ``memory="self"``.
* :class:`FullContextAgent` — ReAct / Search-R1, every turn kept, ``memory="full"``.
* :class:`ExternalMemoryAgent` — ReAct with past turns retrieved by BM25 or embeddings.
* :class:`MEM1Agent` — MEM1, the latest ``<think>`` is the state
  (:class:`mempo_agents.memory.ThinkStateMemory`).

Model output is passed to the environment verbatim (the backend already cut it after the
first stop string). Missing or malformed tags, and a stop string the model only half wrote
(e.g. a turn ending in ``"</sear"`` because ``max_new_tokens`` ran out), are NOT repaired:
the environment judges them as malformed turns under its protocol rules. Agents never crash
on model output.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

from mempo_gym.agent import Agent
from mempo_gym.prompts import INSTRUCTIONS
from mempo_gym.records import Task

from mempo_agents.backends.base import DEFAULT_STOP, Backend
from mempo_agents.memory import ThinkStateMemory

EXTERNAL_RANKERS = ("bm25", "embedding")


def observation_context(observation: Mapping[str, Any], info: Mapping[str, Any]) -> str:
    """The text the model reads (text action mode), with a clear error in token mode."""
    context = observation.get("context", info.get("context"))
    if not isinstance(context, str):
        raise TypeError(
            "LLM agents need action_mode='text' (observation['context'] is the prompt); "
            "this observation has no 'context' string"
        )
    return context


class LLMAgent(Agent):
    """An agent whose turns are a backend's continuations of the env's context.

    Args:
        backend: any :class:`~mempo_agents.backends.base.Backend`.
        instructions: name in :data:`mempo_gym.prompts.INSTRUCTIONS`.
        max_new_tokens: tokens one turn may generate.
        temperature: 0 = greedy.
        top_p: nucleus sampling mass.
        seed: base seed; call ``n`` of this agent uses ``seed + n``.
        stop: stop strings (default ``</search>``, ``</answer>``).
        checkpoint_env: env settings the model was trained with (tokenizer, task
            distribution), merged into :meth:`env_kwargs`.
        repeat_temperature: when a slot's context is one it has already been given in
            this episode, sample that turn at this temperature instead of decoding greedily
            (``None``, the default: never). Under self-memory an unchanged memory and query
            give back the same context, on which greedy decoding repeats itself until the
            turn limit; this breaks such a loop and changes nothing else.
    """

    name = "llm"
    memory: str = "self"

    def __init__(
        self,
        backend: Backend,
        *,
        instructions: str = "mempo",
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        stop: Sequence[str] = DEFAULT_STOP,
        checkpoint_env: Mapping[str, Any] | None = None,
        repeat_temperature: float | None = None,
    ) -> None:
        if not callable(getattr(backend, "generate", None)):
            raise TypeError(f"backend must have a generate(prompts, ...) method, got {type(backend).__name__}")
        if instructions not in INSTRUCTIONS:
            raise ValueError(f"instructions must be one of {sorted(INSTRUCTIONS)}, got {instructions!r}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.backend = backend
        self.instructions = instructions
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.seed = int(seed)
        self.stop = tuple(stop)
        self.checkpoint_env = dict(checkpoint_env or {})
        if repeat_temperature is not None and not repeat_temperature > 0:
            raise ValueError(f"repeat_temperature must be > 0 or None, got {repeat_temperature}")
        self.repeat_temperature = None if repeat_temperature is None else float(repeat_temperature)
        self._seen: dict[int, set[str]] = defaultdict(set)
        self.repeats = 0  # turns sampled at repeat_temperature (all episodes)
        self._calls = 0
        self._usage: dict[int, dict[str, int]] = defaultdict(dict)

    def env_kwargs(self) -> dict[str, Any]:
        """The method's memory and instructions; the settings its checkpoint was trained with win."""
        return {
            "memory": self.memory, "instructions": INSTRUCTIONS[self.instructions], "action_mode": "text",
            **self.checkpoint_env,
        }

    def reset(self, task: Task, slot: int = 0) -> None:
        self._usage[slot] = {}
        self._seen[slot] = set()

    def usage(self, slot: int = 0) -> dict[str, int]:
        """Backend-reported token counts of the episode in ``slot`` (summed over calls).

        For comparison with the env's meter only: with a chat template,
        ``template_tokens`` are tokens the model read that the env does not count.
        """
        return dict(self._usage[slot])

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any], slot: int = 0) -> str:
        return self.act_batch([observation], [info], [slot])[0]

    def act_batch(
        self,
        observations: Sequence[Mapping[str, Any]],
        infos: Sequence[Mapping[str, Any]],
        slots: Sequence[int],
    ) -> list[str]:
        prompts = [observation_context(o, i) for o, i in zip(observations, infos)]
        if not prompts:
            return []
        repeated = [self.repeat_temperature is not None and self.temperature == 0 and p in self._seen[s]
                    for p, s in zip(prompts, slots)]
        for p, s in zip(prompts, slots):
            self._seen[s].add(p)
        generations: list[Any] = [None] * len(prompts)
        for sampled in (False, True):
            rows = [r for r, rep in enumerate(repeated) if rep == sampled]
            if not rows:
                continue
            out = self.backend.generate(
                [prompts[r] for r in rows], self.max_new_tokens, stop=self.stop,
                temperature=self.repeat_temperature if sampled else self.temperature,
                top_p=self.top_p, seed=self.seed + self._calls,
            )
            if len(out) != len(rows):
                raise RuntimeError(f"backend returned {len(out)} generations for {len(rows)} prompts")
            for r, gen in zip(rows, out):
                generations[r] = gen
            self.repeats += len(rows) if sampled else 0
        self._calls += 1
        for slot, gen in zip(slots, generations):
            totals = self._usage[slot]
            totals["calls"] = totals.get("calls", 0) + 1
            for key, value in gen.usage.items():
                totals[key] = totals.get(key, 0) + int(value)
        return [gen.text for gen in generations]

    def describe(self) -> dict[str, Any]:
        describe = getattr(self.backend, "describe", None)
        return {
            "name": self.name,
            "instructions": self.instructions,
            "memory": self.memory,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "checkpoint_env": self.checkpoint_env,
            "repeat_temperature": self.repeat_temperature,
            "backend": describe() if callable(describe) else type(self.backend).__name__,
        }


class MemPOAgent(LLMAgent):
    """MemPO: the agent rewrites its ``<mem>`` each turn; the env keeps only that and the newest information."""

    name = "mempo"
    memory = "self"

    def __init__(self, backend: Backend, **options: Any) -> None:
        options.setdefault("instructions", "mempo")
        super().__init__(backend, **options)


class FullContextAgent(LLMAgent):
    """ReAct / Search-R1: every turn and every information block stays in the context."""

    name = "full-context"
    memory = "full"

    def __init__(self, backend: Backend, **options: Any) -> None:
        options.setdefault("instructions", "react")
        super().__init__(backend, **options)


class ExternalMemoryAgent(LLMAgent):
    """ReAct whose past turns live in an external store; each call sees the ``top_k`` most relevant.

    Args:
        ranker: ``"bm25"`` or ``"embedding"`` (bundled all-MiniLM-L6-v2).
    """

    name = "external-memory"
    memory = "external"

    def __init__(self, backend: Backend, *, ranker: str = "bm25", **options: Any) -> None:
        if ranker not in EXTERNAL_RANKERS:
            raise ValueError(f"ranker must be one of {EXTERNAL_RANKERS}, got {ranker!r}")
        options.setdefault("instructions", "react")
        super().__init__(backend, **options)
        self.ranker = ranker

    def env_kwargs(self) -> dict[str, Any]:
        return {**super().env_kwargs(), "external_ranker": self.ranker}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ranker": self.ranker}


class MEM1Agent(LLMAgent):
    """MEM1: the latest ``<think>`` block is the agent's whole state between turns."""

    name = "mem1"
    memory = "mem1-think-state"

    def __init__(self, backend: Backend, **options: Any) -> None:
        options.setdefault("instructions", "mem1")
        super().__init__(backend, **options)

    def env_kwargs(self) -> dict[str, Any]:
        return {**super().env_kwargs(), "memory": ThinkStateMemory()}
