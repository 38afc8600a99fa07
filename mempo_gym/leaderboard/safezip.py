"""Reading an untrusted zip archive into memory, safely.

Everything is checked from the central directory BEFORE any member is decompressed:
member count, names (no absolute paths, no ``..``, no backslashes, no folders, no
symlinks, no duplicates), declared sizes and compression ratio (zip bombs), encryption
and compression method. Members are then decompressed in bounded chunks, never past
their declared size, and never written to disk.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

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


def read_archive(source: str | Path | bytes, limits: ArchiveLimits = ArchiveLimits()) -> dict[str, bytes]:
    """Members of a zip archive by name, after every safety check (see module docstring)."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        if len(data) > limits.max_archive_bytes:
            raise SubmissionRejected(f"archive is {len(data)} bytes, above the {limits.max_archive_bytes}-byte limit")
    else:
        path = Path(source)
        if not path.is_file():
            raise SubmissionRejected(f"{path} is not a file")
        size = path.stat().st_size
        if size > limits.max_archive_bytes:
            raise SubmissionRejected(f"archive is {size} bytes, above the {limits.max_archive_bytes}-byte limit")
        data = path.read_bytes()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except ZIP_ERRORS as exc:
        raise SubmissionRejected(f"not a readable zip archive ({type(exc).__name__}: {exc})") from exc
    if len(infos) > limits.max_members:
        raise SubmissionRejected(f"archive has {len(infos)} members, above the limit of {limits.max_members}")
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        _check_name(name)
        if name in seen:
            raise SubmissionRejected("duplicate member name", member=name)
        seen.add(name)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise SubmissionRejected("symbolic links are not allowed", member=name)
        if info.is_dir() or (mode and not stat.S_ISREG(mode)):
            raise SubmissionRejected("only regular files are allowed", member=name)
        if info.flag_bits & 0x1:
            raise SubmissionRejected("encrypted members are not allowed", member=name)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise SubmissionRejected(f"compression method {info.compress_type} is not allowed (use stored or deflate)",
                                     member=name)
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
    members: dict[str, bytes] = {}
    for info in infos:
        members[info.filename] = _read_member(archive, info)
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Decompress one member in bounded chunks; never beyond its declared size."""
    buffer = bytearray()
    try:
        with archive.open(info) as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    break
                buffer += chunk
                if len(buffer) > info.file_size:
                    raise SubmissionRejected("member decompresses past its declared size", member=info.filename)
    except SubmissionRejected:
        raise
    except ZIP_ERRORS as exc:
        raise SubmissionRejected(f"member cannot be decompressed ({type(exc).__name__}: {exc})",
                                 member=info.filename) from exc
    if len(buffer) != info.file_size:
        raise SubmissionRejected("member is shorter than its declared size", member=info.filename)
    return bytes(buffer)
