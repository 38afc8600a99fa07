"""Reports recomputed by hand from hand-written run folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mempo_gym.cli import main
from mempo_gym.report import bootstrap_interval, summarize, to_markdown

ENV = "MemPO-Hand-v0"


def _write_run(root: Path, name: str, agent: str, rows: list[tuple[float, float, int, int, int, int, int]],
               memory: str = "self", failed: int = 0) -> Path:
    """rows: (f1, em, tokens_total, tokens_peak, tokens_generated, turns, num_objectives)."""
    run = root / name
    run.mkdir(parents=True)
    config = {"format": "mempo-gym-run", "format_version": 1,
              "agent": {"name": agent, "backend": {"backend": "openai", "model": "qwen3-8b"}},
              "envs": [{"id": ENV, "kwargs": {}, "describe": {"memory": {"name": memory}}}], "seed": 0,
              "episodes": len(rows)}
    (run / "config.json").write_text(json.dumps(config))
    with open(run / "episodes.jsonl", "w") as fh:
        for i, (f1, em, total, peak, gen, turns, k) in enumerate(rows):
            fh.write(json.dumps({"key": f"{ENV}#{i}", "env_id": ENV, "episode_index": i, "task_id": f"t{i}",
                                 "f1": f1, "em": em, "tokens_total": total, "tokens_peak": peak,
                                 "tokens_generated": gen, "turns": turns, "num_objectives": k,
                                 "transcript": []}) + "\n")
        for j in range(failed):
            fh.write(json.dumps({"key": f"{ENV}#{len(rows) + j}", "env_id": ENV, "episode_index": len(rows) + j,
                                 "task_id": "tf", "num_objectives": 1, "failed": True,
                                 "failure": "BackendTimeoutError: timed out", "turns": 1}) + "\n")
    return run


@pytest.fixture()
def runs(tmp_path: Path) -> tuple[Path, Path]:
    base = _write_run(tmp_path, "full", "full-context", [
        (1.0, 1.0, 100, 60, 10, 2, 1), (0.0, 0.0, 200, 120, 20, 3, 1), (0.5, 0.0, 300, 150, 30, 4, 2),
        (1.0, 1.0, 400, 200, 40, 5, 2)], memory="full")
    mem = _write_run(tmp_path, "mem", "mempo", [
        (1.0, 1.0, 50, 40, 10, 2, 1), (1.0, 1.0, 100, 50, 20, 3, 1), (0.5, 0.0, 150, 60, 30, 4, 2),
        (0.0, 0.0, 200, 70, 40, 5, 2)], failed=1)  # a failed episode: counted apart, not scored
    return base, mem


def test_summary_numbers_by_hand(runs: tuple[Path, Path]) -> None:
    base, mem = runs
    table = summarize([mem], baseline=base).set_index("run")
    assert list(table.index) == ["full", "mem"]
    m, b = table.loc["mem"], table.loc["full"]
    assert (m["env"], m["agent"], m["model"], m["memory"], m["n"], m["failed"]) == (ENV, "mempo", "qwen3-8b", "self", 4, 1)
    assert (b["memory"], b["failed"]) == ("full", 0)
    assert m["f1"] == pytest.approx(2.5 / 4) and m["em"] == pytest.approx(0.5)
    assert b["f1"] == pytest.approx(2.5 / 4) and b["em"] == pytest.approx(0.5)
    assert m["tokens_total"] == pytest.approx(125.0) and b["tokens_total"] == pytest.approx(250.0)
    assert m["tokens_peak"] == pytest.approx(55.0) and b["tokens_peak"] == pytest.approx(132.5)
    assert m["tokens_generated"] == pytest.approx(25.0) and m["turns"] == pytest.approx(3.5)
    assert m["token_saving"] == pytest.approx(1 - 125 / 250) and b["token_saving"] == pytest.approx(0.0)
    assert m["peak_saving"] == pytest.approx(1 - 55 / 132.5)
    assert 0.0 <= m["f1_lo"] <= m["f1"] <= m["f1_hi"] <= 1.0 and m["f1_lo"] < m["f1_hi"]
    assert (m["em_lo"], m["em_hi"]) == bootstrap_interval([1, 1, 0, 0])
    assert np.isnan(summarize([mem])["token_saving"].iloc[0])  # no baseline, no saving


def test_bootstrap_interval_is_seeded_and_sane() -> None:
    values = [0.0, 0.2, 0.9, 1.0, 0.4, 0.7]
    lo, hi = bootstrap_interval(values)
    assert (lo, hi) == bootstrap_interval(values)
    assert min(values) <= lo < np.mean(values) < hi <= max(values)
    assert bootstrap_interval([0.3] * 5) == (pytest.approx(0.3), pytest.approx(0.3))
    wide = bootstrap_interval([0.0, 1.0] * 5)
    narrow = bootstrap_interval([0.0, 1.0] * 200)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_report_cli_writes_tables_and_plots(runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, mem = runs
    out = tmp_path / "report"
    assert main(["report", str(mem), str(base), "--baseline", str(base), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| " + ENV + " | mempo | qwen3-8b | self | mem | 4 | 1 | 0.625 [" in printed and "50.0%" in printed
    csv = pd.read_csv(out / "report.csv")
    assert csv.set_index("run").loc["mem", "token_saving"] == pytest.approx(0.5)
    data = json.loads((out / "report.json").read_text())
    assert {r["run"] for r in data} == {"mem", "full"}
    assert (out / "report.md").read_text() == to_markdown(summarize([mem, base], baseline=base))
    for png in ("frontier.png", "cost_vs_objectives.png"):
        raw = (out / png).read_bytes()
        assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 5000


def test_report_of_a_non_run_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 1
    assert "not a MemPO-Gym run folder" in capsys.readouterr().err
