"""The mempo-gym command line: argument handling and clear errors (the commands' behaviour
is tested with their Python APIs in test_harness/test_report/test_leaderboard)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _harness_envs as h  # noqa: E402

from mempo_gym.cli import CliError, main, parse_assignments  # noqa: E402
from mempo_gym.harness import read_episodes  # noqa: E402


def test_eval_in_process_with_kwargs_and_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(["eval", "--env", h.ENV_ID, "--agent", "_harness_envs:make_searcher", "--model", "unused",
                 "--episodes", "3", "--seed", "1", "--out", str(out), "--env-kwarg", "max_turns=3",
                 "--agent-option", "delay=0", "--no-progress"])
    assert code == 0 and f"run folder: {out}" in capsys.readouterr().out
    assert len(read_episodes(out / "episodes.jsonl").records) == 3
    assert main(["eval", "--env", h.ENV_ID, "--agent", "_harness_envs:make_searcher", "--episodes", "3",
                 "--out", str(out), "--no-progress"]) == 1
    assert "--resume" in capsys.readouterr().err
    # --first plays a shard of the task order: episodes 1 and 2 here, the tasks of the full run's 1 and 2
    shard = tmp_path / "shard"
    assert main(["eval", "--env", h.ENV_ID, "--agent", "_harness_envs:make_searcher", "--episodes", "3",
                 "--first", "1", "--seed", "1", "--out", str(shard), "--env-kwarg", "max_turns=3",
                 "--agent-option", "delay=0", "--no-progress"]) == 0
    tasks = {r["episode_index"]: r["task_id"] for r in read_episodes(out / "episodes.jsonl").records}
    assert {r["episode_index"]: r["task_id"] for r in read_episodes(shard / "episodes.jsonl").records} == {
        1: tasks[1], 2: tasks[2]}
    assert main(["eval", "--env", h.ENV_ID, "--agent", "_harness_envs:make_searcher", "--episodes", "3",
                 "--first", "4", "--out", str(tmp_path / "none"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "first must be between 0 and episodes (3), got 4" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "none").exists()


def test_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--env", h.ENV_ID, "--agent", "no-such-agent", "--episodes", "1",
                 "--out", str(tmp_path / "x")]) == 1
    assert "No agent named 'no-such-agent'" in capsys.readouterr().err
    assert main(["eval", "--env", h.ENV_ID, "--agent", "_harness_envs:nothing", "--episodes", "1",
                 "--out", str(tmp_path / "x")]) == 1
    assert "has no callable 'nothing'" in capsys.readouterr().err
    assert main(["eval", "--env", "MemPO-NoSuchEnv-v0", "--agent", "_harness_envs:make_searcher",
                 "--episodes", "1", "--out", str(tmp_path / "y")]) == 1
    assert "cannot make environment 'MemPO-NoSuchEnv-v0'" in capsys.readouterr().err
    assert main(["data", "download", "no-such-dataset", "--data-dir", str(tmp_path)]) == 1
    assert "unknown dataset 'no-such-dataset'" in capsys.readouterr().err
    with pytest.raises(CliError, match="key=value"):
        parse_assignments(["novalue"], "--env-kwarg")


def test_data_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert f"data directory: {tmp_path}" in printed and "hotpotqa" in printed and "missing" in printed


def test_demo_runs_the_trained_adapters_against_full_context_and_the_oracle(tmp_path, capsys):
    from mempo_gym.cli import main

    assert main(["demo", "--out", str(tmp_path / "demo"), "--episodes", "2", "--env", "MemPO-SynthWiki-v0"]) == 0
    out = capsys.readouterr().out
    assert "mempo-self-memory" in out and "full-context" in out and "oracle" in out
    assert "turn 0: <mem>" in out  # the memory the agent wrote is shown
    assert (tmp_path / "demo" / "report" / "report.md").is_file()
    for run in ("mempo-self-memory", "full-context", "oracle"):
        assert len((tmp_path / "demo" / run / "episodes.jsonl").read_text().splitlines()) == 2
