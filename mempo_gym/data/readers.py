"""Reading JSON / JSONL dataset files and their fields with precise error locations.

Every problem is reported as a :class:`~mempo_gym.data.errors.DatasetFormatError`
naming the file, the record index, the line (JSONL, syntax and encoding errors) and the
field. Files ending in ``.gz`` are decompressed on the fly.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

from mempo_gym.data.errors import DatasetFormatError

__all__ = ["RecordContext", "read_json", "read_json_list", "iter_jsonl"]


def _open_binary(path: Path) -> IO[bytes] | gzip.GzipFile:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def _decode(path: Path, raw: bytes, *, line: int | None = None, index: int | None = None) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start:exc.start + 1]
        at_line = line if line is not None else raw.count(b"\n", 0, exc.start) + 1
        raise DatasetFormatError(
            path,
            f"not valid UTF-8 (byte 0x{bad.hex()} at byte offset {exc.start}"
            + (" of the line" if line is not None else "") + ")",
            index=index, line=at_line,
        ) from None


def read_json(path: Path | str) -> Any:
    """Parse a whole JSON file (UTF-8, optional BOM)."""
    path = Path(path)
    try:
        with _open_binary(path) as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DatasetFormatError(path, f"cannot be read: {exc}") from None
    text = _decode(path, raw).lstrip("\ufeff")
    if not text.strip():
        raise DatasetFormatError(path, "file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(
            path, f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno
        ) from None


def read_json_list(path: Path | str) -> list[Any]:
    """Parse a JSON file whose top level must be a list of records."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DatasetFormatError(
            path, f"expected a JSON list of records at the top level, got {type(data).__name__}"
        )
    return data


def iter_jsonl(path: Path | str) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(record_index, line_number, value)`` for each non-blank line of a JSONL file.

    Streams the file, so multi-gigabyte corpora are fine. A file without any record is
    an error.
    """
    path = Path(path)
    index = 0
    try:
        with _open_binary(path) as fh:
            for line_no, raw in enumerate(fh, start=1):
                text = _decode(path, raw, line=line_no, index=index)
                if line_no == 1:
                    text = text.lstrip("\ufeff")
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DatasetFormatError(
                        path, f"invalid JSON: {exc.msg} (column {exc.colno})",
                        index=index, line=line_no,
                    ) from None
                yield index, line_no, value
                index += 1
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DatasetFormatError(path, f"compressed data is corrupt: {exc}", index=index) from None
    if index == 0:
        raise DatasetFormatError(path, "file is empty (no JSON lines)")


_TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "an object",
               bool: "a boolean", float: "a number", type(None): "null"}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {str: "string", int: "integer", float: "number", bool: "boolean",
            list: "list", dict: "object"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class RecordContext:
    """Where a record came from; builds errors and checks field types."""

    path: Path
    index: int | None = None
    line: int | None = None

    def error(self, problem: str, field: str | None = None) -> DatasetFormatError:
        return DatasetFormatError(self.path, problem, index=self.index, line=self.line, field=field)

    def as_object(self, value: Any) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(f"expected a JSON object for the record, got {_type_name(value)}")
        return value

    def check(self, value: Any, expected: type | tuple[type, ...], field: str) -> Any:
        """Return ``value`` if it has the expected JSON type, else raise naming ``field``."""
        types = expected if isinstance(expected, tuple) else (expected,)
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise self.error(f"expected {wanted}, got {_type_name(value)}", field)
        return value

    def get(self, record: Mapping[str, Any], key: str, expected: type | tuple[type, ...],
            *, field: str | None = None) -> Any:
        """A required field of ``record`` with the expected type."""
        name = field or key
        if key not in record:
            raise self.error("required field is missing", name)
        return self.check(record[key], expected, name)

    def text(self, record: Mapping[str, Any], key: str, *, field: str | None = None) -> str:
        """A required non-blank string field."""
        value = self.get(record, key, str, field=field)
        if not value.strip():
            raise self.error("must be a non-empty string", field or key)
        return value

    def string_list(self, value: Any, field: str, *, allow_empty: bool = False) -> list[str]:
        """A list of strings (non-empty unless ``allow_empty``)."""
        items = self.check(value, list, field)
        for k, item in enumerate(items):
            self.check(item, str, f"{field}[{k}]")
        if not items and not allow_empty:
            raise self.error("must be a non-empty list", field)
        return list(items)

    def answers(self, values: list[str], field: str) -> tuple[str, ...]:
        """Gold answers: blank entries dropped, duplicates removed, order kept."""
        seen: dict[str, None] = {}
        for value in values:
            if value.strip():
                seen.setdefault(value, None)
        if not seen:
            raise self.error("has no non-empty answer string", field)
        return tuple(seen)
