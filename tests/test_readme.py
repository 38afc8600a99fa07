"""The README's Quick start runs as written: every Python block of that section (none needs a server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quick start"):text.index("\n## ", text.index("## Quick start") + 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_quick_start_python_blocks_run_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    blocks = quick_start_blocks()
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)  # the blocks write runs/ relative to the working directory
    scope: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), scope)  # noqa: S102 - the project's own README
    assert "Question:" in capsys.readouterr().out
    assert {"f1", "tokens_total", "turns", "searches"} <= set(scope["info"]["metrics"])
    assert scope["frame"]["f1"].mean() == 1.0  # the oracle
    assert (tmp_path / "runs" / "oracle-py" / "episodes.jsonl").is_file()
