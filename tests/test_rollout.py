"""The shared batched episode loop (mempo_gym.rollout)."""

from __future__ import annotations

import pytest

from mempo_gym import FullContext, MemoryEnv, SelfMemory
from mempo_gym.rollout import Completion, Job, play_batch, rollout
from tests.helpers import DOCS, TASKS, TitleLookupSearch

SCRIPT = {
    "bridge": ["<mem>Tarsa?</mem><search>Tarsa</search>", "<mem>Mila Voss</mem><search>Mila Voss</search>",
               "<answer>Kelvar</answer>"],
    "two": ["<search>Tarsa</search>", "<search>Oskel</search>", "<answer>Mila Voss; 1931</answer>"],
}


def make_env(tokenizer, memory=None, **kw) -> MemoryEnv:
    return MemoryEnv(TASKS, TitleLookupSearch(DOCS), tokenizer=tokenizer, memory=memory or SelfMemory(), **kw)


class ScriptPolicy:
    """Plays SCRIPT per task; as text, or as exact ids (plus junk after the stop) with log-probs."""

    def __init__(self, envs, tokenizer=None) -> None:
        self.envs, self.tokenizer, self.seen_context_ids = envs, tokenizer, []

    def __call__(self, observations, infos, slots):
        out = []
        for info, n in zip(infos, slots):
            env = self.envs[n]
            text = SCRIPT[env.task.id][info["turn"]]
            if self.tokenizer is None:
                out.append(text)
                continue
            self.seen_context_ids.append(info["context_ids"] == env.context_ids)
            ids = self.tokenizer.encode(text + " trailing junk", add_special_tokens=False)
            out.append(Completion(ids, logprobs=[-0.5 - i for i in range(len(ids))], extra={"n": n}))
        return out


def test_rollout_plays_every_job_on_a_pool_like_sequential_play(tokenizer) -> None:
    envs = [make_env(tokenizer), make_env(tokenizer)]
    jobs = [Job(key=i, options={"task_index": i % 2}) for i in range(5)]
    started = []
    episodes = list(rollout(envs, jobs, ScriptPolicy(envs), on_start=lambda n, t: started.append((n, t.id))))
    assert sorted(e.key for e in episodes) == list(range(5)) and len(started) == 5
    for ep in episodes:
        assert ep.terminated and ep.reward == 1.0 and ep.info["metrics"]["f1"] == 1.0
        assert len(ep.turns) == 3 and all(t.prompt_ids is None and t.logprobs is None for t in ep.turns)
        solo = make_env(tokenizer)
        solo.reset(options={"task_index": ep.key % 2})
        for text in SCRIPT[ep.task.id]:
            *_, info = solo.step(text)
        assert info["metrics"] == {**ep.info["metrics"], "wall_time_s": info["metrics"]["wall_time_s"]}


@pytest.mark.parametrize("memory", [SelfMemory, FullContext])
def test_completions_keep_exact_ids_and_logprobs_cut_at_the_stop(tokenizer, memory) -> None:
    envs = [make_env(tokenizer, memory()) for _ in range(2)]
    policy = ScriptPolicy(envs, tokenizer)
    played = play_batch([(envs[0], {"task_index": 0}), (envs[1], {"task_index": 1})], policy)
    assert [e.key for e in played] == [0, 1] and all(policy.seen_context_ids)
    for ep in played:
        assert ep.reward == 1.0
        for turn, call, text in zip(ep.turns, ep.info["transcript"], SCRIPT[ep.task.id]):
            ids = tokenizer.encode(text, add_special_tokens=False)
            assert turn.completion_ids == call["output_ids"] == ids  # junk after the stop dropped
            assert turn.logprobs == [-0.5 - i for i in range(len(ids))]
            assert list(turn.prompt_ids) == tokenizer.encode(call["context"], add_special_tokens=False)
            assert len(turn.prompt_ids) == call["input_tokens"] and turn.extra == {"n": ep.slot}


def test_token_mode_completions_accumulate_into_turns(tokenizer) -> None:
    env = make_env(tokenizer, action_mode="token", context_budget=1024)
    script = [tokenizer.encode(t, add_special_tokens=False) for t in SCRIPT["bridge"]]
    state = {"turn": 0, "pos": 0}

    def policy(observations, infos, slots):
        ids = script[state["turn"]]
        token = ids[state["pos"]]
        state["pos"] += 1
        if state["pos"] == len(ids):
            state["turn"], state["pos"] = state["turn"] + 1, 0
        return [Completion([token], logprobs=[-float(token)])]

    (ep,) = play_batch([(env, {"task_id": "bridge"})], policy)
    assert ep.reward == 1.0 and [t.completion_ids for t in ep.turns] == script
    assert [t.logprobs for t in ep.turns] == [[-float(i) for i in ids] for ids in script]
    assert [len(t.prompt_ids) for t in ep.turns] == [c["input_tokens"] for c in ep.info["transcript"]]


def test_a_policy_returning_the_wrong_number_of_actions_is_an_error(tokenizer) -> None:
    envs = [make_env(tokenizer)]
    with pytest.raises(RuntimeError, match="returned 2 actions for 1 slots"):
        list(rollout(envs, [Job(0)], lambda o, i, s: ["a", "b"]))
    with pytest.raises(ValueError, match="log-probs"):
        list(rollout(envs, [Job(0)], lambda o, i, s: [Completion([1, 2], logprobs=[0.0])]))
