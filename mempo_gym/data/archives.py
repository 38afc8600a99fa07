"""Safe extraction of chosen members from downloaded ``.zip`` / ``.tar*`` archives.

Every member name of the archive is checked first: an absolute path, a drive letter, a
``..`` component or a NUL byte anywhere makes the whole archive rejected
(:class:`UnsafeArchiveError`). Only the requested members are then written, each to a
destination chosen by the caller (never to a path taken from the archive), through a
``.part`` file renamed into place. Requested members must be regular files (no links or
devices).
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Mapping

from mempo_gym.data.errors import DownloadError, UnsafeArchiveError

__all__ = ["archive_kind", "check_member_name", "extract_members"]

_DRIVE = re.compile(r"^[A-Za-z]:")
_IGNORED_PREFIXES = ("__MACOSX/",)


def archive_kind(path: Path | str) -> str:
    """``"zip"`` or ``"tar"`` from the file name; DownloadError for anything else."""
    name = Path(path).name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    raise DownloadError(f"{path}: not a supported archive (.zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz)")


def check_member_name(archive: Path, name: str) -> None:
    """Raise UnsafeArchiveError if ``name`` could escape the extraction folder."""
    normalised = name.replace("\\", "/")
    reason = None
    if "\x00" in name:
        reason = "contains a NUL byte"
    elif normalised.startswith("/"):
        reason = "is an absolute path"
    elif _DRIVE.match(normalised):
        reason = "starts with a drive letter"
    elif ".." in PurePosixPath(normalised).parts:
        reason = "contains a '..' component"
    if reason:
        raise UnsafeArchiveError(
            f"refusing to extract {archive}: member {name!r} {reason}. The archive may be "
            "corrupt or malicious; nothing was extracted from it."
        )


def _match(archive: Path, names: list[str], wanted: str) -> str:
    suffix = wanted.strip("/")
    hits = [n for n in names
            if not n.startswith(_IGNORED_PREFIXES)
            and (n.rstrip("/") == suffix or n.rstrip("/").endswith("/" + suffix))]
    if len(hits) != 1:
        found = "none" if not hits else ", ".join(hits)
        sample = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
        raise DownloadError(
            f"{archive}: expected exactly one member matching {wanted!r}, found {found}. "
            f"Archive members: {sample}. The archive layout may have changed upstream."
        )
    return hits[0]


def _write_stream(stream: IO[bytes], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with part.open("wb") as out:
            shutil.copyfileobj(stream, out, length=1 << 20)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def _extract_zip(archive: Path, wanted: Mapping[str, Path]) -> list[Path]:
    written: list[Path] = []
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            check_member_name(archive, info.filename)
        names = [i.filename for i in infos]
        for member, dest in wanted.items():
            info = zf.getinfo(_match(archive, names, member))
            mode = (info.external_attr >> 16) & 0o170000
            if info.is_dir() or mode not in (0, 0o100000):
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is not a regular file")
            with zf.open(info) as stream:
                _write_stream(stream, Path(dest))
            written.append(Path(dest))
    return written


def _extract_tar(archive: Path, wanted: Mapping[str, Path]) -> list[Path]:
    written: list[Path] = []
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        for m in members:
            check_member_name(archive, m.name)
            if m.issym() or m.islnk():
                check_member_name(archive, m.linkname)
        names = [m.name for m in members]
        for member, dest in wanted.items():
            info = tf.getmember(_match(archive, names, member))
            stream = tf.extractfile(info) if info.isfile() else None
            if stream is None:
                raise UnsafeArchiveError(
                    f"{archive}: member {info.name!r} is not a regular file "
                    "(links and devices are never extracted)")
            with stream:
                _write_stream(stream, Path(dest))
            written.append(Path(dest))
    return written


def extract_members(archive: Path | str, wanted: Mapping[str, Path]) -> list[Path]:
    """Extract ``member -> destination`` pairs; returns the destinations written.

    ``member`` is the member path or a unique path suffix (``"dev.json"`` matches
    ``"data/dev.json"``); ``__MACOSX/`` entries are ignored.
    """
    archive = Path(archive)
    kind = archive_kind(archive)
    try:
        if kind == "zip":
            return _extract_zip(archive, wanted)
        return _extract_tar(archive, wanted)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise DownloadError(
            f"{archive} is not a valid {kind} archive ({exc}); delete it and download again"
        ) from None
