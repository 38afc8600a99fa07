"""Run folders on disk: ``config.json`` plus an append-only, crash-safe ``episodes.jsonl``.

Every finished episode is one JSON line, written with a single ``write``, flushed and
``fsync``-ed before the next episode is recorded, so a run killed at any moment leaves
every finished episode on disk. A crash in the middle of a write can only leave a torn
*last* line (no trailing newline, or not valid JSON); :func:`read_episodes` reports it
and :func:`repair_torn_tail` cuts it off before a resumed run appends again. A bad line
anywhere else is real corruption and raises :class:`RunFileError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
EPISODES_FILE = "episodes.jsonl"
RUN_FORMAT = "mempo-gym-run"
RUN_FORMAT_VERSION = 1


class RunFileError(ValueError):
    """A run folder whose files are missing or corrupt."""


def to_jsonable(value: Any) -> Any:
    """A JSON-serialisable copy of ``value``; objects become ``{"__object__": type, "describe": ...}``.

    >>> to_jsonable({"k": (1, 2.5, None)})
    {'k': [1, 2.5, None]}
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return to_jsonable(value.item())  # numpy scalars
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    described: Any = None
    describe = getattr(value, "describe", None)
    if callable(describe):
        try:
            described = to_jsonable(describe())
        except Exception:  # a describe() that fails must not stop a run from being recorded
            described = None
    kind = type(value)
    return {"__object__": f"{kind.__module__}.{kind.__qualname__}", "describe": described}


def canonical_json(value: Any) -> str:
    """Deterministic compact JSON (sorted keys) used for hashing and comparisons."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_file(path: Path | str, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a fsync-ed temporary file (mode 0644) and an atomic rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; run files are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON to ``path`` via a fsync-ed temporary file and an atomic rename."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def read_config(run_dir: Path | str) -> dict[str, Any]:
    """The ``config.json`` of a run folder."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunFileError(f"{path} does not exist: {run_dir} is not a MemPO-Gym run folder")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFileError(f"{path} is not valid JSON ({exc}); the run folder is damaged") from exc
    if not isinstance(config, dict) or config.get("format") != RUN_FORMAT:
        raise RunFileError(f"{path} is not a MemPO-Gym run config (missing \"format\": {RUN_FORMAT!r})")
    return config


@dataclass(frozen=True)
class EpisodeFile:
    """The parsed lines of an ``episodes.jsonl`` file.

    Attributes:
        records: the complete episode records, in file order.
        good_bytes: length of the file prefix holding exactly those records.
        torn_tail: whether a torn last line follows that prefix.
    """

    records: list[dict[str, Any]]
    good_bytes: int
    torn_tail: bool


def read_episodes(path: Path | str) -> EpisodeFile:
    """Parse ``episodes.jsonl``; a torn last line is reported, other bad lines raise."""
    path = Path(path)
    if not path.exists():
        return EpisodeFile([], 0, False)
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    *complete, tail = data.split(b"\n")  # every line we write ends with a newline
    offset = 0
    for number, raw in enumerate(complete, 1):
        try:
            record = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise RunFileError(
                f"{path} line {number} is not valid JSON ({exc}); only the unterminated last line "
                "of an interrupted run can be torn, so the file was damaged some other way"
            ) from exc
        if not isinstance(record, dict):
            raise RunFileError(f"{path} line {number} is not a JSON object")
        records.append(record)
        offset += len(raw) + 1
    return EpisodeFile(records, offset, tail != b"")


def repair_torn_tail(path: Path | str) -> EpisodeFile:
    """Cut a torn last line off ``episodes.jsonl`` (fsync-ed) and return the good records."""
    parsed = read_episodes(path)
    if parsed.torn_tail:
        size = Path(path).stat().st_size
        logger.warning("%s: dropping a torn last line (%d bytes) left by an interrupted run",
                       path, size - parsed.good_bytes)
        with open(path, "r+b") as fh:
            fh.truncate(parsed.good_bytes)
            fh.flush()
            os.fsync(fh.fileno())
    return EpisodeFile(parsed.records, parsed.good_bytes, False)


class EpisodeWriter:
    """Appends one JSON line per episode; each line is flushed and fsync-ed."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fh = open(self.path, "ab")

    def append(self, record: Mapping[str, Any]) -> None:
        line = (canonical_json(record) + "\n").encode("utf-8")
        self._fh.write(line)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> "EpisodeWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def drop_failed(path: Path | str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rewrite ``episodes.jsonl`` without its failed-episode lines (atomically) so a resumed
    run retries them; return the remaining records."""
    kept = [r for r in records if not r.get("failed")]
    if len(kept) == len(records):
        return records
    path = Path(path)
    write_bytes_atomic(path, b"".join((canonical_json(r) + "\n").encode("utf-8") for r in kept))
    logger.info("%s: %d failed episodes will be retried", path, len(records) - len(kept))
    return kept


def iter_records(run_dirs: Iterable[Path | str]) -> Iterable[tuple[Path, dict[str, Any], list[dict[str, Any]]]]:
    """``(run_dir, config, records)`` for each run folder (torn tails ignored)."""
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        config = read_config(run_dir)
        yield run_dir, config, read_episodes(run_dir / EPISODES_FILE).records
