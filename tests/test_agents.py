"""Reference agents complete real episodes against MemoryEnv (text mode)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

import mempo_gym  # noqa: F401  (registers the env ids)
from mempo_gym import MemoryEnv, parse_turn
from mempo_gym.agent import Agent
from mempo_gym.core.context import TurnRecord
from mempo_gym.envs.factory import resolve_memory
from mempo_gym.prompts import INSTRUCTIONS
from mempo_gym.records import Question, Task
from mempo_gym.tokenizer import load_hf_tokenizer

from mempo_agents import (
    ClosedBookAgent, ExternalMemoryAgent, FullContextAgent, MEM1Agent, MemPOAgent, OracleAgent,
    RandomAgent, ThinkStateMemory,
)
from mempo_agents.backends import OpenAIBackend
from mempo_agents.registry import (
    make_closed_book_agent, make_closed_book_unknown_agent, make_external_memory_agent, make_mem1_agent, make_mempo_agent,
    make_oracle_agent, make_random_agent,
)
from tests.helpers import DOCS, TASKS, TitleLookupSearch
from tests.openai_wire_server import OpenAIWireServer, Reply


def make_env(agent: Agent, tasks: list[Task] = TASKS, **overrides: Any) -> MemoryEnv:
    kwargs = {**agent.env_kwargs(), **overrides}
    memory = resolve_memory(kwargs.pop("memory", "self"), external_ranker=kwargs.pop("external_ranker", "bm25"))
    return MemoryEnv(tasks, TitleLookupSearch(DOCS), memory=memory, **kwargs)


def run_episode(env: MemoryEnv, agent: Agent, index: int) -> dict[str, Any]:
    obs, info = env.reset(options={"task_index": index})
    assert env.task is not None
    agent.reset(env.task, 0)
    while True:
        obs, _, terminated, truncated, info = env.step(agent.act(obs, info, 0))
        if terminated or truncated:
            return info


@pytest.fixture(scope="module")
def hf_tokenizer() -> Any:
    return load_hf_tokenizer()


def assert_every_token_counted(info: dict[str, Any], hf_tokenizer: Any) -> None:
    """The meter equals an independent re-tokenisation (transformers) of the transcript."""
    recount = 0
    for turn in info["transcript"]:
        n_in = len(hf_tokenizer.encode(turn["context"], add_special_tokens=False))
        n_out = len(hf_tokenizer.encode(turn["output"], add_special_tokens=False))
        assert (n_in, n_out) == (turn["input_tokens"], turn["output_tokens"])
        recount += n_in + n_out
    assert recount == info["metrics"]["tokens_total"] > 0
    assert info["metrics"]["calls"] == len(info["transcript"])


# ---------------------------------------------------------------------------- oracle
@pytest.mark.parametrize("memory", ["self", "full", "window", "external"])
def test_oracle_scores_perfectly_with_every_memory(memory: str, hf_tokenizer: Any) -> None:
    agent = OracleAgent(memory=memory)
    env = make_env(agent)
    for index, task in enumerate(TASKS):
        info = run_episode(env, agent, index)
        metrics = info["metrics"]
        assert metrics["f1"] == 1.0 and metrics["em"] == 1.0, info["transcript"]
        assert metrics["malformed_turns"] == 0
        searched = [parse_turn(t["output"]).query for t in info["transcript"] if t["action"] == "search"]
        assert searched == [t for q in task.questions for t in q.supporting_titles]
        assert_every_token_counted(info, hf_tokenizer)


def test_oracle_memory_is_faithful_and_compact() -> None:
    agent = OracleAgent(memory="self")
    info = run_episode(make_env(agent), agent, 0)  # Tarsa -> Mila Voss -> Kelvar
    mems = [parse_turn(t["output"]).mem for t in info["transcript"]]
    assert mems[0] == "nothing found yet"
    assert mems[1] == "Q1 facts: Tarsa: Tarsa is a film directed by Mila Voss, released in 1987."
    assert mems[2] == "Q1: Kelvar"  # a finished question keeps only its answer
    assert parse_turn(info["transcript"][-1]["output"]).answer == "Kelvar"
    # with self-memory the last context shows only that memory and the newest information
    last_context = info["transcript"][-1]["context"]
    assert last_context.count("<information>Doc") == 1 and "<think>For" not in last_context


def test_oracle_multi_objective_synthwiki() -> None:
    for k in (2, 4):
        agent = make_oracle_agent(memory="self")
        env = gym.make("MemPO-SynthWiki-v0", objectives=k, num_tasks=3, **agent.env_kwargs()).unwrapped
        for index in range(3):
            info = run_episode(env, agent, index)
            assert info["metrics"]["f1"] == 1.0, (k, info["transcript"][-1])
            assert info["num_objectives"] == k and info["metrics"]["malformed_turns"] == 0


def test_oracle_without_supporting_titles_searches_question_once() -> None:
    task = Task(id="open", source="hand", questions=(Question("Who directed Tarsa?", ("Mila Voss",)),))
    agent = OracleAgent()
    info = run_episode(make_env(agent, [task]), agent, 0)
    actions = [t["action"] for t in info["transcript"]]
    assert actions == ["search", "answer"]
    assert parse_turn(info["transcript"][0]["output"]).query == "Who directed Tarsa?"
    assert info["metrics"]["f1"] == 1.0


def test_oracle_needs_reset_and_keeps_slots_apart() -> None:
    agent = OracleAgent()
    with pytest.raises(RuntimeError, match="reset"):
        agent.act({"context": ""}, {}, slot=3)
    agent.reset(TASKS[0], 0)
    agent.reset(TASKS[1], 1)
    first = agent.act({"context": "x"}, {}, 0)
    second = agent.act({"context": "x"}, {}, 1)
    assert "<search>Tarsa</search>" in first and "<search>Tarsa</search>" in second
    assert "<search>Mila Voss</search>" in agent.act({"context": "<information>Doc 1 (Title: Tarsa) T.</information>"}, {}, 0)
    assert "<search>Oskel</search>" in agent.act({"context": "<information>Doc 1 (Title: Tarsa) T.</information>"}, {}, 1)


# ---------------------------------------------------------------------------- controls
def test_closed_book_without_model_answers_unknown_at_once(hf_tokenizer: Any) -> None:
    agent = make_closed_book_unknown_agent()
    assert agent.name == "closed-book-unknown"
    env = make_env(agent)
    for index in range(len(TASKS)):
        info = run_episode(env, agent, index)
        assert [t["action"] for t in info["transcript"]] == ["answer"]
        assert info["metrics"]["searches"] == 0 and info["metrics"]["f1"] == 0.0
        assert_every_token_counted(info, hf_tokenizer)
    assert INSTRUCTIONS["closed-book"] in info["transcript"][0]["context"]
    assert parse_turn(info["transcript"][0]["output"]).answer == "unknown; unknown"


def test_closed_book_with_model_wraps_free_text_as_answer() -> None:
    replies = iter(["Mila Voss\nmore text", "<answer>Kelvar"])  # free text, then a real answer block
    with OpenAIWireServer(lambda req: Reply(text=next(replies))) as server:
        agent = ClosedBookAgent(OpenAIBackend(server.base_url, "m"))
        env = make_env(agent)
        first = run_episode(env, agent, 1)
        second = run_episode(env, agent, 0)
    assert first["transcript"][0]["output"] == "<answer>Mila Voss</answer>"
    assert second["transcript"][0]["output"] == "<answer>Kelvar</answer>"
    assert second["metrics"]["f1"] == 1.0 and first["metrics"]["turns"] == 1
    assert server.requests[0]["body"]["stop"] == ["</answer>"]


def test_random_text_agent_finishes_reproducibly() -> None:
    outputs = []
    for _ in range(2):
        agent = make_random_agent(seed=7)
        env = make_env(agent, max_turns=4)
        infos = [run_episode(env, agent, i % 2) for i in range(4)]
        assert all(i["metrics"]["turns"] >= 1 for i in infos)
        outputs.append([t["output"] for i in infos for t in i["transcript"]])
    assert outputs[0] == outputs[1]
    assert make_random_agent(seed=8).act({}, {}) != RandomAgent(seed=7).act({}, {})


def test_random_token_agent_runs_a_token_mode_episode() -> None:
    agent = RandomAgent(mode="token", seed=1)
    assert agent.env_kwargs()["action_mode"] == "token"
    env = make_env(agent, max_turns=2, max_turn_tokens=8)
    obs, info = env.reset(options={"task_index": 0})
    agent.reset(TASKS[0])
    steps = 0
    while True:
        token = agent.act(obs, info)
        assert isinstance(token, int) and 0 <= token < env.vocab_size
        obs, _, terminated, truncated, info = env.step(token)
        steps += 1
        if terminated or truncated:
            break
    assert steps <= 16 and info["metrics"]["calls"] >= 1


# ---------------------------------------------------------------------------- LLM agents
def scripted_policy(request: dict[str, Any]) -> Reply:
    """A stand-in model server: searches Tarsa first, answers once information is shown.

    Like real servers it omits the matched stop string from the text.
    """
    prompt = request.get("prompt") or request["messages"][-1]["content"]
    if "<information>Doc" in prompt:
        return Reply(text="<mem>Tarsa: directed by Mila Voss</mem>\n<think>Enough.</think>\n<answer>Mila Voss")
    return Reply(text="<mem>nothing yet</mem>\n<think>Look up the film.</think>\n<search>Tarsa")


LLM_AGENTS = [
    (MemPOAgent, "self", "mempo"),
    (FullContextAgent, "full", "react"),
    (ExternalMemoryAgent, "external", "react"),
    (MEM1Agent, "mem1-think-state", "mem1"),
]


@pytest.mark.parametrize("cls,memory,instructions", LLM_AGENTS)
def test_llm_agents_complete_episodes(cls: type, memory: str, instructions: str, hf_tokenizer: Any) -> None:
    with OpenAIWireServer(scripted_policy) as server:
        agent = cls(OpenAIBackend(server.base_url, "m"), max_new_tokens=64, seed=5)
        kwargs = agent.env_kwargs()
        assert kwargs["instructions"] == INSTRUCTIONS[instructions]
        env = make_env(agent)
        info = run_episode(env, agent, 1)  # two questions; the scripted answer covers the first
    assert env.memory.name == memory
    assert [t["action"] for t in info["transcript"]] == ["search", "answer"]
    assert info["transcript"][0]["output"].endswith("<search>Tarsa</search>")
    assert 0.0 < info["metrics"]["f1"] < 1.0  # one of two objectives right
    assert [r["body"]["max_tokens"] for r in server.requests] == [64, 64]
    assert [r["body"]["seed"] for r in server.requests] == [5, 6]
    assert agent.usage(0) == {"calls": 2, "prompt_tokens": 14, "completion_tokens": 6, "total_tokens": 20}
    assert_every_token_counted(info, hf_tokenizer)
    second_context = info["transcript"][1]["context"]
    if memory == "mem1-think-state":
        assert "<think>Look up the film.</think>" in second_context and "<mem>nothing" not in second_context
    if memory == "self":
        assert "<mem>nothing yet</mem>" in second_context and "<think>Look" not in second_context


def test_llm_agent_batches_slots_into_one_backend_call() -> None:
    with OpenAIWireServer(scripted_policy) as server:
        agent = MemPOAgent(OpenAIBackend(server.base_url, "m"))
        envs = [make_env(agent) for _ in range(3)]
        pairs = [env.reset(options={"task_index": i % 2}) for i, env in enumerate(envs)]
        for slot, env in enumerate(envs):
            agent.reset(env.task, slot)
        texts = agent.act_batch([p[0] for p in pairs], [p[1] for p in pairs], [0, 1, 2])
    assert len(server.requests) == 3 and len(texts) == 3
    assert {r["body"]["seed"] for r in server.requests} == {0, 1, 2}  # one call, per-row seeds
    assert all(agent.usage(s)["calls"] == 1 for s in range(3))


def test_malformed_model_output_is_judged_by_env_not_a_crash() -> None:
    replies = iter([
        Reply(text="I think the answer is somewhere"),                    # no tags at all
        Reply(text="<think>x</think><search>Tarsa</sear", finish_reason="length"),  # half stop string
        Reply(text="<mem>a<think>b</think></mem><answer>c"),               # nested tags
    ])
    with OpenAIWireServer(lambda req: next(replies)) as server:
        agent = FullContextAgent(OpenAIBackend(server.base_url, "m"), max_new_tokens=8)
        info = run_episode(make_env(agent, max_turns=3), agent, 0)
    assert info["metrics"]["malformed_turns"] == 3 and info["truncated_reason"] == "max_turns"
    assert info["transcript"][1]["output"].endswith("</sear")  # left as written
    assert "malformed" in info["transcript"][2]["context"]


def test_llm_agent_rejects_token_mode_observation() -> None:
    with OpenAIWireServer() as server:
        agent = MemPOAgent(OpenAIBackend(server.base_url, "m"))
        with pytest.raises(TypeError, match="action_mode='text'"):
            agent.act({"tokens": [1, 2]}, {})


# ---------------------------------------------------------------------------- registry & memory
def test_factories_pick_backend_from_model(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = make_mempo_agent("http://127.0.0.1:1/v1", served_model="served", timeout_s=3.0, temperature=0.5)
    assert isinstance(agent, MemPOAgent) and isinstance(agent.backend, OpenAIBackend)
    assert agent.backend.model == "served" and agent.backend.timeout_s == 3.0 and agent.temperature == 0.5
    ext = make_external_memory_agent(backend=agent.backend, ranker="embedding")
    assert ext.env_kwargs()["external_ranker"] == "embedding"
    assert isinstance(make_mem1_agent(backend=agent.backend).env_kwargs()["memory"], ThinkStateMemory)
    with pytest.raises(TypeError, match="backend options"):
        make_mempo_agent(backend=agent.backend, dtype="bfloat16")
    with pytest.raises(ValueError, match="ranker"):
        make_external_memory_agent(backend=agent.backend, ranker="tfidf")
    with pytest.raises(Exception, match="config.json"):
        make_mempo_agent("/nonexistent/model/folder")
    assert make_closed_book_unknown_agent().backend is None
    assert isinstance(make_random_agent(mode="token"), RandomAgent)
    assert "openai" == agent.describe()["backend"]["backend"]


def test_think_state_memory_keeps_latest_think() -> None:
    turns = [
        TurnRecord(0, parse_turn("<think>state one</think><search>a</search>"), "info a"),
        TurnRecord(1, parse_turn("<search>b</search>"), "info b"),
    ]
    built = ThinkStateMemory().build("P\n", turns)
    assert built == "P\n<think>state one</think>\n<information>info b</information>\n"
    assert ThinkStateMemory().build("P\n", []) == "P\n"
