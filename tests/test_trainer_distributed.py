"""The reference trainer under two real CPU processes (``torchrun``, gloo: accelerate's MULTI_CPU).

(``accelerate launch --cpu --num_processes 2`` starts ONE process with accelerate 1.15; torchrun
starts two and ``Accelerator(cpu=True)`` picks up the process group, as ``accelerate launch``
does with a multi-CPU config file.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")

SCRIPT = Path(__file__).parent / "scripts" / "two_process_update.py"


def _run(args: list[str], tmp_path: Path, timeout: float = 240) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_two_processes_with_uneven_minibatches_match_one_process(tmp_path: Path) -> None:
    """Rank 0 has four sequences (several minibatches), rank 1 one: every process still runs the
    same number of minibatches and all-reduces the same number of times (no hang), and the
    update equals the single-process update on the same batch."""
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun is not on PATH")
    single, double = tmp_path / "one.json", tmp_path / "two.json"
    _run([sys.executable, str(SCRIPT), str(single), "1"], tmp_path)
    _run(["torchrun", "--nproc_per_node", "2", "--master_port", "29533", str(SCRIPT), str(double), "2"], tmp_path)
    one, two = json.loads(single.read_text()), json.loads(double.read_text())
    assert one["stats"]["grad_norm"] == pytest.approx(two["stats"]["grad_norm"], rel=1e-5)  # DDP averaged
    assert one["params"].keys() == two["params"].keys()
    for name in one["params"]:
        assert one["params"][name] == pytest.approx(two["params"][name], abs=1e-5), name
