"""Token accounting rules: how text becomes counted tokens, and how text is cut to N tokens.

Everything in MemPO-Gym that counts or caps tokens goes through this module: the env's
meter (:mod:`mempo_gym.core.meter` sums what it produces), passage caps in
:mod:`mempo_gym.retrieval`, page caps in :mod:`mempo_gym.web` and the leaderboard's checks.

Rules:

* **Count.** The tokens of a text are ``tokenizer.encode(text, add_special_tokens=False)``
  (:meth:`TokenCounter.ids`); the count is their number. Nothing else is a token count.
* **Cut.** ``cut(text, cap)`` keeps the longest prefix of ``text`` that ends where one of its
  first ``cap`` tokens ends (a character split between tokens is never cut in half, so the
  kept text never has more than ``cap`` tokens), with trailing whitespace dropped; the text
  is kept verbatim (it is never decoded). Without character offsets (a slow tokenizer, a
  custom counter) it is the longest whitespace-word prefix with at most ``cap`` tokens.
* **Seam rule (incremental encoding).** A context that extends an already encoded text
  (the previous context, or the episode's fixed prompt) is not encoded whole: the ids of
  the shared text are kept up to a seam, the start of the token ``SEAM_OVERLAP`` tokens
  before the end of the shared part, and only the text from the seam on is encoded. The
  overlap tokens must come out of that encode unchanged, else the whole text is encoded
  (so a tokenizer that merges across the seam costs time, never exactness). Byte-level BPE
  and word-level tokenizers split their input into pieces at whitespace and punctuation
  before merging, and every piece the env appends starts with a tag or a newline, so the
  ids equal a full encode (``tests/test_tokens.py`` checks this on random transcripts and
  on every registered env).

>>> counter = TokenCounter(None)            # no tokenizer: whitespace words
>>> counter.count("one two  three")
3
>>> counter.cut("one two  three", 2)
('one two', True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

SEAM_OVERLAP = 2
_WORD = re.compile(r"\S+")

Spans = list[tuple[int, int]]


@dataclass(frozen=True)
class Encoded:
    """A text with its token ids and, when the tokenizer reports them, each token's
    ``(start, end)`` character span."""

    text: str
    ids: list[int]
    spans: Spans | None


class TokenCounter:
    """The counting and cutting rules (module docstring) bound to one tokenizer.

    Args:
        tokenizer: a :class:`mempo_gym.tokenizer.FastTokenizer`, a transformers tokenizer,
            a ``tokenizers.Tokenizer``, any object with ``encode``; or ``None`` to count
            whitespace-separated words.
    """

    def __init__(self, tokenizer: Any) -> None:
        if tokenizer is not None and not callable(getattr(tokenizer, "encode", None)):
            raise TypeError(f"tokenizer must have an encode(text) method; got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        self._with_spans: Callable[[str], tuple[list[int], Spans | None]] = self._pick_encoder(tokenizer)
        plain = tokenizer is not None and (hasattr(tokenizer, "encode_with_spans") or (
            callable(tokenizer) and hasattr(tokenizer, "is_fast")))
        self._plain = plain

    @property
    def unit(self) -> str:
        """What one counted unit is, for run configs."""
        if self.tokenizer is None:
            return "whitespace words"
        name = getattr(self.tokenizer, "name_or_path", "")
        return f"tokens of {type(self.tokenizer).__name__}" + (f" ({name})" if name else "")

    @staticmethod
    def _pick_encoder(tok: Any) -> Callable[[str], tuple[list[int], Spans | None]]:
        if tok is None:
            def words(text: str) -> tuple[list[int], Spans | None]:
                spans = [m.span() for m in _WORD.finditer(text)]
                return list(range(len(spans))), spans
            return words
        if callable(getattr(tok, "encode_with_spans", None)):  # FastTokenizer
            return tok.encode_with_spans
        if callable(tok) and getattr(tok, "is_fast", False):  # transformers fast tokenizer
            def hf_fast(text: str) -> tuple[list[int], Spans | None]:
                enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
                return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
            return hf_fast
        if callable(tok) and hasattr(tok, "is_fast"):  # transformers slow tokenizer
            return lambda text: (list(tok.encode(text, add_special_tokens=False)), None)

        def generic(text: str) -> tuple[list[int], Spans | None]:
            try:
                enc = tok.encode(text, add_special_tokens=False)
            except TypeError:
                enc = tok.encode(text)
            if hasattr(enc, "ids"):  # tokenizers.Encoding
                offsets = getattr(enc, "offsets", None)
                return list(enc.ids), [tuple(o) for o in offsets] if offsets is not None else None
            return list(enc), None
        return generic

    # ------------------------------------------------------------------ count
    def ids(self, text: str) -> list[int]:
        """The token ids of ``text`` (the counting rule)."""
        if self._plain:
            return list(self.tokenizer.encode(text, add_special_tokens=False))
        return self._with_spans(text)[0]

    def count(self, text: str) -> int:
        """Number of tokens of ``text``."""
        return len(self.ids(text))

    def encode(self, text: str) -> Encoded:
        """``text`` with its ids and spans."""
        ids, spans = self._with_spans(text)
        return Encoded(text, ids, spans)

    # ------------------------------------------------------------------ cut
    def cut(self, text: str, cap: int) -> tuple[str, bool]:
        """``text`` cut to at most ``cap`` tokens (the cut rule); ``(text, was_cut)``."""
        return cut_to_tokens(text, cap, self)

    # ------------------------------------------------------------------ incremental
    def extend(self, base: Encoded, text: str) -> tuple[Encoded, int]:
        """Encode ``text``, which starts with ``base.text``, by the seam rule.

        Returns the encoding and the index of the first id that may differ from
        ``base.ids`` (ids before it are ``base``'s)."""
        if base.spans is None or not text.startswith(base.text):
            return self.encode(text), 0
        ids, spans = base.ids, base.spans
        n = len(ids)
        s = max(0, n - SEAM_OVERLAP)
        while 0 < s < n and spans[s][0] < spans[s - 1][1]:  # never split a character
            s -= 1
        seam = spans[s][0] if 0 < s < n else (len(base.text) if s else 0)
        tail_ids, tail_spans = self._with_spans(text[seam:])
        if tail_spans is None or tail_ids[: n - s] != ids[s:]:
            return self.encode(text), 0  # the tokenizer merged across the seam
        if seam:
            tail_spans = [(a + seam, b + seam) for a, b in tail_spans]
        return Encoded(text, ids[:s] + tail_ids, spans[:s] + tail_spans), n


def cut_to_tokens(text: str, cap: int, counter: TokenCounter | Callable[[str], int]) -> tuple[str, bool]:
    """``text`` cut to at most ``cap`` tokens of ``counter`` (a :class:`TokenCounter` or a
    plain ``count(text) -> int``); ``(text, was_cut)``. See the module's cut rule."""
    if isinstance(counter, TokenCounter):
        ids, spans = counter._with_spans(text)
        if len(ids) <= cap:
            return text, False
        if cap <= 0:
            return "", True
        if spans is not None and len(spans) == len(ids):
            k = cap
            while k > 0 and spans[k][0] < spans[k - 1][1]:  # token k shares a character with k-1
                k -= 1
            return (text[: spans[k - 1][1]].rstrip() if k else ""), True
        count: Callable[[str], int] = counter.count
    else:
        count = counter
        if count(text) <= cap:
            return text, False
    ends = [m.end() for m in _WORD.finditer(text)]
    low, high = 0, len(ends)  # invariant: a prefix of `low` words fits; `high` words may not
    while low < high:
        mid = (low + high + 1) // 2
        if count(text[: ends[mid - 1]]) <= cap:
            low = mid
        else:
            high = mid - 1
    return (text[: ends[low - 1]] if low else ""), True


def count_tokens(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Token counts of ``texts`` with ``tokenizer`` by the counting rule (for checkers that
    rebuild an episode's sums)."""
    counter = TokenCounter(tokenizer)
    return [counter.count(t) for t in texts]


__all__ = [
    "Encoded", "SEAM_OVERLAP", "Spans", "TokenCounter", "count_tokens", "cut_to_tokens"
]
