"""A search provider backed by a web-search JSON API (Brave, Serper, SearXNG, Tavily...).

The API key is read from the adapter's environment variable at each request and is
never stored on the object, logged, put in an exception or described.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, Mapping

from mempo_gym.web.adapters import SearchApiAdapter, get_adapter
from mempo_gym.web.errors import ProviderError
from mempo_gym.web.html_text import html_fragment_to_text, html_to_text
from mempo_gym.web.http_client import (
    DEFAULT_MAX_RESPONSE_BYTES,
    HttpClient,
    HttpStatusError,
    RetryPolicy,
    redact,
)
from mempo_gym.web.records import WebPage, WebResult

_TEXT_TYPES = ("text/plain", "application/json", "text/markdown", "text/csv")
_HTML_TYPES = ("text/html", "application/xhtml+xml")


class HttpJsonProvider:
    """Search with a JSON web-search API and open pages over HTTP(S).

    Args:
        adapter: a :class:`SearchApiAdapter` or a built-in adapter name
            (``"brave"``, ``"serper"``, ``"searxng"``, ``"tavily"``, ``"generic"``).
        base_url: overrides the adapter's host (mirror, self-hosted SearXNG, test server).
        name: provider name used in cache keys; defaults to the adapter name.
        client: a preconfigured :class:`HttpClient`; otherwise one is built from
            ``timeout_s``, ``max_retries``, ``requests_per_second`` and ``max_response_bytes``.
    """

    def __init__(
        self,
        adapter: SearchApiAdapter | str,
        *,
        base_url: str | None = None,
        name: str | None = None,
        client: HttpClient | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        requests_per_second: float | None = 1.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        resolved = get_adapter(adapter) if isinstance(adapter, str) else adapter
        if not isinstance(resolved, SearchApiAdapter):
            raise TypeError(f"adapter must be a SearchApiAdapter or a name, got {type(adapter).__name__}")
        self.adapter = resolved.with_base_url(base_url) if base_url else resolved
        self.name = name or self.adapter.name
        self.client = client or HttpClient(
            timeout_s=timeout_s,
            retry=RetryPolicy(max_retries=max_retries),
            requests_per_second=requests_per_second,
            max_response_bytes=max_response_bytes,
        )

    def __repr__(self) -> str:
        return (f"HttpJsonProvider(name={self.name!r}, adapter={self.adapter.name!r}, "
                f"endpoint={self.adapter.endpoint!r}, api_key_env={self.adapter.api_key_env!r})")

    def describe(self) -> Mapping[str, Any]:
        return {
            "provider": "http_json",
            "name": self.name,
            **self.adapter.describe(),
            "api_key_set": bool(self._api_key()),
            **self.client.describe(),
        }

    # ------------------------------------------------------------------ search
    def _api_key(self) -> str:
        env = self.adapter.api_key_env
        return os.environ.get(env, "").strip() if env else ""

    def search(self, query: str, k: int) -> list[WebResult]:
        adapter = self.adapter
        label = f"provider {self.name!r}"
        key = self._api_key()
        if adapter.api_key_required and not key:
            raise ProviderError(
                f"{label} needs an API key: set the environment variable {adapter.api_key_env} "
                "(it is read at each search and never stored)"
            )
        headers = dict(adapter.extra_headers)
        if key and adapter.api_key_header:
            headers[adapter.api_key_header] = adapter.api_key_prefix + key
        fields = adapter.request_fields(query, k)
        secrets = (key,) if key else ()
        try:
            reply = self.client.request_json(
                adapter.method, adapter.endpoint, label=label, headers=headers,
                params=fields if adapter.method == "GET" else None,
                json_body=fields if adapter.method == "POST" else None,
                follow_redirects=False, secrets=secrets,
            )
        except HttpStatusError as exc:
            if exc.status in (401, 403) and adapter.api_key_env:
                raise ProviderError(
                    f"{label} rejected the request (HTTP {exc.status}): check the API key in "
                    f"{adapter.api_key_env}"
                ) from None
            raise
        return self._parse_results(reply, k, label, secrets)

    def _parse_results(self, reply: Any, k: int, label: str, secrets: tuple[str, ...]) -> list[WebResult]:
        adapter = self.adapter
        where = ".".join(adapter.results_path)
        if not isinstance(reply, dict):
            raise ProviderError(f"{label} reply is JSON {type(reply).__name__}, expected an object "
                                f"with results at {where!r}")
        node: Any = reply
        for step in adapter.results_path:
            if not isinstance(node, dict):
                raise ProviderError(f"{label} reply has no result list at {where!r}")
            if step not in node:
                error = reply.get("error") or reply.get("message") or reply.get("detail")
                if error:
                    raise ProviderError(redact(f"{label} reported an error: {str(error)[:200]}", secrets))
                return []  # APIs omit the list when nothing matched (e.g. Brave without "web")
            node = node[step]
        if not isinstance(node, list):
            raise ProviderError(f"{label} reply has {type(node).__name__} at {where!r}, expected a list")
        results: list[WebResult] = []
        for item in node:
            if not isinstance(item, dict):
                continue
            url = item.get(adapter.url_field)
            if not isinstance(url, str) or not url.strip():
                continue
            title = item.get(adapter.title_field)
            results.append(WebResult(
                title=html_fragment_to_text(title) if isinstance(title, str) else "",
                url=url.strip(),
                snippet=self._snippet(item),
            ))
            if len(results) >= k:
                break
        return results

    def _snippet(self, item: Mapping[str, Any]) -> str:
        for field_name in self.adapter.snippet_fields:
            value = item.get(field_name)
            if isinstance(value, list):
                value = " ".join(v for v in value if isinstance(v, str))
            if isinstance(value, str) and value.strip():
                return html_fragment_to_text(value)
        return ""

    # ------------------------------------------------------------------ pages
    def fetch(self, url: str) -> WebPage:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ProviderError(f"only http(s) URLs can be opened, got {url[:200]!r}")
        label = f"page {parts.netloc!r}"
        response = self.client.request(
            "GET", url, label=label, allow_truncate=True,
            headers={"Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5"},
        )
        content_type = response.content_type
        body_text = response.text()
        looks_html = body_text.lstrip()[:1] == "<"
        if content_type in _HTML_TYPES or (not content_type and looks_html):
            parsed = html_to_text(body_text)
            title, text = parsed.title, parsed.text
        elif content_type.startswith("text/") or content_type in _TEXT_TYPES or not content_type:
            title, text = "", " ".join(body_text.split()) if content_type == "application/json" else body_text.strip()
        else:
            raise ProviderError(f"{label} is {content_type!r}, not a text or HTML page")
        return WebPage(url=response.url, title=title or url, text=text, truncated=response.truncated)
