"""Packing a run folder (or any system's predictions and transcripts) into a submission zip."""

from __future__ import annotations

import datetime as _dt
import io
import json
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from mempo_gym.harness.runfiles import EPISODES_FILE, read_config, read_episodes
from mempo_gym.leaderboard.schema import (
    CONFIG, EPISODES, MANIFEST, OPTIONAL_MEMBERS, SCHEMA_VERSION, WEB_CACHE, manifest_entry,
)
from mempo_gym.version import __version__

_FIXED_DATE = (2020, 1, 1, 0, 0, 0)  # member timestamps fixed so identical content zips identically


def write_submission(
    config: Mapping[str, Any], episodes: Iterable[Mapping[str, Any]] | bytes, out: str | Path,
    *, name: str, contact: str, extra: Mapping[str, Any] | None = None,
    members: Mapping[str, bytes] | None = None,
) -> Path:
    """Write a submission zip from a config object and episode records (or raw JSONL bytes).

    ``members`` adds optional members (the web-search cache, ``websearch_cache.sqlite``).
    Systems not built on MemPO-Gym call this (or follow ``docs/submission_format.md``).
    """
    if not name.strip() or not contact.strip():
        raise ValueError("a submission needs a non-empty name and contact")
    config_bytes = (json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()
    if isinstance(episodes, (bytes, bytearray)):
        episodes_bytes = bytes(episodes)
    else:
        episodes_bytes = "".join(
            json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"
            for r in episodes
        ).encode()
    if not episodes_bytes.strip():
        raise ValueError("a submission needs at least one episode")
    extra_members = dict(members or {})
    unknown = sorted(set(extra_members) - set(OPTIONAL_MEMBERS))
    if unknown:
        raise ValueError(f"optional members must be among {list(OPTIONAL_MEMBERS)}, got {unknown}")
    members = {CONFIG: config_bytes, EPISODES: episodes_bytes, **extra_members}
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "created_by": f"mempo-gym {__version__}",
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "submission": {"name": name, "contact": contact, **dict(extra or {})},
        "members": {member: manifest_entry(data) for member, data in members.items()},
    }
    members[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member in (MANIFEST, CONFIG, EPISODES, *sorted(extra_members)):
            info = zipfile.ZipInfo(member, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            archive.writestr(info, members[member])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    return out


def submit_run(run_dir: str | Path, *, name: str, contact: str, out: str | Path | None = None) -> Path:
    """Pack a MemPO-Gym run folder (``config.json`` + ``episodes.jsonl``) into ``out``.

    The default ``out`` is ``<run_dir>/submission.zip``. A torn last line is left out.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    parsed = read_episodes(run_dir / EPISODES_FILE)
    if not parsed.records:
        raise ValueError(f"{run_dir / EPISODES_FILE} holds no finished episode; run `mempo-gym eval` first")
    raw = (run_dir / EPISODES_FILE).read_bytes()[: parsed.good_bytes]
    target = Path(out) if out is not None else run_dir / "submission.zip"
    caches = sorted({str(env["kwargs"]["cache_path"]) for env in config.get("envs", [])
                     if isinstance(env.get("kwargs"), dict) and env["kwargs"].get("cache_path")})
    if len(caches) > 1:
        raise ValueError(f"the run's web-search envs use {len(caches)} caches ({', '.join(caches)}); a submission "
                         "carries one: record every web env into the same cache_path")
    extra = {}
    if caches:
        cache = Path(caches[0])
        if not cache.is_file():
            raise ValueError(f"the run recorded its searches into {cache}, which does not exist any more: the "
                             "scorer replays web-search runs from that cache")
        extra[WEB_CACHE] = cache.read_bytes()
    return write_submission(config, raw, target, name=name, contact=contact, members=extra)
