"""Evaluation harness: run-folder schema, determinism across batch sizes, crash-safe resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _harness_envs as h  # noqa: E402

from mempo_gym.harness import (  # noqa: E402
    RunConfigMismatchError, RunExistsError, RunFileError, episode_seed, evaluate, read_config, read_episodes,
)
from mempo_gym.harness.episodes import EPISODE_FIELDS, strip_nondeterministic  # noqa: E402
from mempo_gym.harness.runfiles import repair_torn_tail  # noqa: E402
from mempo_gym.metrics import score_answer  # noqa: E402


def _records(run: Path) -> list[dict]:
    return read_episodes(run / "episodes.jsonl").records


def _comparable(records: list[dict]) -> list[dict]:
    return sorted((strip_nondeterministic(r) for r in records), key=lambda r: r["episode_index"])


def test_run_folder_schema(tmp_path: Path) -> None:
    out = tmp_path / "run"
    hashes = {"tiny/tasks.json": "ab" * 32}
    agent = h.ScriptedSearcher()
    frame = evaluate(h.ENV_ID, agent, episodes=6, seed=3, out=out, batch_size=2, progress=False,
                     env_kwargs={"env_config": {"data_files": hashes}, "max_turns": 5})
    config = read_config(out)
    assert config["format"] == "mempo-gym-run" and config["seed"] == 3 and config["episodes"] == 6
    assert config["agent"] == {"name": "scripted-searcher", "delay": 0.0}
    assert config["tokenizer"] == "smollm2-135m-instruct" and config["prompts_version"]
    assert config["mempo_gym_version"] and config["command"]
    (env,) = config["envs"]
    assert env["id"] == h.ENV_ID and env["kwargs"]["max_turns"] == 5
    assert env["data_files"] == hashes and env["describe"]["max_turns"] == 5
    records = _records(out)
    assert len(records) == 6 == len(frame)
    assert {r["key"] for r in records} == {f"{h.ENV_ID}#{i}" for i in range(6)}
    for r in records:
        assert set(EPISODE_FIELDS) <= set(r)
        assert r["episode_seed"] == episode_seed(3, h.ENV_ID, r["episode_index"])
        calls = r["transcript"]
        assert r["tokens_total"] == sum(c["input_tokens"] + c["output_tokens"] for c in calls)
        assert r["tokens_peak"] == max(c["input_tokens"] + c["output_tokens"] for c in calls)
        assert r["tokens_generated"] == sum(c["output_tokens"] for c in calls)
        assert r["turns"] == len(calls) and r["searches"] >= 1 and r["malformed_turns"] == 0
        assert r["f1"] == pytest.approx(score_answer(r["prediction"], r["golds"]).f1)
        assert len(r["per_objective"]) == r["num_objectives"] == len(r["golds"])
    assert "transcript" not in frame.columns
    assert frame["f1"].tolist() == [r["f1"] for r in sorted(records, key=lambda r: r["episode_index"])]
    assert max(agent.batch_sizes) == 2  # act_batch got two slots per round


def test_batch_size_does_not_change_episodes(tmp_path: Path) -> None:
    one = evaluate(h.ENV_ID, h.ScriptedSearcher(), episodes=10, seed=7, out=tmp_path / "b1", progress=False)
    agent = h.ScriptedSearcher()
    evaluate(h.ENV_ID, agent, episodes=10, seed=7, out=tmp_path / "b4", batch_size=4, progress=False)
    assert agent.batch_sizes[0] == 4
    assert _comparable(_records(tmp_path / "b1")) == _comparable(_records(tmp_path / "b4"))
    assert one["task_id"].nunique() > 3  # episodes draw different tasks
    other = evaluate(h.ENV_ID, h.ScriptedSearcher(), episodes=10, seed=8, progress=False)
    assert other["task_id"].tolist() != one["task_id"].tolist()


def test_several_envs_in_one_run(tmp_path: Path) -> None:
    frame = evaluate([h.ENV_ID, h.SHORT_ENV_ID], h.ScriptedSearcher(), episodes=5, seed=2, out=tmp_path / "r",
                     batch_size=2, progress=False)
    config = read_config(tmp_path / "r")
    assert [e["id"] for e in config["envs"]] == [h.ENV_ID, h.SHORT_ENV_ID]
    assert config["envs"][1]["describe"]["max_turns"] == 2
    assert frame.groupby("env_id").size().to_dict() == {h.ENV_ID: 5, h.SHORT_ENV_ID: 5}
    short = frame[frame["env_id"] == h.SHORT_ENV_ID]
    assert short["turns"].max() <= 2 and (short["truncated_reason"] == "max_turns").any()
    same_index = frame[frame["episode_index"] == 0]
    assert same_index["episode_seed"].nunique() == 2  # the env id is part of the episode seed


def test_existing_folder_and_config_mismatch_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    evaluate(h.ENV_ID, h.ScriptedSearcher(), episodes=2, seed=1, out=out, progress=False)
    with pytest.raises(RunExistsError, match="resume=True"):
        evaluate(h.ENV_ID, h.ScriptedSearcher(), episodes=2, seed=1, out=out, progress=False)
    with pytest.raises(RunConfigMismatchError, match="seed"):
        evaluate(h.ENV_ID, h.ScriptedSearcher(), episodes=2, seed=2, out=out, resume=True, progress=False)
    with pytest.raises(RunConfigMismatchError, match="agent"):
        evaluate(h.ENV_ID, h.ScriptedSearcher(delay=0.001), episodes=2, seed=1, out=out, resume=True, progress=False)
    # a matching resume with more episodes extends the run without redoing the first two
    before = _records(out)
    evaluate(h.ENV_ID, h.ScriptedSearcher(), episodes=4, seed=1, out=out, resume=True, progress=False)
    after = _records(out)
    assert after[:2] == before and len(after) == 4 and read_config(out)["episodes"] == 4


def test_shards_play_the_tasks_of_their_indices_and_pool_into_the_full_run(tmp_path: Path) -> None:
    evaluate(h.ENV_ID, h.ScriptedSearcher(), episodes=6, seed=5, out=tmp_path / "full", progress=False)
    full = _comparable(_records(tmp_path / "full"))
    evaluate(h.ENV_ID, h.ScriptedSearcher(), episodes=6, first=4, seed=5, out=tmp_path / "tail", batch_size=2,
             progress=False)
    tail = _records(tmp_path / "tail")
    assert sorted(r["episode_index"] for r in tail) == [4, 5] and read_config(tmp_path / "tail")["first"] == 4
    assert _comparable(tail) == full[4:]
    # resuming the shard with a smaller first plays the episodes before it, and none twice
    evaluate(h.ENV_ID, h.ScriptedSearcher(), episodes=6, first=1, seed=5, out=tmp_path / "tail", resume=True,
             progress=False)
    assert _comparable(_records(tmp_path / "tail")) == full[1:]
    assert read_config(tmp_path / "tail")["first"] == 1 and read_config(tmp_path / "full")["first"] == 0
    for first in (-1, 7):
        with pytest.raises(ValueError, match="first must be between 0 and episodes"):
            evaluate(h.ENV_ID, h.ScriptedSearcher(), episodes=6, first=first, seed=5, progress=False)


def test_torn_tail_is_dropped_and_mid_file_damage_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    evaluate(h.ENV_ID, h.ScriptedSearcher(), episodes=3, seed=4, out=out, progress=False)
    path = out / "episodes.jsonl"
    good = path.read_bytes()
    lines = good.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2])  # crash mid-write of line 3
    parsed = read_episodes(path)
    assert parsed.torn_tail and len(parsed.records) == 2
    frame = evaluate(h.ENV_ID, h.ScriptedSearcher(), episodes=3, seed=4, out=out, resume=True, progress=False)
    assert len(frame) == 3 and _comparable(_records(out)) == _comparable(
        [json.loads(x) for x in lines])
    path.write_bytes(lines[0] + b"{oops\n" + lines[1])
    with pytest.raises(RunFileError, match="line 2"):
        read_episodes(path)
    path.write_bytes(lines[0] + lines[1][:-1])  # complete JSON but no newline: still torn
    assert repair_torn_tail(path).records == [json.loads(lines[0])]
    assert path.read_bytes() == lines[0]


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path: Path) -> None:
    episodes, seed = 10, 11
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(h.TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "mempo_gym.cli", "eval", "--env", h.FULL_ENV_ID,
           "--agent", "_harness_envs:make_searcher", "--agent-option", "delay=0.04",
           "--episodes", str(episodes), "--seed", str(seed), "--out", str(out), "--batch-size", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    path = out / "episodes.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.communicate()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close(); proc.stderr.close()  # type: ignore[union-attr]
    partial = read_episodes(path)
    assert 4 <= len(partial.records) < episodes
    with open(path, "ab") as fh:  # and a crash in the middle of a line
        fh.write(b'{"key": "' + h.FULL_ENV_ID.encode() + b'#99", "tr')
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    resumed = _records(out)
    assert len(resumed) == episodes and len({r["key"] for r in resumed}) == episodes
    assert resumed[: len(partial.records)] == partial.records  # nothing finished was rewritten
    evaluate(h.FULL_ENV_ID, h.ScriptedSearcher(delay=0.04), episodes=episodes, seed=seed,
             out=tmp_path / "clean", batch_size=2, progress=False)
    assert _comparable(resumed) == _comparable(_records(tmp_path / "clean"))
    config = read_config(out)
    assert len(config["resumed"]) == 1 and "--resume" in config["resumed"][0]["command"]
