"""On-disk cache of built retrieval indexes, safe against corruption and never pickled.

An entry is a directory ``<cache_dir>/<kind>-<key>/`` holding the index files written
by a retriever (JSON, NumPy ``.npy`` read back with ``allow_pickle=False``, faiss index
files) plus ``manifest.json``. The key is a SHA-256 of the corpus content
(:func:`corpus_fingerprint`), the retriever settings and the model name
(:func:`cache_key`).

Writes are atomic: files go into a temporary sibling directory, the manifest (sizes and
SHA-256 of every member) is written last, and the directory is renamed into place. A
reader verifies the manifest and every member before use; an entry that is partial,
truncated, edited or unreadable is deleted and reported as a miss, so the caller
rebuilds it.

Default location: :func:`default_cache_dir` (``$XDG_CACHE_HOME/mempo_gym/indexes``, or
``~/.cache/mempo_gym/indexes`` when ``XDG_CACHE_HOME`` is unset; ``$MEMPO_GYM_CACHE``
overrides the ``mempo_gym`` root); override per retriever with ``cache_dir=``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from mempo_gym.paths import cache_root
from mempo_gym.records import Document

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
CACHE_FORMAT_VERSION = 1
_HASH_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``<cache root>/indexes``: ``$MEMPO_GYM_CACHE/indexes``, else
    ``$XDG_CACHE_HOME/mempo_gym/indexes``, else ``~/.cache/mempo_gym/indexes``."""
    return cache_root() / "indexes"


def corpus_fingerprint(documents: Sequence[Document]) -> str:
    """SHA-256 over the ids, titles and texts of ``documents`` in order.

    Each field is length-prefixed, so no two different corpora share a byte stream.
    """
    h = hashlib.sha256()
    h.update(f"corpus:{len(documents)}\n".encode())
    for doc in documents:
        for field in (doc.id, doc.title, doc.text):
            data = field.encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
    return h.hexdigest()


def cache_key(corpus_hash: str, settings: Mapping[str, Any]) -> str:
    """SHA-256 of the corpus fingerprint and the canonical JSON of ``settings``.

    ``settings`` must hold everything that changes the built index (retriever kind,
    parameters, model name, library versions when their format may change).
    """
    payload = json.dumps(
        {"corpus": corpus_hash, "settings": settings, "format": CACHE_FORMAT_VERSION},
        sort_keys=True, ensure_ascii=True, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class CacheCorruptError(RuntimeError):
    """A cache entry failed verification."""


class IndexCache:
    """Directory of verified index entries (see module docstring)."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()

    def entry_dir(self, kind: str, key: str) -> Path:
        """Where the entry for ``(kind, key)`` lives (whether or not it exists)."""
        if not kind.replace("_", "").isalnum():
            raise ValueError(f"cache entry kind must be alphanumeric/underscore, got {kind!r}")
        return self.root / f"{kind}-{key}"

    def load(self, kind: str, key: str) -> Path | None:
        """Return the verified entry directory, or ``None`` on a miss.

        A corrupt entry is removed (logged as a warning) and reported as a miss.
        """
        path = self.entry_dir(kind, key)
        if not path.is_dir():
            return None
        try:
            self._verify(path, kind, key)
        except CacheCorruptError as err:
            logger.warning("Discarding corrupt index cache entry %s: %s", path, err)
            self.discard(kind, key)
            return None
        return path

    def discard(self, kind: str, key: str) -> None:
        """Delete an entry (no error when absent)."""
        path = self.entry_dir(kind, key)
        if path.exists():
            # Rename first so a concurrent reader never sees a half-deleted entry.
            trash = path.with_name(f".trash-{path.name}-{os.getpid()}-{time.monotonic_ns()}")
            try:
                os.rename(path, trash)
            except OSError:
                trash = path
            shutil.rmtree(trash, ignore_errors=True)

    def store(
        self,
        kind: str,
        key: str,
        write_members: Callable[[Path], None],
        info: Mapping[str, Any] | None = None,
    ) -> Path:
        """Create the entry by calling ``write_members(tmp_dir)``; return its final path.

        ``write_members`` writes plain files (no subdirectories) into ``tmp_dir``.
        ``info`` (JSON-serialisable) is recorded in the manifest for humans.
        """
        final = self.entry_dir(kind, key)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{kind}-", dir=self.root))
        try:
            write_members(tmp)
            members: dict[str, dict[str, Any]] = {}
            for member in sorted(tmp.iterdir()):
                if not member.is_file() or member.name == MANIFEST_NAME:
                    raise ValueError(
                        f"cache writer for {kind!r} must write plain files other than "
                        f"{MANIFEST_NAME}; found {member.name!r}"
                    )
                _fsync_file(member)
                members[member.name] = {
                    "size": member.stat().st_size, "sha256": file_sha256(member)
                }
            manifest = {
                "format": CACHE_FORMAT_VERSION, "kind": kind, "key": key,
                "created_unix": time.time(), "members": members, "info": dict(info or {}),
            }
            manifest_path = tmp / MANIFEST_NAME
            manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
            _fsync_file(manifest_path)
            if final.exists():
                if self.load(kind, key) is not None:  # a concurrent writer finished first
                    shutil.rmtree(tmp, ignore_errors=True)
                    return final
            try:
                os.rename(tmp, final)
            except OSError:
                if self.load(kind, key) is None:  # lost a race only if the winner is valid
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    @staticmethod
    def _verify(path: Path, kind: str, key: str) -> None:
        manifest_path = path / MANIFEST_NAME
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CacheCorruptError(f"unreadable manifest ({err})") from None
        if not isinstance(manifest, dict):
            raise CacheCorruptError("manifest is not a JSON object")
        if (manifest.get("format"), manifest.get("kind"), manifest.get("key")) != (
            CACHE_FORMAT_VERSION, kind, key
        ):
            raise CacheCorruptError("manifest format/kind/key do not match the entry")
        members = manifest.get("members")
        if not isinstance(members, dict) or not members:
            raise CacheCorruptError("manifest lists no members")
        present = {p.name for p in path.iterdir()} - {MANIFEST_NAME}
        if present != set(members):
            raise CacheCorruptError(
                f"member files {sorted(present)} differ from manifest {sorted(members)}"
            )
        for name, meta in members.items():
            member = path / name
            if not isinstance(meta, dict):
                raise CacheCorruptError(f"manifest entry for {name!r} is malformed")
            try:
                size = member.stat().st_size
            except OSError as err:
                raise CacheCorruptError(f"{name}: {err}") from None
            if size != meta.get("size"):
                raise CacheCorruptError(f"{name}: size {size} != manifest {meta.get('size')}")
            if file_sha256(member) != meta.get("sha256"):
                raise CacheCorruptError(f"{name}: SHA-256 does not match the manifest")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def load_or_build(
    cache: IndexCache | None,
    kind: str,
    key: str,
    read_entry: Callable[[Path], Any],
    build: Callable[[], Any],
    write_members: Callable[[Any, Path], None],
    info: Mapping[str, Any] | None = None,
) -> tuple[Any, bool]:
    """Return ``(object, from_cache)``: read a verified entry or build and store one.

    ``read_entry`` raising on a verified entry (e.g. an incompatible library version)
    also counts as corruption: the entry is discarded and rebuilt.
    """
    if cache is not None:
        path = cache.load(kind, key)
        if path is not None:
            try:
                return read_entry(path), True
            except Exception as err:  # noqa: BLE001 - any failure means "rebuild"
                logger.warning("Index cache entry %s could not be read (%r); rebuilding", path, err)
                cache.discard(kind, key)
    obj = build()
    if cache is not None:
        try:
            cache.store(kind, key, lambda tmp: write_members(obj, tmp), info)
        except Exception as err:  # noqa: BLE001 - caching is an optimisation only
            logger.warning("Could not write index cache entry under %s: %r", cache.root, err)
    return obj, False


def resolve_cache(
    cache: bool | str | IndexCache,
    cache_dir: str | os.PathLike[str] | None,
    num_docs: int = 0,
    auto_min_docs: int = 0,
) -> IndexCache | None:
    """Turn the retrievers' ``cache=`` / ``cache_dir=`` arguments into an IndexCache.

    ``cache="auto"`` caches when ``cache_dir`` is given or the corpus has at least
    ``auto_min_docs`` documents (small indexes rebuild faster than they are worth
    keeping in the user cache).
    """
    if isinstance(cache, IndexCache):
        return cache
    if cache == "auto":
        cache = cache_dir is not None or num_docs >= auto_min_docs
    if cache is True:
        return IndexCache(cache_dir)
    if cache is False:
        return None
    raise TypeError(f"cache must be True, False, 'auto' or an IndexCache, got {cache!r}")
