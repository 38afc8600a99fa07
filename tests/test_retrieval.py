"""Lexical retrieval, the index cache, the search tool and memory ranking (no model needed)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mempo_gym.core.tools import SearchTool
from mempo_gym.records import Document
from mempo_gym.retrieval import Hit, Retriever
from mempo_gym.retrieval.bm25 import BM25Retriever
from mempo_gym.retrieval.cache import (
    MANIFEST_NAME, IndexCache, cache_key, corpus_fingerprint, default_cache_dir,
)
from mempo_gym.retrieval.hybrid import reciprocal_rank_fusion
from mempo_gym.retrieval.lexical import document_tokens, tokenize_words
from mempo_gym.retrieval.rank_bm25_ref import RankBM25Retriever
from mempo_gym.retrieval.ranking import rank_texts
from mempo_gym.retrieval.search_tool import NO_RESULTS, RetrieverSearchTool

DATA_DIR = Path(os.environ.get("MEMPO_GYM_DATA", "")) if os.environ.get("MEMPO_GYM_DATA") else None

NAMES = ["Marnell", "Oskarby", "Tessaline", "Vorund", "Quillan", "Bradmoor", "Ellisar",
         "Fenwick", "Ostrava", "Halden", "Ysolde", "Carrow", "Dunmere", "Kestrel",
         "Loviar", "Penhallow", "Ruskin", "Sarnow", "Tiberon", "Wendmark"]
KINDS = ["River", "Bridge", "Castle", "University", "Railway", "Cathedral", "Festival",
         "Observatory", "Lighthouse", "Treaty"]


def synthetic_encyclopedia(n_docs: int = 120, seed: int = 7) -> list[Document]:
    """Encyclopedia-like docs whose titles share words and whose texts cite other titles."""
    rng = random.Random(seed)
    titles = [f"{name} {kind}" for name in NAMES for kind in KINDS]
    rng.shuffle(titles)
    titles = titles[:n_docs]
    docs = []
    for i, title in enumerate(titles):
        others = rng.sample([t for t in titles if t != title], 3)
        year = rng.randint(1200, 1990)
        text = (
            f"The {title} is a {title.split()[1].lower()} established in {year}. "
            f"It lies near the {others[0]} and was visited by the founders of the {others[1]}. "
            f"Historians often compare it with the {others[2]}."
        )
        docs.append(Document(f"d{i}", title, text))
    return docs


@pytest.fixture(scope="module")
def encyclopedia() -> list[Document]:
    return synthetic_encyclopedia()


# --- tokenisation -----------------------------------------------------------------------


def test_tokenizer_is_shared_by_index_and_query() -> None:
    assert tokenize_words("The Eiffel-Tower (PARIS), 1889!") == ["eiffel", "tower", "paris", "1889"]
    assert tokenize_words("The Eiffel-Tower", stopwords=None) == ["the", "eiffel", "tower"]
    assert tokenize_words("Straße ÉCOLE") == tokenize_words("STRASSE école")
    assert tokenize_words("snake_case") == ["snake", "case"]
    assert document_tokens("Big Ben", "A clock.") == ["big", "ben", "clock"]
    assert BM25Retriever([Document("b", "Big Ben", "A clock.")], cache=False).title_weight == 2
    assert document_tokens("Big Ben", "A clock.", title_weight=2) == ["big", "ben", "big", "ben", "clock"]
    with pytest.raises(ValueError, match="stopwords"):
        tokenize_words("x", stopwords="fr")  # type: ignore[arg-type]


# --- BM25 ---------------------------------------------------------------------------------


def test_exact_title_search_finds_document_at_rank_1(encyclopedia: list[Document]) -> None:
    retriever = BM25Retriever(encyclopedia, cache=False)
    misses = [d.title for d in encyclopedia if retriever.search(d.title, 1)[0].doc.id != d.id]
    assert len(misses) <= 0.03 * len(encyclopedia), misses
    # Case and punctuation do not matter.
    target = encyclopedia[5]
    assert retriever.search(f"  {target.title.upper()}?! ", 1)[0].doc == target


@pytest.mark.skipif(
    DATA_DIR is None or not (DATA_DIR / "corpora/2wikimultihopqa_corpus.json").is_file(),
    reason="needs MEMPO_GYM_DATA with corpora/2wikimultihopqa_corpus.json",
)
def test_exact_title_search_on_real_wikipedia_paragraphs() -> None:
    rows = json.loads((DATA_DIR / "corpora/2wikimultihopqa_corpus.json").read_text())  # type: ignore[operator]
    docs = [Document(str(i), r["title"], r["text"]) for i, r in enumerate(rows)]
    retriever = BM25Retriever(docs, cache=False)
    hits = retriever.search_batch([d.title for d in docs], 1)
    rate = np.mean([bool(h) and h[0].doc.id == d.id for h, d in zip(hits, docs)])
    assert rate >= 0.96, rate  # 0.972 measured; misses are titles that prefix longer titles


def test_bm25_edge_corpora() -> None:
    single = BM25Retriever([Document("a", "Lonely Page", "only one document here")], cache=False)
    assert [h.doc.id for h in single.search("lonely", 5)] == ["a"]
    assert single.search("absent words", 5) == []

    dup = [Document("x", "Twin", "same words"), Document("y", "Twin", "same words"),
           Document("z", "Other", "different content")]
    hits = BM25Retriever(dup, cache=False).search("twin words", 3)
    assert [h.doc.id for h in hits] == ["x", "y"]  # ties keep corpus order
    assert hits[0].score == pytest.approx(hits[1].score)

    empty_text = [Document("e", "Titled Only", ""), Document("f", "", "body only text")]
    r = BM25Retriever(empty_text, cache=False)
    assert r.search("titled", 2)[0].doc.id == "e"
    assert r.search("body", 2)[0].doc.id == "f"

    nothing = BM25Retriever([Document("n", "", ""), Document("m", "", "...")], cache=False)
    assert nothing.search("anything", 3) == []
    assert RankBM25Retriever([Document("n", "", "")]).search("anything", 3) == []


def test_bm25_rejects_bad_input(encyclopedia: list[Document]) -> None:
    with pytest.raises(ValueError, match="empty"):
        BM25Retriever([], cache=False)
    with pytest.raises(TypeError, match=r"documents\[1\]"):
        BM25Retriever([encyclopedia[0], {"title": "x"}], cache=False)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="method"):
        BM25Retriever(encyclopedia, method="tfidf", cache=False)
    r = BM25Retriever(encyclopedia[:3], cache=False)
    with pytest.raises(ValueError, match="k must be"):
        r.search("river", 0)
    with pytest.raises(TypeError, match="sequence of query strings"):
        r.search_batch("river", 2)


def test_search_batch_matches_search(encyclopedia: list[Document]) -> None:
    r = BM25Retriever(encyclopedia, cache=False)
    queries = ["Marnell River", "cathedral founders", "", "??", "Treaty 1500"]
    assert r.search_batch(queries, 4) == [r.search(q, 4) for q in queries]
    assert isinstance(r, Retriever)


def test_bm25s_and_rank_bm25_agree_on_top1(encyclopedia: list[Document]) -> None:
    fast = BM25Retriever(encyclopedia, cache=False)
    reference = RankBM25Retriever(encyclopedia)
    rng = random.Random(3)
    queries = []
    for doc in rng.sample(encyclopedia, 40):
        # A clear query: the title plus the doc's unique founding year.
        year = next(w for w in doc.text.split() if w.rstrip(".").isdigit()).rstrip(".")
        queries.append((doc, f"{doc.title} established {year}"))
    for doc, query in queries:
        assert fast.search(query, 1)[0].doc.id == doc.id, query
        assert reference.search(query, 1)[0].doc.id == doc.id, query
    # Both return only documents that share a query term.
    assert reference.search("zzzz unknownword", 3) == [] == fast.search("zzzz unknownword", 3)


# --- cache --------------------------------------------------------------------------------


def _entry(cache_dir: Path) -> Path:
    entries = [p for p in cache_dir.iterdir() if p.name.startswith("bm25s-")]
    assert len(entries) == 1, entries
    return entries[0]


def _results(r: BM25Retriever, queries: list[str]) -> list[list[tuple[str, float]]]:
    return [[(h.doc.id, h.score) for h in hits] for hits in r.search_batch(queries, 5)]


def test_cache_hit_is_identical_and_corruption_is_rebuilt(
    encyclopedia: list[Document], tmp_path: Path
) -> None:
    queries = [d.title for d in encyclopedia[:20]] + ["river castle 1500", "nothing here"]
    first = BM25Retriever(encyclopedia, cache_dir=tmp_path)
    assert not first.loaded_from_cache
    expected = _results(first, queries)
    entry = _entry(tmp_path)
    manifest = json.loads((entry / MANIFEST_NAME).read_text())
    assert set(manifest["members"]) == {p.name for p in entry.iterdir()} - {MANIFEST_NAME}
    # Nothing pickled: every array loads with allow_pickle=False, the rest is JSON.
    for member in entry.iterdir():
        if member.suffix == ".npy":
            assert np.load(member, allow_pickle=False).dtype != object
        else:
            json.loads(member.read_text())

    second = BM25Retriever(encyclopedia, cache_dir=tmp_path)
    assert second.loaded_from_cache
    assert _results(second, queries) == expected

    # Truncated array -> detected, rebuilt, same results; the next load is a hit again.
    npy = next(p for p in entry.iterdir() if p.suffix == ".npy")
    npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])
    rebuilt = BM25Retriever(encyclopedia, cache_dir=tmp_path)
    assert not rebuilt.loaded_from_cache
    assert _results(rebuilt, queries) == expected
    assert BM25Retriever(encyclopedia, cache_dir=tmp_path).loaded_from_cache

    # Edited manifest (checksum changed) -> rebuilt.
    entry = _entry(tmp_path)
    m = json.loads((entry / MANIFEST_NAME).read_text())
    name = next(iter(m["members"]))
    m["members"][name]["sha256"] = "0" * 64
    (entry / MANIFEST_NAME).write_text(json.dumps(m))
    assert not BM25Retriever(encyclopedia, cache_dir=tmp_path).loaded_from_cache

    # Same-size corruption inside a member (sizes match, hash does not) -> rebuilt.
    entry = _entry(tmp_path)
    vocab = entry / "vocab.index.json"
    vocab.write_text(vocab.read_text().replace("river", "rivet"))
    again = BM25Retriever(encyclopedia, cache_dir=tmp_path)
    assert not again.loaded_from_cache and _results(again, queries) == expected

    # Partial entry (manifest never written, e.g. crash before rename) -> rebuilt.
    (_entry(tmp_path) / MANIFEST_NAME).unlink()
    assert not BM25Retriever(encyclopedia, cache_dir=tmp_path).loaded_from_cache
    # Garbage manifest -> rebuilt.
    (_entry(tmp_path) / MANIFEST_NAME).write_text("{not json")
    assert not BM25Retriever(encyclopedia, cache_dir=tmp_path).loaded_from_cache
    assert BM25Retriever(encyclopedia, cache_dir=tmp_path).loaded_from_cache
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_cache_key_depends_on_content_and_settings(
    encyclopedia: list[Document], tmp_path: Path
) -> None:
    changed = list(encyclopedia)
    changed[0] = Document(changed[0].id, changed[0].title, changed[0].text + " Extra.")
    assert corpus_fingerprint(changed) != corpus_fingerprint(encyclopedia)
    # Field boundaries matter: ("ab", "c") differs from ("a", "bc").
    assert corpus_fingerprint([Document("1", "ab", "c")]) != corpus_fingerprint([Document("1", "a", "bc")])
    assert cache_key("h", {"k1": 0.9}) != cache_key("h", {"k1": 1.2})
    BM25Retriever(encyclopedia, cache_dir=tmp_path)
    assert not BM25Retriever(changed, cache_dir=tmp_path).loaded_from_cache
    assert not BM25Retriever(encyclopedia, cache_dir=tmp_path, k1=1.2).loaded_from_cache
    assert not BM25Retriever(encyclopedia, cache_dir=tmp_path, stopwords=None).loaded_from_cache
    assert BM25Retriever(encyclopedia, cache_dir=tmp_path, k1=1.2).loaded_from_cache


def test_empty_vocabulary_corpus_is_cached(tmp_path: Path) -> None:
    docs = [Document("n", "", "..."), Document("m", "", "")]
    assert not BM25Retriever(docs, cache_dir=tmp_path).loaded_from_cache
    cached = BM25Retriever(docs, cache_dir=tmp_path)
    assert cached.loaded_from_cache and cached.search("x", 2) == []


def test_default_cache_dir_honours_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MEMPO_GYM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "mempo_gym" / "indexes"
    assert IndexCache().root == tmp_path / "mempo_gym" / "indexes"
    # Default cache="auto": small corpora are not written to the user cache unless
    # cache=True (or an explicit cache_dir) asks for it.
    small = [Document("a", "Alpha", "text")]
    assert not BM25Retriever(small).loaded_from_cache
    assert not (tmp_path / "mempo_gym" / "indexes").exists()
    BM25Retriever(small, cache=True)
    assert BM25Retriever(small, cache=True).loaded_from_cache
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "mempo_gym" / "indexes"


def test_cache_store_rejects_subdirectories(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path)
    with pytest.raises(ValueError, match="plain files"):
        cache.store("bm25s", "k", lambda d: (d / "sub").mkdir())
    assert cache.load("bm25s", "k") is None
    assert not list(tmp_path.iterdir())


# --- fusion -------------------------------------------------------------------------------


def test_reciprocal_rank_fusion_scores() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], weights=[1.0, 1.0], rrf_k=60)
    assert [p for p, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1][1] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2][1] == pytest.approx(1 / 62)
    with pytest.raises(ValueError, match="weights"):
        reciprocal_rank_fusion([[1]], weights=[1.0, 2.0])


# --- search tool --------------------------------------------------------------------------

TOOL_DOCS = [
    Document("1", "Alpha Centauri", "Alpha Centauri is the closest star system to the Sun, "
             "about 4.37 light-years away."),
    Document("2", "Sirius", "Sirius is the brightest star in the night sky.\nIt is in Canis Major."),
    Document("3", "Betelgeuse", "Betelgeuse is a red supergiant star in Orion."),
]


def word_level_tokenizer(texts: list[str]):  # -> tokenizers.Tokenizer
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # words and punctuation runs
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    return tok


def test_search_tool_formats_like_search_r1() -> None:
    tool = RetrieverSearchTool(BM25Retriever(TOOL_DOCS, cache=False), top_k=2)
    assert isinstance(tool, SearchTool)
    out = tool.search("brightest star")
    lines = out.split("\n")
    assert lines[0] == ("Doc 1 (Title: Sirius) Sirius is the brightest star in the night sky.")
    assert lines[1] == "It is in Canis Major."  # passage newlines are kept
    assert lines[2].startswith("Doc 2 (Title: ")
    assert len(lines) == 3
    assert tool.search("") == NO_RESULTS
    assert tool.search("   \n\t") == NO_RESULTS
    assert tool.search("?!...") == NO_RESULTS
    assert tool.search("quasar") == NO_RESULTS
    json.dumps(tool.describe())
    assert tool.describe()["top_k"] == 2 and tool.describe()["retriever"]["retriever"] == "bm25"


def test_search_tool_caps_passages_by_words_without_tokenizer() -> None:
    tool = RetrieverSearchTool(BM25Retriever(TOOL_DOCS, cache=False), top_k=1, passage_token_cap=4)
    assert tool.search("Alpha Centauri") == "Doc 1 (Title: Alpha Centauri) Alpha Centauri is the"
    assert tool.describe()["token_unit"] == "whitespace words"


def test_search_tool_caps_passages_with_a_real_tokenizer() -> None:
    tok = word_level_tokenizer([d.title + " " + d.text for d in TOOL_DOCS])
    tool = RetrieverSearchTool(
        BM25Retriever(TOOL_DOCS, cache=False), top_k=3, passage_token_cap=5, tokenizer=tok
    )
    out = tool.search("star")
    passages = [line.split(") ", 1)[1] for line in out.split("\n") if line.startswith("Doc ")]
    assert len(passages) == 3
    for passage in passages:
        assert len(tok.encode(passage, add_special_tokens=False).ids) == 5
        assert any(d.text.startswith(passage) for d in TOOL_DOCS)  # cut verbatim
    # The cap counts tokens, not words: the passage has 14 words, but "Sun," and
    # "4.37" are 2 and 3 word-level tokens, so 14 tokens end inside "4.37".
    alpha = RetrieverSearchTool(
        BM25Retriever(TOOL_DOCS, cache=False), top_k=1, passage_token_cap=14, tokenizer=tok
    ).search("closest star system")
    assert alpha.endswith("Sun, about 4.")


def test_search_tool_with_transformers_tokenizer() -> None:
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=word_level_tokenizer([d.text for d in TOOL_DOCS]), unk_token="[UNK]"
    )
    tool = RetrieverSearchTool(
        BM25Retriever(TOOL_DOCS, cache=False), top_k=1, passage_token_cap=3, tokenizer=tok
    )
    assert tool.search("Orion red supergiant") == "Doc 1 (Title: Betelgeuse) Betelgeuse is a"
    assert tool.describe()["token_unit"].startswith("tokens of ")


def test_search_tool_custom_truncate_and_bad_settings() -> None:
    r = BM25Retriever(TOOL_DOCS, cache=False)
    tool = RetrieverSearchTool(
        r, top_k=1, passage_token_cap=10, count_tokens=len, truncate=lambda t, n: t[:n]
    )
    assert tool.search("Sirius") == "Doc 1 (Title: Sirius) Sirius is"
    with pytest.raises(ValueError, match="top_k"):
        RetrieverSearchTool(r, top_k=0)
    with pytest.raises(ValueError, match="passage_token_cap"):
        RetrieverSearchTool(r, passage_token_cap=0)
    with pytest.raises(TypeError, match="search"):
        RetrieverSearchTool(object())  # type: ignore[arg-type]


def test_search_tool_reports_retriever_failure_as_text() -> None:
    class Broken:
        def search(self, query: str, k: int) -> list[Hit]:
            raise RuntimeError("index offline")

        def describe(self) -> dict:
            return {"retriever": "broken"}

    out = RetrieverSearchTool(Broken()).search("anything")  # type: ignore[arg-type]
    assert out.startswith("Search failed (RuntimeError)")


@pytest.fixture(scope="module")
def capped_tool() -> RetrieverSearchTool:
    tok = word_level_tokenizer([d.text for d in TOOL_DOCS])
    return RetrieverSearchTool(
        BM25Retriever(TOOL_DOCS, cache=False), top_k=2, passage_token_cap=3, tokenizer=tok
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(alphabet=st.characters(codec=None, categories=None), max_size=300))
def test_search_tool_never_raises(capped_tool: RetrieverSearchTool, query: str) -> None:
    out = capped_tool.search(query)
    assert isinstance(out, str) and out
    assert out == NO_RESULTS or out.startswith("Doc 1 (Title: ")


def test_search_tool_handles_huge_and_odd_queries(capped_tool: RetrieverSearchTool) -> None:
    assert capped_tool.search("star " * 200_000).startswith("Doc 1 (Title: ")
    assert capped_tool.search("\ud800 star \udfff").startswith("Doc 1")  # lone surrogates
    assert capped_tool.search("\x00" * 10) == NO_RESULTS
    assert capped_tool.search("🌟✨ 星 ⭐") == NO_RESULTS
    assert capped_tool.search(None) == NO_RESULTS  # type: ignore[arg-type]


# --- memory ranking -----------------------------------------------------------------------


def test_rank_texts_bm25() -> None:
    memory = ["Paris is the capital of France.", "Berlin hosts the Bundestag.",
              "", "The Louvre in Paris holds the Mona Lisa.", "Rome was not built in a day."]
    assert rank_texts("capital of France", memory, 3) == [0]
    assert rank_texts("Paris museum Mona Lisa", memory, 2) == [3, 0]
    assert rank_texts("Paris", memory, 1) == [0]
    assert rank_texts("nothing matches", memory, 3) == []
    assert rank_texts("   ", memory, 3) == []
    assert rank_texts("Paris", [], 3) == []
    with pytest.raises(ValueError, match="method"):
        rank_texts("Paris", memory, 3, method="tfidf")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be"):
        rank_texts("Paris", memory, 0)
    with pytest.raises(TypeError, match="texts"):
        rank_texts("Paris", "Paris", 1)
