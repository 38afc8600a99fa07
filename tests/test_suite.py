"""The versioned suite: one command runs an agent on it and packs a submission; private-world runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mempo_gym.cli import main
from mempo_gym.leaderboard import build_leaderboard, score_submission, write_result
from mempo_gym.leaderboard.board import load_results, suite_table
from mempo_gym.suite import SUITES, get_suite

pytest.importorskip("mempo_agents.oracle", reason="mempo_agents (reference agents) is not installed")


def test_suite_covers_the_issue_entries_and_every_id_is_registered() -> None:
    import mempo_gym

    suite = get_suite("MemPO-Bench-v0")
    ids = [e.env_id for e in suite.entries]
    assert len(ids) == len(set(ids)) and set(ids) <= set(mempo_gym.registered_ids())
    for k in ("", "-2obj", "-4obj", "-8obj"):
        assert f"MemPO-SynthWiki{k}-v0" in ids and suite.entry(f"MemPO-SynthWiki{k}-v0").kwargs["split"] == "test"
    for name in ("HotpotQA", "2Wiki", "MuSiQue", "NQ", "Bamboogle", "WebSearch", *(f"HotpotQA-{k}obj" for k in (2, 4, 6, 8, 10))):
        assert f"MemPO-{name}-v0" in ids
    with pytest.raises(ValueError, match="known suites"):
        get_suite("MemPO-Bench-v9")
    assert set(SUITES) == {"MemPO-Bench-v0"}


def test_cli_suite_runs_packs_and_scores_with_private_worlds(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    entry = "MemPO-SynthWiki-2obj-v0"
    results = tmp_path / "results"
    for name, extra in (("public", []), ("private", ["--world-seed", "987654"])):
        out = tmp_path / name
        code = main(["suite", "--agent", "oracle", "--out", str(out), "--entry", entry, "--episodes", "3",
                     "--name", name, "--contact", "c@x", "--no-progress", *extra])
        assert code == 0
        assert "submission:" in capsys.readouterr().out
        result = score_submission(out / "submission.zip")
        env = result["envs"][entry]
        assert result["suite"] == "MemPO-Bench-v0" and env["n"] == 3 and env["f1"] == 1.0
        expected = "standard" if name == "public" else "private-world"
        assert env["settings_group"] == expected, env["non_standard_settings"]
        write_result(result, results / f"{name}.score.json")
    configs = [json.loads((tmp_path / n / entry / "config.json").read_text()) for n in ("public", "private")]
    tasks = [[json.loads(line)["task_id"] for line in (tmp_path / n / entry / "episodes.jsonl").read_text().splitlines()]
             for n in ("public", "private")]
    assert configs[1]["envs"][0]["kwargs"]["seed"] == 987654 and tasks[0] != tasks[1]  # other worlds
    table = suite_table(load_results(results))
    assert set(table["rank"]) == {"control"} and not table["complete"].any()  # 1 of 15 entries, 3 episodes
    markdown = build_leaderboard(results)["markdown"].read_text()
    assert "## MemPO-Bench-v0" in markdown and "private-world" in markdown and "987654" not in markdown
