"""Plain records that feed the environment: questions, tasks and corpus documents.

Every dataset loader and task generator produces these, so environments never see
dataset specifics. They are frozen dataclasses that round-trip through JSON
(:meth:`Task.to_dict` / :meth:`Task.from_dict`).

>>> q = Question(text="Who directed Tarsa?", answers=("Mila Voss", "M. Voss"))
>>> t = Task(id="demo-0", questions=(q,), source="demo", split="dev")
>>> t.num_objectives
1
>>> Task.from_dict(t.to_dict()) == t
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Question:
    """One objective of a task.

    Attributes:
        text: the question as shown to the agent.
        answers: gold answer first, then aliases; every one counts as correct.
        supporting_titles: titles of the documents that together answer it, in hop
            order when known (empty for open-domain data without such labels).
        supporting_texts: the supporting paragraphs themselves when the dataset ships
            them (optional; used by oracle agents and retrieval benchmarks).
        kind: question type when known ("bridge", "comparison", ...).
    """

    text: str
    answers: tuple[str, ...]
    supporting_titles: tuple[str, ...] = ()
    supporting_texts: tuple[str, ...] = ()
    kind: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise ValueError("Question.text must be a non-empty string")
        answers = tuple(self.answers)
        if not answers or not all(isinstance(a, str) for a in answers):
            raise ValueError(
                f"Question {self.text[:60]!r}: answers must be a non-empty sequence of strings"
            )
        object.__setattr__(self, "answers", answers)
        object.__setattr__(self, "supporting_titles", tuple(self.supporting_titles))
        object.__setattr__(self, "supporting_texts", tuple(self.supporting_texts))


@dataclass(frozen=True)
class Task:
    """What one episode asks: one or several questions (objectives) answered together.

    A multi-objective task is answered as ``a1; a2; ...`` in question order.
    """

    id: str
    questions: tuple[Question, ...]
    source: str
    split: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        questions = tuple(self.questions)
        if not questions:
            raise ValueError(f"Task {self.id!r} has no questions")
        object.__setattr__(self, "questions", questions)

    @property
    def num_objectives(self) -> int:
        return len(self.questions)

    @property
    def golds(self) -> list[tuple[str, ...]]:
        """Gold answers with aliases, one tuple per objective."""
        return [q.answers for q in self.questions]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["meta"] = dict(self.meta)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Task":
        qs = tuple(
            Question(
                text=q["text"],
                answers=tuple(q["answers"]),
                supporting_titles=tuple(q.get("supporting_titles", ())),
                supporting_texts=tuple(q.get("supporting_texts", ())),
                kind=q.get("kind", ""),
            )
            for q in d["questions"]
        )
        return cls(
            id=d["id"], questions=qs, source=d["source"], split=d.get("split", ""),
            meta=dict(d.get("meta", {})),
        )


@dataclass(frozen=True)
class Document:
    """One searchable passage: ``id`` unique within its corpus."""

    id: str
    title: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "text": self.text}


__all__ = [
    "Document", "Question", "Task"
]
