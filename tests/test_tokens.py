"""The token-accounting module: count and cut rules, and the seam rule of incremental encoding."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mempo_gym import FullContext, MemoryEnv, SelfMemory
from mempo_gym.core.tokens import TokenCounter, cut_to_tokens
from tests.helpers import DOCS, TASKS, TitleLookupSearch

PIECES = [
    "<mem>", "</mem>", "<think>", "</think>", "<search>", "</search>", "<answer>", "</answer>",
    "<information>", "</information>", "Doc 1 (Title: Tarsa)", " ", "\n", "\n\n", ";", "born", "é", "中文",
    "😀", "1987", "  ", "\t", "Mila Voss",
]
text = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=12)), max_size=30).map("".join)


@pytest.fixture(scope="module")
def word_tok():
    from mempo_agents.trainer.word_tokenizer import build_word_tokenizer, vocabulary_from_texts

    return build_word_tokenizer(vocabulary_from_texts(PIECES + list(DOCS.values())))


@pytest.mark.parametrize("which", ["smollm2", "word", "words"])
def test_seam_rule_gives_the_ids_of_a_full_encode(which, tokenizer, word_tok) -> None:
    tok = {"smollm2": tokenizer, "word": word_tok, "words": None}[which]
    counter = TokenCounter(tok)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(base=text, appended=st.lists(text, min_size=1, max_size=4))
    def run(base, appended):
        enc = counter.encode(base)
        for piece in appended:
            new, same = counter.extend(enc, enc.text + piece)
            full = counter.encode(enc.text + piece)
            assert new.ids == full.ids and new.spans == full.spans
            assert new.ids[:same] == enc.ids[:same]
            enc = new

    run()


def test_env_encodes_only_the_appended_text(tokenizer) -> None:
    """FullContext contexts grow; the env must not re-encode them whole (the seam path is taken)."""
    env = MemoryEnv(TASKS, TitleLookupSearch(DOCS), tokenizer=tokenizer, memory=FullContext(), max_turns=8)
    encoded: list[int] = []
    inner = env.token_counter._with_spans
    env.token_counter._with_spans = lambda t: (encoded.append(len(t)), inner(t))[1]
    env.reset(options={"task_id": "bridge"})
    prompt_len = len(env.context)
    for _ in range(6):
        env.step("<think>look again</think><search>Tarsa</search>")
    assert len(env.context) > 3 * prompt_len
    assert encoded[0] == prompt_len and max(encoded[1:]) < 200  # appended text (+ seam overlap) only
    assert list(env.context_ids) == tokenizer.encode(env.context, add_special_tokens=False)


def test_self_memory_prompt_is_encoded_once_per_episode(tokenizer) -> None:
    env = MemoryEnv(TASKS, TitleLookupSearch(DOCS), tokenizer=tokenizer, memory=SelfMemory(), max_turns=8)
    env.reset(options={"task_id": "bridge"})
    prompt = env.context
    encoded: list[str] = []
    inner = env.token_counter._with_spans
    env.token_counter._with_spans = lambda t: (encoded.append(t), inner(t))[1]
    for _ in range(4):
        env.step("<mem>Tarsa is a film</mem><search>Tarsa</search>")
        assert list(env.context_ids) == tokenizer.encode(env.context, add_special_tokens=False)
    assert not any(t.startswith(prompt[:50]) for t in encoded)  # the prompt is never re-encoded


def test_cut_rule_keeps_text_verbatim_and_within_the_cap(tokenizer, word_tok) -> None:
    passage = "Tarsa is a film  directed by Mila Voss 😀😀 中文字, released in 1987."
    for tok in (tokenizer, word_tok, None):
        counter = TokenCounter(tok)
        n = counter.count(passage)
        assert counter.cut(passage, n) == (passage, False)
        for cap in range(0, n):
            kept, was_cut = counter.cut(passage, cap)
            assert was_cut and passage.startswith(kept) and counter.count(kept) <= cap
            assert kept == kept.rstrip()
    # a plain counter function: the longest whitespace-word prefix within the cap
    assert cut_to_tokens("a bb ccc dddd", 5, len) == ("a bb", True)
    assert cut_to_tokens("a bb", 5, len) == ("a bb", False)


def test_counter_counts_like_the_tokenizer(tokenizer, word_tok) -> None:
    for tok in (tokenizer, word_tok):
        for t in ["", "Doc 1 (Title: Tarsa) Tarsa is a film.", "<answer>x</answer>\n\n"]:
            assert TokenCounter(tok).ids(t) == list(tok.encode(t, add_special_tokens=False))
    with pytest.raises(TypeError, match="encode"):
        TokenCounter(object())


def test_passage_caps_are_cut_once_and_reused(tokenizer) -> None:
    from mempo_gym.records import Document
    from mempo_gym.retrieval import RetrieverSearchTool
    from mempo_gym.retrieval.bm25 import BM25Retriever

    long_text = " ".join(f"Tarsa fact number {i} about the film." for i in range(40))
    docs = [Document("1", "Tarsa", long_text), Document("2", "Kelvar", DOCS["Kelvar"])]
    tool = RetrieverSearchTool(BM25Retriever(docs, cache=False), top_k=2, passage_token_cap=16, tokenizer=tokenizer)
    encoded: list[str] = []
    inner = tool.counter._with_spans
    tool.counter._with_spans = lambda t: (encoded.append(t), inner(t))[1]
    first = tool.search("Tarsa Kelvar")
    assert sorted(encoded) == sorted([long_text, DOCS["Kelvar"]])  # one encode per passage, over the cap or not
    assert tool.search("Tarsa Kelvar film") == first and len(encoded) == 2  # reused
    kept = first.split("\n")[0].removeprefix("Doc 1 (Title: Tarsa) ")
    assert long_text.startswith(kept) and TokenCounter(tokenizer).count(kept) <= 16
