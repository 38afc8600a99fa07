"""A tiny real MemoryEnv and a scripted searching agent for the harness/leaderboard tests.

Importable as ``_harness_envs`` (tests/ on ``sys.path``), so subprocesses can use
``gym.make("_harness_envs:MemPOTest-Tiny-v0")`` and ``--agent _harness_envs:make_searcher``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import gymnasium as gym

from mempo_gym.agent import Agent
from mempo_gym.core.env import MemoryEnv
from mempo_gym.records import Question, Task
from mempo_gym.tokenizer import load_tokenizer

ENV_ID = "MemPOTest-Tiny-v0"
SHORT_ENV_ID = "MemPOTest-TinyShort-v0"  # same tasks, at most 2 turns
FULL_ENV_ID = f"_harness_envs:{ENV_ID}"

FACTS = {
    "Who founded Karovi?": "Mila Voss",
    "Where is Tesumo?": "Lake Dara",
    "When was Bezo built?": "1889",
    "What does Nufa sell?": "blue glass",
    "Who painted Rivo?": "Ana Kell",
    "Which river crosses Pami?": "the Sola",
}
UNFINDABLE = {"Who wrote Zeta?": "Oren Vale"}


def _tasks() -> list[Task]:
    qs = [Question(text=q, answers=(a,)) for q, a in {**FACTS, **UNFINDABLE}.items()]
    tasks = [Task(id=f"tiny-{i}", questions=(q,), source="tiny", split="test") for i, q in enumerate(qs)]
    tasks.append(Task(id="tiny-pair-0", questions=(qs[0], qs[2]), source="tiny", split="test"))
    tasks.append(Task(id="tiny-pair-1", questions=(qs[3], qs[6]), source="tiny", split="test"))
    tasks.append(Task(id="tiny-triple-0", questions=(qs[1], qs[4], qs[5]), source="tiny", split="test"))
    return tasks


class DictSearch:
    """Looks a query up among the known questions; the document states the answer."""

    def search(self, query: str) -> str:
        key = query.strip()
        if key in FACTS:
            return f"Record: the answer to '{key}' is {FACTS[key]}."
        return "No results."

    def describe(self) -> dict[str, Any]:
        return {"name": "dict-search", "facts": len(FACTS)}


_TOKENIZER: Any = None


def _tokenizer() -> Any:
    """The default SmolLM2 tokenizer, loaded once per process."""
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = load_tokenizer(None)
    return _TOKENIZER


def make_tiny_env(**kwargs: Any) -> MemoryEnv:
    kwargs.setdefault("max_turns", 6)
    return MemoryEnv(_tasks(), DictSearch(), tokenizer=_tokenizer(), **kwargs)


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=make_tiny_env)
    gym.register(SHORT_ENV_ID, entry_point=make_tiny_env, kwargs={"max_turns": 2})


_INFO = re.compile(r"<information>(.*?)</information>", re.S)
_MEM = re.compile(r"<mem>(.*?)</mem>", re.S)


class ScriptedSearcher(Agent):
    """Searches each question verbatim, keeps found answers in ``<mem>``, then answers.

    It reads only the questions (never golds) and what the environment shows it.
    """

    name = "scripted-searcher"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = float(delay)
        self.questions: dict[int, list[str]] = {}
        self.batch_sizes: list[int] = []

    def reset(self, task: Task, slot: int = 0) -> None:
        self.questions[slot] = [q.text for q in task.questions]

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any], slot: int = 0) -> str:
        context = observation["context"]
        context = context[context.find("Question"):]  # skip the instructions' tag examples
        mem = _MEM.findall(context)
        found = [a for a in (mem[-1].split("|") if mem else []) if a.strip()]
        infos = _INFO.findall(context)
        if infos and len(found) < len(self.questions[slot]) and "Search" not in infos[-1][:8]:
            match = re.search(r" is (.*)\.$", infos[-1].strip())
            found.append(match.group(1) if match else "unknown")
        questions = self.questions[slot]
        memory = "<mem>" + "|".join(found) + "</mem>"
        if len(found) < len(questions):
            return f"{memory}<think>look it up</think><search>{questions[len(found)]}</search>"
        return f"{memory}<think>done</think><answer>{'; '.join(found)}</answer>"

    def act_batch(self, observations: Sequence[Mapping[str, Any]], infos: Sequence[Mapping[str, Any]],
                  slots: Sequence[int]) -> list[str]:
        self.batch_sizes.append(len(slots))
        if self.delay:
            time.sleep(self.delay)
        return [self.act(o, i, s) for o, i, s in zip(observations, infos, slots)]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "delay": self.delay}


def make_searcher(**options: Any) -> ScriptedSearcher:
    """Factory used by the CLI as ``--agent _harness_envs:make_searcher``."""
    options.pop("model", None)
    return ScriptedSearcher(**options)


TESTS_DIR = Path(__file__).parent
