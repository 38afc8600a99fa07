"""How fast SynthWiki worlds and tasks are generated, from 1k to 100k documents.

Prints CPU seconds per world and, as the reference measured in the same run, the cost of
merely constructing the same number of ``Document`` records from ready-made strings (the
floor any generator pays), so the ratio shows the generator's own overhead.

    python benchmarks/bench_synthwiki.py [--sizes 1000 10000 100000] [--name-style syllable]
"""

from __future__ import annotations

import argparse
import time

from mempo_gym.records import Document
from mempo_gym.tasks.names import MAX_POOL_SIZE
from mempo_gym.tasks.synthwiki import SynthWikiConfig, generate_tasks, generate_world


def cpu_seconds(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--name-style", choices=["syllable", "pool"], default="syllable")
    parser.add_argument("--tasks", type=int, default=1_000, help="4-objective tasks generated per world")
    args = parser.parse_args()
    print(f"{'docs':>8} {'world s':>8} {'us/doc':>7} {'records-only s':>15} {'ratio':>6} {'tasks s':>8}")
    for size in args.sizes:
        if args.name_style == "pool" and size > MAX_POOL_SIZE:
            print(f"{size:>8} skipped: name_style='pool' supports at most {MAX_POOL_SIZE} entities")
            continue
        core = min(size, 1_000) if args.name_style == "syllable" else size
        config = SynthWikiConfig(
            num_entities=core, num_distractors=size - core, name_style=args.name_style,
            pool_size=max(400, size) if args.name_style == "pool" else 400, num_tasks=args.tasks, objectives=4, hops=(1, 4),
        )
        world_s, world = cpu_seconds(lambda: generate_world(config))
        texts = [(d.id, d.title, d.text) for d in world.documents]  # type: ignore[attr-defined]
        floor_s, _ = cpu_seconds(lambda: [Document(id=i, title=t, text=x) for i, t, x in texts])
        tasks_s, _ = cpu_seconds(lambda: generate_tasks(world, config))  # type: ignore[arg-type]
        print(
            f"{size:>8} {world_s:>8.2f} {1e6 * world_s / size:>7.1f} {floor_s:>15.3f} "
            f"{world_s / max(floor_s, 1e-9):>6.1f} {tasks_s:>8.2f}"
        )


if __name__ == "__main__":
    main()
