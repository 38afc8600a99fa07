"""Errors raised by dataset loading and downloading, each naming what to do next."""

from __future__ import annotations

from pathlib import Path


class DatasetError(Exception):
    """Base class of every dataset-related error in :mod:`mempo_gym.data`."""


class UnknownDatasetError(DatasetError, LookupError):
    """A dataset name that the registry does not know."""

    def __str__(self) -> str:  # LookupError would quote the message like a key
        return str(self.args[0]) if self.args else ""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The files of a known dataset are not in the data directory."""

    def __init__(self, message: str, *, name: str = "", missing: tuple[Path, ...] = ()) -> None:
        super().__init__(message)
        self.name = name
        self.missing = missing

    def __str__(self) -> str:
        return str(self.args[0])


class DatasetFormatError(DatasetError, ValueError):
    """A dataset file whose content does not match its documented format.

    Attributes:
        path: the offending file.
        index: 0-based record index within the file (None for whole-file problems).
        line: 1-based line number (JSONL records, JSON syntax and encoding errors).
        field: the field that is missing or malformed, e.g. ``"context[3]"``.
        problem: what is wrong, in words.
    """

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        index: int | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.problem = problem
        self.index = index
        self.line = line
        self.field = field
        where = [f"malformed dataset file {self.path}"]
        if index is not None:
            where.append(f"record {index}")
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(
            ", ".join(where) + f": {problem}. Check that the file is the published "
            "version of the dataset (re-download it if it was cut or edited)."
        )


class DownloadError(DatasetError):
    """A download or extraction that could not be completed."""


class ChecksumError(DownloadError):
    """Downloaded bytes whose SHA-256 differs from the expected one."""

    def __init__(self, url: str, expected: str, got: str, dest: Path) -> None:
        self.url = url
        self.expected = expected
        self.got = got
        self.dest = dest
        super().__init__(
            f"checksum mismatch for {url}: expected sha256 {expected}, got {got}. "
            f"The bad download was deleted and {dest} was not written or changed. "
            "Retry; if it fails again the file on the server changed, so check the URL "
            "and the expected hash."
        )


class UnsafeArchiveError(DownloadError):
    """An archive with members that would escape the extraction folder."""
