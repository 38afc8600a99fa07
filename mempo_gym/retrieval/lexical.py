"""The lexical tokeniser shared by every BM25 index and query in this package.

Index and query text go through the same function, so a query spelled like a title
produces exactly the title's tokens:

1. Unicode NFKC normalisation and ``str.casefold`` (lowercase, also for non-ASCII);
2. split into words: maximal runs of Unicode letters/digits (regex ``[^\\W_]+``), so
   punctuation, underscores and whitespace separate words and are dropped;
3. optionally drop English stopwords (:data:`ENGLISH_STOPWORDS`, the 33-word list of
   Lucene's ``EnglishAnalyzer``, which the Pyserini BM25 used by Search-R1 also applies).

No stemming is applied.

>>> tokenize_words("The Eiffel-Tower (Paris), 1889!", stopwords="en")
['eiffel', 'tower', 'paris', '1889']
>>> tokenize_words("The Who", stopwords=None)
['the', 'who']
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable, Literal

# Lucene EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (also bm25s.stopwords.STOPWORDS_EN).
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the
    their then there these they this to was will with""".split()
)

_WORD = re.compile(r"[^\W_]+")

StopwordSetting = Literal["en"] | None


def resolve_stopwords(stopwords: StopwordSetting) -> frozenset[str]:
    """Map the ``stopwords`` setting (``"en"`` or ``None``) to a word set."""
    if stopwords is None:
        return frozenset()
    if stopwords == "en":
        return ENGLISH_STOPWORDS
    raise ValueError(f"stopwords must be 'en' or None, got {stopwords!r}")


def tokenize_words(text: str, stopwords: StopwordSetting = "en") -> list[str]:
    """Split ``text`` into normalised lowercase word tokens (see module docstring)."""
    drop = resolve_stopwords(stopwords)
    normalised = unicodedata.normalize("NFKC", text).casefold()
    return [w for w in _WORD.findall(normalised) if w not in drop]


def document_tokens(
    title: str, text: str, stopwords: StopwordSetting = "en", title_weight: int = 1
) -> list[str]:
    """Tokens of one document: the title's tokens ``title_weight`` times, then the text's.

    Repeating the title raises its words' term frequency, a simple field boost.
    """
    return tokenize_words(title, stopwords) * title_weight + tokenize_words(text, stopwords)


def tokenize_many(texts: Iterable[str], stopwords: StopwordSetting = "en") -> list[list[str]]:
    """:func:`tokenize_words` over many texts."""
    drop = resolve_stopwords(stopwords)
    out: list[list[str]] = []
    for text in texts:
        normalised = unicodedata.normalize("NFKC", text).casefold()
        out.append([w for w in _WORD.findall(normalised) if w not in drop])
    return out
