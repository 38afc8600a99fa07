"""Invented names for SynthWiki entities, and the rule that splits them into syllables.

Names are built from consonant-vowel (CV) syllables, ``Ka``, ``ro``, ``vi`` ..., so a
word-level tokenizer can cover every possible name with a small set of pieces: the first
syllable as is (``Ka``) and each later one as a continuation piece (``##ro``). Two name
styles exist (see :class:`SyllableNamer` and :class:`PoolNamer`):

* ``"syllable"``: fresh words of 2-3 syllables (``Karovi``), people get a first and a last
  name (``Karovi Temu``). Train, dev and test worlds draw from disjoint thirds of the name
  space (:func:`name_bucket`), so a test name never appeared in training.
* ``"pool"``: one word per entity, drawn without replacement from a fixed pool of a few
  hundred 2-syllable words that is shared by every world, so every name is one token and
  every token is trained; which entity a word names changes from world to world.

>>> split_syllables("Karovi")
['Ka', '##ro', '##vi']
>>> split_syllables("Tesm") is None
True
>>> len(SYLLABLES), SYLLABLES[:3]
(70, ('ba', 'be', 'bi'))
>>> name_pool(5, seed=0) == name_pool(5, seed=0)
True
"""

from __future__ import annotations

import hashlib
from random import Random
from typing import AbstractSet, Sequence

CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
SYLLABLES: tuple[str, ...] = tuple(c + v for c in CONSONANTS for v in VOWELS)
CONTINUATION_PREFIX = "##"
#: Splits of the name space: a name belongs to split ``s`` iff name_bucket(name) == index.
SPLIT_BUCKETS: dict[str, int] = {"train": 0, "dev": 1, "test": 2}
MAX_POOL_SIZE = len(SYLLABLES) ** 2

_NUM_SYLLABLES = len(SYLLABLES)
_SYLLABLE_INDEX = {s: i for i, s in enumerate(SYLLABLES)}
_TWO: tuple[str, ...] = tuple(a + b for a in SYLLABLES for b in SYLLABLES)
_TWO_SUM: tuple[int, ...] = tuple(i + j for i in range(len(SYLLABLES)) for j in range(len(SYLLABLES)))
_NUM_BUCKETS = len(SPLIT_BUCKETS)
#: How many syllable indices have each residue mod 3 (24, 23, 23).
_RESIDUE_SIZES = tuple(len(range(r, _NUM_SYLLABLES, _NUM_BUCKETS)) for r in range(_NUM_BUCKETS))
_CONSONANT_SET = frozenset(CONSONANTS)
_VOWEL_SET = frozenset(VOWELS)


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from labelled parts, identical on every platform and Python run.

    Uses SHA-256 of the parts' ``repr`` joined by ``|`` (never the salted built-in ``hash``).

    >>> derive_seed("synthwiki", "train", 0) == derive_seed("synthwiki", "train", 0)
    True
    >>> derive_seed("synthwiki", "train", 0) != derive_seed("synthwiki", "test", 0)
    True
    """
    text = "|".join(repr(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def split_syllables(word: str) -> list[str] | None:
    """Pieces of a capitalised CV-syllable word, or ``None`` if it is not one.

    The first piece keeps its capital, later pieces carry the ``##`` prefix.

    >>> split_syllables("Temu")
    ['Te', '##mu']
    >>> split_syllables("temu") is None, split_syllables("Tem") is None
    (True, True)
    """
    n = len(word)
    if n < 2 or n % 2 or not word[0].isupper():
        return None
    lowered = word[0].lower() + word[1:]
    for i in range(0, n, 2):
        if lowered[i] not in _CONSONANT_SET or lowered[i + 1] not in _VOWEL_SET:
            return None
    return [word[0:2]] + [CONTINUATION_PREFIX + word[i:i + 2] for i in range(2, n, 2)]


def syllable_pieces() -> list[str]:
    """Every piece a syllable-style name can split into: ``Ba`` ... ``Zu``, ``##ba`` ... ``##zu``."""
    return [s.capitalize() for s in SYLLABLES] + [CONTINUATION_PREFIX + s for s in SYLLABLES]


def name_space_size(syllables: tuple[int, int]) -> int:
    """How many distinct one-word names have between ``syllables[0]`` and ``[1]`` syllables."""
    lo, hi = syllables
    return sum(len(SYLLABLES) ** n for n in range(lo, hi + 1))


def name_pool(size: int, seed: int = 0) -> tuple[str, ...]:
    """A fixed pool of ``size`` distinct capitalised 2-syllable words (``Karo``, ``Vimu`` ...).

    The pool depends only on ``(size, seed)``; worlds re-assign its words to entities.
    """
    if not 1 <= size <= MAX_POOL_SIZE:
        raise ValueError(f"pool_size must be between 1 and {MAX_POOL_SIZE}, got {size}")
    words = [(a + b).capitalize() for a in SYLLABLES for b in SYLLABLES]
    return tuple(Random(derive_seed("synthwiki-name-pool", seed)).sample(words, size))


#: A syllable count stops being drawn for one-word names once this share of its split's
#: names is used, so rejection sampling stays cheap in 100k-entity worlds.
MAX_FILL = 0.8


def split_capacity(syllables: tuple[int, int], words: int = 1) -> int:
    """How many distinct ``words``-word names one split can use (at :data:`MAX_FILL`)."""
    return int(MAX_FILL * name_space_size(syllables) ** words / len(SPLIT_BUCKETS))


def name_bucket(name: str) -> int | None:
    """The split bucket of a syllable-style name: sum of its syllable indices mod 3.

    ``None`` if ``name`` is not made of CV-syllable words. Train names are in bucket 0,
    dev in 1, test in 2 (:data:`SPLIT_BUCKETS`), so the splits never share a name.

    >>> name_bucket("Baba"), name_bucket("Bebe"), name_bucket("Bibi Ba")
    (0, 2, 1)
    """
    total = 0
    for word in name.split(" "):
        pieces = split_syllables(word)
        if pieces is None:
            return None
        total += sum(_SYLLABLE_INDEX[p[-2:].lower()] for p in pieces)
    return total % len(SPLIT_BUCKETS)


class SyllableNamer:
    """Draws fresh, world-unique names of random CV syllables.

    All syllables but the last are uniform; the last is uniform among those that put the
    name in this split's bucket (:func:`name_bucket`), so no draw is wasted on bucket
    rejection and the three splits never share a name.

    Args:
        rng: the world's random generator (the only source of randomness).
        syllables: inclusive range of syllables per word.
        split: ``"train"``, ``"dev"`` or ``"test"``.
        reserved: words that must never be produced (template words).
    """

    def __init__(
        self, rng: Random, syllables: tuple[int, int], split: str, reserved: AbstractSet[str] = frozenset()
    ) -> None:
        self._rng = rng
        self._lengths = list(range(syllables[0], syllables[1] + 1))
        self._bucket = SPLIT_BUCKETS[split]
        self._reserved = reserved
        self._used: set[str] = set()
        self._used_one_word = {n: 0 for n in self._lengths}
        self._limit_one_word = {n: split_capacity((n, n)) for n in self._lengths}
        #: syllable counts still drawn for one-word names (nearly used-up ones are dropped)
        self._open_lengths = list(self._lengths)

    def _syllables(self, count: int) -> tuple[str, int]:
        """``count`` uniform random syllables (lower case) and the sum of their indices."""
        if count == 0:
            return "", 0
        i = int(self._rng.random() * _NUM_SYLLABLES**count)
        if count == 1:
            return SYLLABLES[i], i
        if count == 2:
            return _TWO[i], _TWO_SUM[i]
        head, tail = divmod(i, _NUM_SYLLABLES**(count - 2))
        rest, rest_sum = self._syllables_from_index(tail, count - 2)
        return _TWO[head] + rest, _TWO_SUM[head] + rest_sum

    @staticmethod
    def _syllables_from_index(i: int, count: int) -> tuple[str, int]:
        if count == 1:
            return SYLLABLES[i], i
        return _TWO[i], _TWO_SUM[i]

    def _draw(self, lengths: Sequence[int]) -> str:
        """One candidate: words of the given syllable counts, in this split's bucket."""
        parts: list[str] = []
        total = 0
        for n in lengths[:-1]:
            word, s = self._syllables(n)
            parts.append(word.capitalize())
            total += s
        prefix, s = self._syllables(lengths[-1] - 1)
        residue = (self._bucket - total - s) % _NUM_BUCKETS
        last = residue + _NUM_BUCKETS * int(self._rng.random() * _RESIDUE_SIZES[residue])
        parts.append((prefix + SYLLABLES[last]).capitalize())
        return " ".join(parts)

    def name(self, words: int = 1, max_tries: int = 10_000) -> str:
        """A new name of ``words`` space-separated words, unused so far in this world."""
        random = self._rng.random
        lengths = self._open_lengths if words == 1 else self._lengths
        for _ in range(max_tries):
            chosen = [lengths[int(random() * len(lengths))] for _ in range(words)]
            name = self._draw(chosen)
            if name in self._used or (words == 1 and name in self._reserved):
                continue
            self._used.add(name)
            if words == 1:
                n = chosen[0]
                self._used_one_word[n] += 1
                if self._used_one_word[n] >= self._limit_one_word[n] and len(self._open_lengths) > 1:
                    self._open_lengths = [m for m in self._open_lengths if m != n]
            return name
        raise RuntimeError(
            f"could not find an unused {words}-word name after {max_tries} tries; "
            "the world is too large for the syllable range: widen `syllables`"
        )


class PoolNamer:
    """Hands out the words of a shared pool in a world-specific random order.

    Args:
        rng: the world's random generator.
        pool: the shared pool (:func:`name_pool`).
        total: how many names the world needs (at most ``len(pool)``).
    """

    def __init__(self, rng: Random, pool: Sequence[str], total: int) -> None:
        if total > len(pool):
            raise ValueError(
                f"name_style='pool' gives every entity its own pool word, but the world has "
                f"{total} entities and the pool only {len(pool)} words: raise pool_size "
                f"(at most {MAX_POOL_SIZE}) or use name_style='syllable'"
            )
        self._order = rng.sample(list(pool), total)
        self._next = 0

    def name(self, words: int = 1) -> str:
        """The next pool word (``words`` is ignored: pool names are always one word)."""
        name = self._order[self._next]
        self._next += 1
        return name
