"""Reading an untrusted zip archive safely, by streaming.

Everything is checked from the central directory BEFORE any member is decompressed:
member count, names (no absolute paths, no ``..``, no backslashes, no folders),
file types (symlinks, devices, FIFOs and directories refused; members without mode bits
— what ``zipfile.ZipFile.writestr(name, data)`` and most other zip writers produce — or
with regular-file bits accepted), duplicates, declared sizes and compression ratio (zip
bombs), encryption and compression method. Members are then decompressed in bounded
chunks, never past their declared size, and never written to disk;
:meth:`SafeArchive.stream` lets a caller hash or parse a member without holding it whole.
"""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from mempo_gym.leaderboard.errors import SubmissionRejected

_CHUNK = 64 * 1024
#: Exceptions the zipfile module raises on damaged archives (all become rejections).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, struct.error,
              NotImplementedError, ValueError, OSError, KeyError, IndexError, OverflowError,
              UnicodeDecodeError, RuntimeError)


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds applied to a submission archive (sizes in bytes)."""

    max_archive_bytes: int = 512 * 1024 * 1024
    max_members: int = 16
    max_member_bytes: int = 1024 * 1024 * 1024
    max_total_bytes: int = 2 * 1024 * 1024 * 1024
    #: uncompressed/compressed size bound, applied to members above ``ratio_min_bytes``.
    #: JSONL transcripts repeat their prompts and compress ~10-40x; zip bombs reach 1000x.
    max_compression_ratio: float = 200.0
    ratio_min_bytes: int = 1024 * 1024
    #: whole-member reads: the manifest and config are small JSON documents.
    max_manifest_bytes: int = 1024 * 1024
    max_config_bytes: int = 16 * 1024 * 1024
    #: one episode line (a transcript of at most max_turns calls, each bounded by the context budget).
    max_line_bytes: int = 64 * 1024 * 1024


def _check_name(name: str) -> None:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise SubmissionRejected("absolute path in archive", member=name)
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise SubmissionRejected("path traversal ('..') in archive member name", member=name)
    if "\\" in name or "/" in name:
        raise SubmissionRejected("members must sit at the top of the archive (no folders)", member=name)
    if not name or name in (".",) or "\x00" in name or len(name) > 128:
        raise SubmissionRejected("invalid member name", member=name)


def _file_type_error(info: zipfile.ZipInfo) -> str | None:
    """Why a member is not a plain file, or ``None``. Only Unix-made entries carry a file type."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        return "symbolic links are not allowed"
    if info.is_dir() or info.filename.endswith("/") or stat.S_ISDIR(mode) or info.external_attr & 0x10:
        return "directories are not allowed (only regular files)"
    if kind and not stat.S_ISREG(mode):
        return "only regular files are allowed (devices, FIFOs and sockets are refused)"
    return None


class SafeArchive:
    """An untrusted zip archive whose central directory passed every check (module docstring)."""

    def __init__(self, source: str | Path | bytes, limits: "ArchiveLimits | None" = None) -> None:
        self.limits = limits = limits if limits is not None else ArchiveLimits()
        handle: BinaryIO
        if isinstance(source, (bytes, bytearray)):
            if len(source) > limits.max_archive_bytes:
                raise SubmissionRejected(f"archive is {len(source)} bytes, above the {limits.max_archive_bytes}-byte limit")
            handle = io.BytesIO(bytes(source))
        else:
            path = Path(source)
            if not path.is_file():
                raise SubmissionRejected(f"{path} is not a file")
            size = path.stat().st_size
            if size > limits.max_archive_bytes:
                raise SubmissionRejected(f"archive is {size} bytes, above the {limits.max_archive_bytes}-byte limit")
            handle = open(path, "rb")
        self._handle = handle
        try:
            self._zip = zipfile.ZipFile(handle)
            infos = self._zip.infolist()
        except ZIP_ERRORS as exc:
            handle.close()
            raise SubmissionRejected(f"not a readable zip archive ({type(exc).__name__}: {exc})") from exc
        try:
            self.infos = {info.filename: info for info in self._check(infos)}
        except SubmissionRejected:
            self.close()
            raise

    def _check(self, infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
        limits = self.limits
        if len(infos) > limits.max_members:
            raise SubmissionRejected(f"archive has {len(infos)} members, above the limit of {limits.max_members}")
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            problem = _file_type_error(info)
            if problem:
                raise SubmissionRejected(problem, member=name)
            _check_name(name)
            if name in seen:
                raise SubmissionRejected("duplicate member name", member=name)
            seen.add(name)
            if info.flag_bits & 0x1:
                raise SubmissionRejected("encrypted members are not allowed", member=name)
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise SubmissionRejected(
                    f"compression method {info.compress_type} is not allowed (use stored or deflate)", member=name)
            if info.file_size > limits.max_member_bytes:
                raise SubmissionRejected(
                    f"member is {info.file_size} bytes uncompressed, above the {limits.max_member_bytes}-byte limit",
                    member=name)
            if info.file_size >= limits.ratio_min_bytes:
                ratio = info.file_size / max(info.compress_size, 1)
                if ratio > limits.max_compression_ratio:
                    raise SubmissionRejected(
                        f"compression ratio {ratio:.0f}:1 is above the {limits.max_compression_ratio:.0f}:1 limit "
                        "(zip bomb?)", member=name)
            total += info.file_size
            if total > limits.max_total_bytes:
                raise SubmissionRejected(f"members add up to more than {limits.max_total_bytes} bytes uncompressed")
        return infos

    def size(self, name: str) -> int:
        """Declared uncompressed size of a member."""
        return self.infos[name].file_size

    def stream(self, name: str) -> Iterator[bytes]:
        """The member's bytes in chunks of at most 64 KiB; refused past or short of its declared size."""
        info = self.infos[name]
        done = 0
        try:
            with self._zip.open(info) as fh:
                while True:
                    chunk = fh.read(_CHUNK)
                    if not chunk:
                        break
                    done += len(chunk)
                    if done > info.file_size:
                        raise SubmissionRejected("member decompresses past its declared size", member=name)
                    yield chunk
        except SubmissionRejected:
            raise
        except ZIP_ERRORS as exc:
            raise SubmissionRejected(f"member cannot be decompressed ({type(exc).__name__}: {exc})",
                                     member=name) from exc
        if done != info.file_size:
            raise SubmissionRejected("member is shorter than its declared size", member=name)

    def read(self, name: str, max_bytes: int | None = None) -> bytes:
        """A whole member (refused when it is declared larger than ``max_bytes``)."""
        if max_bytes is not None and self.size(name) > max_bytes:
            raise SubmissionRejected(f"member is {self.size(name)} bytes, above the {max_bytes}-byte limit for it",
                                     member=name)
        return b"".join(self.stream(name))

    def sha256(self, name: str) -> str:
        """Hex SHA-256 of a member, streamed."""
        digest = hashlib.sha256()
        for chunk in self.stream(name):
            digest.update(chunk)
        return digest.hexdigest()

    def lines(self, name: str, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
        """``(line number, line bytes)`` of a member, streamed; a line above ``max_line_bytes`` is refused."""
        pending = bytearray()
        number = 0
        for chunk in self.stream(name):
            pending += chunk
            while True:
                cut = pending.find(b"\n")
                if cut < 0:
                    break
                number += 1
                line = bytes(pending[:cut])
                del pending[: cut + 1]
                if len(line) > max_line_bytes:
                    raise SubmissionRejected(f"a line is longer than {max_line_bytes} bytes", member=name,
                                             field=f"line {number}")
                yield number, line
            if len(pending) > max_line_bytes:
                raise SubmissionRejected(f"a line is longer than {max_line_bytes} bytes", member=name,
                                         field=f"line {number + 1}")
        if pending:
            yield number + 1, bytes(pending)

    def close(self) -> None:
        try:
            self._zip.close()
        finally:
            self._handle.close()

    def __enter__(self) -> "SafeArchive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_archive(source: str | Path | bytes, limits: ArchiveLimits = ArchiveLimits()) -> dict[str, bytes]:
    """Members of a zip archive by name, after every safety check (see module docstring)."""
    with SafeArchive(source, limits) as archive:
        return {name: archive.read(name) for name in archive.infos}
