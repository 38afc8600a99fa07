"""A word-level tokenizer over a closed vocabulary, as a transformers ``PreTrainedTokenizerFast``.

Procedural tasks (SynthWiki) have a small closed vocabulary: template words, tags, years,
and entity names. A word-level tokenizer over it makes every name one (pool names) or a
few (syllable names) tokens, which is what lets a from-scratch model of a few million
parameters copy names reliably (see ``/work/shared/notes/tiny-model-feasibility.md``).

Pre-tokenization (the split rule) is a regex: protocol tags (``<mem>``, ``</search>`` ...)
are one piece, then runs of letters/digits, then any other non-space character alone.
When the vocabulary holds ``##`` continuation pieces (SynthWiki ``name_style="syllable"``),
the model is WordPiece so ``Karovi`` splits into ``Ka ##ro ##vi``; otherwise it is WordLevel.
Decoding joins pieces with single spaces and glues ``##`` pieces back; whitespace is not
significant to the protocol parser, and decoded text re-encodes to the same ids.

>>> tok = build_word_tokenizer(["<mem>", "</mem>", "Karo", "1942", ":"])
>>> tok.decode(tok.encode("<mem> 1942 : Karo </mem>", add_special_tokens=False))
'<mem> 1942 : Karo </mem>'
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

#: The split rule (after splitting on whitespace): a protocol tag, a run of letters and
#: digits, or one other non-space character.
SPLIT_PATTERN = r"</?[a-z]+>|[A-Za-z0-9]+|[^\sA-Za-z0-9]"
PROTOCOL_TAGS: tuple[str, ...] = tuple(
    f"<{c}{t}>" for t in ("mem", "think", "search", "answer", "information") for c in ("", "/")
)
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS)


def build_word_tokenizer(
    vocabulary: Iterable[str],
    save_dir: str | Path | None = None,
    split_pattern: str = SPLIT_PATTERN,
) -> PreTrainedTokenizerFast:
    """Build (and optionally ``save_pretrained``) a word-level tokenizer.

    Args:
        vocabulary: the words; protocol tags and special tokens are added when missing.
            Duplicates are ignored; order is kept (ids are stable for a given list).
        save_dir: when given, the tokenizer is saved there so ``AutoTokenizer`` /
            ``gym.make(..., tokenizer=folder)`` can load it.
        split_pattern: the pre-tokenization regex (kept pieces are the regex matches).
    """
    words: dict[str, int] = {}
    for word in (*SPECIAL_TOKENS, *PROTOCOL_TAGS, *vocabulary):
        if not isinstance(word, str) or not word or any(ch.isspace() for ch in word):
            raise ValueError(f"vocabulary entries must be non-empty strings without spaces, got {word!r}")
        words.setdefault(word, len(words))
    wordpiece = any(w.startswith("##") and len(w) > 2 for w in words)
    model = (
        models.WordPiece(vocab=words, unk_token=UNK, continuing_subword_prefix="##", max_input_chars_per_word=100)
        if wordpiece
        else models.WordLevel(vocab=words, unk_token=UNK)
    )
    core = Tokenizer(model)
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(split_pattern), behavior="isolated")]
    )
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS,
        clean_up_tokenization_spaces=False, padding_side="left",
    )
    if save_dir is not None:
        tok.save_pretrained(str(save_dir))
    return tok


def vocabulary_from_texts(texts: Iterable[str], split_pattern: str = SPLIT_PATTERN) -> list[str]:
    """Every piece the split rule produces over ``texts``, in first-seen order."""
    import re

    pattern = re.compile(split_pattern)
    seen: dict[str, None] = {}
    for text in texts:
        for piece in pattern.findall(text):
            seen.setdefault(piece, None)
    return list(seen)
