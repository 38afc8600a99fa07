"""The token meter: the one place where MemPO-Gym counts tokens.

Every turn is one model call. For call ``i`` with ``in_i`` context tokens (what the
model reads) and ``out_i`` tokens generated in that turn:

* ``tokens_total = Σ_i (in_i + out_i)`` — what an API bills for the episode;
* ``tokens_peak = max_i (in_i + out_i)`` — the largest context a model had to hold;
* ``tokens_generated = Σ_i out_i``;
* ``calls`` — the number of model calls (= turns).

All counts use the environment's tokenizer on the text the environment showed and
received. Agents never report their own counts.

>>> m = TokenMeter()
>>> m.record(100, 20); m.record(150, 30)
>>> (m.total, m.peak, m.generated, m.calls)
(300, 180, 50, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenMeter:
    """Per-episode token accounting (see module docstring for the definitions)."""

    input_tokens: list[int] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)

    def reset(self) -> None:
        self.input_tokens.clear()
        self.output_tokens.clear()

    def record(self, input_tokens: int, output_tokens: int) -> None:
        """Record one model call."""
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError("token counts are non-negative")
        self.input_tokens.append(int(input_tokens))
        self.output_tokens.append(int(output_tokens))

    @property
    def calls(self) -> int:
        return len(self.input_tokens)

    @property
    def total(self) -> int:
        return sum(self.input_tokens) + sum(self.output_tokens)

    @property
    def peak(self) -> int:
        return max((i + o for i, o in zip(self.input_tokens, self.output_tokens)), default=0)

    @property
    def generated(self) -> int:
        return sum(self.output_tokens)

    def summary(self) -> dict[str, int]:
        return {
            "tokens_total": self.total,
            "tokens_peak": self.peak,
            "tokens_generated": self.generated,
            "calls": self.calls,
        }


__all__ = [
    "TokenMeter"
]
