"""A small stdlib (urllib) HTTP client with the reliability web search needs.

* per-operation socket timeout plus a whole-response deadline;
* retries with exponential backoff and jitter on 429/5xx, timeouts and connection
  errors, honouring ``Retry-After`` (seconds or HTTP date), up to a ceiling;
* a client-side token-bucket rate limit (requests per second);
* a cap on bytes read (an oversized search reply is an error, an oversized page is cut);
* secrets (API keys) redacted from every message it raises or logs.

``clock``, ``sleep`` and ``rng`` are injectable so tests never wait on backoff.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import math
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from mempo_gym.web.errors import ProviderError
from mempo_gym.web.ratelimit import TokenBucket

logger = logging.getLogger("mempo_gym.web")

DEFAULT_MAX_RESPONSE_BYTES = 2 * 1024 * 1024
DEFAULT_USER_AGENT = "mempo-gym-web-search/0.1 (+https://github.com/mempo-gym)"
_READ_CHUNK = 64 * 1024


class HttpStatusError(ProviderError):
    """The server answered with a non-success HTTP status (after any retries)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before retrying a failed request.

    Backoff before retry ``i`` (0-based) is ``min(backoff_max_s, backoff_base_s * 2**i)``
    with "equal jitter" (uniform in ``[d/2, d]``). A ``Retry-After`` header replaces the
    backoff; one asking for more than ``max_retry_after_s`` ends the retries at once.
    """

    max_retries: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 60.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 500, 502, 503, 504}))

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"RetryPolicy.max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("RetryPolicy delays must be >= 0 seconds")

    def backoff(self, retry_index: int, rng: random.Random) -> float:
        delay = min(self.backoff_max_s, self.backoff_base_s * (2.0 ** retry_index))
        return delay / 2.0 + rng.uniform(0.0, delay / 2.0)


@dataclass(frozen=True)
class HttpResponse:
    """A successful response; ``truncated`` when the body was cut at the byte cap."""

    status: int
    url: str
    headers: Mapping[str, str]
    body: bytes
    truncated: bool = False

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def charset(self) -> str:
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                return value.strip().strip('"').lower()
        return "utf-8"

    def text(self) -> str:
        """Body decoded with the declared charset (undecodable bytes replaced)."""
        try:
            return self.body.decode(self.charset, errors="replace")
        except LookupError:  # unknown charset name
            return self.body.decode("utf-8", errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects so headers carrying an API key never reach another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) or seconds > 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def redact(text: str, secrets: Sequence[str]) -> str:
    """Replace every non-empty secret (and its URL-encoded form) in ``text`` by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
            quoted = urllib.parse.quote(secret, safe="")
            if quoted != secret:
                text = text.replace(quoted, "***")
    return text


class HttpClient:
    """Make HTTP requests with timeouts, retries, a rate limit and a byte cap."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        deadline_s: float = 30.0,
        retry: RetryPolicy | None = None,
        requests_per_second: float | None = None,
        burst: int = 1,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        user_agent: str = DEFAULT_USER_AGENT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not timeout_s > 0 or not deadline_s > 0:
            raise ValueError(f"timeout_s and deadline_s must be > 0, got {timeout_s!r}, {deadline_s!r}")
        if max_response_bytes < 1:
            raise ValueError(f"max_response_bytes must be >= 1, got {max_response_bytes!r}")
        self.timeout_s = float(timeout_s)
        self.deadline_s = float(deadline_s)
        self.retry = retry or RetryPolicy()
        self.max_response_bytes = int(max_response_bytes)
        self.user_agent = user_agent
        self.requests_per_second = requests_per_second
        self._rate_limit = (
            TokenBucket(requests_per_second, burst, clock=clock, sleep=sleep)
            if requests_per_second is not None else None
        )
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._opener = urllib.request.build_opener()
        self._opener_no_redirect = urllib.request.build_opener(_NoRedirect)

    def describe(self) -> dict[str, Any]:
        return {
            "timeout_s": self.timeout_s,
            "deadline_s": self.deadline_s,
            "max_retries": self.retry.max_retries,
            "backoff_base_s": self.retry.backoff_base_s,
            "requests_per_second": self.requests_per_second,
            "max_response_bytes": self.max_response_bytes,
        }

    # ------------------------------------------------------------------ requests
    def request(
        self,
        method: str,
        url: str,
        *,
        label: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        allow_truncate: bool = False,
        follow_redirects: bool = True,
        secrets: Sequence[str] = (),
    ) -> HttpResponse:
        """Send one logical request (with retries) and return the successful response.

        ``label`` names the other side in messages (e.g. ``"provider 'brave'"``).
        Raises :class:`ProviderError` (or :class:`HttpStatusError`) with a short,
        secret-free message when every attempt failed.
        """
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ProviderError(redact(f"{label}: not an http(s) URL: {url[:200]!r}", secrets))
        if params:
            query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
            url = f"{url}{'&' if parsed.query else '?'}{query}"
        data = None
        all_headers = {"User-Agent": self.user_agent, "Accept": "*/*"}
        if json_body is not None:
            data = json.dumps(json_body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        opener = self._opener if follow_redirects else self._opener_no_redirect

        retries = self.retry.max_retries
        for attempt in range(retries + 1):
            if self._rate_limit is not None:
                self._rate_limit.acquire()
            try:
                request = urllib.request.Request(url, data=data, headers=all_headers, method=method)
                return self._attempt(opener, request, label, allow_truncate, secrets)
            except _Retryable as failure:
                done = f"after {attempt} retr{'y' if attempt == 1 else 'ies'}" if attempt else "no retries"
                if failure.retry_after is not None and failure.retry_after > self.retry.max_retry_after_s:
                    raise self._final(
                        f"{label} {failure.reason} and asked to retry after {failure.retry_after:g} s, "
                        f"more than max_retry_after_s={self.retry.max_retry_after_s:g} ({done})",
                        failure.status, secrets,
                    ) from None
                if attempt == retries:
                    raise self._final(f"{label} {failure.reason} ({done})", failure.status, secrets) from None
                delay = (
                    failure.retry_after if failure.retry_after is not None
                    else self.retry.backoff(attempt, self._rng)
                )
                logger.warning(redact(
                    f"{label} {failure.reason}; retry {attempt + 1}/{retries} in {delay:.2f} s", secrets
                ))
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def request_json(self, method: str, url: str, *, label: str, **kwargs: Any) -> Any:
        """Like :meth:`request` but parse the body as JSON (malformed JSON is a ProviderError)."""
        response = self.request(method, url, label=label, **kwargs)
        try:
            return json.loads(response.body.decode(response.charset))
        except (UnicodeDecodeError, LookupError) as exc:
            raise ProviderError(f"{label} returned a body that is not valid text ({exc.__class__.__name__})") from None
        except json.JSONDecodeError as exc:
            raise ProviderError(
                f"{label} returned malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _final(message: str, status: int | None, secrets: Sequence[str]) -> ProviderError:
        message = redact(message, secrets)
        return HttpStatusError(message, status) if status is not None else ProviderError(message)

    def _attempt(
        self,
        opener: urllib.request.OpenerDirector,
        request: urllib.request.Request,
        label: str,
        allow_truncate: bool,
        secrets: Sequence[str],
    ) -> HttpResponse:
        deadline = time.monotonic() + self.deadline_s
        try:
            response = opener.open(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            status = exc.code
            retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            if status in self.retry.retry_statuses:
                what = "rate-limited the request (HTTP 429)" if status == 429 else f"returned HTTP {status}"
                raise _Retryable(what, retry_after, status) from None
            if 300 <= status < 400:
                raise HttpStatusError(redact(f"{label} answered with a redirect (HTTP {status}), "
                                             "which is not followed for this request", secrets), status) from None
            reason = (exc.reason if isinstance(exc.reason, str) else "") or http.client.responses.get(status, "")
            raise HttpStatusError(redact(f"{label} returned HTTP {status} {reason}".rstrip(), secrets), status) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise _Retryable(f"timed out after {self.timeout_s:g} s") from None
            raise _Retryable(f"could not be reached ({_reason_text(exc.reason)})") from None
        except (TimeoutError, socket.timeout):
            raise _Retryable(f"timed out after {self.timeout_s:g} s") from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _Retryable(f"could not be reached ({_reason_text(exc)})") from None
        except ValueError as exc:  # e.g. a URL urllib cannot parse
            raise ProviderError(redact(f"{label}: invalid request ({exc})", secrets)) from None

        with response:
            status = response.status
            headers = {k.lower(): v for k, v in response.headers.items()}
            try:
                declared = int(headers.get("content-length", "-1"))
            except ValueError:
                declared = -1
            if declared > self.max_response_bytes and not allow_truncate:
                raise ProviderError(self._too_big(label, declared))
            chunks: list[bytes] = []
            size = 0
            truncated = False
            try:
                while True:
                    if time.monotonic() > deadline:
                        raise _Retryable(f"did not finish sending its response within {self.deadline_s:g} s")
                    chunk = response.read(_READ_CHUNK)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        if not allow_truncate:
                            raise ProviderError(self._too_big(label, None))
                        truncated = True
                        break
            except (TimeoutError, socket.timeout):
                raise _Retryable(f"timed out after {self.timeout_s:g} s while sending its response") from None
            except (ConnectionError, http.client.HTTPException) as exc:
                raise _Retryable(f"broke the connection mid-response ({_reason_text(exc)})") from None
            body = b"".join(chunks)[: self.max_response_bytes]
            return HttpResponse(status=status, url=response.geturl(), headers=headers, body=body, truncated=truncated)

    def _too_big(self, label: str, declared: int | None) -> str:
        size = f" ({declared} bytes declared)" if declared is not None and declared >= 0 else ""
        return (f"{label} sent a response larger than the {self.max_response_bytes}-byte cap{size}; "
                "the reply was discarded")


def _reason_text(reason: object) -> str:
    text = str(reason) if str(reason) else reason.__class__.__name__
    return text[:200]
