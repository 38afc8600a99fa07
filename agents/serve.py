"""An OpenAI-compatible HTTP server over a local model (``mempo-gym serve``).

Serves ``GET /v1/models``, ``POST /v1/completions`` and ``POST /v1/chat/completions`` with
FastAPI on uvicorn, so any OpenAI-client tool (the ``openai`` package, vLLM clients,
MemPO-Gym's own :class:`~mempo_agents.backends.openai_backend.OpenAIBackend`) can use the
embedded SmolLM2 or a trained checkpoint.

* The model runs in one worker thread. Requests that arrive together and ask for the
  same generation settings are generated as one batch (up to ``max_batch``), so several
  clients in flight share the model's batched forward passes.
* ``/v1/completions`` continues the prompt as is; ``/v1/chat/completions`` applies the
  tokenizer's chat template to the messages (HTTP 400 when the model has none).
* Stop strings are removed from the returned text as OpenAI servers do, and reported in
  ``choices[i].stop_reason`` as vLLM does (``include_stop_str_in_output: true`` keeps them).
* ``n > 1``, ``stream``, ``logprobs`` and tools are not supported: HTTP 400 says so.
* With ``api_key_env`` set, requests must send ``Authorization: Bearer $VAR`` (else 401).

``python -m mempo_agents.serve --port 8000`` is the same as ``mempo-gym serve``.
"""


import argparse
import json
import re
import subprocess
import tempfile
import urllib.request
import asyncio
import contextlib
import os
import queue
import secrets
import socket
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Mapping, Sequence

from mempo_agents.backends.base import Backend, BackendError, Generation

DEFAULT_PORT = 8000
#: Upper bound on ``max_tokens`` of one request (a server setting, ``max_tokens_limit``).
DEFAULT_MAX_TOKENS_LIMIT = 2048


class RequestError(Exception):
    """A request the server rejects, with its HTTP status and OpenAI error type."""

    def __init__(self, message: str, status: int = 400, kind: str = "invalid_request_error",
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.code = status, kind, code


@dataclass(frozen=True)
class Settings:
    """Generation settings; requests with equal settings are batched together."""

    max_tokens: int
    stop: tuple[str, ...]
    temperature: float
    top_p: float
    seed: int | None


@dataclass
class _Job:
    prompt: str
    settings: Settings
    future: "Future[Generation]"


class GenerationQueue:
    """Feeds a backend from one worker thread, batching requests with equal settings.

    Args:
        backend: any :class:`~mempo_agents.backends.base.Backend` (not thread-safe is fine).
        max_batch: most prompts in one ``generate`` call.
        wait_s: how long the worker waits for more requests to join a batch.
    """

    def __init__(self, backend: Backend, max_batch: int = 8, wait_s: float = 0.005) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.backend, self.max_batch, self.wait_s = backend, int(max_batch), float(wait_s)
        self._jobs: "queue.Queue[_Job | None]" = queue.Queue()
        self._held: list[_Job] = []
        self.batches: list[int] = []  # sizes of the batches generated (for tests and stats)
        self._thread = threading.Thread(target=self._run, name="mempo-serve-model", daemon=True)
        self._thread.start()

    def submit(self, prompt: str, settings: Settings) -> "Future[Generation]":
        future: "Future[Generation]" = Future()
        self._jobs.put(_Job(prompt, settings, future))
        return future

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def _take(self) -> list[_Job] | None:
        """The next batch: the oldest job and the waiting jobs with its settings."""
        first = self._held.pop(0) if self._held else self._jobs.get()
        if first is None:
            return None
        batch = [first]
        keep: list[_Job] = []
        for job in self._held:
            (batch if job.settings == first.settings and len(batch) < self.max_batch else keep).append(job)
        self._held = keep
        deadline = time.monotonic() + self.wait_s
        while len(batch) < self.max_batch:
            try:
                job = self._jobs.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if job is None:
                self._jobs.put(None)
                break
            (batch if job.settings == first.settings else self._held).append(job)
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                for job in self._held:
                    job.future.set_exception(RequestError("server is shutting down", 503, "server_error"))
                return
            s = batch[0].settings
            self.batches.append(len(batch))
            try:
                generations = self.backend.generate(
                    [job.prompt for job in batch], s.max_tokens, stop=s.stop, temperature=s.temperature,
                    top_p=s.top_p, seed=s.seed,
                )
            except Exception as err:  # noqa: BLE001 - reported to every waiting client
                for job in batch:
                    job.future.set_exception(err)
                continue
            for job, gen in zip(batch, generations):
                job.future.set_result(gen)


# ---------------------------------------------------------------------- request parsing
def _number(body: Mapping[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise RequestError(f"'{key}' must be a number in [{lo}, {hi}], got {value!r}", code="invalid_value")
    return float(value)


def parse_settings(body: Mapping[str, Any], max_tokens_limit: int) -> Settings:
    """The generation settings of a completions or chat request (OpenAI defaults).

    >>> parse_settings({"max_tokens": 8, "stop": "</answer>", "temperature": 0}, 100)
    Settings(max_tokens=8, stop=('</answer>',), temperature=0.0, top_p=1.0, seed=None)
    """
    for unsupported in ("stream", "logprobs", "tools", "echo"):
        if body.get(unsupported):
            raise RequestError(f"'{unsupported}' is not supported by mempo-gym serve", code="unsupported")
    if body.get("n", 1) not in (1, None):
        raise RequestError("'n' must be 1 (send n requests for n samples)", code="unsupported")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens", 16))
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= max_tokens_limit:
        raise RequestError(f"'max_tokens' must be an integer in [1, {max_tokens_limit}], got {max_tokens!r}",
                           code="invalid_value")
    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) and s for s in stop) or len(stop) > 16:
        raise RequestError("'stop' must be a string or a list of up to 16 non-empty strings", code="invalid_value")
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0.0:
        raise RequestError("'top_p' must be > 0", code="invalid_value")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError(f"'seed' must be an integer, got {seed!r}", code="invalid_value")
    return Settings(int(max_tokens), tuple(stop), temperature, top_p, None if temperature == 0 else seed)


def _openai_text(gen: Generation, stop: Sequence[str], keep_stop: bool) -> tuple[str, str, str | None]:
    """``(text, finish_reason, stop_reason)`` as an OpenAI server reports them (stop string removed)."""
    for s in stop:
        if gen.text.endswith(s):
            return (gen.text if keep_stop else gen.text[: -len(s)]), "stop", s
    return gen.text, ("length" if gen.finish_reason == "length" else "stop"), None


# ---------------------------------------------------------------------- the app
def create_app(
    backend: Backend, model_name: str, *, tokenizer: Any = None, max_batch: int = 8,
    max_tokens_limit: int = DEFAULT_MAX_TOKENS_LIMIT, api_key_env: str | None = None,
) -> Any:
    """The FastAPI application serving ``backend`` as ``model_name``.

    Args:
        backend: generates the text (its own chat template must be off: the server applies it).
        model_name: the id listed at ``/v1/models`` and required in requests.
        tokenizer: applies the chat template of ``/v1/chat/completions`` (default: ``backend.tokenizer``).
        max_batch: most requests generated together.
        max_tokens_limit: upper bound on a request's ``max_tokens``.
        api_key_env: environment variable holding the key clients must send (``None``: no key).
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    tokenizer = tokenizer if tokenizer is not None else getattr(backend, "tokenizer", None)
    generation = GenerationQueue(backend, max_batch=max_batch)
    created = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        generation.close()

    app = FastAPI(title="mempo-gym serve", version="1", lifespan=lifespan)
    app.state.generation = generation

    def error(exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": {"message": str(exc), "type": exc.kind, "param": None, "code": exc.code}},
                            status_code=exc.status)

    def check_key(request: Request) -> None:
        if not api_key_env:
            return
        expected = os.environ.get(api_key_env, "")
        sent = request.headers.get("authorization", "")
        if not expected or not secrets.compare_digest(sent, f"Bearer {expected}"):
            raise RequestError("invalid or missing API key (send Authorization: Bearer <key>)", 401,
                               "authentication_error", "invalid_api_key")

    async def read_body(request: Request) -> dict[str, Any]:
        check_key(request)
        try:
            body = await request.json()
        except ValueError:
            raise RequestError("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        if body.get("model") not in (model_name, None, ""):
            raise RequestError(f"the model {body.get('model')!r} does not exist; this server serves {model_name!r}",
                               404, "invalid_request_error", "model_not_found")
        return body

    async def run(prompts: list[str], settings: Settings) -> list[Generation]:
        futures = [asyncio.wrap_future(generation.submit(p, settings)) for p in prompts]
        return list(await asyncio.gather(*futures))

    def usage(gens: Sequence[Generation]) -> dict[str, int]:
        prompt = sum(int(g.usage.get("prompt_tokens", 0)) for g in gens)
        completion = sum(int(g.usage.get("completion_tokens", 0)) for g in gens)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        return error(exc)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        return error(RequestError(f"generation failed: {type(exc).__name__}: {exc}", 500, "server_error"))

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        check_key(request)
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": created,
                                            "owned_by": "mempo-gym"}]}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/completions")
    async def completions(request: Request) -> dict[str, Any]:
        body = await read_body(request)
        settings = parse_settings(body, max_tokens_limit)
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise RequestError("'prompt' must be a string or a non-empty list of strings (token ids are not "
                               "supported)", code="invalid_value")
        gens = await run(prompts, settings)
        choices = []
        for index, gen in enumerate(gens):
            text, finish, stop_reason = _openai_text(gen, settings.stop, bool(body.get("include_stop_str_in_output")))
            choices.append({"index": index, "text": text, "finish_reason": finish, "stop_reason": stop_reason,
                            "logprobs": None})
        return {"id": f"cmpl-{secrets.token_hex(12)}", "object": "text_completion", "created": int(time.time()),
                "model": model_name, "choices": choices, "usage": usage(gens)}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        body = await read_body(request)
        settings = parse_settings(body, max_tokens_limit)
        messages = body.get("messages")
        if (not isinstance(messages, list) or not messages
                or not all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                           for m in messages)):
            raise RequestError("'messages' must be a non-empty list of {role, content} objects with string "
                               "content", code="invalid_value")
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise RequestError(f"{model_name!r} has no chat template; use /v1/completions", code="unsupported")
        prompt = str(tokenizer.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages], tokenize=False,
            add_generation_prompt=True))
        (gen,) = await run([prompt], settings)
        text, finish, stop_reason = _openai_text(gen, settings.stop, bool(body.get("include_stop_str_in_output")))
        return {"id": f"chatcmpl-{secrets.token_hex(12)}", "object": "chat.completion", "created": int(time.time()),
                "model": model_name, "usage": usage([gen]),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish, "stop_reason": stop_reason, "logprobs": None}]}

    return app


def default_model_name(model: str | None) -> str:
    """The id a model is served under: the embedded model's name, or the checkpoint folder's name.

    >>> default_model_name(None), default_model_name("/ckpt/my-mempo-model/")
    ('smollm2-135m-instruct', 'my-mempo-model')
    """
    from mempo_agents.backends.embedded_model import EMBEDDED_MODEL_NAME

    if model is None or model == EMBEDDED_MODEL_NAME:
        return EMBEDDED_MODEL_NAME
    return Path(str(model).rstrip("/")).name


def load_backend(model: str | None, *, dtype: str = "float32", num_threads: int | None = None,
                 prefix_cache_tokens: int = 0) -> Backend:
    """A transformers backend (chat template off; the server applies it) for a name, folder or ``None``;
    ``prefix_cache_tokens`` > 0 reuses earlier requests' shared prefixes in greedy generation."""
    from mempo_agents.backends.transformers_backend import TransformersBackend
    from mempo_agents.registry import resolve_model

    return TransformersBackend(resolve_model(model), dtype=dtype, chat_template=False, num_threads=num_threads,
                               prefix_cache_tokens=prefix_cache_tokens)


def serve(
    model: str | None = None, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, name: str | None = None,
    max_batch: int = 8, max_tokens_limit: int = DEFAULT_MAX_TOKENS_LIMIT, api_key_env: str | None = None,
    dtype: str = "float32", num_threads: int | None = None, log_level: str = "warning", prefix_cache_tokens: int = 0,
) -> None:
    """Load ``model`` and serve it until interrupted; prints ``serving NAME at URL`` once listening.

    ``port=0`` picks a free port (the printed URL has it).
    """
    try:
        import uvicorn
    except ImportError:
        raise ImportError("mempo-gym serve needs fastapi and uvicorn: pip install 'mempo-gym[serve]'") from None
    backend = load_backend(model, dtype=dtype, num_threads=num_threads, prefix_cache_tokens=prefix_cache_tokens)
    name = name or default_model_name(model)
    app = create_app(backend, name, max_batch=max_batch, max_tokens_limit=max_tokens_limit, api_key_env=api_key_env)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        raise OSError(f"cannot listen on {host}:{port} ({err.strerror}); choose another --port") from None
    sock.listen(128)
    bound = sock.getsockname()[1]
    print(f"serving {name} at http://{host}:{bound}/v1 (max batch {max_batch}); Ctrl-C stops", flush=True)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


class ServerProcess:
    """``mempo-gym serve`` in a child process: starts ``python -m mempo_agents.serve --port 0 ARGS``
    and waits until it answers; ``base_url`` is the ``.../v1`` address it printed. Leaving the
    ``with`` block stops it.

    >>> with ServerProcess(["--max-batch", "4"]) as server:  # doctest: +SKIP
    ...     OpenAIBackend(server.base_url).generate(["The capital of France is"], 4)
    """

    def __init__(self, args: Sequence[str] = (), *, env: dict[str, str] | None = None, timeout_s: float = 300.0):
        self.args, self.timeout_s = list(args), timeout_s
        self.env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **(env or {})}
        self.base_url = ""
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> "ServerProcess":
        self._log = tempfile.NamedTemporaryFile("w+", prefix="mempo-serve-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mempo_agents.serve", "--port", "0", *self.args], env=self.env,
            stdout=self._log, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline and self.process.poll() is None:
            if not self.base_url:
                match = re.search(r"at (http://\S+/v1)", Path(self._log.name).read_text(errors="replace"))
                if match:
                    self.base_url = match.group(1)
            if self.base_url:
                try:
                    with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/health", timeout=5) as r:
                        if json.loads(r.read()).get("status") == "ok":
                            return self
                except OSError:
                    pass
            time.sleep(0.2)
        log = self.log()
        self.__exit__()
        raise RuntimeError(f"mempo-gym serve did not come up within {self.timeout_s:g} s:\n{log[-3000:]}")

    def log(self) -> str:
        """What the server printed so far."""
        return Path(self._log.name).read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        os.unlink(self._log.name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mempo-gym serve`` / ``python -m mempo_agents.serve``."""
    parser.add_argument("--model", help="packaged checkpoint name or model folder (default: the embedded SmolLM2)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free port; default 8000)")
    parser.add_argument("--name", help="model id served at /v1/models (default: the model's name)")
    parser.add_argument("--max-batch", type=int, default=8, help="most requests generated together (default 8)")
    parser.add_argument("--max-tokens-limit", type=int, default=DEFAULT_MAX_TOKENS_LIMIT)
    parser.add_argument("--api-key-env", help="require 'Authorization: Bearer $VAR' from clients")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--num-threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--prefix-cache-tokens", type=int, default=0,
                        help="reuse the keys and values of up to this many positions of earlier requests' prompts in "
                             "greedy generation (~46 KB each for SmolLM2-135M in float32; default 0: off)")


def register(subparsers: Any) -> None:
    """Adds ``serve`` to the ``mempo-gym`` command (the ``mempo_gym.commands`` entry point)."""
    parser = subparsers.add_parser("serve", help="OpenAI-compatible server over a local model (embedded SmolLM2 "
                                   "or a checkpoint)")
    add_arguments(parser)
    parser.set_defaults(func=run_from_args)


def run_from_args(args: argparse.Namespace) -> int:
    serve(args.model, host=args.host, port=args.port, name=args.name, max_batch=args.max_batch,
          max_tokens_limit=args.max_tokens_limit, api_key_env=args.api_key_env, dtype=args.dtype,
          num_threads=args.num_threads, prefix_cache_tokens=args.prefix_cache_tokens)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mempo_agents.serve", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        return run_from_args(parser.parse_args(argv))
    except KeyboardInterrupt:
        return 0
    except (OSError, ImportError, ValueError, BackendError) as err:
        print(f"mempo-gym serve: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
