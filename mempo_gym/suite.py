"""The fixed, versioned benchmark suite and the one call that runs an agent on all of it.

``MemPO-Bench-v0`` is a list of (env id, settings, episode count) entries: SynthWiki at
1/2/4/8 objectives on held-out (``split="test"``) worlds, HotpotQA, 2Wiki, MuSiQue, NQ,
Bamboogle, HotpotQA at 2-10 objectives, and web search over the offline Wikipedia pages
recorded into a search cache that travels with the submission. Every entry asks the
first ``episodes`` tasks of the run's seeded permutation, each once
(:mod:`mempo_gym.harness.task_order`). A suite never changes once published; a new
entry list is a new version (``MemPO-Bench-v1``).

:func:`run_suite` runs an agent on every entry (one run folder per entry, resumable) and
:func:`pack_suite` packs the folders into one submission zip. ``world_seed`` replaces
the SynthWiki world seed: a host keeps that seed private and runs submitted agents on
worlds nobody has seen (replay cannot tell an agent that regenerated a public world from
one that searched it; see :mod:`mempo_gym.leaderboard.replay`). Such runs are marked
``private-world`` on the board.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

DEFAULT_SUITE = "MemPO-Bench-v0"
WEB_CACHE_FILE = "websearch_cache.sqlite"


@dataclass(frozen=True)
class SuiteEntry:
    """One column of the suite: an env id, its settings and how many episodes (tasks) it asks."""

    env_id: str
    episodes: int
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Short column name (``SynthWiki-2obj``)."""
        return self.env_id.removeprefix("MemPO-").removesuffix("-v0")


@dataclass(frozen=True)
class Suite:
    """A named, versioned list of entries (env ids are unique within a suite)."""

    name: str
    entries: tuple[SuiteEntry, ...]

    def entry(self, env_id: str) -> SuiteEntry | None:
        return next((e for e in self.entries if e.env_id == env_id), None)


_SYNTH = {"split": "test"}
SUITES: dict[str, Suite] = {
    "MemPO-Bench-v0": Suite("MemPO-Bench-v0", (
        SuiteEntry("MemPO-SynthWiki-v0", 100, _SYNTH),
        SuiteEntry("MemPO-SynthWiki-2obj-v0", 100, _SYNTH),
        SuiteEntry("MemPO-SynthWiki-4obj-v0", 100, _SYNTH),
        SuiteEntry("MemPO-SynthWiki-8obj-v0", 100, _SYNTH),
        SuiteEntry("MemPO-HotpotQA-v0", 100),
        SuiteEntry("MemPO-2Wiki-v0", 100),
        SuiteEntry("MemPO-MuSiQue-v0", 100),
        SuiteEntry("MemPO-NQ-v0", 100),
        SuiteEntry("MemPO-Bamboogle-v0", 100),
        SuiteEntry("MemPO-HotpotQA-2obj-v0", 40),
        SuiteEntry("MemPO-HotpotQA-4obj-v0", 40),
        SuiteEntry("MemPO-HotpotQA-6obj-v0", 40),
        SuiteEntry("MemPO-HotpotQA-8obj-v0", 40),
        SuiteEntry("MemPO-HotpotQA-10obj-v0", 40),
        SuiteEntry("MemPO-WebSearch-v0", 100, {"mode": "record"}),
    )),
}


def get_suite(name: str = DEFAULT_SUITE) -> Suite:
    """A suite by name (``ValueError`` naming the known ones otherwise)."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; known suites: {', '.join(sorted(SUITES))}")
    return SUITES[name]


def entry_kwargs(entry: SuiteEntry, run_dir: Path, world_seed: int | None = None) -> dict[str, Any]:
    """The ``gym.make`` settings of an entry as run into ``run_dir`` (web cache path, private world seed)."""
    kwargs = dict(entry.kwargs)
    if world_seed is not None and entry.env_id.startswith("MemPO-SynthWiki"):
        kwargs["seed"] = int(world_seed)
    if entry.env_id.startswith("MemPO-WebSearch"):
        kwargs["cache_path"] = str(run_dir.parent / WEB_CACHE_FILE)
    return kwargs


def run_suite(
    agent: Any, out: str | Path, *, suite: str = DEFAULT_SUITE, seed: int = 0, world_seed: int | None = None,
    batch_size: int = 1, env_kwargs: Mapping[str, Any] | None = None, entries: Sequence[str] | None = None,
    episodes: int | None = None, progress: bool = True,
) -> dict[str, Path]:
    """Run ``agent`` on every entry of ``suite`` into ``out/<env id>/``; return the run folders.

    Resumes any entry already (partly) run in ``out``. ``entries`` restricts the run to some
    env ids and ``episodes`` caps every entry's count (both for trying a setup quickly: such
    a run is incomplete and ranked apart from full-suite runs). ``env_kwargs`` override
    settings (a run with other benchmark settings is grouped apart as non-standard).
    """
    from mempo_gym.harness import evaluate

    chosen = get_suite(suite).entries
    if entries is not None:
        unknown = sorted(set(entries) - {e.env_id for e in chosen})
        if unknown:
            raise ValueError(f"{', '.join(unknown)} not in suite {suite}")
        chosen = tuple(e for e in chosen if e.env_id in set(entries))
    out = Path(out)
    folders: dict[str, Path] = {}
    for entry in chosen:
        folder = out / entry.env_id
        kwargs = {**entry_kwargs(entry, folder, world_seed), **dict(env_kwargs or {})}
        count = entry.episodes if episodes is None else min(int(episodes), entry.episodes)
        evaluate(entry.env_id, agent, episodes=count, seed=seed, out=folder, batch_size=batch_size,
                 resume=(folder / "config.json").is_file(), env_kwargs=kwargs, progress=progress,
                 task_order="permutation")
        folders[entry.env_id] = folder
    (out / "suite.json").write_text(json.dumps({"suite": suite, "seed": seed, "world_seed": world_seed,
                                                "entries": list(folders)}, indent=2) + "\n", encoding="utf-8")
    return folders


def pack_suite(out: str | Path, *, name: str, contact: str, zip_path: str | Path | None = None) -> Path:
    """Pack the run folders of :func:`run_suite` in ``out`` into one submission zip."""
    from mempo_gym.harness.runfiles import EPISODES_FILE, read_config, read_episodes
    from mempo_gym.leaderboard.submit import write_submission

    out = Path(out)
    meta_path = out / "suite.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} does not exist: run the suite into {out} first")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    envs: list[dict[str, Any]] = []
    lines: list[bytes] = []
    agent: Any = None
    version = None
    for env_id in meta["entries"]:
        folder = out / env_id
        config = read_config(folder)
        agent = agent if agent is not None else config["agent"]
        version = version or config.get("mempo_gym_version")
        parsed = read_episodes(folder / EPISODES_FILE)
        raw = (folder / EPISODES_FILE).read_bytes()[: parsed.good_bytes]
        lines.append(raw)
        for env in config["envs"]:
            envs.append({"id": env["id"], "kwargs": env["kwargs"], "describe": env.get("describe"),
                         "seed": config["seed"], "episodes": config["episodes"],
                         "task_order": config.get("task_order", "sample")})
    suite_config = {
        "format": "mempo-gym-suite-run", "suite": meta["suite"], "world_seed_private": meta.get("world_seed") is not None,
        "agent": agent, "mempo_gym_version": version, "envs": envs,
    }
    cache = out / WEB_CACHE_FILE
    extra = {WEB_CACHE_FILE: cache.read_bytes()} if cache.is_file() else None
    target = Path(zip_path) if zip_path is not None else out / "submission.zip"
    return write_submission(suite_config, b"".join(lines), target, name=name, contact=contact, members=extra)
