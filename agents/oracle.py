"""The oracle control: reads the golds, searches the supporting titles, answers correctly.

It is the upper bound of a run (F1 = 1.0 whenever the search tool finds the supporting
documents by title) and the source of well-formed cold-start SFT trajectories: every turn
is ``<mem>…</mem><think>…</think>`` followed by ``<search>title</search>`` or the answer.

Memory contents are faithful and compact: for the question being worked on, the first
sentence (at most ``max_fact_words`` words) of the document found for each hop; for
finished questions, only ``Qk: answer``. Tasks without supporting titles get one search
with the question text per question, then the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from mempo_gym.agent import Agent
from mempo_gym.prompts import INSTRUCTIONS
from mempo_gym.records import Task

_DOC_LINE = re.compile(r"^Doc \d+ \(Title: (?P<title>.*?)\) (?P<text>.*)$")
_TAGS = re.compile(r"</?(?:mem|think|search|answer|information)>")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def clean(text: str) -> str:
    """``text`` on one line with protocol tags removed (safe inside any block)."""
    return " ".join(_TAGS.sub(" ", text).split())


def first_sentence(text: str, max_words: int) -> str:
    sentence = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    words = sentence.split()
    return " ".join(words[:max_words]) + (" ..." if len(words) > max_words else "")


def newest_information(context: str) -> str | None:
    """Text of the last ``<information>`` block in ``context``."""
    start = context.rfind("<information>")
    if start < 0:
        return None
    end = context.find("</information>", start)
    return context[start + len("<information>"): end if end >= 0 else len(context)]


def fact_from_information(information: str, query: str, max_words: int) -> str:
    """The first sentence of the hit titled ``query`` (else of the first hit / the text)."""
    hits = [m for line in information.splitlines() if (m := _DOC_LINE.match(line.strip()))]
    chosen = next((m for m in hits if m.group("title").strip().lower() == query.strip().lower()), None)
    if chosen is None and hits:
        chosen = hits[0]
    if chosen is not None:
        return clean(f"{chosen.group('title')}: {first_sentence(chosen.group('text'), max_words)}")
    return clean(first_sentence(information, max_words))


@dataclass
class _Episode:
    steps: list[tuple[int, str]]  # (question index, query) in search order
    answers: list[str]
    position: int = 0
    facts: dict[int, list[str]] = field(default_factory=dict)


class OracleAgent(Agent):
    """Upper-bound control that reads gold answers and supporting titles (see module doc).

    Args:
        memory: env memory method to request (``"self"`` by default; any works).
        max_fact_words: words kept from each fact's first sentence.
    """

    name = "oracle"

    def __init__(self, *, memory: str = "self", instructions: str = "mempo", max_fact_words: int = 20) -> None:
        if instructions not in INSTRUCTIONS:
            raise ValueError(f"instructions must be one of {sorted(INSTRUCTIONS)}, got {instructions!r}")
        if max_fact_words < 1:
            raise ValueError(f"max_fact_words must be >= 1, got {max_fact_words}")
        self.memory, self.instructions, self.max_fact_words = memory, instructions, int(max_fact_words)
        self._episodes: dict[int, _Episode] = {}

    def env_kwargs(self) -> dict[str, Any]:
        return {"memory": self.memory, "instructions": INSTRUCTIONS[self.instructions], "action_mode": "text"}

    def reset(self, task: Task, slot: int = 0) -> None:
        steps: list[tuple[int, str]] = []
        for qi, question in enumerate(task.questions):
            titles = [clean(t) for t in question.supporting_titles if clean(t)]
            queries = list(dict.fromkeys(titles)) or [clean(question.text)]
            steps.extend((qi, q) for q in queries)
        answers = [clean(q.answers[0]) or q.answers[0] for q in task.questions]
        self._episodes[slot] = _Episode(steps=steps, answers=answers)

    def _memory_text(self, ep: _Episode, current: int) -> str:
        parts = []
        for qi in sorted(ep.facts):
            if qi < current:
                parts.append(f"Q{qi + 1}: {ep.answers[qi]}")
            else:
                parts.append(f"Q{qi + 1} facts: " + " | ".join(ep.facts[qi]))
        return "; ".join(parts) if parts else "nothing found yet"

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any], slot: int = 0) -> str:
        ep = self._episodes.get(slot)
        if ep is None:
            raise RuntimeError(f"OracleAgent.reset(task, slot={slot}) must be called before act()")
        context = observation.get("context", info.get("context", ""))
        if ep.position > 0:
            qi, query = ep.steps[ep.position - 1]
            information = newest_information(context if isinstance(context, str) else "")
            if information is not None:
                ep.facts.setdefault(qi, []).append(fact_from_information(information, query, self.max_fact_words))
        if ep.position < len(ep.steps):
            qi, query = ep.steps[ep.position]
            ep.position += 1
            mem = self._memory_text(ep, qi)
            think = f"For question {qi + 1} I look up {query}."
            return f"<mem>{mem}</mem>\n<think>{think}</think>\n<search>{query}</search>"
        for qi in range(len(ep.answers)):
            ep.facts.setdefault(qi, [])
        mem = self._memory_text(ep, len(ep.answers))
        return f"<mem>{mem}</mem>\n<think>I have what I need to answer.</think>\n<answer>{'; '.join(ep.answers)}</answer>"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "memory": self.memory, "instructions": self.instructions,
                "max_fact_words": self.max_fact_words}
