"""OpenAIBackend against a real HTTP server on 127.0.0.1 speaking the OpenAI wire format."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from mempo_agents.backends import (
    BackendError, BackendHTTPError, BackendResponseError, BackendTimeoutError, OpenAIBackend,
)
from tests.openai_wire_server import OpenAIWireServer, Reply

SECRET = "sk-test-DO-NOT-LEAK-4242"


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MEMPO_TEST_KEY", SECRET)
    return SECRET


def backend(server: OpenAIWireServer, **options) -> OpenAIBackend:
    options.setdefault("api_key_env", "MEMPO_TEST_KEY")
    options.setdefault("backoff_s", 0.01)
    options.setdefault("timeout_s", 5.0)
    return OpenAIBackend(server.base_url, "test-model", **options)


def test_completions_request_and_stop_restored(api_key: str) -> None:
    with OpenAIWireServer(lambda req: Reply(text="<think>x</think><search>Tarsa")) as server:
        gens = backend(server).generate(["P1"], 16, temperature=0.7, top_p=0.9, seed=3)
    assert gens[0].text == "<think>x</think><search>Tarsa</search>"
    assert gens[0].finish_reason == "stop"
    assert gens[0].usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    (req,) = server.requests
    assert req["path"] == "/v1/completions"
    assert req["headers"]["Authorization"] == f"Bearer {SECRET}"
    body = req["body"]
    assert body["prompt"] == "P1" and body["model"] == "test-model"
    assert body["max_tokens"] == 16 and body["stop"] == ["</search>", "</answer>"]
    assert body["seed"] == 3 and body["temperature"] == 0.7 and body["top_p"] == 0.9


def test_chat_endpoint_and_vllm_stop_reason(api_key: str) -> None:
    with OpenAIWireServer(lambda req: Reply(text="<answer>Kelvar", stop_reason="</answer>")) as server:
        gens = backend(server, endpoint="chat").generate(["the context"], 8)
    assert gens[0].text == "<answer>Kelvar</answer>"
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["messages"] == [{"role": "user", "content": "the context"}]


def test_stop_not_invented_when_cut_by_length_and_text_cut_after_stop(api_key: str) -> None:
    script = [Reply(text="<search>half", finish_reason="length"), Reply(text="<answer>a</answer> tail")]
    with OpenAIWireServer() as server:
        server.script.extend(script)
        b = backend(server, concurrency=1)
        first, second = b.generate(["a", "b"], 4)
    assert first.text == "<search>half" and first.finish_reason == "length"
    assert second.text == "<answer>a</answer>"


def test_batch_is_concurrent_and_ordered(api_key: str) -> None:
    def respond(req: dict) -> Reply:
        return Reply(text=f"<answer>{req['prompt']}</answer>", delay_s=0.3)

    with OpenAIWireServer(respond) as server:
        gens = backend(server, concurrency=4).generate([f"p{i}" for i in range(6)], 8, seed=10)
    assert [g.text for g in gens] == [f"<answer>p{i}</answer>" for i in range(6)]
    assert server.max_in_flight >= 2
    assert sorted(r["body"]["seed"] for r in server.requests) == list(range(10, 16))


def test_429_retry_after_honoured_then_success(api_key: str) -> None:
    with OpenAIWireServer(lambda req: Reply(text="<answer>x</answer>")) as server:
        server.script.append(Reply(status=429, body=b'{"error": "slow down"}', headers={"Retry-After": "0.4"}))
        start = time.perf_counter()
        gens = backend(server, backoff_s=0.0).generate(["p"], 8)
        elapsed = time.perf_counter() - start
    assert gens[0].text == "<answer>x</answer>"
    assert len(server.requests) == 2
    assert elapsed >= 0.4  # waited as the server asked, not the 0 s own backoff


def test_500s_retried_then_give_up(api_key: str) -> None:
    with OpenAIWireServer(lambda req: Reply(status=500, body=b"boom")) as server:
        with pytest.raises(BackendHTTPError) as err:
            backend(server, max_retries=2).generate(["p"], 8)
    assert err.value.status == 500 and "3 attempts" in str(err.value)
    assert len(server.requests) == 3
    with OpenAIWireServer(lambda req: Reply(text="<answer>ok</answer>")) as server:
        server.script.extend([Reply(status=503, body=b"busy"), Reply(status=502, body=b"bad gw")])
        assert backend(server, max_retries=2).generate(["p"], 8)[0].text == "<answer>ok</answer>"
    assert len(server.requests) == 3


def test_timeout_retried_then_raises(api_key: str) -> None:
    with OpenAIWireServer(lambda req: Reply(text="late", delay_s=1.5)) as server:
        with pytest.raises(BackendTimeoutError, match="timed out"):
            backend(server, timeout_s=0.3, max_retries=1).generate(["p"], 8)
        assert len(server.requests) == 2


def test_malformed_json_and_missing_fields_raise_clearly(api_key: str) -> None:
    with OpenAIWireServer(lambda req: Reply(body=b"{not json")) as server:
        with pytest.raises(BackendResponseError, match="malformed JSON"):
            backend(server).generate(["p"], 8)
        assert len(server.requests) == 1  # not retried
    with OpenAIWireServer(lambda req: Reply(body=json.dumps({"choices": []}).encode())) as server:
        with pytest.raises(BackendResponseError, match="choices"):
            backend(server).generate(["p"], 8)


def test_4xx_not_retried_and_key_redacted_everywhere(api_key: str, caplog: pytest.LogCaptureFixture) -> None:
    def echo_auth_401(req: dict) -> Reply:  # a server that echoes the key back in its error
        return Reply(status=401, body=json.dumps({"error": f"bad key Bearer {SECRET}"}).encode())

    caplog.set_level(logging.DEBUG)
    with OpenAIWireServer(echo_auth_401) as server:
        b = backend(server)
        with pytest.raises(BackendHTTPError) as err:
            b.generate(["p"], 8)
    assert err.value.status == 401 and "401" in str(err.value)
    assert len(server.requests) == 1
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
    with OpenAIWireServer(lambda req: Reply(status=500, body=f"oops {SECRET}".encode())) as server:
        with pytest.raises(BackendHTTPError) as err500:
            backend(server, max_retries=1).generate(["p"], 8)
    texts = [str(err.value), str(err500.value), repr(b), json.dumps(b.describe()), caplog.text, repr(vars(b))]
    assert caplog.text  # the retry was logged ...
    for text in texts:
        assert SECRET not in text  # ... without the key


def test_no_authorization_header_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMPO_TEST_KEY", raising=False)
    with OpenAIWireServer(lambda req: Reply(text="<answer>a</answer>")) as server:
        backend(server).generate(["p"], 8)
    assert "Authorization" not in server.requests[0]["headers"]


def test_settings_from_environment_and_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("MEMPO_GYM_MODEL", raising=False)
    with pytest.raises(BackendError, match="OPENAI_BASE_URL"):
        OpenAIBackend()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(BackendError, match="MEMPO_GYM_MODEL"):
        OpenAIBackend()
    monkeypatch.setenv("MEMPO_GYM_MODEL", "served")
    b = OpenAIBackend()
    assert (b.base_url, b.model) == ("http://127.0.0.1:9/v1", "served")
    with pytest.raises(BackendError, match="http"):
        OpenAIBackend("127.0.0.1:8000", "m")
    with pytest.raises(ValueError, match="endpoint"):
        OpenAIBackend("http://x/v1", "m", endpoint="embeddings")
    with pytest.raises(ValueError, match="max_new_tokens"):
        b.generate(["p"], 0)
    with pytest.raises(TypeError, match="list of strings"):
        b.generate("p", 4)  # type: ignore[arg-type]


def test_connection_refused_is_retried_then_reported() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff_s=0.01)
    with pytest.raises(BackendHTTPError, match="connection failed"):
        b.generate(["p"], 4)


def test_threads_do_not_leak() -> None:
    before = threading.active_count()
    with OpenAIWireServer(lambda req: Reply(text="<answer>a</answer>")) as server:
        OpenAIBackend(server.base_url, "m").generate(["a", "b", "c"], 4)
    time.sleep(0.1)
    assert threading.active_count() <= before + 1
