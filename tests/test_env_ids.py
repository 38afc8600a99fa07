"""Exact-ids turns, context ids, unrepresentable text and env cloning."""

from __future__ import annotations

import inspect
import logging

import numpy as np
import pytest

from mempo_gym import FullContext, MemoryEnv, SelfMemory, SlidingWindow
from tests.helpers import DOCS, TASKS, TitleLookupSearch

TURNS = [
    "<mem>need director of Tarsa</mem><think>look up Tarsa</think><search>Tarsa</search>",
    "<mem>Tarsa: directed by Mila Voss</mem><think>now her birthplace</think><search>Mila Voss</search>",
    "<mem>Mila Voss born in Kelvar</mem><answer>Kelvar</answer>",
]


def make_env(tokenizer, memory=None, **kwargs) -> MemoryEnv:
    return MemoryEnv(TASKS, TitleLookupSearch(DOCS), tokenizer=tokenizer, memory=memory, **kwargs)


def encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def play(env: MemoryEnv, actions) -> tuple[list[tuple[int, ...]], tuple]:
    """Play ``actions``; return the context ids before every turn and the last step."""
    env.reset(seed=0, options={"task_id": "bridge"})
    contexts, out = [], None
    for action in actions:
        contexts.append(env.context_ids)
        out = env.step(action)
        if out[2] or out[3]:
            break
    return contexts, out


@pytest.mark.parametrize("memory", [FullContext, SelfMemory, lambda: SlidingWindow(1)])
@pytest.mark.parametrize("kind", ["list", "tuple", "array"])
def test_ids_turns_meter_exactly_like_text_turns(tokenizer, memory, kind) -> None:
    as_kind = {"list": list, "tuple": tuple, "array": lambda ids: np.asarray(ids, dtype=np.int32)}[kind]
    text_ctx, (_, r1, t1, u1, text_info) = play(make_env(tokenizer, memory()), TURNS)
    ids_turns = [as_kind(encode(tokenizer, t)) for t in TURNS]
    ids_ctx, (_, r2, t2, u2, ids_info) = play(make_env(tokenizer, memory()), ids_turns)
    assert (r1, t1, u1) == (r2, t2, u2) == (1.0, True, False)
    assert text_ctx == ids_ctx
    assert text_info["metrics"]["tokens_total"] == ids_info["metrics"]["tokens_total"]
    for a, b, ctx, turn in zip(text_info["transcript"], ids_info["transcript"], ids_ctx, TURNS):
        assert a == b
        assert a["output_ids"] == encode(tokenizer, turn)
        assert a["input_tokens"] == len(ctx)
        assert list(ctx) == encode(tokenizer, a["context"])  # context_ids are what the meter counted
        assert a["altered"] is False
    m = ids_info["metrics"]
    assert m["tokens_total"] == sum(e["input_tokens"] + len(e["output_ids"]) for e in ids_info["transcript"])


def test_ids_after_the_stop_are_dropped_like_text(tokenizer) -> None:
    turn = TURNS[0]
    tail = encode(tokenizer, " and then some more text <answer>x</answer>")
    env = make_env(tokenizer)
    env.reset(options={"task_id": "bridge"})
    _, _, _, _, info_text = env.step(turn + " and then some more text <answer>x</answer>")
    env.reset(options={"task_id": "bridge"})
    _, _, _, _, info_ids = env.step(encode(tokenizer, turn) + tail)
    assert info_ids["tokens_used"] == info_text["tokens_used"]
    entry = env._transcript[-1]
    assert entry["end"] == "stop" and entry["output_ids"] == encode(tokenizer, turn)
    assert entry["action"] == "search"


def test_ids_turn_ends_at_eos_and_max_turn_tokens(tokenizer) -> None:
    env = make_env(tokenizer, max_turn_tokens=5)
    env.reset(options={"task_id": "bridge"})
    ids = encode(tokenizer, TURNS[0])
    env.step(ids)
    entry = env._transcript[-1]
    assert entry["end"] == "max_turn_tokens" and entry["output_ids"] == ids[:5]
    env = make_env(tokenizer)
    env.reset(options={"task_id": "bridge"})
    env.step(ids[:3] + [tokenizer.eos_token_id] + ids[3:])
    entry = env._transcript[-1]
    assert entry["end"] == "eos" and entry["output_ids"] == ids[:3] + [tokenizer.eos_token_id]
    assert entry["action"] == "none"


def test_bad_ids_are_refused_with_a_clear_error(tokenizer) -> None:
    env = make_env(tokenizer)
    env.reset(options={"task_id": "bridge"})
    with pytest.raises(ValueError, match="outside the tokenizer's vocabulary"):
        env.step([1, 2, len(tokenizer) + 3])
    with pytest.raises(ValueError, match="outside the tokenizer's vocabulary"):
        env.step(np.array([-1]))
    with pytest.raises(TypeError, match="integer array"):
        env.step(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="integer array"):
        env.step(np.array([[1, 2]]))
    with pytest.raises(TypeError, match="only ints"):
        env.step([1, "2"])
    with pytest.raises(TypeError, match="takes a str"):
        env.step(3.5)
    # A refused action leaves the episode where it was.
    _, _, _, _, info = env.step(TURNS[0])
    assert info["turn"] == 1 and env._transcript[0]["output_ids"] == encode(tokenizer, TURNS[0])


# ---------------------------------------------------------------- unrepresentable text
@pytest.fixture(scope="module")
def word_tok():
    pytest.importorskip("transformers")
    from mempo_agents.trainer.word_tokenizer import build_word_tokenizer, vocabulary_from_texts

    texts = [q.text for t in TASKS for q in t.questions] + list(DOCS.values()) + list(DOCS) + TURNS
    from mempo_gym.prompts import MEMPO_INSTRUCTIONS

    return build_word_tokenizer(vocabulary_from_texts(texts + [MEMPO_INSTRUCTIONS, "Doc 1 (Title: )"]))


def test_word_tokenizer_unknown_word_is_marked_altered_and_warned_once(word_tok, caplog) -> None:
    env = make_env(word_tok, FullContext(), max_turns=4)
    env.reset(options={"task_id": "bridge"})
    with caplog.at_level(logging.WARNING, logger="mempo_gym.core.env"):
        env.step("<think>zyzzyva</think><search>Tarsa</search>")
        env.step("<search>qwertyuiop</search>")
        env.step("<search>Mila   Voss</search>")  # whitespace only: not an alteration
        *_, info = env.step("<answer>unknown</answer>")
    altered = [e["altered"] for e in info["transcript"]]
    assert altered == [True, True, False, True]
    assert info["transcript"][3]["output"] != "<answer>unknown</answer>"  # <unk> is what the env saw
    warnings = [r for r in caplog.records if "altered" in r.getMessage()]
    assert len(warnings) == 1
    env.reset(options={"task_id": "bridge"})
    with caplog.at_level(logging.WARNING, logger="mempo_gym.core.env"):
        env.step("<search>qwertyuiop</search>")
    assert len([r for r in caplog.records if "altered" in r.getMessage()]) == 2  # once per episode


def test_word_tokenizer_refuses_unrepresentable_text_when_asked(word_tok) -> None:
    env = make_env(word_tok, FullContext(), unrepresentable="error")
    env.reset(options={"task_id": "bridge"})
    with pytest.raises(ValueError, match="cannot represent"):
        env.step("<answer>unknown</answer>")
    _, reward, terminated, _, info = env.step("<answer> Kelvar </answer>")
    assert (reward, terminated, info["metrics"]["calls"]) == (1.0, True, 1)
    assert env.describe()["unrepresentable"] == "error"
    with pytest.raises(ValueError, match="unrepresentable must be one of"):
        make_env(word_tok, unrepresentable="ignore")


def test_byte_level_tokenizer_never_alters_text(tokenizer) -> None:
    env = make_env(tokenizer, FullContext(), max_turns=3, max_turn_tokens=6)
    env.reset(options={"task_id": "bridge"})
    env.step("<search>Ünïcødé 中文字 😀 \t text</search>")
    env.step("é中😀😀😀😀😀😀😀😀😀")  # cut inside a character by max_turn_tokens
    *_, info = env.step("<answer>\ud800x</answer>")  # a lone surrogate becomes U+FFFD
    assert [e["altered"] for e in info["transcript"]] == [False, False, False]


# ---------------------------------------------------------------- clone
def test_clone_copies_every_constructor_setting(tokenizer) -> None:
    env = make_env(tokenizer, SlidingWindow(3), context_budget=999, max_turns=5, max_turn_tokens=77,
                   reward="f1_format", format_penalty=0.25, truncation_reward=-0.5, instructions="Be brief.",
                   render_mode="ansi", env_config={"name": "x"}, unrepresentable="error")
    twin = env.clone()
    assert twin is not env and twin.describe() == env.describe()
    assert twin.tasks == env.tasks and twin.search_tool is env.search_tool and twin.tokenizer is env.tokenizer
    assert twin.memory is not env.memory and twin.memory.describe() == {"name": "window", "k": 3}
    assert twin.render_mode == "ansi"
    # Every constructor parameter reaches the clone (a new one cannot be silently dropped).
    params = set(inspect.signature(MemoryEnv.__init__).parameters) - {"self", "tasks", "search_tool", "tokenizer", "memory"}
    assert params == set(env._settings)
    other = env.clone(memory=FullContext(), action_mode="token", max_turns=2)
    assert other.memory.name == "full" and other.action_mode == "token" and other.max_turns == 2
    assert other.context_budget == 999
    with pytest.raises(TypeError):
        env.clone(no_such_setting=1)
