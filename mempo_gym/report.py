"""Summaries of run folders: accuracy with bootstrap intervals, token cost, savings.

One row per (env, run): ``n``, mean F1 and EM with seeded 95 % percentile-bootstrap
intervals, mean ``tokens_total`` / ``tokens_peak`` / ``tokens_generated`` and turns,
and, against a baseline run, the relative token saving
``1 - mean tokens_total(run) / mean tokens_total(baseline)`` on the same env (same for
``tokens_peak``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from mempo_gym.harness.runfiles import EPISODES_FILE, read_config, read_episodes

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95

SUMMARY_COLUMNS = [
    "env", "agent", "model", "memory", "run", "n", "failed", "f1", "f1_lo", "f1_hi", "em", "em_lo", "em_hi",
    "tokens_total", "tokens_peak", "tokens_generated", "turns",
    "token_saving", "peak_saving",
]


def bootstrap_interval(
    values: Sequence[float], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean (seeded, so reports are reproducible).

    >>> bootstrap_interval([1.0, 1.0, 1.0])
    (1.0, 1.0)
    >>> lo, hi = bootstrap_interval([0.0, 1.0] * 50); lo < 0.5 < hi
    True
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def agent_label(config: dict[str, Any]) -> str:
    """The agent's name as recorded in a run config."""
    agent = config.get("agent") or {}
    return str(agent.get("name", "agent")) if isinstance(agent, dict) else str(agent)


def model_label(config: dict[str, Any]) -> str:
    """The model an agent ran on (the served model's name, a checkpoint, ...), ``"-"`` for none.

    >>> model_label({"agent": {"name": "mempo", "backend": {"backend": "openai", "model": "qwen"}}})
    'qwen'
    >>> model_label({"agent": {"name": "oracle"}})
    '-'
    """
    agent = config.get("agent") or {}
    backend = agent.get("backend") if isinstance(agent, dict) else None
    model = backend.get("model") if isinstance(backend, dict) else (agent.get("model") if isinstance(agent, dict) else None)
    return Path(str(model)).name if model else "-"


def memory_label(config: dict[str, Any], env_id: str) -> str:
    """The env's memory method in a run (from its recorded ``describe()``)."""
    for env in config.get("envs") or []:
        if env.get("id") == env_id:
            memory = (env.get("describe") or {}).get("memory")
            if isinstance(memory, dict):
                return str(memory.get("name", "-"))
            return str(memory or "-")
    return "-"


def load_runs(run_dirs: Iterable[str | Path]) -> pd.DataFrame:
    """Every episode of the given run folders, with ``run`` (folder name), ``agent``, ``model``
    and ``memory`` columns; failed episodes (``failed == True``, no scores) are kept."""
    frames = []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        config = read_config(run_dir)
        records = read_episodes(run_dir / EPISODES_FILE).records
        rows = [{k: v for k, v in r.items() if k != "transcript"} for r in records]
        frame = pd.DataFrame(rows)
        if "failed" not in frame:
            frame["failed"] = False
        frame["failed"] = frame["failed"].eq(True)
        frame["run"] = run_dir.name
        frame["run_dir"] = str(run_dir)
        frame["agent"] = agent_label(config)
        frame["model"] = model_label(config)
        frame["memory"] = [memory_label(config, e) for e in frame["env_id"]] if "env_id" in frame else []
        frames.append(frame)
    if not frames:
        raise ValueError("no run folders given")
    return pd.concat(frames, ignore_index=True)


def summarize_episodes(episodes: pd.DataFrame, group: Sequence[str] = ("env_id", "run")) -> pd.DataFrame:
    """Per-group summary of an episode table (see the module docstring for the columns)."""
    rows = []
    for keys, whole in episodes.groupby(list(group), sort=True):
        keys = keys if isinstance(keys, tuple) else (keys,)
        failed = whole["failed"].eq(True) if "failed" in whole else pd.Series(False, index=whole.index)
        frame = whole[~failed]  # a failed episode has no scores: counted apart, never as zero
        f1 = frame["f1"].astype(float).to_numpy()
        em = frame["em"].astype(float).to_numpy()
        f1_lo, f1_hi = bootstrap_interval(f1)
        em_lo, em_hi = bootstrap_interval(em)
        row = dict(zip(group, keys))
        rows.append({
            "env": row.get("env_id", row.get("env")),
            "agent": whole["agent"].iloc[0] if "agent" in whole else "",
            "model": whole["model"].iloc[0] if "model" in whole else "-",
            "memory": whole["memory"].iloc[0] if "memory" in whole else "-",
            "run": row.get("run", ""),
            "n": int(len(frame)),
            "failed": int(failed.sum()),
            "f1": float(f1.mean()), "f1_lo": f1_lo, "f1_hi": f1_hi,
            "em": float(em.mean()), "em_lo": em_lo, "em_hi": em_hi,
            "tokens_total": float(frame["tokens_total"].mean()),
            "tokens_peak": float(frame["tokens_peak"].mean()),
            "tokens_generated": float(frame["tokens_generated"].mean()),
            "turns": float(frame["turns"].mean()),
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS[:-2])


def summarize(run_dirs: Iterable[str | Path], baseline: str | Path | None = None) -> pd.DataFrame:
    """Summary table of run folders, one row per (env, run); savings against ``baseline``.

    ``baseline`` is a run folder (included in the table if not already listed); rows of an
    env the baseline did not run get NaN savings.
    """
    dirs = [Path(d) for d in run_dirs]
    if baseline is not None:
        baseline = Path(baseline)
        if all(d.resolve() != baseline.resolve() for d in dirs):
            dirs.append(baseline)
    table = summarize_episodes(load_runs(dirs))
    table["token_saving"] = np.nan
    table["peak_saving"] = np.nan
    if baseline is not None:
        base_rows = table[table["run"] == baseline.name].set_index("env")
        for i, row in table.iterrows():
            if row["env"] in base_rows.index:
                base = base_rows.loc[row["env"]]
                table.loc[i, "token_saving"] = 1.0 - row["tokens_total"] / base["tokens_total"] if base["tokens_total"] else np.nan
                table.loc[i, "peak_saving"] = 1.0 - row["tokens_peak"] / base["tokens_peak"] if base["tokens_peak"] else np.nan
    return table[SUMMARY_COLUMNS]


def to_markdown(table: pd.DataFrame) -> str:
    """The summary as a Markdown table (F1/EM with intervals, savings in percent)."""
    header = ["env", "agent", "model", "memory", "run", "n", "failed", "F1 [95% CI]", "EM [95% CI]", "tokens_total", "tokens_peak",
              "tokens_generated", "turns", "token saving", "peak saving"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def pct(x: float) -> str:
        return "" if pd.isna(x) else f"{100 * x:.1f}%"

    for _, r in table.iterrows():
        cells = [
            str(r["env"]), str(r["agent"]), str(r["model"]), str(r["memory"]), str(r["run"]), str(int(r["n"])),
            str(int(r["failed"])),
            f"{r['f1']:.3f} [{r['f1_lo']:.3f}, {r['f1_hi']:.3f}]",
            f"{r['em']:.3f} [{r['em_lo']:.3f}, {r['em_hi']:.3f}]",
            f"{r['tokens_total']:.1f}", f"{r['tokens_peak']:.1f}", f"{r['tokens_generated']:.1f}",
            f"{r['turns']:.2f}", pct(r["token_saving"]), pct(r["peak_saving"]),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(table: pd.DataFrame, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.csv`` and ``report.json``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "report.md", "csv": out / "report.csv", "json": out / "report.json"}
    paths["markdown"].write_text(to_markdown(table), encoding="utf-8")
    table.to_csv(paths["csv"], index=False)
    records = json.loads(table.to_json(orient="records"))  # NaN -> null
    paths["json"].write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    return paths
