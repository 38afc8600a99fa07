"""Cost/accuracy plots (matplotlib, Agg backend, PNG).

* :func:`plot_frontier` — mean F1 against mean ``tokens_total``, one point per agent run
  (the accuracy/cost frontier; upper-left is better).
* :func:`plot_cost_vs_objectives` — mean ``tokens_total`` and ``tokens_peak`` against the
  number of objectives per task (how cost grows with the horizon).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

try:
    import matplotlib
except ImportError:  # the core install has no plotting library
    raise ImportError("plots need matplotlib: pip install 'mempo-gym[reports]' (or mempo-gym report --no-plots)") from None

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def _save(fig: Any, path: str | Path | None) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = buffer.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


def plot_frontier(summary: pd.DataFrame, path: str | Path | None = None, title: str = "Accuracy vs cost") -> bytes:
    """F1 (with its interval) vs mean tokens_total per row of a summary table; PNG bytes."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for env, frame in summary.groupby("env", sort=True):
        for _, row in frame.iterrows():
            yerr = [[row["f1"] - row["f1_lo"]], [row["f1_hi"] - row["f1"]]] if "f1_lo" in row else None
            ax.errorbar(row["tokens_total"], row["f1"], yerr=yerr, fmt="o", capsize=3)
            ax.annotate(f"{row['agent']} ({row.get('run', '')})" if summary["env"].nunique() == 1 else f"{row['agent']} @ {env}",
                        (row["tokens_total"], row["f1"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("mean tokens_total per episode")
    ax.set_ylabel("mean F1")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_cost_vs_objectives(episodes: pd.DataFrame, path: str | Path | None = None) -> bytes:
    """Mean tokens_total (solid) and tokens_peak (dashed) vs number of objectives, per agent run."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    label_col = "run" if "run" in episodes else "agent"
    if "failed" in episodes:
        episodes = episodes[~episodes["failed"].eq(True)]
    for label, frame in episodes.groupby(label_col, sort=True):
        means = frame.groupby("num_objectives")[["tokens_total", "tokens_peak"]].mean().sort_index()
        line = ax.plot(means.index, means["tokens_total"], marker="o", label=f"{label} total")[0]
        ax.plot(means.index, means["tokens_peak"], marker="s", linestyle="--", color=line.get_color(),
                label=f"{label} peak")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("objectives per task")
    ax.set_ylabel("tokens per episode")
    ax.set_title("Token cost vs horizon")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)
