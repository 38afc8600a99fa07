"""Factories behind the ``mempo_gym.agents`` entry points (declared in ``pyproject.toml``).

``model=`` chooses the backend of LLM agents:

* ``None`` — the agent's default: for ``mempo`` and ``full-context`` the LoRA adapter trained
  here for that memory mode over the embedded SmolLM2 (:data:`DEFAULT_MODELS`, shipped in
  ``agents/checkpoints/``); for the other LLM agents the embedded model itself;
* ``"smollm2-135m-instruct"`` — the embedded SmolLM2-135M-Instruct, untrained (transformers);
* a packaged checkpoint name, a local checkpoint folder or a LoRA adapter folder — that model;
* an ``http(s)://`` URL — an OpenAI-compatible server; the served model's name comes from
  ``served_model=`` or ``$MEMPO_GYM_MODEL``.

``backend=`` passes a ready :class:`~mempo_agents.backends.base.Backend` instead (share one
loaded model between agents). Other keyword options go to the agent (``temperature``,
``top_p``, ``max_new_tokens``, ``seed``, ``ranker`` ...) or, when the agent does not take
them, to the backend (``dtype``, ``chat_template``, ``endpoint``, ``api_key_env``,
``timeout_s``, ``num_threads`` ...).

>>> make_oracle_agent().name
'oracle'
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mempo_gym.agent import Agent

from mempo_agents.backends.base import Backend

_AGENT_OPTIONS = {"temperature", "top_p", "max_new_tokens", "seed", "stop", "instructions", "ranker", "repeat_temperature"}
_URL = re.compile(r"^https?://")


CHECKPOINTS_DIR = Path(__file__).resolve().parent / "checkpoints"
CHECKPOINT_ENV_FILE = "mempo_env.json"
AGENT_SETTINGS_FILE = "mempo_agent.json"  # backend settings a checkpoint was trained with
DEFAULT_MODELS = {
    "mempo": "mempo-smollm2-135m-lora",
    "full-context": "full-context-smollm2-135m-lora",
}


def resolve_model(model: Any) -> Any:
    """A packaged checkpoint name (a folder of ``agents/checkpoints/``) becomes its path.

    >>> resolve_model("http://localhost:8000/v1")
    'http://localhost:8000/v1'
    """
    if isinstance(model, str) and not _URL.match(model) and "/" not in model:
        folder = CHECKPOINTS_DIR / model
        if (folder / "config.json").is_file() or (folder / "adapter_config.json").is_file():
            return str(folder)
    return model


def _checkpoint_json(model: Any, filename: str) -> tuple[Path, Any] | None:
    """``(path, parsed JSON)`` of ``filename`` in a local checkpoint folder, or ``None``."""
    if not isinstance(model, (str, Path)) or _URL.match(str(model)):
        return None
    path = Path(model) / filename
    if not path.is_file():
        return None
    try:
        return path, json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or delete it") from None


def checkpoint_backend_options(model: Any) -> dict[str, Any]:
    """Backend settings a local checkpoint was trained with (``mempo_agent.json`` ``backend``),
    e.g. ``{"chat_template": false}`` for a model trained on the env's raw contexts."""
    found = _checkpoint_json(model, AGENT_SETTINGS_FILE)
    if found is None:
        return {}
    path, settings = found
    backend = settings.get("backend", {}) if isinstance(settings, dict) else None
    if not isinstance(backend, dict):
        raise ValueError(f"{path} must hold a JSON object with a 'backend' object")
    return dict(backend)


def checkpoint_env_kwargs(model: Any) -> dict[str, Any]:
    """Env settings a local checkpoint was trained with (its ``mempo_env.json``), paths made absolute.

    A checkpoint trained on a particular tokenizer or task distribution records them so
    agents built on it ask the env for the same.
    """
    found = _checkpoint_json(model, CHECKPOINT_ENV_FILE)
    if found is None:
        return {}
    path, settings = found
    if not isinstance(settings, dict):
        raise ValueError(f"{path} must hold a JSON object of gym.make keyword arguments")
    if isinstance(settings.get("tokenizer"), str):
        settings["tokenizer"] = str((Path(model) / settings["tokenizer"]).resolve())
    return settings


def make_backend(model: Any = None, **backend_options: Any) -> Backend:
    """A backend for ``model`` (see module doc)."""
    model = resolve_model(model)
    if isinstance(model, str) and _URL.match(model):
        from mempo_agents.backends.openai_backend import OpenAIBackend

        served = backend_options.pop("served_model", None)
        return OpenAIBackend(base_url=model, model=served, **backend_options)
    from mempo_agents.backends.transformers_backend import TransformersBackend

    return TransformersBackend(model, **{**checkpoint_backend_options(model), **backend_options})


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    agent = {k: v for k, v in options.items() if k in _AGENT_OPTIONS}
    backend = {k: v for k, v in options.items() if k not in _AGENT_OPTIONS}
    return agent, backend


def _llm_agent(cls: type, model: Any, backend: Backend | None, options: dict[str, Any]) -> Agent:
    if model is None and backend is None and cls.name in DEFAULT_MODELS:
        model = DEFAULT_MODELS[cls.name]
    agent_options, backend_options = _split(options)
    if backend is None:
        backend = make_backend(model, **backend_options)
    elif backend_options:
        raise TypeError(f"backend options {sorted(backend_options)} cannot be combined with backend=...")
    return cls(backend, checkpoint_env=checkpoint_env_kwargs(resolve_model(model)), **agent_options)


def make_mempo_agent(model: Any = None, *, backend: Backend | None = None, **options: Any) -> Agent:
    """MemPO agent (``<mem>`` self-memory)."""
    from mempo_agents.llm_agents import MemPOAgent

    return _llm_agent(MemPOAgent, model, backend, options)


def make_full_context_agent(model: Any = None, *, backend: Backend | None = None, **options: Any) -> Agent:
    """ReAct / Search-R1 full-context agent."""
    from mempo_agents.llm_agents import FullContextAgent

    return _llm_agent(FullContextAgent, model, backend, options)


def make_external_memory_agent(model: Any = None, *, backend: Backend | None = None, **options: Any) -> Agent:
    """External-memory agent (``ranker="bm25"`` or ``"embedding"``)."""
    from mempo_agents.llm_agents import ExternalMemoryAgent

    return _llm_agent(ExternalMemoryAgent, model, backend, options)


def make_mem1_agent(model: Any = None, *, backend: Backend | None = None, **options: Any) -> Agent:
    """MEM1 agent (latest ``<think>`` is the state)."""
    from mempo_agents.llm_agents import MEM1Agent

    return _llm_agent(MEM1Agent, model, backend, options)


def make_oracle_agent(model: Any = None, **options: Any) -> Agent:
    """Oracle control (no model; ``model`` is accepted and ignored so every factory takes it)."""
    from mempo_agents.oracle import OracleAgent

    return OracleAgent(**options)


def make_closed_book_agent(model: Any = None, *, backend: Backend | None = None, **options: Any) -> Agent:
    """Closed-book control: the model answers without searching (the contamination check).

    ``model=None`` asks the embedded SmolLM2; ``closed-book-unknown`` is the model-free variant.
    """
    from mempo_agents.closed_book import ClosedBookAgent

    agent_options, backend_options = _split(options)
    if backend is None:
        backend = make_backend(model, **backend_options)
    elif backend_options:
        raise TypeError(f"backend options {sorted(backend_options)} cannot be combined with backend=...")
    return ClosedBookAgent(backend, **agent_options)


def make_closed_book_unknown_agent(model: Any = None, **options: Any) -> Agent:
    """Model-free closed-book floor: answers ``unknown`` to every objective (``model`` is ignored)."""
    from mempo_agents.closed_book import ClosedBookAgent

    return ClosedBookAgent(None, **options)


def make_random_agent(model: Any = None, **options: Any) -> Agent:
    """Random control (``mode="text"`` or ``"token"``; ``model`` is ignored)."""
    from mempo_agents.random_agent import RandomAgent

    return RandomAgent(**options)
