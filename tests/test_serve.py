"""``mempo-gym serve``: a real OpenAI-compatible server process, used through real clients."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest

from mempo_agents.backends import BackendError, BackendHTTPError, OpenAIBackend
from mempo_agents.backends.embedded_model import EMBEDDED_MODEL_NAME
from tests.served_model import ServedModel

pytest.importorskip("fastapi", reason="mempo-gym serve needs the 'serve' extra (fastapi, uvicorn)")


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_models_and_completions_with_the_name_discovered(served_smollm2: ServedModel) -> None:
    with urllib.request.urlopen(served_smollm2.base_url + "/models", timeout=10) as response:
        listed = json.loads(response.read())
    assert [m["id"] for m in listed["data"]] == [EMBEDDED_MODEL_NAME]
    backend = OpenAIBackend(served_smollm2.base_url)  # no model name: taken from /v1/models
    assert backend.model == EMBEDDED_MODEL_NAME
    (gen,) = backend.generate(["The capital of France is"], 6, stop=["."])
    assert "Paris" in gen.text
    assert gen.text.endswith(".")  # the server removed the stop string; the backend put it back
    assert gen.usage["prompt_tokens"] == 5 and 1 <= gen.usage["completion_tokens"] <= 6


def test_completions_wire_format_greedy_is_deterministic(served_smollm2: ServedModel) -> None:
    body = {"model": EMBEDDED_MODEL_NAME, "prompt": ["One, two, three,", "Hello"], "max_tokens": 5,
            "temperature": 0, "stop": [" four"]}
    status, first = post(served_smollm2.base_url + "/completions", body)
    assert status == 200 and first["object"] == "text_completion"
    assert [c["index"] for c in first["choices"]] == [0, 1]
    assert first["choices"][0]["finish_reason"] in ("stop", "length")
    assert first["usage"]["total_tokens"] == first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"]
    _, again = post(served_smollm2.base_url + "/completions", body)
    assert [c["text"] for c in again["choices"]] == [c["text"] for c in first["choices"]]
    status, kept = post(served_smollm2.base_url + "/completions",
                        {"prompt": "The capital of France is", "max_tokens": 6, "temperature": 0, "stop": ["."],
                         "include_stop_str_in_output": True})
    assert kept["choices"][0]["text"].endswith(".") and kept["choices"][0]["stop_reason"] == "."


def test_chat_endpoint_applies_the_chat_template(served_smollm2: ServedModel) -> None:
    backend = OpenAIBackend(served_smollm2.base_url, endpoint="chat")
    (gen,) = backend.generate(["Say hello."], 8)
    assert gen.text.strip()
    assert gen.usage["prompt_tokens"] > 10  # the template's system prompt and role markers


def test_requests_the_server_rejects_say_why(served_smollm2: ServedModel) -> None:
    url = served_smollm2.base_url
    for body, status, words in [
        ({"model": "gpt-9", "prompt": "x"}, 404, "does not exist"),
        ({"prompt": "x", "n": 2}, 400, "'n' must be 1"),
        ({"prompt": "x", "stream": True}, 400, "not supported"),
        ({"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ({"prompt": [1, 2]}, 400, "prompt"),
        ({"messages": "hi"}, 400, "messages"),
    ]:
        path = "/chat/completions" if "messages" in body else "/completions"
        got, reply = post(url + path, body)
        assert got == status and words in reply["error"]["message"], (body, reply)
    with pytest.raises(BackendHTTPError, match="404.*--served-model") as err:
        OpenAIBackend(url, "gpt-9").generate(["x"], 4)
    assert err.value.status == 404


def test_concurrent_clients_all_answered_in_order(served_smollm2: ServedModel) -> None:
    backend = OpenAIBackend(served_smollm2.base_url, concurrency=6)
    prompts = [f"Count: {i}, {i + 1}," for i in range(6)]
    gens = backend.generate(prompts, 3)
    singles = [backend.generate([p], 3)[0].text for p in prompts[:2]]
    assert len(gens) == 6 and all(g.text for g in gens)
    assert [g.text for g in gens[:2]] == singles  # batched on the server, same greedy text


@pytest.mark.slow  # starts a second server process
def test_api_key_required_when_configured(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from tests.helpers import tiny_llama

    env = {"MEMPO_TEST_SERVE_KEY": "sk-serve-test-1"}
    folder = tiny_llama(tmp_path / "tiny-llama")
    with ServedModel(["--model", folder, "--api-key-env", "MEMPO_TEST_SERVE_KEY"], env=env) as server:
        monkeypatch.setenv("MEMPO_TEST_SERVE_KEY", "sk-serve-test-1")
        ok = OpenAIBackend(server.base_url, api_key_env="MEMPO_TEST_SERVE_KEY")
        assert ok.model == "tiny-llama"  # a model folder is served under its name
        assert ok.generate(["question :"], 3)[0].finish_reason in ("stop", "length")
        monkeypatch.setenv("MEMPO_TEST_SERVE_KEY", "wrong")
        with pytest.raises(BackendHTTPError, match="401.*MEMPO_TEST_SERVE_KEY") as err:
            ok.generate(["question :"], 3)
        assert err.value.status == 401
        with pytest.raises(BackendError, match="--served-model"):  # /v1/models refused too
            OpenAIBackend(server.base_url, api_key_env="MEMPO_TEST_SERVE_KEY")


def test_generation_queue_batches_equal_settings_and_matches_unbatched() -> None:
    from mempo_agents.backends.transformers_backend import TransformersBackend
    from mempo_agents.registry import resolve_model
    from mempo_agents.serve import GenerationQueue, Settings

    backend = TransformersBackend(resolve_model("smollm2-135m-instruct"), chat_template=False)
    greedy = Settings(max_tokens=4, stop=("</search>",), temperature=0.0, top_p=1.0, seed=None)
    other = Settings(max_tokens=2, stop=(), temperature=0.0, top_p=1.0, seed=None)
    prompts = ["The capital of France is", "One, two,", "Hello, my name", "Question:"]
    expected = [backend.generate([p], 4, stop=["</search>"])[0].text for p in prompts]
    queue = GenerationQueue(backend, max_batch=8, wait_s=0.2)
    start = threading.Barrier(len(prompts) + 1)
    futures: list[Any] = [None] * (len(prompts) + 1)

    def submit(i: int) -> None:
        start.wait()
        futures[i] = queue.submit(prompts[i], greedy) if i < len(prompts) else queue.submit("Question:", other)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(prompts) + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    texts = [f.result(timeout=60).text for f in futures[: len(prompts)]]
    futures[-1].result(timeout=60)
    queue.close()
    assert texts == expected
    assert sorted(queue.batches) == [1, len(prompts)]  # equal settings in one batch, the other alone


def test_served_with_prefix_cache_answers_as_without(tmp_path) -> None:
    """``serve --prefix-cache-tokens``: a growing prompt gets the text an uncached local backend writes."""
    from mempo_agents.backends.transformers_backend import TransformersBackend
    from tests.helpers import tiny_llama

    folder = tiny_llama(tmp_path / "tiny-llama")
    local = TransformersBackend(folder, chat_template=False)
    first = "question : who"
    with ServedModel(["--model", folder, "--prefix-cache-tokens", "1024"]) as server:
        client = OpenAIBackend(server.base_url)
        answer = client.generate([first], 6, stop=[])[0].text
        second = first + answer + " answer :"
        again = client.generate([second], 6, stop=[])[0].text
    assert answer == local.generate([first], 6, stop=[])[0].text
    assert again == local.generate([second], 6, stop=[])[0].text
