"""Scoring a submission: stream-check it, replay it through the env, re-score it.

Order of checks (each failure is a :class:`SubmissionRejected` naming member and field;
the cheap ones come first and the scorer stops at the first failure):

1. the archive's central directory (:class:`~mempo_gym.leaderboard.safezip.SafeArchive`:
   size, member count, names, file types, compression ratio; nothing decompressed yet);
2. ``manifest.json`` (at most 1 MiB) and its schema; every other member must be listed,
   with the size the manifest gives, BEFORE it is decompressed; then each member's
   SHA-256 is streamed in 64 KiB chunks;
3. ``config.json``: env ids (registered ``MemPO-`` ids only) and settings
   (:mod:`.settings`: an allowlist with bounds) checked before any env is built;
4. ``episodes.jsonl``, streamed line by line: schema, then the episode key must be one
   of the implied task set (``ENV#i`` for ``i < episodes``, once), then replay
   (:mod:`.replay`): reset to the task the seed and task order give for ``i`` and step
   the recorded outputs, comparing every context, output, information, action,
   truncation, reward and token count with the env's;
5. every implied episode must be present (a subset is refused).

Accepted submissions are scored from the env's own final metrics (F1/EM against the env's
golds with :func:`mempo_gym.metrics.score_answer`; claimed scores are ignored and
disagreements counted), with the run's settings group against the suite's standard
settings (:mod:`mempo_gym.suite`).

Work is bounded by the limits: at most 50,000 episodes, at most ``max_turns`` (<= 64)
replayed calls per episode, each context checked by string comparison before it is
tokenised, and env sizes capped by :mod:`.settings` (``benchmarks/bench_scorer.py``
measures the cost).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

import gymnasium as gym
import numpy as np

from mempo_gym.core.env import MemoryEnv
from mempo_gym.data.paths import DATA_DIR_ENV
from mempo_gym.harness.envs import core_env, make_env
from mempo_gym.harness.episodes import episode_key, episode_seed
from mempo_gym.harness.runfiles import canonical_json, to_jsonable
from mempo_gym.harness.task_order import reset_arguments
from mempo_gym.leaderboard.errors import SubmissionRejected
from mempo_gym.leaderboard.replay import replay_episode
from mempo_gym.leaderboard.safezip import ArchiveLimits, SafeArchive
from mempo_gym.leaderboard.schema import (
    CONFIG, EPISODES, MANIFEST, SCHEMA_VERSION, WEB_CACHE, check_config, check_listing, check_manifest,
    parse_episode_line, parse_json,
)
from mempo_gym.leaderboard.settings import benchmark_kwargs, check_env_settings, differing_settings, env_family
from mempo_gym.report import bootstrap_interval
from mempo_gym.version import __version__

RESULT_FORMAT = "mempo-gym-score"
#: Agents that are controls (bounds and floors), marked on the board and never ranked.
CONTROL_AGENTS = frozenset({"oracle", "closed-book", "random", "guess-entity"})


@contextlib.contextmanager
def _data_dir(path: str | Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    old = os.environ.get(DATA_DIR_ENV)
    os.environ[DATA_DIR_ENV] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(DATA_DIR_ENV, None)
        else:
            os.environ[DATA_DIR_ENV] = old


def _build(env_id: str, kwargs: Mapping[str, Any], data_dir: str | None, index: int) -> gym.Env:
    try:
        with _data_dir(data_dir):
            return make_env(env_id, **kwargs)
    except Exception as exc:  # kwargs the env refuses are the submission's fault
        raise SubmissionRejected(
            f"cannot build env {env_id!r} with settings {canonical_json(to_jsonable(dict(kwargs)))[:200]}: "
            f"{type(exc).__name__}: {str(exc)[:300]}", member=CONFIG, field=f"envs[{index}]") from exc


@lru_cache(maxsize=32)
def _reference_describe(env_id: str, kwargs_json: str, data_dir: str | None) -> str:
    """``describe()`` (as JSON) of an env built with the standard settings (cached per process)."""
    with _data_dir(data_dir):
        env = make_env(env_id, **json.loads(kwargs_json))
    try:
        return canonical_json(to_jsonable(core_env(env).describe()))
    finally:
        env.close()


def settings_group(env_id: str, described: Mapping[str, Any], suite_name: str | None,
                   data_dir: str | None, kwargs: Mapping[str, Any] | None = None) -> tuple[str, list[str], str | None]:
    """``(group, differing settings, suite)``: ``standard``, ``private-world`` or ``non-standard``.

    The standard is the suite entry's settings for ``env_id`` (``MemPO-Bench-v0`` unless the
    config names another suite), else the id's registered defaults. Method settings (memory,
    instructions, action mode, reward shaping) never make a run non-standard.
    """
    from mempo_gym.suite import DEFAULT_SUITE, SUITES

    suite = SUITES.get(suite_name or DEFAULT_SUITE)
    entry = suite.entry(env_id) if suite is not None else None
    standard = {k: v for k, v in (entry.kwargs if entry else {}).items() if k != "mode"}
    suite_label = suite.name if entry is not None and suite is not None else None
    if kwargs is not None and benchmark_kwargs(kwargs) == benchmark_kwargs(standard):
        return "standard", [], suite_label  # the same benchmark settings, given the same way: nothing to build
    if env_family(env_id) == "web":
        standard = {**standard, "mode": "live"}
    try:
        reference = json.loads(_reference_describe(env_id, canonical_json(standard), data_dir))
    except Exception as exc:  # noqa: BLE001 - data for the standard build may be absent
        return "non-standard", [f"standard settings cannot be built here ({type(exc).__name__})"], None
    diff = differing_settings(described, reference)
    if not diff:
        return "standard", [], suite_label
    if "synthwiki" in diff and set(diff) <= {"synthwiki", "world_id", "search_tool"}:
        ours, theirs = dict(described.get("synthwiki") or {}), dict(reference.get("synthwiki") or {})
        tool = json.loads(canonical_json(described.get("search_tool") or {}))
        ref_tool = json.loads(canonical_json(reference.get("search_tool") or {}))
        for t in (tool, ref_tool):  # another world is another corpus: only its hash may differ
            if isinstance(t.get("retriever"), dict):
                t["retriever"].pop("corpus_sha256", None)
        if {k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k)} <= {"seed"} and tool == ref_tool:
            return "private-world", ["synthwiki.seed"], suite_label
    return "non-standard", diff, suite_label


@dataclass
class _EnvRun:
    """One config entry being replayed."""

    index: int
    plan: dict[str, Any]
    kwargs: dict[str, Any]
    ignored: list[str]
    env: gym.Env | None = None
    core: MemoryEnv | None = None
    seen: set[int] = field(default_factory=set)
    tasks_seen: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    mismatches: int = 0


def _open_env(run: _EnvRun, data_dir: str | None, web_cache: Path | None) -> MemoryEnv:
    if run.core is not None:
        return run.core
    kwargs = {**run.kwargs, "action_mode": "text"}
    if env_family(run.plan["id"]) == "web":
        if web_cache is None:
            raise SubmissionRejected(f"a web-search run needs its search cache: the member {WEB_CACHE!r} is missing",
                                     member=WEB_CACHE)
        kwargs.update(mode="replay", strict_replay=True, cache_path=str(web_cache))
    run.env = _build(run.plan["id"], kwargs, data_dir, run.index)
    run.core = core_env(run.env)
    num_tasks = len(run.core.tasks)
    if run.plan["task_order"] == "permutation" and run.plan["episodes"] > num_tasks:
        raise SubmissionRejected(
            f"episodes={run.plan['episodes']} but {run.plan['id']} with these settings has {num_tasks} tasks, so the "
            "run cannot have asked each task once", member=CONFIG, field=f"envs[{run.index}].episodes")
    return run.core


def _check_key(run: _EnvRun, record: Mapping[str, Any], where: str) -> int:
    """The episode index of a record, which must be in the implied task set and new."""
    env_id, episodes = run.plan["id"], run.plan["episodes"]
    head, sep, tail = record["key"].rpartition("#")
    index = int(tail) if sep and head == env_id and tail.isdigit() and len(tail) < 7 else -1
    if not 0 <= index < episodes or record["key"] != episode_key(env_id, index):
        raise SubmissionRejected(
            f"episode key {record['key'][:80]!r} is not in the implied task set {env_id}#0..{episodes - 1} "
            "(extra episode)", member=EPISODES, field=f"{where}: key")
    if index in run.seen:
        raise SubmissionRejected(f"episode {record['key']!r} is recorded twice", member=EPISODES, field=f"{where}: key")
    if "episode_index" in record and record["episode_index"] != index:
        raise SubmissionRejected(f"episode_index {record['episode_index']} does not match the key",
                                 member=EPISODES, field=f"{where}: episode_index")
    expected_seed = episode_seed(run.plan["seed"], env_id, index)
    if "episode_seed" in record and record["episode_seed"] != expected_seed:
        raise SubmissionRejected(
            f"episode_seed {record['episode_seed']} is not the run seed's ({expected_seed}): the seed is checked",
            member=EPISODES, field=f"{where}: episode_seed")
    if run.plan["task_order"] == "permutation":
        first = run.tasks_seen.get(record["task_id"])
        if first is not None:
            raise SubmissionRejected(
                f"task {record['task_id'][:80]!r} counted twice (also as {first!r}); each task is asked once",
                member=EPISODES, field=f"{where}: task_id")
        run.tasks_seen[record["task_id"]] = record["key"]
    run.seen.add(index)
    return index


def score_submission(
    submission: str | Path | bytes, *, data_dir: str | Path | None = None,
    limits: ArchiveLimits = ArchiveLimits(),
) -> dict[str, Any]:
    """Validate, replay and score a submission zip; return the scored result (raises SubmissionRejected)."""
    data = str(data_dir) if data_dir is not None else None
    with SafeArchive(submission, limits) as archive, tempfile.TemporaryDirectory(prefix="mempo-score-") as tmp:
        if MANIFEST not in archive.infos:
            raise SubmissionRejected("missing manifest.json", member=MANIFEST)
        manifest = parse_json(MANIFEST, archive.read(MANIFEST, limits.max_manifest_bytes))
        listed = check_manifest(manifest)
        check_listing({name: archive.size(name) for name in archive.infos}, listed)
        for name in sorted(listed):
            if archive.sha256(name) != listed[name]["sha256"]:
                raise SubmissionRejected("sha256 checksum mismatch with manifest.json (tampered or damaged)",
                                         member=name, field="sha256")
        config = parse_json(CONFIG, archive.read(CONFIG, limits.max_config_bytes))
        plans = check_config(config)
        runs: dict[str, _EnvRun] = {}
        for index, plan in enumerate(plans):
            kwargs, ignored = check_env_settings(plan["id"], plan["kwargs"], f"envs[{index}]", CONFIG)
            runs[plan["id"]] = _EnvRun(index, plan, kwargs, ignored)
        web_cache: Path | None = None
        if WEB_CACHE in listed:
            web_cache = Path(tmp) / WEB_CACHE
            with open(web_cache, "wb") as fh:
                for chunk in archive.stream(WEB_CACHE):
                    fh.write(chunk)
        try:
            for number, line in archive.lines(EPISODES, limits.max_line_bytes):
                record = parse_episode_line(line, number, set(runs))
                if record is None:
                    continue
                run = runs[record["env_id"]]
                where = f"episode {record['key'][:80]!r}"
                index = _check_key(run, record, where)
                core = _open_env(run, data, web_cache)
                reset = reset_arguments(run.plan["task_order"], run.plan["seed"], run.plan["id"], index,
                                        len(core.tasks))
                try:
                    metrics = replay_episode(core, record, reset, where)
                except SubmissionRejected:
                    raise
                except Exception as exc:  # a strict replay miss, or outputs the env refuses
                    raise SubmissionRejected(f"replay failed: {type(exc).__name__}: {str(exc)[:300]}",
                                             member=EPISODES, field=where) from exc
                task = core.task
                assert task is not None
                if "f1" in record and abs(float(record["f1"]) - float(metrics["f1"])) > 1e-9:
                    run.mismatches += 1
                run.rows.append({
                    "f1": float(metrics["f1"]), "em": float(metrics["em"]), "tokens_total": metrics["tokens_total"],
                    "tokens_peak": metrics["tokens_peak"], "tokens_generated": metrics["tokens_generated"],
                    "turns": metrics["turns"], "num_objectives": task.num_objectives,
                    "searchless": bool(metrics.get("answered")) and not metrics.get("searches"),
                })
            if not any(run.rows for run in runs.values()):
                raise SubmissionRejected("holds no episodes", member=EPISODES)
            for run in runs.values():
                missing = [i for i in range(run.plan["episodes"]) if i not in run.seen]
                if missing:
                    raise SubmissionRejected(
                        f"{len(missing)} of the {run.plan['episodes']} episodes the config implies for "
                        f"{run.plan['id']} are missing (first: {episode_key(run.plan['id'], missing[0])!r}); a "
                        "submission holds every implied task, not a subset", member=EPISODES, field="episodes")
            per_env: dict[str, Any] = {}
            suite_name = config.get("suite") if isinstance(config.get("suite"), str) else None
            for env_id, run in runs.items():
                assert run.core is not None
                described = to_jsonable(run.core.describe())
                group, diff, suite = settings_group(env_id, described, suite_name, data, run.kwargs)
                per_env[env_id] = {
                    **_env_summary(run.rows, run.kwargs, run.ignored, run.mismatches),
                    "seed": run.plan["seed"], "task_order": run.plan["task_order"],
                    "settings_group": group, "non_standard_settings": diff, "suite": suite,
                    "memory": (described.get("memory") or {}).get("name") if isinstance(described.get("memory"), dict)
                    else described.get("memory"),
                }
        finally:
            for run in runs.values():
                if run.env is not None:
                    run.env.close()
    if isinstance(submission, (bytes, bytearray)):
        digest, file_name = hashlib.sha256(submission).hexdigest(), None
    else:
        digest, file_name = _sha256_path(Path(submission)), Path(submission).name
    agent = config["agent"]
    return {
        "result_format": RESULT_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "scorer_version": __version__,
        "status": "accepted",
        "verification": "replay",
        "scored_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "submission": {
            "name": manifest["submission"]["name"], "contact": manifest["submission"]["contact"],
            "file": file_name, "sha256": digest, "created_at": manifest.get("created_at"),
        },
        "agent": agent,
        "control": str(agent.get("name", "")).lower() in CONTROL_AGENTS or bool(agent.get("control")),
        "library_version": config.get("mempo_gym_version"),
        "suite": suite_name,
        "world_seed_private": bool(config.get("world_seed_private")),
        "envs": per_env,
    }


def _sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _env_summary(rows: list[dict[str, Any]], kwargs: dict[str, Any], ignored: list[str], mismatches: int) -> dict[str, Any]:
    f1 = [r["f1"] for r in rows]
    em = [r["em"] for r in rows]
    f1_lo, f1_hi = bootstrap_interval(f1)
    em_lo, em_hi = bootstrap_interval(em)
    by_objectives: dict[str, dict[str, float]] = {}
    for k in sorted({r["num_objectives"] for r in rows}):
        sub = [r for r in rows if r["num_objectives"] == k]
        by_objectives[str(k)] = {
            "n": len(sub), "f1": float(np.mean([r["f1"] for r in sub])),
            "tokens_total": float(np.mean([r["tokens_total"] for r in sub])),
            "tokens_peak": float(np.mean([r["tokens_peak"] for r in sub])),
        }
    return {
        "kwargs": kwargs, "ignored_kwargs": ignored, "n": len(rows),
        "f1": float(np.mean(f1)), "f1_lo": f1_lo, "f1_hi": f1_hi,
        "em": float(np.mean(em)), "em_lo": em_lo, "em_hi": em_hi,
        "tokens_total": float(np.mean([r["tokens_total"] for r in rows])),
        "tokens_peak": float(np.mean([r["tokens_peak"] for r in rows])),
        "tokens_generated": float(np.mean([r["tokens_generated"] for r in rows])),
        "turns": float(np.mean([r["turns"] for r in rows])),
        "claimed_score_mismatches": mismatches,
        #: share of episodes answered without a single search (replay cannot tell recall from search)
        "answered_without_search": float(np.mean([r.get("searchless", False) for r in rows])),
        "by_objectives": by_objectives,
    }


def write_result(result: Mapping[str, Any], out: str | Path) -> Path:
    """Write a scored result as JSON."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out
