"""Evaluating served models: failed episodes are recorded and retried, errors are one line,
and the README's served-model command runs against a real ``mempo-gym serve`` process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _harness_envs as h  # noqa: E402

from mempo_agents.backends import OpenAIBackend  # noqa: E402
from mempo_agents.closed_book import ClosedBookAgent  # noqa: E402
from mempo_gym.cli import main  # noqa: E402
from mempo_gym.harness import evaluate, read_episodes  # noqa: E402
from tests.openai_wire_server import OpenAIWireServer, Reply  # noqa: E402

ENV_ID = "MemPO-SynthWiki-v0"


def question_of(index: int) -> str:
    import gymnasium as gym

    from mempo_gym.harness.task_order import DEFAULT_TASK_ORDER, reset_arguments

    env = gym.make(ENV_ID)
    env.reset(**reset_arguments(DEFAULT_TASK_ORDER, 0, ENV_ID, index, len(env.unwrapped.tasks)))
    return env.unwrapped.task.questions[0].text


def test_timed_out_episode_is_recorded_failed_the_run_goes_on_and_resume_retries(tmp_path: Path) -> None:
    slow = {"on": True}
    late_question = question_of(1)

    def respond(request: dict) -> Reply:  # episode 1's requests time out while slow["on"]
        late = slow["on"] and late_question in request["prompt"]
        return Reply(text="<answer>Mila Voss</answer>", delay_s=1.0 if late else 0.0)

    out = tmp_path / "run"
    with OpenAIWireServer(respond) as server:
        def agent() -> ClosedBookAgent:
            return ClosedBookAgent(OpenAIBackend(server.base_url, "m", timeout_s=0.3, max_retries=1, backoff_s=0.01))

        frame = evaluate(ENV_ID, agent(), episodes=5, out=out, batch_size=3, progress=False)
        lines = read_episodes(out / "episodes.jsonl").records
        failed = [r for r in lines if r.get("failed")]
        assert len(lines) == 5  # every episode has its line: the run did not stop
        assert [r["key"] for r in failed] == [f"{ENV_ID}#1"]  # only the slow one (its batch was retried alone)
        assert "BackendTimeoutError" in failed[0]["failure"] and "timed out" in failed[0]["failure"]
        assert int(frame["failed"].eq(True).sum()) == 1
        slow["on"] = False
        frame = evaluate(ENV_ID, agent(), episodes=5, out=out, batch_size=3, resume=True, progress=False)
    lines = read_episodes(out / "episodes.jsonl").records
    assert len(lines) == 5 and not any(r.get("failed") for r in lines)  # retried, one line per episode
    assert sorted(r["key"] for r in lines) == sorted(f"{ENV_ID}#{i}" for i in range(5))
    assert "failed" not in frame.columns or not frame["failed"].eq(True).any()


def test_settings_errors_stop_the_run_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with OpenAIWireServer(lambda req: Reply(status=401, body=b'{"error": "bad key"}')) as server:
        code = main(["eval", "--env", ENV_ID, "--agent", "closed-book", "--model", server.base_url,
                     "--served-model", "m", "--episodes", "2", "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert "HTTP 401" in err[0] and "$OPENAI_API_KEY" in err[0] and "Traceback" not in err[0]
    code = main(["eval", "--env", h.FULL_ENV_ID, "--agent", "oracle", "--retries", "2", "--episodes", "1",
                 "--out", str(tmp_path / "o")])
    assert code == 1 and "--retries apply only to a served model" in capsys.readouterr().err


def test_readme_served_model_command(served_smollm2, data_dir: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``mempo-gym eval --env MemPO-HotpotQA-v0 --agent mempo --model http://.../v1`` as the README writes
    it (the model name comes from /v1/models), on one short episode."""
    monkeypatch.setenv("MEMPO_GYM_DATA", str(data_dir))
    monkeypatch.delenv("MEMPO_GYM_MODEL", raising=False)
    out = tmp_path / "mempo-served"
    code = main(["eval", "--env", "MemPO-HotpotQA-v0", "--agent", "mempo", "--model", served_smollm2.base_url,
                 "--episodes", "1", "--out", str(out), "--no-progress", "--env-kwarg", "max_turns=2",
                 "--agent-option", "max_new_tokens=12", "--timeout", "120"])
    assert code == 0, capsys.readouterr().err
    (record,) = read_episodes(out / "episodes.jsonl").records
    assert not record.get("failed") and record["turns"] >= 1 and record["tokens_total"] > 0
    config = (out / "config.json").read_text()
    assert "smollm2-135m-instruct" in config and served_smollm2.base_url in config


def test_concurrency_keeps_several_requests_in_flight(tmp_path: Path) -> None:
    import json

    with OpenAIWireServer(lambda req: Reply(text="<answer>x</answer>", delay_s=0.3)) as server:
        code = main(["eval", "--env", ENV_ID, "--agent", "closed-book", "--model", server.base_url,
                     "--served-model", "m", "--concurrency", "3", "--episodes", "3", "--out", str(tmp_path / "c"),
                     "--no-progress"])
    assert code == 0 and server.max_in_flight == 3  # --concurrency 3 plays 3 episodes together
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    assert config["batch_size"] == 3 and config["agent"]["backend"]["concurrency"] == 3
