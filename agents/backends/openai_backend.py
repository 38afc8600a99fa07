"""Generation through an OpenAI-compatible HTTP server (vLLM, llama.cpp server, ...).

Speaks ``POST {base_url}/completions`` (the prompt is continued as is) or
``POST {base_url}/chat/completions`` (the prompt becomes the user message) with the
standard library only. Each prompt of a batch is one request; requests run concurrently
in a thread pool.

* Settings: ``base_url`` and ``model`` come from the arguments or the ``OPENAI_BASE_URL``
  and ``MEMPO_GYM_MODEL`` environment variables. Without either model setting, the name is
  read from the server's ``GET {base_url}/models`` when it serves exactly one model.
* The API key is read from an environment variable (``OPENAI_API_KEY`` by default) when a
  request is sent. It is never stored on the object, logged, shown by ``repr``/``describe``
  or included in an exception message.
* 429 and 5xx replies and timeouts are retried with exponential backoff (a ``Retry-After``
  header is honoured, up to ``max_backoff_s``); other 4xx replies and malformed JSON raise
  :class:`BackendHTTPError` / :class:`BackendResponseError` at once.
* Failures that retrying could not fix but that say nothing against the settings (every
  attempt timed out, a 5xx or connection failure after the last retry) are
  :class:`~mempo_gym.agent.EpisodeFailure` s as well: the harness records that episode as
  failed and goes on. A 4xx reply (unknown model, bad API key) stops the run.
* Stop strings: OpenAI-style servers remove the matched stop string from the text. The
  backend puts it back (the closing tag is part of the turn the environment judges): from
  the server's ``stop_reason`` when given (vLLM), else when ``finish_reason == "stop"`` and
  the text leaves exactly one of the stop strings' opening tags unclosed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping, Sequence

from mempo_gym.agent import EpisodeFailure

from mempo_agents.backends.base import (
    DEFAULT_STOP, BackendError, Generation, cut_after_stop, validate_generate_args,
)

logger = logging.getLogger(__name__)

ENDPOINTS = ("completions", "chat")
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_TAG_RE = re.compile(r"<(/?)([A-Za-z_]+)>")


class BackendHTTPError(BackendError):
    """The server answered with an HTTP error that retrying does not fix (or retries ran out)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class BackendUnavailableError(BackendHTTPError, EpisodeFailure):
    """Retries ran out on a 429/5xx reply or a failed connection (an episode failure)."""


class BackendResponseError(BackendError):
    """The server's reply is not the OpenAI wire format (bad JSON, missing fields)."""


class BackendTimeoutError(BackendError, EpisodeFailure):
    """Every attempt timed out (an episode failure)."""


def _restore_stop(text: str, choice: Mapping[str, Any], stop: Sequence[str]) -> str:
    """Put back the stop string an OpenAI-style server removed from ``text``."""
    if cut_after_stop(text, stop)[1]:
        return text
    reason = choice.get("stop_reason")
    if isinstance(reason, str) and reason in stop:
        return text + reason
    if choice.get("finish_reason") != "stop":
        return text
    open_tag: str | None = None
    for m in _TAG_RE.finditer(text):
        open_tag = None if m.group(1) else m.group(2)
    if open_tag is not None and f"</{open_tag}>" in stop:
        return text + f"</{open_tag}>"
    return text


class OpenAIBackend:
    """Backend for ``/v1/completions`` or ``/v1/chat/completions`` servers.

    Args:
        base_url: e.g. ``"http://127.0.0.1:8000/v1"`` (default: ``$OPENAI_BASE_URL``).
        model: model name sent to the server (default: ``$MEMPO_GYM_MODEL``).
        endpoint: ``"completions"`` or ``"chat"``.
        api_key_env: name of the environment variable holding the API key (unset or empty:
            no ``Authorization`` header).
        timeout_s: socket timeout of one request.
        max_retries: retries after the first attempt (429/5xx/timeouts/connection errors).
        backoff_s: first backoff; doubled each retry (with up to 10 % jitter).
        max_backoff_s: cap on any single wait, ``Retry-After`` included.
        concurrency: requests in flight for one batch.
        extra_body: extra JSON fields sent with every request (e.g.
            ``{"include_stop_str_in_output": True}`` for vLLM).
    """

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        *,
        endpoint: str = "completions",
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        concurrency: int = 8,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise BackendError("no server URL: pass base_url=... or set OPENAI_BASE_URL (e.g. http://127.0.0.1:8000/v1)")
        if not re.match(r"^https?://", base_url):
            raise BackendError(f"base_url must start with http:// or https://, got {base_url!r}")
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {ENDPOINTS}, got {endpoint!r}")
        if not api_key_env or not isinstance(api_key_env, str):
            raise ValueError("api_key_env must name an environment variable, e.g. 'OPENAI_API_KEY'")
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0 or max_backoff_s < 0 or concurrency < 1:
            raise ValueError("timeout_s > 0, max_retries >= 0, backoff_s >= 0, max_backoff_s >= 0, concurrency >= 1 required")
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout_s = float(timeout_s)
        self.model = model or os.environ.get("MEMPO_GYM_MODEL") or self._served_model_name()
        self.endpoint = endpoint
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.concurrency = int(concurrency)
        self.extra_body = dict(extra_body or {})

    @property
    def url(self) -> str:
        return f"{self.base_url}/{'chat/completions' if self.endpoint == 'chat' else 'completions'}"

    def served_models(self) -> list[str]:
        """The model ids the server lists at ``GET {base_url}/models`` (one attempt)."""
        url = f"{self.base_url}/models"
        request = urllib.request.Request(url, headers=self._headers(), method="GET")
        try:
            with urllib.request.urlopen(request, timeout=min(self.timeout_s, 10.0)) as response:
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            raise BackendHTTPError(f"{url} answered HTTP {err.code} ({err.reason})", err.code) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise BackendHTTPError(f"cannot reach {url} ({self._redact(str(reason))})", None) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BackendResponseError(f"{url} returned malformed JSON ({err})") from None
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise BackendResponseError(f"{url} reply lacks a 'data' list of models")
        return [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]

    def _served_model_name(self) -> str:
        """The one model the server serves; a clear error when it serves none, several, or cannot say."""
        how = "pass --served-model NAME (Python: served_model=... or model=...) or set MEMPO_GYM_MODEL"
        try:
            names = self.served_models()
        except BackendError as err:
            raise BackendError(f"no model name given and {err}; is the server running? Otherwise {how}") from None
        if len(names) == 1:
            return names[0]
        if not names:
            raise BackendError(f"{self.base_url}/models lists no model; {how}")
        raise BackendError(f"{self.base_url} serves several models ({', '.join(names[:10])}); {how}")

    # ------------------------------------------------------------------ one request
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env, "")
        return text.replace(key, "***") if key else text

    def _body(self, prompt: str, max_new_tokens: int, stop: Sequence[str], temperature: float, top_p: float, seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_new_tokens,
            "temperature": float(temperature),
            "top_p": float(top_p),
        }
        if stop:
            body["stop"] = list(stop)
        if seed is not None:
            body["seed"] = int(seed)
        if self.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        body.update(self.extra_body)
        return body

    def _advice(self, status: int) -> str:
        """What to do about a 4xx reply."""
        if status in (401, 403):
            return f"Put the server's API key in ${self.api_key_env} (or name another variable: api_key_env=...)."
        if status == 404:
            return (f"Check the model name ({self.model!r}: --served-model / served_model=, or leave it out to use "
                    f"the one {self.base_url}/models lists) and that the URL ends in /v1.")
        return f"Check the request settings (model {self.model!r}, max_new_tokens, stop strings)."

    def _wait_s(self, attempt: int, retry_after: str | None) -> float:
        wait = self.backoff_s * (2**attempt) * (1.0 + 0.1 * random.random())
        if retry_after:
            try:
                wait = max(wait, float(retry_after))
            except ValueError:  # an HTTP date: fall back to our own backoff
                pass
        return min(wait, self.max_backoff_s)

    def _post(self, body: Mapping[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode("utf-8")
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.url, data=data, headers=self._headers(), method="POST")
            retry_after: str | None = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    raw = response.read()
            except urllib.error.HTTPError as err:
                detail = self._redact(err.read(2000).decode("utf-8", "replace").strip())
                if err.code not in RETRY_STATUSES:
                    raise BackendHTTPError(f"{self.url} answered HTTP {err.code}: {detail or err.reason}. "
                                           f"{self._advice(err.code)}", err.code) from None
                retry_after = err.headers.get("Retry-After") if err.headers else None
                last_problem = f"HTTP {err.code}: {detail[:200] or err.reason}"
                status: int | None = err.code
            except (TimeoutError, socket.timeout) as err:
                last_problem, status = f"timed out after {self.timeout_s:g} s ({type(err).__name__})", None
            except urllib.error.URLError as err:
                if isinstance(err.reason, (TimeoutError, socket.timeout)):
                    last_problem = f"timed out after {self.timeout_s:g} s"
                else:
                    last_problem = f"connection failed: {self._redact(str(err.reason))}"
                status = None
            except (ConnectionError, OSError) as err:
                last_problem, status = f"connection failed: {type(err).__name__}: {self._redact(str(err))}", None
            else:
                try:
                    payload = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as err:
                    raise BackendResponseError(
                        f"{self.url} returned malformed JSON ({err}); first bytes: "
                        f"{self._redact(raw[:200].decode('utf-8', 'replace'))!r}"
                    ) from None
                if not isinstance(payload, dict):
                    raise BackendResponseError(f"{self.url} returned JSON {type(payload).__name__}, expected an object")
                return payload
            if attempt < self.max_retries:
                wait = self._wait_s(attempt, retry_after)
                logger.warning("%s: %s; retry %d/%d in %.2f s", self.url, last_problem, attempt + 1, self.max_retries, wait)
                time.sleep(wait)
        message = (f"{self.url}: {last_problem} (gave up after {self.max_retries + 1} attempts; "
                   "raise timeout_s/max_retries, CLI --timeout/--retries, if the server is just slow)")
        if status is None and "timed out" in last_problem:
            raise BackendTimeoutError(message)
        raise BackendUnavailableError(message, status)

    def _parse(self, payload: Mapping[str, Any], stop: Sequence[str]) -> Generation:
        try:
            choice = payload["choices"][0]
            text = choice["message"]["content"] if self.endpoint == "chat" else choice["text"]
        except (KeyError, IndexError, TypeError):
            raise BackendResponseError(
                f"{self.url} reply lacks choices[0].{'message.content' if self.endpoint == 'chat' else 'text'}: "
                f"{self._redact(json.dumps(payload)[:300])}"
            ) from None
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise BackendResponseError(f"{self.url} reply text is {type(text).__name__}, expected a string")
        text = _restore_stop(text, choice, stop)
        text, stopped = cut_after_stop(text, stop)
        usage_raw = payload.get("usage") or {}
        usage = {k: int(v) for k, v in usage_raw.items() if isinstance(v, int) and not isinstance(v, bool)} if isinstance(usage_raw, dict) else {}
        finish = "stop" if stopped else str(choice.get("finish_reason") or "stop")
        return Generation(text=text, finish_reason=finish, usage=usage)

    # ------------------------------------------------------------------ batch
    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int,
        stop: Sequence[str] = DEFAULT_STOP,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[Generation]:
        """One request per prompt, ``concurrency`` at a time; results in prompt order."""
        validate_generate_args(prompts, max_new_tokens, stop, temperature, top_p)

        def one(index: int) -> Generation:
            row_seed = None if seed is None else seed + index
            body = self._body(prompts[index], max_new_tokens, stop, temperature, top_p, row_seed)
            return self._parse(self._post(body), stop)

        if len(prompts) <= 1 or self.concurrency == 1:
            return [one(i) for i in range(len(prompts))]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(one, range(len(prompts))))

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "endpoint": self.endpoint,
            "api_key_env": self.api_key_env,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "concurrency": self.concurrency,
        }

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r}, endpoint={self.endpoint!r})"
