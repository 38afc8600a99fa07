"""Declarative adapters for common web-search JSON APIs.

An adapter says where to send a query (endpoint, method, parameter names, auth header)
and where the result list and its fields sit in the JSON reply. Built-ins (name:
endpoint; API-key variable; results at):

* ``brave``: GET https://api.search.brave.com/res/v1/web/search; ``BRAVE_API_KEY``
  (header ``X-Subscription-Token``); ``web.results[].{title, url, description}``.
* ``serper``: POST https://google.serper.dev/search; ``SERPER_API_KEY`` (``X-API-KEY``);
  ``organic[].{title, link, snippet}``.
* ``searxng``: GET http://127.0.0.1:8888/search?format=json (self-hosted, no key);
  ``results[].{title, url, content}``.
* ``tavily``: POST https://api.tavily.com/search; ``TAVILY_API_KEY``
  (``Authorization: Bearer``); ``results[].{title, url, content}``.
* ``generic``: GET {base_url}/search?q=…&k=…; no key; ``results[].{title, url, snippet}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping


@dataclass(frozen=True)
class SearchApiAdapter:
    """How to query one web-search API and read its JSON reply.

    Attributes:
        name: adapter name (part of cache keys and run configs).
        base_url: scheme + host (+ optional prefix); override it to point at a mirror
            or a local test server.
        path: endpoint path appended to ``base_url``.
        method: ``"GET"`` (parameters in the query string) or ``"POST"`` (JSON body).
        query_param: name of the query parameter / body field.
        count_param: name of the result-count parameter, or None if the API has none.
        max_count: largest count the API accepts (results are also cut client-side).
        static_params: fixed extra parameters (e.g. ``{"format": "json"}``).
        api_key_env: environment variable holding the API key, or None.
        api_key_header: header that carries the key.
        api_key_prefix: text put before the key in that header (e.g. ``"Bearer "``).
        api_key_required: whether a search without the key is refused up front.
        results_path: keys leading from the JSON root to the list of results.
        title_field / url_field: field names inside one result.
        snippet_fields: candidate snippet fields, first non-empty wins.
        extra_headers: fixed extra request headers.
    """

    name: str
    base_url: str
    path: str
    method: str = "GET"
    query_param: str = "q"
    count_param: str | None = None
    max_count: int = 20
    static_params: Mapping[str, Any] = field(default_factory=dict)
    api_key_env: str | None = None
    api_key_header: str | None = None
    api_key_prefix: str = ""
    api_key_required: bool = False
    results_path: tuple[str, ...] = ("results",)
    title_field: str = "title"
    url_field: str = "url"
    snippet_fields: tuple[str, ...] = ("snippet",)
    extra_headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in ("GET", "POST"):
            raise ValueError(f"adapter {self.name!r}: method must be 'GET' or 'POST', got {self.method!r}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"adapter {self.name!r}: base_url must start with http:// or https://, "
                             f"got {self.base_url!r}")
        if self.api_key_env and not self.api_key_header:
            raise ValueError(f"adapter {self.name!r}: api_key_env is set but api_key_header is not")
        if self.max_count < 1:
            raise ValueError(f"adapter {self.name!r}: max_count must be >= 1")
        object.__setattr__(self, "results_path", tuple(self.results_path))
        object.__setattr__(self, "snippet_fields", tuple(self.snippet_fields))

    @property
    def endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/" + self.path.lstrip("/")

    def with_base_url(self, base_url: str) -> "SearchApiAdapter":
        """A copy sending requests to another host (mirror, proxy, local test server)."""
        return replace(self, base_url=base_url)

    def request_fields(self, query: str, k: int) -> dict[str, Any]:
        """Query-string parameters (GET) or JSON body (POST) for one search."""
        fields: dict[str, Any] = dict(self.static_params)
        fields[self.query_param] = query
        if self.count_param:
            fields[self.count_param] = min(k, self.max_count)
        return fields

    def describe(self) -> dict[str, Any]:
        return {
            "adapter": self.name,
            "endpoint": self.endpoint,
            "method": self.method,
            "api_key_env": self.api_key_env,
            "results_path": ".".join(self.results_path),
        }


BRAVE = SearchApiAdapter(
    name="brave", base_url="https://api.search.brave.com", path="/res/v1/web/search",
    count_param="count", max_count=20, api_key_env="BRAVE_API_KEY",
    api_key_header="X-Subscription-Token", api_key_required=True,
    results_path=("web", "results"), snippet_fields=("description", "extra_snippets"),
    extra_headers={"Accept": "application/json"},
)
SERPER = SearchApiAdapter(
    name="serper", base_url="https://google.serper.dev", path="/search", method="POST",
    count_param="num", max_count=100, api_key_env="SERPER_API_KEY", api_key_header="X-API-KEY",
    api_key_required=True, results_path=("organic",), url_field="link", snippet_fields=("snippet",),
)
SEARXNG = SearchApiAdapter(
    name="searxng", base_url="http://127.0.0.1:8888", path="/search", static_params={"format": "json"},
    results_path=("results",), snippet_fields=("content",),
    extra_headers={"Accept": "application/json"},
)
TAVILY = SearchApiAdapter(
    name="tavily", base_url="https://api.tavily.com", path="/search", method="POST",
    query_param="query", count_param="max_results", max_count=20, api_key_env="TAVILY_API_KEY",
    api_key_header="Authorization", api_key_prefix="Bearer ", api_key_required=True,
    results_path=("results",), snippet_fields=("content",),
)
GENERIC = SearchApiAdapter(
    name="generic", base_url="http://127.0.0.1:8080", path="/search", count_param="k", max_count=100,
    results_path=("results",), snippet_fields=("snippet",),
)

#: Built-in adapters by name.
ADAPTERS: dict[str, SearchApiAdapter] = {a.name: a for a in (BRAVE, SERPER, SEARXNG, TAVILY, GENERIC)}


def get_adapter(name: str) -> SearchApiAdapter:
    """The built-in adapter called ``name`` (clear error listing the known names)."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown search API adapter {name!r}; known: {', '.join(sorted(ADAPTERS))} "
                         "(or build a SearchApiAdapter yourself)") from None
