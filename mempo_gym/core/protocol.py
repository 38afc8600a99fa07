"""The tag protocol: how one agent turn is cut, parsed and judged well-formed.

A turn is free text in which the agent may write ``<mem>…</mem>`` and
``<think>…</think>`` blocks and must end with exactly one action:
``<search>query</search>`` or ``<answer>a1; a2</answer>``. Only the environment
writes ``<information>…</information>``.

Rules (each documented outcome is a *malformed turn*: no action runs, the turn is
counted in ``malformed_turns`` and the next observation explains what was wrong):

1. Text after the first ``</search>`` or ``</answer>`` is dropped (it acts as a stop string).
2. A turn that ends without one of those closing tags (EOS, ``max_turn_tokens``, or the
   end of a text action) is malformed.
3. ``<information>`` written by the agent, nested tags, a closing tag without its opening
   tag and an unclosed tag are malformed.
4. An empty search query or an empty answer is malformed.
5. Several ``<mem>`` blocks: the last one is the turn's memory.

>>> t = parse_turn("<mem>X directed Y</mem><think>need birthplace</think><search>X</search> junk")
>>> (t.action, t.query, t.mem, t.text.endswith("</search>"))
('search', 'X', 'X directed Y', True)
>>> parse_turn("<think>hmm").malformed
'the turn ended without </search> or </answer>'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Sequence

TAG_NAMES: tuple[str, ...] = ("mem", "think", "search", "answer", "information")
STOP_STRINGS: tuple[str, ...] = ("</search>", "</answer>")
_TAG_RE = re.compile(r"<(/?)(mem|think|search|answer|information)>")

Action = Literal["search", "answer", "none"]


@dataclass(frozen=True)
class ParsedTurn:
    """One agent turn after cutting and parsing.

    Attributes:
        text: the turn as kept (cut after the first stop string).
        action: ``"search"``, ``"answer"`` or ``"none"`` (malformed turns never act).
        query: the search query (stripped) when ``action == "search"``.
        answer: the answer text (stripped) when ``action == "answer"``.
        mem: content of the last complete ``<mem>`` block, or ``None``.
        think: content of the last complete ``<think>`` block, or ``None``.
        malformed: why the turn is malformed, or ``None`` when it is well-formed.
    """

    text: str
    action: Action
    query: str | None = None
    answer: str | None = None
    mem: str | None = None
    think: str | None = None
    malformed: str | None = None

    @property
    def well_formed(self) -> bool:
        return self.malformed is None


class StopDetector:
    """Decides, token by token, when a generated turn is over (rule 1, plus EOS).

    Only a token whose text contains a stop string's last character (``>`` for the tag
    protocol) can complete one, so the tail is decoded only after such a token (the answer
    per token id is cached). The environment, the trainer's sampler and the transformers
    backend share this so they end turns at the same token.

    Args:
        tokenizer: anything with ``decode(ids)`` and ``eos_token_id``.
        stop_strings: the strings that end a turn (default ``</search>``, ``</answer>``).
    """

    TAIL_TOKENS = 16  # a stop string of up to 16 characters always fits in the last 16 tokens

    def __init__(self, tokenizer: Any, stop_strings: Sequence[str] = STOP_STRINGS) -> None:
        self.tokenizer = tokenizer
        self.stop_strings = tuple(stop_strings)
        self.eos_token_id: int | None = getattr(tokenizer, "eos_token_id", None)
        self._last_chars = {s[-1] for s in self.stop_strings if s}
        self._may_close: dict[int, bool] = {}

    def is_eos(self, token: int) -> bool:
        return self.eos_token_id is not None and token == self.eos_token_id

    def completes_stop(self, ids: Sequence[int]) -> bool:
        """Whether the last token of ``ids`` completes a stop string."""
        if not len(ids):
            return False
        last = int(ids[-1])
        hit = self._may_close.get(last)
        if hit is None:
            piece = self.tokenizer.decode([last])
            hit = any(c in piece for c in self._last_chars)
            self._may_close[last] = hit
        if not hit:
            return False
        tail = self.tokenizer.decode([int(i) for i in ids[-self.TAIL_TOKENS:]])
        return any(s in tail for s in self.stop_strings)

    def __call__(self, ids: Sequence[int]) -> bool:
        """Whether the turn ``ids`` ends at its last token (EOS or a completed stop string)."""
        return self.is_eos(int(ids[-1])) or self.completes_stop(ids)


def find_stop(text: str) -> int:
    """Index just past the first stop string in ``text``, or -1 when there is none."""
    ends = [i + len(s) for s in STOP_STRINGS if (i := text.find(s)) >= 0]
    return min(ends) if ends else -1


def cut_at_stop(text: str) -> str:
    """Drop everything after the first ``</search>`` or ``</answer>`` (rule 1)."""
    end = find_stop(text)
    return text if end < 0 else text[:end]


def _last_block(text: str, tag: str) -> str | None:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.DOTALL)
    return blocks[-1].strip() if blocks else None


def _structure_error(text: str) -> str | None:
    """First violation of rule 3, scanning the tags left to right."""
    open_tag: str | None = None
    for m in _TAG_RE.finditer(text):
        closing, name = m.group(1) == "/", m.group(2)
        if name == "information":
            return "only the environment writes <information>; do not write it yourself"
        if not closing:
            if open_tag is not None:
                return f"<{name}> is nested inside <{open_tag}>; close each block before opening the next"
            open_tag = name
        else:
            if open_tag != name:
                return f"</{name}> appears without a matching <{name}>"
            open_tag = None
    if open_tag is not None:
        return f"<{open_tag}> is never closed"
    return None


def parse_turn(raw: str) -> ParsedTurn:
    """Cut ``raw`` at the first stop string and parse it (never raises)."""
    text = cut_at_stop(raw)
    mem, think = _last_block(text, "mem"), _last_block(text, "think")

    def bad(reason: str) -> ParsedTurn:
        return ParsedTurn(text=text, action="none", mem=mem, think=think, malformed=reason)

    if not text.strip():
        return bad("the turn was empty")
    if find_stop(text) < 0:
        return bad("the turn ended without </search> or </answer>")
    error = _structure_error(text)
    if error:
        return bad(error)
    if text.endswith("</search>"):
        query = _last_block(text, "search")
        if not query:
            return bad("the search query was empty")
        return ParsedTurn(text=text, action="search", query=query, mem=mem, think=think)
    answer = _last_block(text, "answer")
    if not answer:
        return bad("the answer was empty")
    return ParsedTurn(text=text, action="answer", answer=answer, mem=mem, think=think)


__all__ = [
    "Action", "ParsedTurn", "STOP_STRINGS", "StopDetector", "TAG_NAMES", "cut_at_stop", "find_stop",
    "parse_turn"
]
