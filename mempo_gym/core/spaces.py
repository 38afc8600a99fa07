"""A Gymnasium text space that accepts any Unicode string up to a length."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium.spaces import Text

_SAMPLE_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:?!'\"-()<>/\n"
    "éüßøçñ中文字日本語Ωπ∑😀"
)


class UnicodeText(Text):
    """Like :class:`gymnasium.spaces.Text`, but ``contains`` accepts every character.

    Sampling draws from a mixed ASCII/Unicode alphabet that includes the tag characters,
    so random actions exercise the tag parser.
    """

    def __init__(self, max_length: int, *, min_length: int = 0, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(max_length=max_length, min_length=min_length, charset=_SAMPLE_CHARS, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, UnicodeText) and (self.min_length, self.max_length) == (other.min_length, other.max_length)


_TOKEN_CHARS: dict[tuple[str, int], int] = {}


def max_token_chars(tokenizer: Any) -> int:
    """The most characters one token of ``tokenizer`` decodes to (bounds the context's
    length; cached per tokenizer name and size)."""
    try:
        key = (str(getattr(tokenizer, "name_or_path", type(tokenizer).__name__)), len(tokenizer))
        if key not in _TOKEN_CHARS:
            _TOKEN_CHARS[key] = max(1, max(len(tokenizer.decode([i])) for i in range(key[1])))
        return _TOKEN_CHARS[key]
    except Exception:  # a tokenizer that cannot decode single ids: a generous fixed bound
        return 128


def context_space(context_budget: int, chars_per_token: int) -> UnicodeText:
    """The text space of a context of at most ``context_budget`` tokens (twice that, for the
    last observation of a truncated episode), each at most ``chars_per_token`` characters.

    Bounded so that async vector envs can share it: ``4 * num_envs * max_length`` bytes.
    """
    return UnicodeText(max_length=2 * int(context_budget) * int(chars_per_token))


# Async vector envs pass observations through shared memory. Gymnasium's Text handlers
# index characters in the space's charset; UnicodeText stores code points (+1, 0 = padding).
from gymnasium.vector.utils import shared_memory as _shm  # noqa: E402


@_shm.create_shared_memory.register(UnicodeText)
def _create_unicode_shared_memory(space: UnicodeText, n: int = 1, ctx: Any = None) -> Any:
    import multiprocessing as mp

    return (ctx or mp).Array(np.dtype(np.int32).char, n * space.max_length)


class SharedTexts(Sequence[str]):
    """A live view of the texts in shared memory (what an async vector env holds as its
    observations): indexing decodes the current contents; ``deepcopy`` gives a tuple."""

    def __init__(self, space: UnicodeText, shared_memory: Any, n: int) -> None:
        self._data = np.frombuffer(shared_memory.get_obj(), dtype=np.int32).reshape((n, space.max_length))

    def __len__(self) -> int:
        return int(self._data.shape[0])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(len(self))[index])
        row = self._data[index]
        zeros = np.flatnonzero(row == 0)
        end = int(zeros[0]) if zeros.size else row.size
        return "".join(map(chr, (row[:end] - 1).tolist()))

    def __deepcopy__(self, memo: Any) -> tuple[str, ...]:
        return tuple(self)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __repr__(self) -> str:
        return f"SharedTexts({tuple(self)!r})"


@_shm.read_from_shared_memory.register(UnicodeText)
def _read_unicode_from_shared_memory(space: UnicodeText, shared_memory: Any, n: int = 1) -> SharedTexts:
    return SharedTexts(space, shared_memory, n)


@_shm.write_to_shared_memory.register(UnicodeText)
def _write_unicode_to_shared_memory(space: UnicodeText, index: int, value: str, shared_memory: Any) -> None:
    size = space.max_length
    if len(value) > size:
        raise ValueError(f"a text of {len(value)} characters does not fit {space!r}; raise the space's max_length")
    codes = np.zeros(size, dtype=np.int32)
    codes[: len(value)] = np.frombuffer(value.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int32) + 1
    destination = np.frombuffer(shared_memory.get_obj(), dtype=np.int32)
    np.copyto(destination[index * size: (index + 1) * size], codes)
