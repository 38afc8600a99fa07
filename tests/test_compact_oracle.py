"""The SFT demonstrator's memory plans (agents/trainer/oracle.py): exact entries for known
questions, and every registered SynthWiki task solved with them."""

from __future__ import annotations

import gymnasium as gym
import pytest

import mempo_gym  # noqa: F401
from mempo_gym.records import Question
from mempo_gym.rollout import play_batch

from mempo_agents.trainer.oracle import (CompactOracleAgent, digit_check, digit_walk, entry_label, first_difference,
                                          plan_question, relation_noun)

BRIDGE = Question(
    text="What is the capital of the country of the birthplace of the director of Gavi?",
    answers=("Vavi",), kind="bridge",
    supporting_titles=("Gavi", "Kora Pobi", "Zunobo", "Vadovo"),
    supporting_texts=("Gavi is a film by Kora Pobi, released in 1899.",
                      "Kora Pobi was born in Zunobo in 1827 and works for Kiki.",
                      "Zunobo is a city in Vadovo.", "Vadovo is a country with capital Vavi."),
)
COMPARISON = Question(
    text="Which was founded earlier, the employer of Kora Pobi or Futusi?", answers=("Futusi",), kind="comparison",
    supporting_titles=("Kora Pobi", "Kiki", "Futusi"),
    supporting_texts=("Kora Pobi was born in Zunobo in 1827 and works for Kiki.",
                      "Kiki is a university in Roruvu, founded in 2018 by Dipeme Nudifi.",
                      "Futusi is a company in Roruvu, founded in 2014 by Mape Kuvo."),
)


def test_bridge_plan_keeps_the_relations_still_to_follow_in_question_order() -> None:
    plan = plan_question(0, BRIDGE)
    assert plan.first_entry == "1 : capital country birthplace director Gavi"
    assert plan.queries == ["Gavi", "Kora Pobi", "Zunobo", "Vadovo"]
    assert plan.entries == ["1 : capital country birthplace Kora Pobi", "1 : capital country Zunobo",
                            "1 : capital Vadovo", "1 : Vavi"]


def test_comparison_plan_writes_each_year_and_the_decision() -> None:
    plan = plan_question(1, COMPARISON)
    assert plan.first_entry == "2 : earlier year employer Kora Pobi , year Futusi"
    assert plan.entries == ["2 : earlier year Kiki , year Futusi", "2 : earlier Kiki 2018 , year Futusi",
                            "2 : earlier Kiki 2018 , Futusi 2014 = Futusi"]


@pytest.mark.parametrize(("reason", "why"), [("first-digit", ": 8 > 4 "), ("digits", ": 2 = 2 , 0 = 0 , 1 = 1 , 8 > 4 ")])
def test_a_decision_reason_is_written_before_the_decision(reason: str, why: str) -> None:
    plan = plan_question(1, COMPARISON, decision_reason=reason)
    assert plan.entries[:-1] == plan_question(1, COMPARISON).entries[:-1]  # only the decision changes
    assert plan.entries[-1] == f"2 : earlier Kiki 2018 , Futusi 2014 {why}= Futusi"
    assert plan_question(0, BRIDGE, decision_reason=reason) == plan_question(0, BRIDGE)  # bridges have no decision


def test_an_unknown_decision_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="decision_reason must be one of none, first-digit, digits"):
        CompactOracleAgent(decision_reason="sorted")


@pytest.mark.parametrize(("a", "b", "check"), [("2018", "2014", "8 > 4"), ("1970", "1800", "9 > 8"),
                                               ("1806", "1918", "8 < 9"), ("2001", "1999", "2 > 1"),
                                               ("999", "1001", "0 < 1")])
def test_digit_check_compares_the_first_differing_digit(a: str, b: str, check: str) -> None:
    assert digit_check(a, b) == check
    x, op, y = check.split()
    assert (x < y) == (int(a) < int(b)) and op == ("<" if int(a) < int(b) else ">")


@pytest.mark.parametrize(("a", "b", "walk"), [("2018", "2014", "2 = 2 , 0 = 0 , 1 = 1 , 8 > 4"),
                                              ("1970", "1800", "1 = 1 , 9 > 8"), ("2001", "1999", "2 > 1"),
                                              ("999", "1001", "0 < 1"), ("1866", "1867", "1 = 1 , 8 = 8 , 6 = 6 , 6 < 7")])
def test_digit_walk_copies_equal_digits_up_to_the_deciding_one(a: str, b: str, walk: str) -> None:
    assert digit_walk(a, b) == walk
    assert walk.endswith(digit_check(a, b))  # it ends where the first-digit reason starts and stops


def test_digit_check_and_walk_refuse_equal_years() -> None:
    with pytest.raises(ValueError, match="are equal"):
        first_difference("1900", "1900")
    with pytest.raises(ValueError, match="are equal"):
        digit_walk("1900", "1900")


def test_open_all_writes_every_question_from_the_first_turn() -> None:
    from mempo_gym.records import Task

    agent = CompactOracleAgent(open_all=True, decision_reason="first-digit")
    agent.reset(Task(id="t", questions=(COMPARISON, BRIDGE), source="synthwiki"), 0)
    outputs = [agent.act({}, {}, 0) for _ in range(8)]
    assert outputs[0] == ("<mem> 1 : earlier year employer Kora Pobi , year Futusi | "
                          "2 : capital country birthplace director Gavi </mem> <search> Kora Pobi </search>")
    assert outputs[3].startswith("<mem> 1 : earlier Kiki 2018 , Futusi 2014 : 8 > 4 = Futusi | 2 : capital")
    assert outputs[-1] == "<mem> 1 : Futusi | 2 : Vavi </mem> <answer> Futusi ; Vavi </answer>"


def test_numbering_n_of_k_labels_every_entry_with_the_number_of_questions() -> None:
    from mempo_gym.records import Task

    agent = CompactOracleAgent(numbering="n/k", decision_reason="digits")
    agent.reset(Task(id="t", questions=(COMPARISON, BRIDGE), source="synthwiki"), 0)
    outputs = [agent.act({}, {}, 0) for _ in range(8)]
    assert outputs[0] == "<mem> 1/2 : earlier year employer Kora Pobi , year Futusi </mem> <search> Kora Pobi </search>"
    # the finished entry says there is a second question: the same turn opens it
    assert outputs[3] == ("<mem> 1/2 : earlier Kiki 2018 , Futusi 2014 : 2 = 2 , 0 = 0 , 1 = 1 , 8 > 4 = Futusi | "
                          "2/2 : capital country birthplace director Gavi </mem> <search> Gavi </search>")
    assert outputs[-1] == "<mem> 1/2 : Futusi | 2/2 : Vavi </mem> <answer> Futusi ; Vavi </answer>"
    # everything but the labels is as with the default numbering
    agent_n = CompactOracleAgent(decision_reason="digits")
    agent_n.reset(Task(id="t", questions=(COMPARISON, BRIDGE), source="synthwiki"), 0)
    plain = [agent_n.act({}, {}, 0) for _ in range(8)]
    assert [o.replace("1/2 :", "1 :").replace("2/2 :", "2 :") for o in outputs] == plain


def test_entry_labels_and_a_numbering_that_cannot_apply_are_refused() -> None:
    assert entry_label(3) == "3" and entry_label(3, 8) == "3/8"
    with pytest.raises(ValueError, match="question 3 does not exist among 2 questions"):
        entry_label(3, 2)
    with pytest.raises(ValueError, match="numbering must be one of n, n/k"):
        CompactOracleAgent(numbering="k")
    with pytest.raises(ValueError, match="needs style='relations'"):
        CompactOracleAgent(numbering="n/k", style="compact")


def test_compact_style_is_kept() -> None:
    plan = plan_question(0, BRIDGE, style="compact")
    assert plan.first_entry == "1 : Gavi" and plan.entries[-1] == "1 = Vavi"
    with pytest.raises(ValueError, match="style must be"):
        plan_question(0, BRIDGE, style="verbose")


def test_relation_noun_names_the_link_or_says_what_is_missing() -> None:
    assert relation_noun("Kiki is a university in Roruvu, founded in 2018 by Dipeme Nudifi.", "Dipeme Nudifi") == "founder"
    assert relation_noun("Kiki is a university in Roruvu, founded in 2018 by Dipeme Nudifi.", "Roruvu") == "headquarters"
    assert relation_noun("Kiki is a university in Roruvu, founded in 2018 by Dipeme Nudifi.", "2018") == "year"
    with pytest.raises(ValueError, match="no relation leads to 'Vavi'"):
        relation_noun("Zunobo is a city in Vadovo.", "Vavi")


def test_an_answered_comparison_shows_its_decision_once_then_only_the_answer() -> None:
    from mempo_gym.records import Task

    agent = CompactOracleAgent()
    agent.reset(Task(id="t", questions=(COMPARISON, BRIDGE), source="synthwiki"), 0)
    outputs = [agent.act({}, {}, 0) for _ in range(8)]
    assert "<mem> 1 : earlier Kiki 2018 , Futusi 2014 = Futusi | 2 : capital country birthplace director Gavi </mem>" in outputs[3]
    assert outputs[4].startswith("<mem> 1 : Futusi | 2 : capital country birthplace Kora Pobi </mem>")
    assert outputs[-1] == "<mem> 1 : Futusi | 2 : Vavi </mem> <answer> Futusi ; Vavi </answer>"


@pytest.mark.parametrize("options", [{}, {"open_all": True, "decision_reason": "first-digit"},
                                     {"decision_reason": "digits"}, {"decision_reason": "digits", "numbering": "n/k"}])
@pytest.mark.parametrize("env_id", ["MemPO-SynthWiki-v0", "MemPO-SynthWiki-2obj-v0", "MemPO-SynthWiki-4obj-v0"])
def test_the_oracle_solves_registered_tasks_with_decoys(env_id: str, options: dict[str, bool]) -> None:
    envs = [gym.make(env_id, split="train", seed=3, num_tasks=12, memory="self", max_turns=40) for _ in range(12)]
    names = sorted({t for task in envs[0].unwrapped.tasks for q in task.questions for t in q.supporting_titles})
    agent = CompactOracleAgent(mistake_rate=0.2, decoys=names, seed=0, **options)
    episodes = play_batch([(e, {"task_index": i}) for i, e in enumerate(envs)], agent.act_batch,
                          on_start=lambda n, task: agent.reset(task, n))
    assert [ep.info["metrics"]["em"] for ep in episodes] == [1.0] * 12
    assert any(agent.excluded_turns(ep.slot) for ep in episodes)  # some decoy searches were made (and recovered)


def test_a_comparison_whose_years_contradict_its_gold_is_refused() -> None:
    wrong_gold = Question(text=COMPARISON.text, answers=("Kiki",), kind="comparison",
                          supporting_titles=COMPARISON.supporting_titles, supporting_texts=COMPARISON.supporting_texts)
    with pytest.raises(ValueError, match="its gold is 'Kiki'"):
        plan_question(0, wrong_gold)
    assert plan_question(0, COMPARISON).entries[-1] == "1 : earlier Kiki 2018 , Futusi 2014 = Futusi"
