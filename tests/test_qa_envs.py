"""Every registered real-dataset env on the real samples: scripted oracle and closed-book."""

from __future__ import annotations

import gymnasium as gym
import pytest

import mempo_gym
from mempo_gym.data import DatasetNotFoundError

QA_IDS = [i for i in mempo_gym.registered_ids() if "SynthWiki" not in i]


def play_oracle(env, task_index: int) -> dict:
    """Search each supporting title (or the question), then answer the golds."""
    obs, info = env.reset(seed=task_index, options={"task_index": task_index})
    task = env.task
    queries = [t for q in task.questions for t in q.supporting_titles] or [q.text for q in task.questions]
    for query in queries[: env.max_turns - 1]:
        obs, _, term, trunc, info = env.step(f"<mem>progress</mem><search>{query}</search>")
        assert not (term or trunc)
    answer = "; ".join(q.answers[0] for q in task.questions)
    _, reward, term, trunc, info = env.step(f"<answer>{answer}</answer>")
    assert term and not trunc
    return info


@pytest.mark.parametrize("env_id", QA_IDS)
def test_registered_env_oracle_scores_one_and_closed_book_scores_low(env_id, data_dir):
    env = gym.make(env_id, data_dir=str(data_dir), context_budget=32768).unwrapped
    described = env.describe()
    assert described["data_files"] and described["datasets"]
    f1s = [play_oracle(env, i)["metrics"]["f1"] for i in range(3)]
    assert f1s == [1.0, 1.0, 1.0]
    closed = []
    for i in range(10):
        env.reset(seed=i, options={"task_index": i})
        closed.append(env.step("<answer>unknown</answer>")[4]["metrics"]["f1"])
    assert sum(closed) / len(closed) < 0.2


@pytest.mark.parametrize("env_id", ["MemPO-HotpotQA-v0", "MemPO-2Wiki-v0", "MemPO-MuSiQue-v0"])
def test_supporting_paragraphs_are_searchable_by_title(env_id, data_dir):
    env = gym.make(env_id, data_dir=str(data_dir)).unwrapped
    hits = total = 0
    for task in env.tasks[:30]:
        for title in task.questions[0].supporting_titles:
            total += 1
            hits += f"(Title: {title})" in env.search_tool.search(title)
    assert hits / total >= 0.9, f"{hits}/{total}"


def test_multi_objective_composition_is_seeded_and_documented(data_dir):
    a = gym.make("MemPO-HotpotQA-4obj-v0", data_dir=str(data_dir)).unwrapped
    b = gym.make("MemPO-HotpotQA-4obj-v0", data_dir=str(data_dir)).unwrapped
    c = gym.make("MemPO-HotpotQA-4obj-v0", data_dir=str(data_dir), compose_seed=1).unwrapped
    assert [t.to_dict() for t in a.tasks] == [t.to_dict() for t in b.tasks]
    assert [t.id for t in a.tasks] == [t.id for t in c.tasks] and a.tasks[0] != c.tasks[0]
    assert all(t.num_objectives == 4 for t in a.tasks)
    mixed = gym.make("MemPO-HotpotQA-NQ-2obj-v0", data_dir=str(data_dir)).unwrapped
    assert all(t.meta["members"][1].startswith("nq_open") and not t.meta["members"][0].startswith("nq_open") for t in mixed.tasks[:5])
    assert mixed.describe()["datasets"][1] == "nq-open-dev"


def test_missing_data_names_files_folder_and_command(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        gym.make("MemPO-HotpotQA-v0", data_dir=str(tmp_path))
    message = str(err.value)
    assert "hotpot_dev_distractor_v1.json" in message and str(tmp_path) in message
    assert "mempo-gym data download" in message
