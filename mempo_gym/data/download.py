"""Resumable, checksum-verified HTTP(S) downloads of dataset files.

:func:`download` writes to ``DEST.part``, resumes an existing ``.part`` with a ``Range``
request (starting again if the server ignores it), retries when a transfer is cut
short, shows a tqdm bar, checks SHA-256 and renames the file to ``DEST`` only when the
check passes. :func:`download_dataset` fetches the files of a registry entry, extracting
the needed members of archives safely (:mod:`mempo_gym.data.archives`), and records the
SHA-256 of every fetched file in ``<data_dir>/_downloads/manifest.json``; registry
entries carry no invented hashes, so for them the manifest is the record of what was
obtained.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable

from tqdm import tqdm

from mempo_gym.data.archives import extract_members
from mempo_gym.data.errors import ChecksumError, DatasetError, DownloadError
from mempo_gym.data.paths import resolve_data_dir
from mempo_gym.data.registry import DOWNLOAD_FOLDER, DatasetSpec, get_dataset_spec

__all__ = ["download", "download_dataset", "hub_file", "hub_sha256", "sha256_file", "read_manifest", "MANIFEST_NAME"]

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
USER_AGENT = "mempo-gym-downloader/1.0 (+https://pypi.org/project/mempo-gym/)"
_CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Incomplete(Exception):
    """Transfer stopped early; the ``.part`` file keeps what arrived."""


def _check_url(url: str) -> None:
    if not url.lower().startswith(("http://", "https://")):
        raise DownloadError(f"only http:// and https:// URLs can be downloaded, got {url!r}")


def _http_error(url: str, exc: urllib.error.HTTPError) -> DownloadError:
    hint = {
        404: "the file is not at that address any more; download it by hand from the "
             "dataset's homepage and place it at the destination",
        403: "the server refused access; download it by hand from the dataset's homepage",
    }.get(exc.code, "the server failed; try again later")
    return DownloadError(f"downloading {url} failed: server answered HTTP {exc.code} "
                         f"{exc.reason}; {hint}")


def _fetch_once(url: str, part: Path, progress: bool, timeout: float, label: str) -> None:
    """One request: append to (resume) or rewrite ``part``. Raises _Incomplete if cut."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # Nothing left to send: the .part is complete if its size is the file size.
            size = _UNSATISFIED_RANGE.search(exc.headers.get("Content-Range", "") or "")
            if size and int(size.group(1)) == offset:
                return
            part.unlink()
            raise _Incomplete("server rejected the resume range; starting again") from None
        raise _http_error(url, exc) from None
    except (urllib.error.URLError, OSError) as exc:
        raise _Incomplete(f"could not connect: {getattr(exc, 'reason', exc)}") from None

    with response:
        mode = "wb"
        if offset and response.status == 206:
            match = _CONTENT_RANGE.search(response.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == offset:
                mode = "ab"
            else:
                response.close()
                part.unlink()
                raise _Incomplete("server answered a different range; starting again")
        elif offset:
            log.info("server ignored the Range request for %s; starting again", url)
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        received = offset
        with part.open(mode) as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=label, disable=not progress, leave=True,
        ) as bar:
            try:
                _copy(response, out, bar)
            except (http.client.IncompleteRead, ConnectionError, TimeoutError, OSError) as exc:
                raise _Incomplete(f"transfer interrupted ({type(exc).__name__})") from None
            finally:
                out.flush()
                received = out.tell()
        if total is not None and received < total:
            raise _Incomplete(f"transfer stopped at {received} of {total} bytes")


def _copy(response: Any, out: IO[bytes], bar: tqdm) -> None:
    while True:
        block = response.read(_CHUNK)
        if not block:
            return
        out.write(block)
        bar.update(len(block))


def download(
    url: str,
    dest: Path | str,
    sha256: str | None = None,
    progress: bool = True,
    *,
    timeout: float = 60.0,
    retries: int = 3,
    force: bool = False,
) -> str:
    """Fetch ``url`` into ``dest``; return the SHA-256 (hex) of the file now at ``dest``.

    * If ``dest`` exists and matches ``sha256`` (or no ``sha256`` is given) nothing is
      fetched, unless ``force``.
    * Bytes go to ``dest.part``; an existing ``.part`` is resumed with a ``Range``
      request, and a transfer cut short is resumed up to ``retries`` times.
    * On a checksum mismatch the ``.part`` is deleted, ``dest`` is left as it was and
      :class:`ChecksumError` names both hashes; HTTP errors raise :class:`DownloadError`.
    """
    _check_url(url)
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    dest = Path(dest)
    expected = sha256.lower() if sha256 else None
    if dest.is_file() and not force:
        have = sha256_file(dest)
        if expected is None or have == expected:
            return have
        log.warning("%s exists but its sha256 %s is not the expected %s; downloading again",
                    dest, have, expected)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if force:
        part.unlink(missing_ok=True)
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, progress, timeout, dest.name)
            break
        except _Incomplete as exc:
            if attempt == retries:
                raise DownloadError(
                    f"downloading {url} did not complete after {retries + 1} attempts: {exc}. "
                    f"The partial file {part} is kept; run the download again to resume."
                ) from None
            log.info("%s: %s; retrying (%d/%d)", url, exc, attempt + 1, retries)
            time.sleep(min(0.5 * 2 ** attempt, 8.0))
    got = sha256_file(part)
    if expected is not None and got != expected:
        part.unlink()
        raise ChecksumError(url, expected, got, dest)
    os.replace(part, dest)
    return got


# --- registry datasets ----------------------------------------------------------------------


def read_manifest(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The download manifest (``target -> {url, sha256, bytes, verified, downloaded_at}``)."""
    path = resolve_data_dir(data_dir) / DOWNLOAD_FOLDER / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"download manifest {path} is corrupt ({exc}); delete it") from None
    if not isinstance(data, dict):
        raise DatasetError(f"download manifest {path} is not a JSON object; delete it")
    return data


def _record(root: Path, target: str, url: str, digest: str, verified: bool) -> None:
    manifest = read_manifest(root)
    path = root / target
    manifest[target] = {
        "url": url,
        "sha256": digest,
        "bytes": path.stat().st_size,
        "verified": verified,
        "downloaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    out = root / DOWNLOAD_FOLDER / MANIFEST_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, out)


_HUB_URL = re.compile(r"^https://huggingface\.co/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


def hub_file(url: str) -> tuple[str, str, str] | None:
    """``(repo_id, path, revision)`` of a Hugging Face Hub dataset file URL, else ``None``.

    >>> hub_file("https://huggingface.co/datasets/RUC-NLPIR/FlashRAG_datasets/resolve/main/nq/dev.jsonl")
    ('RUC-NLPIR/FlashRAG_datasets', 'nq/dev.jsonl', 'main')
    >>> hub_file("http://curtis.ml.cmu.edu/datasets/hotpot/x.json") is None
    True
    """
    match = _HUB_URL.match(url.split("?", 1)[0])
    if not match:
        return None
    return match.group("repo"), urllib.parse.unquote(match.group("path")), match.group("rev")


def hub_sha256(url: str, *, timeout: float = 20.0) -> str | None:
    """The SHA-256 the Hugging Face Hub publishes for a dataset file (its LFS object id),
    asked through ``huggingface_hub``; ``None`` when the URL is not on the Hub, the file is
    not in LFS, ``huggingface_hub`` is not installed or the Hub cannot be reached."""
    where = hub_file(url)
    if where is None:
        return None
    try:
        from huggingface_hub import HfApi
    except ImportError:
        return None
    repo_id, path, revision = where
    try:
        infos = HfApi().get_paths_info(repo_id, [path], expand=True, revision=revision, repo_type="dataset")
    except Exception as exc:  # offline, rate-limited, gated: fall back to recording our own digest
        log.info("Hugging Face Hub not reachable for %s (%s: %s); recording the digest only",
                 url, type(exc).__name__, exc)
        return None
    for info in infos:
        lfs = getattr(info, "lfs", None)
        digest = getattr(lfs, "sha256", None) or (lfs.get("sha256") if isinstance(lfs, dict) else None)
        if getattr(info, "path", None) == path and digest:
            return str(digest).lower()
    return None


def download_dataset(
    name: str | DatasetSpec,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    progress: bool = True,
    force: bool = False,
    timeout: float = 60.0,
    retries: int = 3,
    hub_lookup: Callable[[str], str | None] | None = None,
) -> list[Path]:
    """Fetch a registry entry's files into the data directory; return their paths.

    Files already present are kept (unless ``force``). Archives are kept under
    ``_downloads/`` and only the members the entry needs are extracted. What is verified:
    a file with a registry hash, or hosted on the Hugging Face Hub with a published LFS
    SHA-256 (asked with ``hub_lookup``, :func:`hub_sha256` by default, when the Hub is
    reachable), must match it or the download fails (:class:`ChecksumError`) and the
    manifest says ``verified: true``. Otherwise the SHA-256 obtained is only recorded in
    ``_downloads/manifest.json`` (``verified: false``) for later comparison.
    """
    hub_lookup = hub_lookup or hub_sha256
    spec = get_dataset_spec(name)
    root = resolve_data_dir(data_dir)
    if not spec.downloadable:
        raise DatasetError(
            f"dataset {spec.name!r} cannot be downloaded automatically"
            + (f": {spec.how_to_get}" if spec.how_to_get else "")
            + f". Expected file(s) in {root}: {', '.join(spec.files) or '(none)'}"
        )
    wanted = [root / rel for rel in spec.files]
    if not force and all(p.is_file() for p in wanted):
        return wanted
    root.mkdir(parents=True, exist_ok=True)
    for remote in spec.downloads:
        targets = [root / rel for rel in remote.extract.values()] or [root / remote.target]
        if not force and all(t.is_file() for t in targets):
            continue
        archive_path = root / remote.target
        expected = remote.sha256 or hub_lookup(remote.url)
        digest = download(remote.url, archive_path, expected, progress,
                          timeout=timeout, retries=retries, force=force)
        _record(root, remote.target, remote.url, digest, verified=expected is not None)
        if expected is None:
            log.info("%s: no published checksum; recorded sha256 %s", remote.target, digest)
        if remote.extract:
            extract_members(archive_path, {m: root / rel for m, rel in remote.extract.items()})
    missing = [p for p in wanted if not p.is_file()]
    if missing:
        raise DownloadError(
            f"{spec.name}: after downloading, these files are still missing: "
            + ", ".join(str(p) for p in missing)
        )
    return wanted
