"""Record-and-replay cache of search results and opened pages, in one SQLite file.

Rows are keyed by (kind, provider name, normalised query or URL, canonical JSON of the
request parameters) and hold a JSON payload plus the sha256 of key and payload. Every
write is one transaction. A file that is not a SQLite database, has another schema
version, fails SQLite's quick check, or holds a row whose checksum does not match raises
:class:`~mempo_gym.web.errors.CacheCorruptError` naming the file; it is never silently
used. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import unicodedata
import urllib.parse
from pathlib import Path
from typing import Any, Mapping

from mempo_gym.web.errors import CacheCorruptError, CacheError, CacheMissError
from mempo_gym.web.records import WebPage, WebResult

SCHEMA_VERSION = 1
CACHE_FORMAT = "mempo-gym-web-search-cache"
KIND_SEARCH = "search"
KIND_PAGE = "page"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
    kind TEXT NOT NULL,
    provider TEXT NOT NULL,
    request TEXT NOT NULL,
    params TEXT NOT NULL,
    payload TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (kind, provider, request, params)
);
"""
_ENTRY_COLUMNS = ["kind", "provider", "request", "params", "payload", "sha256", "created_at"]


def normalize_query(query: str) -> str:
    """Cache key of a query: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", query).casefold().split())


def canonical_params(params: Mapping[str, Any]) -> str:
    """Canonical JSON of request parameters (sorted keys, no spaces)."""
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_checksum(kind: str, provider: str, request: str, params: str, payload: str) -> str:
    """sha256 over a row's key and payload, so edited or swapped rows are detected."""
    blob = json.dumps([kind, provider, request, params, payload], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class SearchCache:
    """SQLite store of recorded searches and pages.

    Args:
        path: the cache file; created (with its folder) unless ``readonly``.
        readonly: open read-only (for replay); a missing file is then an error.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if readonly and not exists:
            raise CacheError(f"search cache {self.path} does not exist (or is empty): record it first "
                             "with mode='record'")
        if self.path.exists() and not self.path.is_file():
            raise CacheError(f"search cache path {self.path} exists and is not a file")
        try:
            if readonly:
                uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30.0)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0)
        except sqlite3.Error as exc:
            raise CacheError(f"cannot open search cache {self.path}: {exc}") from None
        try:
            self._check_or_create(exists)
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------------ schema
    def _corrupt(self, what: str) -> CacheCorruptError:
        return CacheCorruptError(
            f"search cache {self.path} is corrupt or not a search cache: {what}. "
            "Delete it and record again, or point the cache at another file."
        )

    def _check_or_create(self, exists: bool) -> None:
        try:
            tables = {row[0] for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(f"SQLite cannot read it ({exc})") from None
        if not tables:
            if self.readonly:
                raise self._corrupt("it holds no tables")
            with self._conn:
                self._conn.executescript(_SCHEMA)
                self._conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("format", CACHE_FORMAT), ("schema_version", str(SCHEMA_VERSION))],
                )
            return
        try:
            check = self._conn.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(f"SQLite integrity check failed ({exc})") from None
        if not check or check[0] != "ok":
            raise self._corrupt(f"SQLite integrity check failed ({check[0] if check else 'no answer'})")
        if "meta" not in tables or "entries" not in tables:
            raise self._corrupt(f"expected tables 'meta' and 'entries', found {sorted(tables)}")
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != CACHE_FORMAT:
            raise self._corrupt(f"format marker is {meta.get('format')!r}, expected {CACHE_FORMAT!r}")
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise CacheCorruptError(
                f"search cache {self.path} has schema version {meta.get('schema_version')!r}, this "
                f"version of mempo-gym reads version {SCHEMA_VERSION}: record the cache again"
            )
        columns = [row[1] for row in self._conn.execute("PRAGMA table_info(entries)")]
        if columns != _ENTRY_COLUMNS:
            raise self._corrupt(f"table 'entries' has columns {columns}, expected {_ENTRY_COLUMNS}")

    # ------------------------------------------------------------------ rows
    def _get(self, kind: str, provider: str, request: str, params: Mapping[str, Any]) -> Any:
        params_json = canonical_params(params)
        try:
            with self._lock:
                row = self._conn.execute(
                    "SELECT payload, sha256 FROM entries WHERE kind=? AND provider=? AND request=? AND params=?",
                    (kind, provider, request, params_json),
                ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(f"reading a {kind} row failed ({exc})") from None
        if row is None:
            return None
        payload, checksum = row
        if not isinstance(payload, str) or checksum != row_checksum(kind, provider, request, params_json, payload):
            raise self._corrupt(f"checksum mismatch in the {kind} row for {request[:80]!r} "
                                f"(provider {provider!r}, params {params_json})")
        try:
            return json.loads(payload)
        except json.JSONDecodeError as exc:
            raise self._corrupt(f"the {kind} row for {request[:80]!r} is not JSON ({exc.msg})") from None

    def _put(self, kind: str, provider: str, request: str, params: Mapping[str, Any], payload: Any) -> None:
        if self.readonly:
            raise CacheError(f"search cache {self.path} was opened read-only; open it with readonly=False to record")
        params_json = canonical_params(params)
        payload_json = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        checksum = row_checksum(kind, provider, request, params_json, payload_json)
        try:
            with self._lock, self._conn:
                self._conn.execute(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (kind, provider, request, params_json, payload_json, checksum, time.time()),
                )
        except sqlite3.Error as exc:
            raise CacheError(f"cannot write to search cache {self.path}: {exc}") from None

    # ------------------------------------------------------------------ public
    def get_search(self, provider: str, query: str, params: Mapping[str, Any]) -> list[WebResult] | None:
        """Recorded results of ``query`` (normalised), or None when it was never recorded."""
        request = normalize_query(query)
        payload = self._get(KIND_SEARCH, provider, request, params)
        if payload is None:
            return None
        try:
            return [WebResult.from_dict(r) for r in payload["results"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._corrupt(f"the search row for {request[:80]!r} has an unexpected payload ({exc})") from None

    def put_search(self, provider: str, query: str, params: Mapping[str, Any], results: list[WebResult]) -> None:
        self._put(KIND_SEARCH, provider, normalize_query(query), params,
                  {"results": [r.to_dict() for r in results]})

    def get_page(self, provider: str, url: str, params: Mapping[str, Any]) -> WebPage | None:
        """Recorded page at ``url``, or None when it was never recorded."""
        payload = self._get(KIND_PAGE, provider, url.strip(), params)
        if payload is None:
            return None
        try:
            return WebPage.from_dict(payload["page"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self._corrupt(f"the page row for {url[:80]!r} has an unexpected payload ({exc})") from None

    def put_page(self, provider: str, url: str, params: Mapping[str, Any], page: WebPage) -> None:
        self._put(KIND_PAGE, provider, url.strip(), params, {"page": page.to_dict()})

    def require_search(self, provider: str, query: str, params: Mapping[str, Any]) -> list[WebResult]:
        """Like :meth:`get_search` but a miss raises :class:`CacheMissError`."""
        results = self.get_search(provider, query, params)
        if results is None:
            raise CacheMissError(
                f"replay cache {self.path} has no search {normalize_query(query)[:120]!r} for provider "
                f"{provider!r} with {canonical_params(params)}: record it with mode='record'"
            )
        return results

    def require_page(self, provider: str, url: str, params: Mapping[str, Any]) -> WebPage:
        """Like :meth:`get_page` but a miss raises :class:`CacheMissError`."""
        page = self.get_page(provider, url, params)
        if page is None:
            raise CacheMissError(
                f"replay cache {self.path} has no page {url.strip()[:200]!r} for provider {provider!r}: "
                "record it with mode='record'"
            )
        return page

    def verify(self) -> int:
        """Check every row's checksum; return the number of rows (raises if any is corrupt)."""
        try:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT kind, provider, request, params, payload, sha256 FROM entries"
                ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(f"reading rows failed ({exc})") from None
        for kind, provider, request, params, payload, checksum in rows:
            if checksum != row_checksum(kind, provider, request, params, payload):
                raise self._corrupt(f"checksum mismatch in the {kind} row for {str(request)[:80]!r}")
        return len(rows)

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def describe(self) -> Mapping[str, Any]:
        return {"path": str(self.path), "schema_version": SCHEMA_VERSION, "readonly": self.readonly}

    def __repr__(self) -> str:
        return f"SearchCache({str(self.path)!r}, readonly={self.readonly})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "SearchCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
