"""The leaderboard: scored results ranked per env, as Markdown and a static HTML page.

Ranking per env: mean F1 (re-scored) descending, ties broken by mean ``tokens_total``
ascending. The HTML page is self-contained: inline CSS and JS (click a column header to
sort), and the accuracy/cost frontier plot embedded as a base64 PNG.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from mempo_gym.leaderboard.score import RESULT_FORMAT
from mempo_gym.plots import plot_frontier

BOARD_COLUMNS = ["env", "rank", "name", "agent", "n", "f1", "f1_lo", "f1_hi", "em", "tokens_total",
                 "tokens_peak", "tokens_generated", "turns", "settings"]


def short_settings(kwargs: dict[str, Any], width: int = 40) -> str:
    """Env kwargs as compact JSON, long strings (instructions) cut to ``width`` characters.

    >>> short_settings({"num_tasks": 50, "instructions": "x" * 100}, width=8)
    '{"instructions": "xxxxxxx…", "num_tasks": 50}'
    """
    shown = {k: (v[: width - 1] + "…" if isinstance(v, str) and len(v) > width else v) for k, v in kwargs.items()}
    return json.dumps(shown, sort_keys=True, ensure_ascii=False)


def load_results(results_dir: str | Path) -> pd.DataFrame:
    """Accepted scored results (``*.json`` written by ``mempo-gym score``) as one row per (submission, env)."""
    rows = []
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(result, dict) or result.get("result_format") != RESULT_FORMAT or result.get("status") != "accepted":
            continue
        for env_id, env in result.get("envs", {}).items():
            rows.append({
                "env": env_id, "name": result["submission"]["name"], "agent": result["agent"].get("name", ""),
                "n": env["n"], "f1": env["f1"], "f1_lo": env["f1_lo"], "f1_hi": env["f1_hi"], "em": env["em"],
                "tokens_total": env["tokens_total"], "tokens_peak": env["tokens_peak"],
                "tokens_generated": env["tokens_generated"], "turns": env["turns"],
                "settings": short_settings(env.get("kwargs", {})), "file": path.name,
            })
    return pd.DataFrame(rows, columns=[c for c in BOARD_COLUMNS if c != "rank"] + ["file"])


def rank(results: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted per env by F1 (desc) then tokens_total (asc), with a 1-based ``rank``."""
    if results.empty:
        return results.assign(rank=pd.Series(dtype=int))[BOARD_COLUMNS]
    ordered = results.sort_values(["env", "f1", "tokens_total"], ascending=[True, False, True], kind="stable")
    ordered = ordered.assign(rank=ordered.groupby("env").cumcount() + 1)
    return ordered[BOARD_COLUMNS].reset_index(drop=True)


def to_markdown(board: pd.DataFrame) -> str:
    """One Markdown table per env."""
    parts = ["# MemPO-Gym leaderboard\n"]
    for env, frame in board.groupby("env", sort=True):
        parts.append(f"\n## {env}\n\n| rank | submission | agent | n | F1 [95% CI] | EM | tokens_total | "
                     "tokens_peak | tokens_generated | turns | settings |\n|---|---|---|---|---|---|---|---|---|---|---|")
        for _, r in frame.iterrows():
            cells = [str(r["rank"]), r["name"], r["agent"], str(r["n"]),
                     f"{r['f1']:.3f} [{r['f1_lo']:.3f}, {r['f1_hi']:.3f}]", f"{r['em']:.3f}",
                     f"{r['tokens_total']:.1f}", f"{r['tokens_peak']:.1f}", f"{r['tokens_generated']:.1f}",
                     f"{r['turns']:.2f}", f"`{r['settings']}`"]
            parts.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    if board.empty:
        parts.append("\nNo accepted submissions yet.")
    return "\n".join(parts) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#222;background:#fff}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.35em .6em;text-align:right}
td.t,th.t{text-align:left}th{background:#eef;cursor:pointer;user-select:none}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
tr:nth-child(even){background:#f7f7fb}td small{white-space:nowrap}img{max-width:100%;border:1px solid #ddd}
code{font-size:.85em;color:#555}
"""

_JS = """
document.querySelectorAll('table.board').forEach(function(table){
  table.querySelectorAll('th').forEach(function(th, col){
    th.addEventListener('click', function(){
      var asc = !th.classList.contains('sorted-asc');
      table.querySelectorAll('th').forEach(function(h){h.classList.remove('sorted-asc','sorted-desc');});
      th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function(a, b){
        var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
});
// index.html#sort=KEY sorts ascending on load, #sort=KEY-desc descending (for links and checks).
(function(){
  var m = /sort=([a-z_0-9]+?)(-desc)?$/.exec(location.hash);
  if (!m) return;
  document.querySelectorAll('th[data-key="' + m[1] + '"]').forEach(function(th){
    th.click(); if (m[2]) th.click();
  });
})();
"""


def to_html(board: pd.DataFrame, title: str = "MemPO-Gym leaderboard") -> str:
    """A self-contained HTML page: sortable tables per env and the inline frontier plot."""
    e = html.escape
    sections = []
    columns = [("rank", "rank", False), ("name", "submission", True), ("agent", "agent", True), ("n", "n", False),
               ("f1", "F1", False), ("em", "EM", False), ("tokens_total", "tokens_total", False),
               ("tokens_peak", "tokens_peak", False), ("tokens_generated", "tokens_generated", False),
               ("turns", "turns", False), ("settings", "settings", True)]
    for env, frame in board.groupby("env", sort=True):
        head = "".join(f'<th class="{"t" if text else ""}" data-key="{key}">{e(label)}</th>'
                       for key, label, text in columns)
        body = []
        for _, r in frame.iterrows():
            cells = []
            for key, _, text in columns:
                value = r[key]
                if key == "f1":
                    shown = f"{value:.3f} <small>[{r['f1_lo']:.3f}, {r['f1_hi']:.3f}]</small>"
                elif key == "settings":
                    shown = f"<code>{e(str(value))}</code>"
                elif isinstance(value, float):
                    shown = e(f"{value:.3f}" if key == "em" else f"{value:.1f}")
                else:
                    shown = e(str(value))
                cells.append(f'<td class="{"t" if text else ""}" data-v="{e(str(value))}">{shown}</td>')
            body.append("<tr>" + "".join(cells) + "</tr>")
        sections.append(f'<h2>{e(str(env))}</h2>\n<table class="board" data-env="{e(str(env))}"><thead><tr>{head}</tr>'
                        f'</thead><tbody>{"".join(body)}</tbody></table>')
    plot = ""
    if not board.empty:
        frontier = board.assign(run=board["name"])
        png = plot_frontier(frontier, title="Accuracy vs token cost (re-scored submissions)")
        plot = (f'<h2>Accuracy / cost frontier</h2>\n<img id="frontier" alt="F1 vs tokens_total" '
                f'src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    empty = "" if sections else "<p>No accepted submissions yet.</p>"
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>\n<p>Ranked per environment by re-scored mean F1, "
            f"ties by mean tokens_total. Click a column header to sort.</p>\n{empty}{''.join(sections)}\n{plot}\n"
            f"<script>{_JS}</script></body></html>\n")


def build_leaderboard(results_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Rank the scored results in ``results_dir``; write ``leaderboard.md`` and ``index.html``."""
    board = rank(load_results(results_dir))
    out = Path(out_dir) if out_dir is not None else Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "leaderboard.md", "html": out / "index.html"}
    paths["markdown"].write_text(to_markdown(board), encoding="utf-8")
    paths["html"].write_text(to_html(board), encoding="utf-8")
    return paths
