"""Recall@k of supporting paragraphs: BM25 vs dense vs hybrid on multi-hop QA samples.

For each dataset (HotpotQA, 2WikiMultihopQA, MuSiQue) the context paragraphs of all its
questions are pooled into one corpus (``mempo_gym.data.corpora.pool_context_paragraphs``);
each question is then searched in that corpus and

    recall@k = |supporting titles among the top-k titles| / |supporting titles|

is averaged over questions. Prints a Markdown table.

Data come from the data directory (``--data-dir``, else ``$MEMPO_GYM_DATA``)::

    MEMPO_GYM_DATA=/path/to/data python benchmarks/bench_retrieval_quality.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mempo_gym.data.corpora import pool_context_paragraphs  # noqa: E402
from mempo_gym.data.loaders import load_2wikimultihopqa, load_hotpotqa, load_musique  # noqa: E402
from mempo_gym.data.paths import resolve_data_dir  # noqa: E402
from mempo_gym.records import Document, Task  # noqa: E402
from mempo_gym.retrieval.base import CorpusRetriever  # noqa: E402
from mempo_gym.retrieval.bm25 import BM25Retriever  # noqa: E402

# dataset name -> (file under the data dir, corpus format, task loader)
DATASETS: dict[str, tuple[str, str, Callable[[Path], list[Task]]]] = {
    "hotpotqa": ("hotpotqa/hotpot_dev_paragraphs_sample.json", "hotpotqa",
                 lambda p: load_hotpotqa(p, setting="paragraphs")),
    "2wikimultihopqa": ("2wikimultihopqa/dev_sample.json", "2wikimultihopqa", load_2wikimultihopqa),
    "musique": ("musique/musique_ans_dev_sample.jsonl", "musique", load_musique),
}


def recall_at_k(
    tasks: Sequence[Task], ranked: Sequence[Sequence[str]], ks: Sequence[int]
) -> dict[int, float]:
    """Mean fraction of each question's supporting titles found in its top-k titles."""
    totals = {k: 0.0 for k in ks}
    counted = 0
    for task, titles in zip(tasks, ranked):
        gold = set(task.questions[0].supporting_titles)
        if not gold:
            continue
        counted += 1
        for k in ks:
            totals[k] += len(gold & set(titles[:k])) / len(gold)
    return {k: totals[k] / max(counted, 1) for k in ks}


def build_retrievers(
    docs: list[Document], which: Sequence[str], cache_dir: str | None, title_weight: int | None
) -> dict[str, CorpusRetriever]:
    out: dict[str, CorpusRetriever] = {}
    options = {} if title_weight is None else {"title_weight": title_weight}
    bm25 = BM25Retriever(docs, cache_dir=cache_dir, **options)
    if "bm25" in which:
        out["bm25"] = bm25
    if "dense" in which or "hybrid" in which:
        from mempo_gym.retrieval.dense import DenseRetriever
        from mempo_gym.retrieval.hybrid import HybridRetriever

        dense = DenseRetriever(docs, cache_dir=cache_dir)
        if "dense" in which:
            out["dense"] = dense
        if "hybrid" in which:
            out["hybrid"] = HybridRetriever(bm25, dense)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="data folder (default $MEMPO_GYM_DATA)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--retrievers", nargs="+", default=["bm25", "dense", "hybrid"],
                        choices=["bm25", "dense", "hybrid"])
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 2, 5, 10])
    parser.add_argument("--limit", type=int, default=None, help="max questions per dataset")
    parser.add_argument("--title-weight", type=int, default=None,
                        help="BM25 title_weight (default: the retriever's default)")
    parser.add_argument("--cache-dir", default=None, help="index cache folder (default: user cache)")
    args = parser.parse_args(argv)

    data_dir = resolve_data_dir(args.data_dir)
    if not data_dir.is_dir():
        print(f"Data directory {data_dir} does not exist: pass --data-dir or set "
              "MEMPO_GYM_DATA to the folder holding hotpotqa/, 2wikimultihopqa/, musique/.",
              file=sys.stderr)
        return 2
    rows = []
    for name in args.datasets:
        rel, fmt, loader = DATASETS[name]
        path = data_dir / rel
        if not path.is_file():
            print(f"skipping {name}: {path} not found", file=sys.stderr)
            continue
        tasks = loader(path)[: args.limit]
        docs = pool_context_paragraphs(path, fmt)
        questions = [t.questions[0].text for t in tasks]
        t0 = time.perf_counter()
        retrievers = build_retrievers(docs, args.retrievers, args.cache_dir, args.title_weight)
        build_s = time.perf_counter() - t0
        print(f"{name}: {len(tasks)} questions, {len(docs)} paragraphs, "
              f"retrievers ready in {build_s:.1f}s", file=sys.stderr)
        for rname, retriever in retrievers.items():
            hits = retriever.search_batch(questions, max(args.ks))
            ranked = [[h.doc.title for h in row] for row in hits]
            rows.append((name, len(tasks), len(docs), rname, recall_at_k(tasks, ranked, args.ks)))

    header = "| dataset | questions | paragraphs | retriever | " + " | ".join(
        f"R@{k}" for k in args.ks) + " |"
    print(header)
    print("|" + "---|" * (4 + len(args.ks)))
    for name, nq, nd, rname, rec in rows:
        print(f"| {name} | {nq} | {nd} | {rname} | " + " | ".join(
            f"{rec[k]:.3f}" for k in args.ks) + " |")
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
