"""Task prompts shown at the top of every context, versioned and recorded in runs.

The environment renders ``instructions`` followed by the question block. Reference
agents pick an instruction set by name (``INSTRUCTIONS[name]``); a custom agent may pass
any string as ``gym.make(..., instructions=...)``. Change ``PROMPTS_VERSION`` whenever a
text here changes, so runs with different prompts are never compared silently.
"""

from __future__ import annotations

from typing import Sequence

PROMPTS_VERSION = "2026-11-24.1"

MEMPO_INSTRUCTIONS = (
    "Answer the question by searching. Each turn, first rewrite your memory inside "
    "<mem> </mem>: keep every fact you will still need, because earlier turns are not "
    "shown again. Then reason inside <think> </think>. Then either search with "
    "<search> query </search> (results come back inside <information> </information>) "
    "or give the final answer with <answer> answer </answer>."
)

REACT_INSTRUCTIONS = (
    "Answer the question by searching. Each turn, reason inside <think> </think>, then "
    "either search with <search> query </search> (results come back inside "
    "<information> </information>) or give the final answer with <answer> answer </answer>."
)

MEM1_INSTRUCTIONS = (
    "Answer the question by searching. Each turn, write your internal state inside "
    "<think> </think>: summarise everything you know so far and what to do next, because "
    "earlier turns are not shown again. Then either search with <search> query </search> "
    "(results come back inside <information> </information>) or give the final answer "
    "with <answer> answer </answer>."
)

CLOSED_BOOK_INSTRUCTIONS = (
    "Answer the question from your own knowledge, without searching, inside "
    "<answer> answer </answer>."
)

INSTRUCTIONS: dict[str, str] = {
    "mempo": MEMPO_INSTRUCTIONS,
    "react": REACT_INSTRUCTIONS,
    "mem1": MEM1_INSTRUCTIONS,
    "closed-book": CLOSED_BOOK_INSTRUCTIONS,
}


def render_questions(questions: Sequence[str]) -> str:
    """The question block: one question, or a numbered list answered as ``a1; a2; …``.

    >>> print(render_questions(["Who?"]), end="")
    Question: Who?
    >>> print(render_questions(["Who?", "When?"]), end="")
    Questions (answer all, in order, separated by ';' inside one <answer> block):
    1. Who?
    2. When?
    """
    if len(questions) == 1:
        return f"Question: {questions[0]}\n"
    lines = "".join(f"{i}. {q}\n" for i, q in enumerate(questions, 1))
    return "Questions (answer all, in order, separated by ';' inside one <answer> block):\n" + lines


def render_prompt(instructions: str, questions: Sequence[str]) -> str:
    """The fixed head of every context in an episode."""
    head = instructions.rstrip() + "\n\n" if instructions.strip() else ""
    return head + render_questions(questions)


__all__ = [
    "CLOSED_BOOK_INSTRUCTIONS", "INSTRUCTIONS", "MEM1_INSTRUCTIONS", "MEMPO_INSTRUCTIONS",
    "PROMPTS_VERSION", "REACT_INSTRUCTIONS", "render_prompt", "render_questions"
]
