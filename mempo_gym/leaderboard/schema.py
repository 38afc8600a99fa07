"""The submission format (schema version 2): members, manifest and record checks.

A submission is a zip archive with exactly these top-level members (see
``docs/submission_format.md``):

* ``manifest.json`` — ``{"schema_version": 1, "submission": {"name", "contact", ...},
  "members": {name: {"sha256": hex, "size": bytes}}}`` listing every other member;
* ``config.json`` — at least ``{"agent": {"name": str}, "seed": int, "episodes": int,
  "task_order": "permutation"|"sample", "envs": [{"id": str, "kwargs": {}}]}`` (``seed``,
  ``episodes`` and ``task_order`` may also be given per env entry; a MemPO-Gym run's
  ``config.json`` qualifies as is);
* ``episodes.jsonl`` — one JSON object per episode (:data:`EPISODE_REQUIRED`), with its
  full transcript (:data:`CALL_REQUIRED` per model call);
* optionally ``websearch_cache.sqlite`` — the record/replay cache of a web-search run.

Each check raises :class:`~mempo_gym.leaderboard.errors.SubmissionRejected` naming the
member and field at fault.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from mempo_gym.leaderboard.errors import SubmissionRejected

SCHEMA_VERSION = 2
MANIFEST = "manifest.json"
CONFIG = "config.json"
EPISODES = "episodes.jsonl"
WEB_CACHE = "websearch_cache.sqlite"
REQUIRED_MEMBERS = (CONFIG, EPISODES)
OPTIONAL_MEMBERS = (WEB_CACHE,)
MAX_EPISODES = 50_000
MAX_OUTPUT_IDS = 4096
MAX_CALLS_PER_EPISODE = 4096
MAX_TEXT_FIELD = 4 * 1024 * 1024  # characters in one context/output string

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENV_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")  # no "module:" prefix: nothing is imported

#: Episode fields and their JSON types (``None`` allowed where listed).
EPISODE_REQUIRED: dict[str, tuple[type, ...]] = {
    "key": (str,),
    "env_id": (str,),
    "task_id": (str,),
    "prediction": (str, type(None)),
    "tokens_total": (int,),
    "tokens_peak": (int,),
    "tokens_generated": (int,),
    "transcript": (list,),
}
EPISODE_OPTIONAL: dict[str, tuple[type, ...]] = {
    "calls": (int,), "turns": (int,), "f1": (int, float), "em": (int, float),
    "episode_index": (int,), "num_objectives": (int,), "searches": (int,),
    "malformed_turns": (int,), "wall_time_s": (int, float, type(None)),
}
#: Per-call fields of a transcript entry.
CALL_REQUIRED: dict[str, tuple[type, ...]] = {
    "context": (str,), "output": (str,), "input_tokens": (int,), "output_tokens": (int,),
}
CALL_OPTIONAL: dict[str, tuple[type, ...]] = {
    "output_ids": (list,), "information": (str, type(None)), "action": (str,), "end": (str,),
    "malformed": (str, type(None)), "turn": (int,), "altered": (bool,),
}


def parse_json(member: str, data: bytes) -> Any:
    """Strict JSON of a whole member (UTF-8, no NaN/Infinity)."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise SubmissionRejected(f"not UTF-8 text ({exc.reason} at byte {exc.start})", member=member) from exc
    except (ValueError, RecursionError) as exc:
        raise SubmissionRejected(f"bad JSON ({exc})", member=member) from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON true/false are not numbers here
    return isinstance(value, kinds)


def _kind_names(kinds: tuple[type, ...]) -> str:
    names = {str: "string", int: "integer", float: "number", list: "array", dict: "object", type(None): "null"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def check_manifest(manifest: Any) -> dict[str, dict[str, Any]]:
    """Validate ``manifest.json``; return its ``members`` table."""
    m = MANIFEST
    if not isinstance(manifest, dict):
        raise SubmissionRejected("must be a JSON object", member=m)
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise SubmissionRejected(
            f"unsupported schema_version {version!r}; this scorer reads version {SCHEMA_VERSION}",
            member=m, field="schema_version")
    submission = manifest.get("submission")
    if not isinstance(submission, dict) or not all(
            isinstance(submission.get(k), str) and str(submission[k]).strip() for k in ("name", "contact")):
        raise SubmissionRejected("needs non-empty strings submission.name and submission.contact",
                                 member=m, field="submission")
    members = manifest.get("members")
    if not isinstance(members, dict):
        raise SubmissionRejected("must be an object {name: {sha256, size}}", member=m, field="members")
    for name, entry in members.items():
        if name == MANIFEST:
            raise SubmissionRejected("the manifest cannot list itself", member=m, field=f"members[{name!r}]")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) \
                or not _SHA256.match(entry["sha256"]) or not _is(entry.get("size"), (int,)) or entry["size"] < 0:
            raise SubmissionRejected("needs a lowercase hex sha256 and a non-negative integer size",
                                     member=m, field=f"members[{name!r}]")
    for required in REQUIRED_MEMBERS:
        if required not in members:
            raise SubmissionRejected(f"does not list the required member {required!r}", member=m, field="members")
    return members


def check_config(config: Any) -> list[dict[str, Any]]:
    """Validate ``config.json``; return its env entries ``[{"id", "kwargs", "seed", "episodes", "task_order"}]``
    (run-level ``seed``/``episodes``/``task_order`` filled in where an entry lacks them)."""
    m = CONFIG
    if not isinstance(config, dict):
        raise SubmissionRejected("must be a JSON object", member=m)
    agent = config.get("agent")
    if not isinstance(agent, dict) or not isinstance(agent.get("name"), str) or not agent["name"].strip():
        raise SubmissionRejected("needs an object agent with a non-empty string name", member=m, field="agent")
    envs = config.get("envs")
    if not isinstance(envs, list) or not envs:
        raise SubmissionRejected("needs a non-empty array envs", member=m, field="envs")
    seen = set()
    for i, env in enumerate(envs):
        where = f"envs[{i}]"
        if not isinstance(env, dict) or not isinstance(env.get("id"), str):
            raise SubmissionRejected("needs a string id", member=m, field=where)
        if not _ENV_ID.match(env["id"]):
            raise SubmissionRejected(f"env id {env['id'][:80]!r} is not a registered-id name (letters, digits, ._-/)",
                                     member=m, field=f"{where}.id")
        if env["id"] in seen:
            raise SubmissionRejected(f"env id {env['id']!r} listed twice", member=m, field=f"{where}.id")
        seen.add(env["id"])
        if not isinstance(env.get("kwargs", {}), dict):
            raise SubmissionRejected("kwargs must be an object", member=m, field=f"{where}.kwargs")
    if len(envs) > 32:
        raise SubmissionRejected(f"{len(envs)} envs, above the limit of 32", member=m, field="envs")
    plans = []
    for i, env in enumerate(envs):
        plan = {"id": env["id"], "kwargs": dict(env.get("kwargs") or {})}
        for name, kinds in (("seed", (int,)), ("episodes", (int,)), ("task_order", (str,))):
            value = env.get(name, config.get(name))
            if value is None or not _is(value, kinds):
                raise SubmissionRejected(
                    f"needs {name} ({_kind_names(kinds)}), per env or for the whole run: the scorer rebuilds the task "
                    "set from the env, settings, seed, task order and episode count", member=m, field=f"envs[{i}].{name}")
            plan[name] = value
        if plan["task_order"] not in ("permutation", "sample"):
            raise SubmissionRejected(f"task_order {plan['task_order'][:40]!r} must be 'permutation' or 'sample'",
                                     member=m, field=f"envs[{i}].task_order")
        if not 1 <= plan["episodes"] <= 20_000 or plan["seed"] < 0:
            raise SubmissionRejected("episodes must be in [1, 20000] and seed non-negative", member=m,
                                     field=f"envs[{i}].episodes")
        plans.append(plan)
    if sum(p["episodes"] for p in plans) > MAX_EPISODES:
        raise SubmissionRejected(f"more than {MAX_EPISODES} episodes in all", member=m, field="episodes")
    return plans


def parse_episode_line(line: bytes, number: int, env_ids: set[str]) -> dict[str, Any] | None:
    """One ``episodes.jsonl`` line as a checked record (``None`` for a blank line)."""
    m = EPISODES
    where = f"line {number}"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionRejected(f"not UTF-8 text ({exc.reason} at byte {exc.start})", member=m, field=where) from exc
    if not text.strip():
        return None
    try:
        record = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise SubmissionRejected(f"bad JSON ({exc})", member=m, field=where) from exc
    check_episode(record, where)
    if record["env_id"] not in env_ids:
        raise SubmissionRejected(f"env_id {record['env_id'][:80]!r} is not listed in config.json envs",
                                 member=m, field=f"{where}: env_id")
    return record


def check_episode(record: Any, where: str) -> None:
    """Types of one episode record and its transcript."""
    m = EPISODES
    if not isinstance(record, dict):
        raise SubmissionRejected("an episode must be a JSON object", member=m, field=where)
    for name, kinds in EPISODE_REQUIRED.items():
        if name not in record:
            raise SubmissionRejected(f"missing field {name!r}", member=m, field=f"{where}: {name}")
        if not _is(record[name], kinds):
            raise SubmissionRejected(f"{name} must be {_kind_names(kinds)}", member=m, field=f"{where}: {name}")
    for name, kinds in EPISODE_OPTIONAL.items():
        if name in record and not _is(record[name], kinds):
            raise SubmissionRejected(f"{name} must be {_kind_names(kinds)}", member=m, field=f"{where}: {name}")
    for name in ("tokens_total", "tokens_peak", "tokens_generated"):
        if record[name] < 0:
            raise SubmissionRejected(f"{name} is negative", member=m, field=f"{where}: {name}")
    transcript = record["transcript"]
    if not transcript:
        raise SubmissionRejected("the transcript is empty (every episode makes at least one model call)",
                                 member=m, field=f"{where}: transcript")
    if len(transcript) > MAX_CALLS_PER_EPISODE:
        raise SubmissionRejected(f"more than {MAX_CALLS_PER_EPISODE} calls", member=m, field=f"{where}: transcript")
    for i, call in enumerate(transcript):
        at = f"{where}: transcript[{i}]"
        if not isinstance(call, dict):
            raise SubmissionRejected("a call must be a JSON object", member=m, field=at)
        for name, kinds in CALL_REQUIRED.items():
            if name not in call:
                raise SubmissionRejected(f"missing field {name!r}", member=m, field=f"{at}.{name}")
            if not _is(call[name], kinds):
                raise SubmissionRejected(f"{name} must be {_kind_names(kinds)}", member=m, field=f"{at}.{name}")
        if call["input_tokens"] < 0 or call["output_tokens"] < 0:
            raise SubmissionRejected("token counts are negative", member=m, field=at)
        if len(call["context"]) > MAX_TEXT_FIELD or len(call["output"]) > MAX_TEXT_FIELD:
            raise SubmissionRejected(f"a text field is longer than {MAX_TEXT_FIELD} characters", member=m, field=at)
        for name, kinds in CALL_OPTIONAL.items():
            if name in call and not _is(call[name], kinds):
                raise SubmissionRejected(f"{name} must be {_kind_names(kinds)}", member=m, field=f"{at}.{name}")
        ids = call.get("output_ids")
        if ids is not None and (len(ids) > MAX_OUTPUT_IDS or not all(
                _is(t, (int,)) and 0 <= t < 2**31 for t in ids)):
            raise SubmissionRejected(f"output_ids must be at most {MAX_OUTPUT_IDS} non-negative token ids",
                                     member=m, field=f"{at}.output_ids")


def manifest_entry(data: bytes) -> dict[str, Any]:
    """``{"sha256", "size"}`` of a member's bytes."""
    import hashlib

    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def check_listing(sizes: Mapping[str, int], listed: Mapping[str, Mapping[str, Any]]) -> None:
    """Archive members (name -> declared size) must be exactly the listed ones, sizes matching.

    Runs on the central directory, before any member other than the manifest is decompressed.
    """
    present = set(sizes) - {MANIFEST}
    allowed = set(REQUIRED_MEMBERS) | set(OPTIONAL_MEMBERS)
    for name in sorted(present | set(listed)):
        if name not in allowed:
            raise SubmissionRejected(f"unexpected member (a submission holds {sorted(allowed)} and {MANIFEST})",
                                     member=name)
    for name in sorted(present - set(listed)):
        raise SubmissionRejected("extra member not listed in manifest.json", member=name)
    for name in sorted(set(listed) - present):
        raise SubmissionRejected("listed in manifest.json but missing from the archive", member=name)
    for name in sorted(listed):
        if sizes[name] != listed[name]["size"]:
            raise SubmissionRejected(
                f"size {sizes[name]} differs from the manifest's {listed[name]['size']}", member=name, field="size")
