"""Scoring a submission: validate, verify, re-score against the env's gold answers.

Order of checks (each failure is a :class:`SubmissionRejected` naming member and field):

1. the archive itself (:func:`~mempo_gym.leaderboard.safezip.read_archive`: size, member
   count, names, symlinks, compression ratio; read in memory, never extracted);
2. ``manifest.json`` schema, then members exactly as listed with matching size and sha256;
3. ``config.json`` and ``episodes.jsonl`` schemas;
4. per episode, against the environment rebuilt from the submission's env id and kwargs
   (only registered ids; nothing from the submission is imported or executed):
   the task id must exist; the first call's context must show the task's questions; the
   prediction must be the final call's ``<answer>``; the claimed ``tokens_total``,
   ``tokens_peak``, ``tokens_generated`` (and ``calls``) must equal the sums/max of the
   per-call counts; each call's ``input_tokens`` must equal the env tokenizer's count of
   its context and ``output_tokens`` the count of its output (within
   :data:`OUTPUT_TOKEN_SLACK`, since decoding and re-encoding generated ids can merge a
   token or drop an EOS).

Accepted submissions are re-scored with :func:`mempo_gym.metrics.score_answer` against the
env's golds (claimed scores are ignored; disagreements are counted in the result).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from mempo_gym.core.protocol import parse_turn
from mempo_gym.data.paths import DATA_DIR_ENV
from mempo_gym.harness.envs import core_env, make_env
from mempo_gym.harness.runfiles import canonical_json
from mempo_gym.leaderboard.errors import SubmissionRejected
from mempo_gym.leaderboard.safezip import ArchiveLimits, read_archive
from mempo_gym.leaderboard.schema import (
    CONFIG, EPISODES, MANIFEST, SCHEMA_VERSION, check_config, check_manifest, check_members, parse_episodes,
    parse_json,
)
from mempo_gym.metrics import score_answer
from mempo_gym.records import Task
from mempo_gym.report import bootstrap_interval
from mempo_gym.tokenizer import DEFAULT_TOKENIZER
from mempo_gym.version import __version__

RESULT_FORMAT = "mempo-gym-score"
#: Allowed |claimed - recounted| output tokens per call: max(2, 2 % of the recount).
OUTPUT_TOKEN_SLACK = (2, 0.02)
#: Env kwargs naming paths on the submitter's machine; dropped (the scorer's data dir is used).
PATH_KWARGS = frozenset({"data_dir", "index_cache_dir", "cache_dir"})


def _env_kwargs(env: Mapping[str, Any], index: int) -> tuple[dict[str, Any], list[str]]:
    """The kwargs the scorer rebuilds the env with, and the names it ignored."""
    kwargs = dict(env.get("kwargs") or {})
    ignored = []
    for key in list(kwargs):
        value = kwargs[key]
        if key in PATH_KWARGS or (isinstance(value, dict) and "__object__" in value):
            ignored.append(key)  # local paths, or objects recorded only by their describe()
            del kwargs[key]
    tokenizer = kwargs.pop("tokenizer", None)
    if tokenizer not in (None, DEFAULT_TOKENIZER):
        raise SubmissionRejected(
            f"tokenizer {str(tokenizer)[:80]!r}: submissions are verified with the env's default tokenizer "
            f"({DEFAULT_TOKENIZER}) only", member=CONFIG, field=f"envs[{index}].kwargs.tokenizer")
    return kwargs, ignored


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


@lru_cache(maxsize=8)
def _env_view(env_id: str, kwargs_json: str, data_dir: str | None) -> tuple[dict[str, Task], Any]:
    """Tasks by id and tokenizer of an env (cached: building an env can take seconds)."""
    with _data_dir(data_dir):
        env = make_env(env_id, **json.loads(kwargs_json))
    try:
        core = core_env(env)
        return {t.id: t for t in core.tasks}, core.tokenizer
    finally:
        env.close()


def _load_env(env_id: str, kwargs: dict[str, Any], data_dir: str | None, index: int) -> tuple[dict[str, Task], Any]:
    try:
        return _env_view(env_id, canonical_json(kwargs), data_dir)
    except SubmissionRejected:
        raise
    except Exception as exc:  # an unknown id or kwargs the env refuses are the submission's fault
        raise SubmissionRejected(
            f"cannot build env {env_id!r} with kwargs {canonical_json(kwargs)[:200]}: {type(exc).__name__}: "
            f"{str(exc)[:300]}", member=CONFIG, field=f"envs[{index}]") from exc


def _count(tokenizer: Any, texts: list[str]) -> list[int]:
    """Token counts exactly as :meth:`MemoryEnv.count_tokens` makes them."""
    return [len(tokenizer.encode(text, add_special_tokens=False)) for text in texts]


def verify_episode(record: Mapping[str, Any], task: Task, tokenizer: Any, where: str) -> None:
    """Consistency and token-count checks of one episode (see module docstring)."""
    m = EPISODES
    calls = record["transcript"]
    first = calls[0]["context"]
    for question in task.questions:
        if question.text not in first:
            raise SubmissionRejected(f"the first call's context does not show the question {question.text[:80]!r} "
                                     f"of task {task.id!r}", member=m, field=f"{where}: transcript[0].context")
    prediction = record["prediction"]
    if prediction is not None:
        final = parse_turn(calls[-1]["output"])
        if final.action != "answer" or (final.answer or "").strip() != prediction.strip():
            raise SubmissionRejected("prediction is not the <answer> of the final call's output",
                                     member=m, field=f"{where}: prediction")
    inputs = [c["input_tokens"] for c in calls]
    outputs = [c["output_tokens"] for c in calls]
    claims = {
        "tokens_total": sum(inputs) + sum(outputs),
        "tokens_peak": max(i + o for i, o in zip(inputs, outputs)),
        "tokens_generated": sum(outputs),
    }
    if "calls" in record:
        claims["calls"] = len(calls)
    for name, expected in claims.items():
        if record[name] != expected:
            raise SubmissionRejected(
                f"claimed {name}={record[name]} but the per-call counts give {expected}",
                member=m, field=f"{where}: {name}")
    recount_in = _count(tokenizer, [c["context"] for c in calls])
    recount_out = _count(tokenizer, [c["output"] for c in calls])
    for i, (claimed, actual) in enumerate(zip(inputs, recount_in)):
        if claimed != actual:
            raise SubmissionRejected(
                f"input_tokens={claimed} but the env tokenizer counts {actual} tokens in the context",
                member=m, field=f"{where}: transcript[{i}].input_tokens")
    fixed, share = OUTPUT_TOKEN_SLACK
    for i, (claimed, actual) in enumerate(zip(outputs, recount_out)):
        if abs(claimed - actual) > max(fixed, int(share * actual)):
            raise SubmissionRejected(
                f"output_tokens={claimed} but the env tokenizer counts {actual} tokens in the output",
                member=m, field=f"{where}: transcript[{i}].output_tokens")


def score_submission(
    submission: str | Path | bytes, *, data_dir: str | Path | None = None,
    limits: ArchiveLimits = ArchiveLimits(),
) -> dict[str, Any]:
    """Validate and score a submission zip; return the scored result (raises SubmissionRejected)."""
    raw = submission if isinstance(submission, (bytes, bytearray)) else None
    members = read_archive(submission, limits)
    if MANIFEST not in members:
        raise SubmissionRejected("missing manifest.json", member=MANIFEST)
    manifest = parse_json(MANIFEST, members[MANIFEST])
    listed = check_manifest(manifest)
    check_members(members, listed)
    config = parse_json(CONFIG, members[CONFIG])
    envs = check_config(config)
    records = parse_episodes(members[EPISODES], {e["id"] for e in envs})

    data = str(data_dir) if data_dir is not None else None
    per_env: dict[str, Any] = {}
    for index, env in enumerate(envs):
        env_records = [(n, r) for n, r in enumerate(records, 1) if r["env_id"] == env["id"]]
        if not env_records:
            continue
        kwargs, ignored = _env_kwargs(env, index)
        tasks, tokenizer = _load_env(env["id"], kwargs, data, index)
        rows = []
        mismatches = 0
        for number, record in env_records:
            where = f"episode {record['key'][:80]!r}"
            task = tasks.get(record["task_id"])
            if task is None:
                raise SubmissionRejected(f"unknown task id {record['task_id'][:80]!r} for env {env['id']!r}",
                                         member=EPISODES, field=f"{where}: task_id")
            verify_episode(record, task, tokenizer, where)
            score = score_answer(record["prediction"] or "", task.golds)
            if "f1" in record and abs(float(record["f1"]) - score.f1) > 1e-9:
                mismatches += 1
            rows.append({
                "f1": score.f1, "em": score.em, "tokens_total": record["tokens_total"],
                "tokens_peak": record["tokens_peak"], "tokens_generated": record["tokens_generated"],
                "turns": len(record["transcript"]), "num_objectives": task.num_objectives,
            })
        per_env[env["id"]] = _env_summary(rows, kwargs, ignored, mismatches)
    digest = hashlib.sha256(raw if raw is not None else Path(submission).read_bytes()).hexdigest()  # type: ignore[arg-type]
    return {
        "result_format": RESULT_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "scorer_version": __version__,
        "status": "accepted",
        "scored_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "submission": {
            "name": manifest["submission"]["name"], "contact": manifest["submission"]["contact"],
            "file": None if raw is not None else Path(submission).name, "sha256": digest,  # type: ignore[arg-type]
        },
        "agent": config["agent"],
        "envs": per_env,
    }


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
        "by_objectives": by_objectives,
    }


def write_result(result: Mapping[str, Any], out: str | Path) -> Path:
    """Write a scored result as JSON."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out
