"""The no-search floor of every suite entry: answer at once by naming an entity from the question.

A comparison question ("Which was founded first, X or Y?") is answered right about half the
time by naming one of its options without searching; this control measures how much F1 each
env of the suite gives away that way. The agent answers, for each question, the first option
of an "A or B" question, else the longest run of capitalised words after the first word.

Run: ``python benchmarks/no_search_floor.py [--out runs/floor] [--episodes N]`` (needs
``MEMPO_GYM_DATA`` for the real datasets; the suite's full episode counts by default).
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from mempo_gym.agent import Agent
from mempo_gym.harness.runfiles import read_episodes
from mempo_gym.records import Task
from mempo_gym.suite import get_suite, run_suite

_CAPS = re.compile(r"(?:[A-Z][\w'.-]*)(?:\s+(?:of|the|de|von|[A-Z][\w'.-]*))*")


def guess_entity(question: str) -> str:
    """An entity named in ``question`` (see module doc).

    >>> guess_entity("Which was founded first, Karovi Mills or Tesumo Glass?")
    'Karovi Mills'
    >>> guess_entity("Who founded the company that built Bezo Tower?")
    'Bezo Tower'
    """
    text = question.strip().rstrip("?")
    if " or " in text:
        head = text.split(" or ")[0]
        return head.split(",")[-1].strip().split(": ")[-1]
    words = text.split(" ", 1)
    rest = words[1] if len(words) > 1 else text
    runs = _CAPS.findall(rest)
    return max(runs, key=len).strip() if runs else rest.split()[-1]


class GuessEntity(Agent):
    """The no-search control: one turn, an entity from each question as the answer."""

    name = "guess-entity"

    def reset(self, task: Task, slot: int = 0) -> None:
        self.answers = getattr(self, "answers", {})
        self.answers[slot] = "; ".join(guess_entity(q.text) for q in task.questions)

    def act(self, observation: Any, info: Any, slot: int = 0) -> str:
        return f"<answer>{self.answers[slot]}</answer>"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "control": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="suite run folder (default: a temporary one)")
    parser.add_argument("--episodes", type=int, help="cap each entry's episodes")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="floor-"))
    start = time.process_time()
    folders = run_suite(GuessEntity(), out, episodes=args.episodes, progress=False)
    print(f"| suite entry | episodes | no-search F1 | EM | of which comparison-style (' or ') F1 |\n|---|---|---|---|---|")
    for entry in get_suite().entries:
        records = read_episodes(folders[entry.env_id] / "episodes.jsonl").records
        f1 = sum(r["f1"] for r in records) / len(records)
        em = sum(r["em"] for r in records) / len(records)
        comparison = [r for r in records if " or " in r["transcript"][0]["context"].rsplit("Question", 1)[-1]]
        cf1 = sum(r["f1"] for r in comparison) / len(comparison) if comparison else float("nan")
        print(f"| {entry.env_id} | {len(records)} | {f1:.3f} | {em:.3f} | {cf1:.3f} (n={len(comparison)}) |")
    print(f"\n{time.process_time() - start:.1f} s CPU; runs in {out}")


if __name__ == "__main__":
    main()
