"""BM25 speed: bm25s (``BM25Retriever``) vs rank-bm25 (``RankBM25Retriever``), same run.

For corpora of 1k, 10k and 100k SynthWiki documents (``mempo_gym.tasks.synthwiki``;
a seeded encyclopedia-like generator is used if SynthWiki is unavailable) it measures

* indexing time (tokenisation included, no disk cache), and
* per-query latency (mean, p50, p95) over the SynthWiki questions of the world,

and prints a table plus the bm25s speed-up and the top-1 agreement of the two.
rank-bm25 scores every document in Python for each query (~0.1 s per query at 100k
documents); ``--rank-bm25-max-docs 10000`` skips it on the 100k corpus.

    python benchmarks/bench_bm25.py [--sizes 1000 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from typing import Callable, Sequence

from mempo_gym.records import Document
from mempo_gym.retrieval.base import CorpusRetriever
from mempo_gym.retrieval.bm25 import BM25Retriever
from mempo_gym.retrieval.rank_bm25_ref import RankBM25Retriever


def synthwiki_corpus(n_docs: int, n_queries: int, seed: int) -> tuple[list[Document], list[str], str]:
    """SynthWiki world of ``n_docs`` documents and its question texts."""
    from mempo_gym.tasks.synthwiki import SynthWikiConfig, generate_tasks, generate_world

    core = min(n_docs, 1000)
    config = SynthWikiConfig(
        seed=seed, num_entities=core, num_distractors=n_docs - core, syllables=(2, 4),
        num_tasks=n_queries,
    )
    world = generate_world(config)
    tasks = generate_tasks(world, config)
    return list(world.documents), [t.questions[0].text for t in tasks], "SynthWiki"


def fallback_corpus(n_docs: int, n_queries: int, seed: int) -> tuple[list[Document], list[str], str]:
    """Seeded encyclopedia-like documents over a Zipf-ish vocabulary (no SynthWiki)."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ru", "te", "sa", "vo", "ne", "di", "pa", "zu", "ho"]
    vocab = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(30000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    docs = []
    for i in range(n_docs):
        title = f"{rng.choice(vocab).title()} {rng.choice(vocab).title()}"
        body = " ".join(rng.choices(vocab, weights, k=rng.randint(30, 90)))
        docs.append(Document(str(i), title, f"{title} is a place. {body}."))
    queries = [f"where is {rng.choice(docs).title}" for _ in range(n_queries)]
    return docs, queries, "synthetic (seeded)"


def latencies_ms(retriever: CorpusRetriever, queries: Sequence[str], k: int) -> list[float]:
    out = []
    for q in queries:
        t0 = time.perf_counter()
        retriever.search_positions(q, k)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p(values: Sequence[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def timed(build: Callable[[], CorpusRetriever]) -> tuple[CorpusRetriever, float]:
    t0 = time.perf_counter()
    obj = build()
    return obj, time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 10000, 100000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--rank-bm25-max-docs", type=int, default=100000,
                        help="largest corpus on which rank-bm25 also runs (it is slow)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    make_corpus = synthwiki_corpus
    try:
        import mempo_gym.tasks.synthwiki  # noqa: F401
    except ImportError as err:
        print(f"SynthWiki unavailable ({err}); using the fallback generator", file=sys.stderr)
        make_corpus = fallback_corpus

    rows = []
    for n in args.sizes:
        docs, queries, source = make_corpus(n, args.queries, args.seed)
        queries = queries[: args.queries]
        fast, fast_build = timed(lambda: BM25Retriever(docs, cache=False))
        fast.search_positions(queries[0], args.k)  # warm-up
        fast_lat = latencies_ms(fast, queries, args.k)
        row = {"n": len(docs), "source": source, "bm25s": (fast_build, fast_lat)}
        if n <= args.rank_bm25_max_docs:
            ref, ref_build = timed(lambda: RankBM25Retriever(docs))
            ref_lat = latencies_ms(ref, queries, args.k)
            agree = sum(
                (a[:1] and b[:1] and a[0][0] == b[0][0]) or (not a and not b)
                for a, b in zip(
                    (fast.search_positions(q, 1) for q in queries),
                    (ref.search_positions(q, 1) for q in queries),
                )
            )
            row["rank_bm25"] = (ref_build, ref_lat)
            row["agree"] = agree / len(queries)
        rows.append(row)
        print(f"done: {len(docs)} docs ({source}), {len(queries)} queries", file=sys.stderr)

    print(f"BM25 speed, {args.queries} queries, top-{args.k} (times in ms unless noted)\n")
    print("| docs | library | index (s) | mean | p50 | p95 | index speed-up | query speed-up (mean) | top-1 agreement |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        fb, fl = row["bm25s"]
        ref = row.get("rank_bm25")
        for name, (build, lat) in [("bm25s", row["bm25s"])] + ([("rank-bm25", ref)] if ref else []):
            ratio_b = ratio_q = agree = ""
            if name == "bm25s" and ref:
                ratio_b = f"{ref[0] / fb:.1f}x"
                ratio_q = f"{statistics.fmean(ref[1]) / statistics.fmean(fl):.1f}x"
                agree = f"{row['agree']:.1%}"
            print(f"| {row['n']:,} | {name} | {build:.2f} | {statistics.fmean(lat):.2f} | "
                  f"{p(lat, 50):.2f} | {p(lat, 95):.2f} | {ratio_b} | {ratio_q} | {agree} |")
        if not ref:
            print(f"| {row['n']:,} | rank-bm25 | skipped (--rank-bm25-max-docs {args.rank_bm25_max_docs}) | | | | | | |")
    print(f"\nCorpus: {rows[0]['source'] if rows else '-'}; speed-up = rank-bm25 time / bm25s time.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
