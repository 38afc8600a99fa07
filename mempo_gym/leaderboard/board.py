"""The leaderboard: scored results ranked per env, as Markdown and a static HTML page.

Ranking per env and settings group: mean F1 (re-scored) descending, ties broken by mean
``tokens_total`` ascending. Runs are ranked only against runs with the same benchmark
settings: ``standard`` (the suite's settings), ``private-world`` (SynthWiki worlds from a
host's private seed) and every distinct non-standard setting each form their own group.
Controls (oracle, closed-book, random) are listed and marked but never ranked. The suite
table has one row per submission and a column per suite entry (F1 with its interval,
tokens_total, tokens_peak). The HTML page is self-contained: inline CSS and JS (click a
column header to sort), and the accuracy/cost frontier plot embedded as a base64 PNG.
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

BOARD_COLUMNS = ["env", "group", "rank", "name", "agent", "model", "memory", "n", "f1", "f1_lo", "f1_hi", "em",
                 "tokens_total", "tokens_peak", "tokens_generated", "turns", "settings", "control", "version", "date"]
GROUP_ORDER = {"standard": 0, "private-world": 1}


def short_settings(kwargs: dict[str, Any], width: int = 40) -> str:
    """Env kwargs as compact JSON, long strings (instructions) cut to ``width`` characters.

    >>> short_settings({"num_tasks": 50, "instructions": "x" * 100}, width=8)
    '{"instructions": "xxxxxxx…", "num_tasks": 50}'
    """
    shown = {k: (v[: width - 1] + "…" if isinstance(v, str) and len(v) > width else v) for k, v in kwargs.items()}
    return json.dumps(shown, sort_keys=True, ensure_ascii=False)


def _model(agent: dict[str, Any]) -> str:
    """The model an agent description names (``model``, or its backend's), else ``""``."""
    backend = agent.get("backend")
    model = agent.get("model") or (backend.get("model") if isinstance(backend, dict) else None)
    return str(model)[:80] if model else ""


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
        agent = result.get("agent") or {}
        for env_id, env in result.get("envs", {}).items():
            group = env.get("settings_group", "non-standard")
            kwargs = dict(env.get("kwargs", {}))
            if group == "private-world":
                kwargs.pop("seed", None)  # the host's world seed stays private
            settings = short_settings(kwargs)
            if group == "non-standard":
                group = "non-standard: " + ", ".join(env.get("non_standard_settings") or ["?"])
            rows.append({
                "env": env_id, "group": group, "name": result["submission"]["name"], "agent": agent.get("name", ""),
                "model": _model(agent),
                "memory": env.get("memory") or "", "n": env["n"], "f1": env["f1"], "f1_lo": env["f1_lo"],
                "f1_hi": env["f1_hi"], "em": env["em"], "tokens_total": env["tokens_total"],
                "tokens_peak": env["tokens_peak"], "tokens_generated": env["tokens_generated"], "turns": env["turns"],
                "settings": settings, "control": bool(result.get("control")),
                "version": result.get("library_version") or "", "suite": result.get("suite"),
                "date": str((result.get("submission") or {}).get("created_at") or result.get("scored_at") or "")[:10],
                "file": path.name,
            })
    return pd.DataFrame(rows, columns=[c for c in BOARD_COLUMNS if c != "rank"] + ["suite", "file"])


def rank(results: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted per (env, settings group) by F1 (desc) then tokens_total (asc), with a 1-based
    ``rank`` within the group; controls come last in their group with rank ``"control"``."""
    if results.empty:
        return results.assign(rank=pd.Series(dtype=object))[BOARD_COLUMNS]
    key = results["group"].map(lambda g: GROUP_ORDER.get(g, 2))
    ordered = results.assign(_g=key).sort_values(["env", "_g", "group", "control", "f1", "tokens_total"],
                                                 ascending=[True, True, True, True, False, True], kind="stable")
    ranks = ordered[~ordered["control"]].groupby(["env", "group"]).cumcount() + 1
    ordered = ordered.assign(rank=[str(ranks[i]) if i in ranks.index else "control" for i in ordered.index])
    return ordered[BOARD_COLUMNS].reset_index(drop=True)


def suite_table(results: pd.DataFrame, suite_name: str | None = None) -> pd.DataFrame:
    """One row per submission with a column per entry of the suite: ``LABEL f1`` (with ``f1_lo``/``f1_hi``),
    ``LABEL tokens_total``, ``LABEL tokens_peak``; plus ``complete`` (every entry run with standard
    settings) and ``mean_f1`` over the entries present. Complete non-control rows are ranked by ``mean_f1``."""
    from mempo_gym.suite import DEFAULT_SUITE, get_suite

    suite = get_suite(suite_name or DEFAULT_SUITE)
    rows = []
    mine = results[results["suite"] == suite.name] if "suite" in results else results.iloc[0:0]
    for (name, file), frame in mine.groupby(["name", "file"], sort=False):
        first = frame.iloc[0]
        row: dict[str, Any] = {"name": name, "agent": first["agent"], "model": first["model"],
                               "memory": ", ".join(sorted(set(frame["memory"]))), "version": first["version"],
                               "date": first["date"], "control": bool(first["control"])}
        standard = 0
        for entry in suite.entries:
            hit = frame[frame["env"] == entry.env_id]
            if hit.empty:
                continue
            r = hit.iloc[0]
            standard += int(r["group"] in ("standard", "private-world") and r["n"] == entry.episodes)
            row.update({f"{entry.label} f1": r["f1"], f"{entry.label} f1_lo": r["f1_lo"],
                        f"{entry.label} f1_hi": r["f1_hi"], f"{entry.label} tokens_total": r["tokens_total"],
                        f"{entry.label} tokens_peak": r["tokens_peak"]})
        row["complete"] = standard == len(suite.entries)
        row["mean_f1"] = float(frame["f1"].mean())
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table.sort_values(["complete", "control", "mean_f1"], ascending=[False, True, False], kind="stable")
    ranked = (table["complete"] & ~table["control"]).cumsum()
    table["rank"] = [str(n) if c and not k else ("control" if k else "incomplete")
                     for n, c, k in zip(ranked, table["complete"], table["control"])]
    return table.reset_index(drop=True)


def _suite_markdown(table: pd.DataFrame, suite_name: str) -> list[str]:
    from mempo_gym.suite import get_suite

    entries = get_suite(suite_name).entries
    head = ["rank", "submission", "agent", "model", "memory", "version", "date"] + [e.label for e in entries]
    parts = [f"\n## {suite_name}\n\nEach entry: F1 [95% CI] / tokens_total / tokens_peak.\n",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        cells = [r["rank"], r["name"], r["agent"] + (" (control)" if r["control"] else ""), r["model"], r["memory"],
                 r["version"], r["date"]]
        for e in entries:
            f1 = r.get(f"{e.label} f1")
            cells.append("—" if f1 is None or pd.isna(f1) else
                         f"{f1:.3f} [{r[f'{e.label} f1_lo']:.3f}, {r[f'{e.label} f1_hi']:.3f}] / "
                         f"{r[f'{e.label} tokens_total']:.0f} / {r[f'{e.label} tokens_peak']:.0f}")
        parts.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return parts


def to_markdown(board: pd.DataFrame, suite: pd.DataFrame | None = None, suite_name: str | None = None) -> str:
    """The suite table (when given), then one Markdown table per env and settings group."""
    from mempo_gym.suite import DEFAULT_SUITE

    parts = ["# MemPO-Gym leaderboard\n"]
    if suite is not None and not suite.empty:
        parts += _suite_markdown(suite, suite_name or DEFAULT_SUITE)
    for (env, group), frame in board.groupby(["env", "group"], sort=False):
        parts.append(f"\n## {env} ({group})\n\n| rank | submission | agent | memory | n | F1 [95% CI] | EM | tokens_total | "
                     "tokens_peak | tokens_generated | turns | settings |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
        for _, r in frame.iterrows():
            agent = r["agent"] + (" (control)" if r["control"] else "")
            cells = [str(r["rank"]), r["name"], agent, r["memory"], str(r["n"]),
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


def _suite_html(table: pd.DataFrame, suite_name: str) -> str:
    from mempo_gym.suite import get_suite

    e = html.escape
    entries = get_suite(suite_name).entries
    fixed = [("rank", "rank"), ("name", "submission"), ("agent", "agent"), ("model", "model"), ("memory", "memory"),
             ("version", "version"), ("date", "date")]
    head = "".join(f'<th class="t">{e(label)}</th>' for _, label in fixed)
    head += "".join(f"<th>{e(x.label)}<br><small>F1 [CI] / tokens_total / tokens_peak</small></th>" for x in entries)
    body = []
    for _, r in table.iterrows():
        cells = [f'<td class="t">{e(str(r[k]))}{" <small>(control)</small>" if k == "agent" and r["control"] else ""}</td>'
                 for k, _ in fixed]
        for x in entries:
            f1 = r.get(f"{x.label} f1")
            cells.append("<td>—</td>" if f1 is None or pd.isna(f1) else
                         f'<td data-v="{f1:.6f}">{f1:.3f} <small>[{r[f"{x.label} f1_lo"]:.3f}, '
                         f'{r[f"{x.label} f1_hi"]:.3f}]</small><br>{r[f"{x.label} tokens_total"]:.0f} / '
                         f'{r[f"{x.label} tokens_peak"]:.0f}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<h2>{e(suite_name)}</h2>\n<table class="suite"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def to_html(board: pd.DataFrame, title: str = "MemPO-Gym leaderboard", suite: pd.DataFrame | None = None,
            suite_name: str | None = None) -> str:
    """A self-contained HTML page: the suite table, sortable tables per env and group, the frontier plot."""
    from mempo_gym.suite import DEFAULT_SUITE

    e = html.escape
    sections = []
    if suite is not None and not suite.empty:
        sections.append(_suite_html(suite, suite_name or DEFAULT_SUITE))
    columns = [("rank", "rank", False), ("name", "submission", True), ("agent", "agent", True),
               ("memory", "memory", True), ("n", "n", False),
               ("f1", "F1", False), ("em", "EM", False), ("tokens_total", "tokens_total", False),
               ("tokens_peak", "tokens_peak", False), ("tokens_generated", "tokens_generated", False),
               ("turns", "turns", False), ("settings", "settings", True)]
    for (env, group), frame in board.groupby(["env", "group"], sort=False):
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
                elif key == "agent" and r["control"]:
                    shown = f"{e(str(value))} <small>(control)</small>"
                elif isinstance(value, float):
                    shown = e(f"{value:.3f}" if key == "em" else f"{value:.1f}")
                else:
                    shown = e(str(value))
                cells.append(f'<td class="{"t" if text else ""}" data-v="{e(str(value))}">{shown}</td>')
            body.append("<tr>" + "".join(cells) + "</tr>")
        sections.append(f'<h2>{e(str(env))} <small>({e(str(group))})</small></h2>\n<table class="board" data-env="{e(str(env))}"><thead><tr>{head}</tr>'
                        f'</thead><tbody>{"".join(body)}</tbody></table>')
    plot = ""
    if not board.empty:
        frontier = board.assign(run=board["name"])
        png = plot_frontier(frontier, title="Accuracy vs token cost (re-scored submissions)")
        plot = (f'<h2>Accuracy / cost frontier</h2>\n<img id="frontier" alt="F1 vs tokens_total" '
                f'src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    empty = "" if sections else "<p>No accepted submissions yet.</p>"
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>\n<p>Ranked per environment and settings group (runs with other benchmark settings are never ranked with standard ones; controls are marked, not ranked) by replay-verified mean F1, "
            f"ties by mean tokens_total. Click a column header to sort.</p>\n{empty}{''.join(sections)}\n{plot}\n"
            f"<script>{_JS}</script></body></html>\n")


def build_leaderboard(results_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Rank the scored results in ``results_dir``; write ``leaderboard.md`` and ``index.html``."""
    results = load_results(results_dir)
    board = rank(results)
    suite = suite_table(results)
    out = Path(out_dir) if out_dir is not None else Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "leaderboard.md", "html": out / "index.html"}
    paths["markdown"].write_text(to_markdown(board, suite), encoding="utf-8")
    paths["html"].write_text(to_html(board, suite=suite), encoding="utf-8")
    return paths
