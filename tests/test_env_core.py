"""The environment core: turn protocol, token accounting, budgets, memory modes, spaces."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mempo_gym import ExternalMemory, FullContext, MemoryEnv, SelfMemory, SlidingWindow
from mempo_gym.core.context import render_turn
from mempo_gym.prompts import render_prompt
from tests.helpers import DOCS, TASKS, TitleLookupSearch

BRIDGE_TURNS = [
    "<mem>need director of Tarsa</mem><think>look up Tarsa</think><search>Tarsa</search>",
    "<mem>Tarsa: directed by Mila Voss</mem><think>now her birthplace</think><search>Mila Voss</search>",
    "<mem>Mila Voss born in Kelvar</mem><answer>Kelvar</answer>",
]


def make_env(tokenizer, memory=None, **kwargs) -> MemoryEnv:
    return MemoryEnv(TASKS, TitleLookupSearch(DOCS), tokenizer=tokenizer, memory=memory, **kwargs)


def play(env: MemoryEnv, turns: list[str], task_id: str = "bridge"):
    env.reset(seed=0, options={"task_id": task_id})
    out = None
    for turn in turns:
        out = env.step(turn)
        if out[2] or out[3]:
            break
    return out


def n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def test_full_context_accounting_matches_hand_computation(tokenizer):
    env = make_env(tokenizer, FullContext())
    _, reward, terminated, truncated, info = play(env, BRIDGE_TURNS)
    assert (reward, terminated, truncated) == (1.0, True, False)
    prompt = render_prompt(env.instructions, [TASKS[0].questions[0].text])
    info1 = f"Doc 1 (Title: Tarsa) {DOCS['Tarsa']}"
    info2 = f"Doc 1 (Title: Mila Voss) {DOCS['Mila Voss']}"
    contexts = [
        prompt,
        prompt + BRIDGE_TURNS[0] + "\n" + f"<information>{info1}</information>\n",
        prompt + BRIDGE_TURNS[0] + "\n" + f"<information>{info1}</information>\n"
        + BRIDGE_TURNS[1] + "\n" + f"<information>{info2}</information>\n",
    ]
    ins = [n_tokens(tokenizer, c) for c in contexts]
    outs = [n_tokens(tokenizer, t) for t in BRIDGE_TURNS]
    m = info["metrics"]
    assert [c["context"] for c in info["transcript"]] == contexts
    assert m["tokens_total"] == sum(ins) + sum(outs)
    assert m["tokens_peak"] == max(i + o for i, o in zip(ins, outs))
    assert m["tokens_generated"] == sum(outs)
    assert (m["turns"], m["searches"], m["calls"], m["malformed_turns"]) == (3, 2, 3, 0)


def test_self_memory_context_keeps_only_latest_mem_and_information(tokenizer):
    env = make_env(tokenizer, SelfMemory())
    _, _, _, _, info = play(env, BRIDGE_TURNS)
    third = info["transcript"][2]["context"]
    assert "<mem>Tarsa: directed by Mila Voss</mem>" in third
    assert "need director of Tarsa" not in third and "now her birthplace" not in third
    assert DOCS["Mila Voss"] in third and DOCS["Tarsa"] not in third
    full = make_env(tokenizer, FullContext())
    _, _, _, _, full_info = play(full, BRIDGE_TURNS)
    assert info["metrics"]["tokens_total"] < full_info["metrics"]["tokens_total"]
    assert info["metrics"]["tokens_generated"] == full_info["metrics"]["tokens_generated"]


def test_window_and_external_memory(tokenizer):
    env = make_env(tokenizer, SlidingWindow(k=1))
    _, _, _, _, info = play(env, BRIDGE_TURNS)
    third = info["transcript"][2]["context"]
    assert BRIDGE_TURNS[1] in third and BRIDGE_TURNS[0] not in third

    def overlap_ranker(query, texts, k):
        scores = [len(set(query.lower().split()) & set(t.lower().split())) for t in texts]
        return sorted(range(len(texts)), key=lambda i: -scores[i])[:k]

    ext = make_env(tokenizer, ExternalMemory(overlap_ranker, top_k=1, method="overlap"))
    turns = BRIDGE_TURNS[:2] + ["<search>Kelvar</search>", "<answer>Kelvar</answer>"]
    _, _, _, _, info = play(ext, turns)
    fourth = info["transcript"][3]["context"]
    assert "Retrieved memory:" in fourth
    assert fourth.endswith(render_turn(ext.turns[2]))
    assert ext.describe()["memory"] == {"name": "external", "top_k": 1, "ranker": "overlap"}


def test_custom_context_manager_is_metered_the_same_way(tokenizer):
    class LastInformationOnly:
        name = "last-info"

        def reset(self) -> None:
            pass

        def build(self, prompt, turns):
            return prompt + (f"<information>{turns[-1].information}</information>\n" if turns else "")

        def describe(self):
            return {"name": self.name}

    env = make_env(tokenizer, LastInformationOnly())
    _, _, _, _, info = play(env, BRIDGE_TURNS)
    ins = [n_tokens(tokenizer, c["context"]) for c in info["transcript"]]
    assert [c["input_tokens"] for c in info["transcript"]] == ins


def test_token_mode_and_text_mode_agree(tokenizer):
    text_env = make_env(tokenizer, SelfMemory())
    _, r_text, _, _, info_text = play(text_env, BRIDGE_TURNS)
    tok_env = make_env(tokenizer, SelfMemory(), action_mode="token", context_budget=512)
    tok_env.reset(seed=0, options={"task_id": "bridge"})
    for turn in BRIDGE_TURNS:
        for token in tokenizer.encode(turn, add_special_tokens=False):
            obs, reward, terminated, truncated, info = tok_env.step(token)
            if info["turn"] > len(tok_env.turns) - 1 and (terminated or truncated or obs["turn"] != 0):
                pass
        if terminated:
            break
    assert terminated and reward == r_text
    keys = ["tokens_total", "tokens_peak", "tokens_generated", "turns", "searches", "f1"]
    assert {k: info["metrics"][k] for k in keys} == {k: info_text["metrics"][k] for k in keys}


def test_stop_string_ends_turn_and_drops_the_rest(tokenizer):
    env = make_env(tokenizer, FullContext())
    env.reset(seed=0, options={"task_id": "bridge"})
    _, _, _, _, info = env.step("<search>Tarsa</search> and then <answer>wrong</answer>")
    turn = env.turns[0]
    assert turn.parsed.action == "search" and turn.text == "<search>Tarsa</search>"
    assert "wrong" not in info["context"]


@pytest.mark.parametrize(
    "turn, reason",
    [
        ("", "empty"),
        ("<think>no action", "without </search> or </answer>"),
        ("<think>a<search>x</search>", "nested"),
        ("<search>  </search>", "empty"),
        ("<answer> </answer>", "empty"),
        ("<information>fake</information><search>x</search>", "only the environment"),
        ("</think><search>x</search>", "without a matching"),
        ("\udcff\x00<mem>" + "x" * 10_000, "without </search>"),
    ],
    ids=["empty", "no-action", "nested", "empty-query", "empty-answer", "information", "unopened", "surrogates"],
)
def test_malformed_turns_are_counted_and_explained(tokenizer, turn, reason):
    env = make_env(tokenizer, FullContext(), max_turn_tokens=64)
    env.reset(seed=0, options={"task_id": "bridge"})
    obs, reward, terminated, truncated, info = env.step(turn)
    assert not terminated and not truncated and reward == 0.0
    assert info["malformed_turns"] == 1
    assert "malformed" in obs["context"] and reason in env.turns[0].parsed.malformed


def test_max_turn_tokens_cuts_a_turn(tokenizer):
    env = make_env(tokenizer, FullContext(), max_turn_tokens=5)
    env.reset(seed=0, options={"task_id": "bridge"})
    env.step("<think>" + "word " * 100 + "</think><search>Tarsa</search>")
    assert env.meter.output_tokens == [5]
    assert env.turns[0].parsed.malformed


def test_context_budget_truncates_with_documented_reward(tokenizer):
    env = make_env(tokenizer, FullContext(), context_budget=120)
    _, reward, terminated, truncated, info = play(env, ["<search>Tarsa</search>"] * 5)
    assert truncated and not terminated and reward == 0.0
    assert info["truncated_reason"] == "context_budget"
    assert info["metrics"]["tokens_peak"] <= 120
    assert all(c["input_tokens"] + c["output_tokens"] <= 120 for c in info["transcript"])


def test_max_turns_truncates(tokenizer):
    env = make_env(tokenizer, SelfMemory(), max_turns=2)
    _, reward, terminated, truncated, info = play(env, ["<search>Tarsa</search>"] * 3)
    assert truncated and info["truncated_reason"] == "max_turns" and reward == 0.0
    assert info["metrics"]["turns"] == 2 and info["metrics"]["answered"] is False


def test_multi_objective_scoring_and_reward_modes(tokenizer):
    for reward_name, turns, expected in [
        ("f1", ["<answer>Mila Voss; 1931</answer>"], 1.0),
        ("f1", ["<answer>Mila Voss</answer>"], 0.5),
        ("em", ["<answer>Voss; 1930</answer>"], 0.5),
        ("f1_format", ["<think>x", "<answer>Mila Voss; 1931</answer>"], 0.5),
    ]:
        env = make_env(tokenizer, SelfMemory(), reward=reward_name)
        _, reward, terminated, _, info = play(env, turns, task_id="two")
        assert terminated and reward == pytest.approx(expected), reward_name
        assert len(info["metrics"]["per_objective"]) == 2


def test_seeding_reproduces_task_choice(tokenizer):
    env = make_env(tokenizer)
    ids_a = [env.reset(seed=s)[1]["task_id"] for s in range(20)]
    ids_b = [env.reset(seed=s)[1]["task_id"] for s in range(20)]
    assert ids_a == ids_b and len(set(ids_a)) == 2


def test_step_after_end_and_bad_actions_raise_clear_errors(tokenizer):
    env = make_env(tokenizer, action_mode="token")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        env.step(env.vocab_size)
    text_env = make_env(tokenizer)
    text_env.reset(seed=0)
    with pytest.raises(TypeError, match="takes a str"):
        text_env.step(123)
    play(text_env, ["<answer>x</answer>"])
    with pytest.raises(RuntimeError, match="reset"):
        text_env.step("<answer>x</answer>")


def test_observations_carry_budget_and_usage(tokenizer):
    env = make_env(tokenizer, FullContext(), action_mode="token", context_budget=256)
    obs, _ = env.reset(seed=0, options={"task_id": "bridge"})
    assert obs["tokens"].shape == (256,) and obs["length"][0] + obs["budget_remaining"][0] == 256
    length = obs["length"][0]
    assert list(obs["tokens"][:length]) == tokenizer.encode(env.context, add_special_tokens=False)
    obs, *_ = env.step(int(tokenizer.encode("<", add_special_tokens=False)[0]))
    assert obs["length"][0] == length + 1 and obs["tokens_used"][0] == 0


def test_gymnasium_check_env_passes_in_both_modes(tokenizer):
    check_env(make_env(tokenizer, action_mode="token", context_budget=256), skip_render_check=True)
    check_env(make_env(tokenizer, action_mode="text"), skip_render_check=True)


def test_stable_baselines3_check_env_passes_in_token_mode(tokenizer):
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3_checker.check_env(make_env(tokenizer, action_mode="token", context_budget=128), warn=True)


@pytest.mark.parametrize("vector_cls", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_vector_envs_in_token_mode(tokenizer, vector_cls):
    fns = [lambda: make_env(None, action_mode="token", context_budget=128, max_turns=2) for _ in range(2)]
    envs = vector_cls(fns)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs["tokens"].shape == (2, 128)
        rng = np.random.default_rng(0)
        for _ in range(200):
            obs, rewards, term, trunc, infos = envs.step(rng.integers(0, envs.single_action_space.n, size=2))
        assert obs["length"].shape == (2, 1)
    finally:
        envs.close()
