"""Leaderboard: submission packing, safe scoring, every tampering case, fuzzing, the HTML page."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import _harness_envs as h  # noqa: E402

from mempo_gym.agent import Agent  # noqa: E402
from mempo_gym.cli import main  # noqa: E402
from mempo_gym.harness import evaluate  # noqa: E402
from mempo_gym.leaderboard import (  # noqa: E402
    ArchiveLimits, SubmissionRejected, build_leaderboard, score_submission, submit_run, write_result,
)
from mempo_gym.leaderboard.schema import manifest_entry  # noqa: E402


class GuessFirst(Agent):
    """Answers at once with a fixed guess (a real closed-book-style agent, no search)."""

    name = "guess-first"

    def act(self, observation: Any, info: Any, slot: int = 0) -> str:
        return "<mem></mem><think>no search</think><answer>Mila Voss</answer>"


ENV_ID = "MemPO-SynthWiki-v0"
KWARGS = {"num_tasks": 12}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lb") / "searcher"
    evaluate(ENV_ID, h.ScriptedSearcher(), episodes=12, seed=21, out=out, batch_size=3, env_kwargs=KWARGS,
             progress=False)
    return out


@pytest.fixture(scope="module")
def members(run_dir: Path) -> dict[str, bytes]:
    path = submit_run(run_dir, name="Scripted", contact="a@example.org", out=run_dir.parent / "sub.zip")
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist()}


def _zip(members: dict[str, bytes], *, fix_manifest: bool = True,
         tweak: Callable[[zipfile.ZipInfo], None] | None = None) -> bytes:
    members = dict(members)
    if fix_manifest and "manifest.json" in members:
        manifest = json.loads(members["manifest.json"])
        manifest["members"] = {n: manifest_entry(d) for n, d in members.items() if n != "manifest.json"}
        members["manifest.json"] = json.dumps(manifest).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            if tweak is not None:
                tweak(info)
            archive.writestr(info, data)
    return buffer.getvalue()


def _episodes(members: dict[str, bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in members["episodes.jsonl"].splitlines()]


def _with_episodes(members: dict[str, bytes], records: list[dict[str, Any]]) -> dict[str, bytes]:
    return {**members, "episodes.jsonl": "".join(json.dumps(r) + "\n" for r in records).encode()}


def _rejected(data: bytes, limits: ArchiveLimits = ArchiveLimits()) -> SubmissionRejected:
    with pytest.raises(SubmissionRejected) as info:
        score_submission(data, limits=limits)
    return info.value


def test_submit_and_score_round_trip(run_dir: Path, members: dict[str, bytes], tmp_path: Path) -> None:
    assert set(members) == {"manifest.json", "config.json", "episodes.jsonl"}
    manifest = json.loads(members["manifest.json"])
    assert manifest["schema_version"] == 2 and manifest["submission"]["name"] == "Scripted"
    assert manifest["members"]["episodes.jsonl"] == manifest_entry(members["episodes.jsonl"])
    assert members["episodes.jsonl"] == (run_dir / "episodes.jsonl").read_bytes()
    result = score_submission(_zip(members))
    env = result["envs"][ENV_ID]
    records = _episodes(members)
    assert result["status"] == "accepted" and env["n"] == 12 and env["claimed_score_mismatches"] == 0
    assert env["f1"] == pytest.approx(sum(r["f1"] for r in records) / 12)
    assert env["tokens_total"] == pytest.approx(sum(r["tokens_total"] for r in records) / 12)
    assert sum(v["n"] for v in env["by_objectives"].values()) == 12
    # forged claimed scores and golds are ignored: the scorer re-scores against the env
    forged = [{**r, "f1": 1.0, "em": 1.0, "golds": [[r["prediction"] or ""]]} for r in records]
    rescored = score_submission(_zip(_with_episodes(members, forged)))["envs"][ENV_ID]
    assert rescored["f1"] == pytest.approx(env["f1"]) and rescored["claimed_score_mismatches"] > 0


def test_cli_submit_score_and_rejection_exit_codes(run_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    zip_path = tmp_path / "s.zip"
    assert main(["submit", str(run_dir), "--name", "N", "--contact", "c@x", "--out", str(zip_path)]) == 0
    assert main(["score", str(zip_path), "--out", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "accepted"
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["score", str(bad)]) == 3
    assert "not a readable zip archive" in capsys.readouterr().err


def test_record_level_checks(members: dict[str, bytes]) -> None:
    records = _episodes(members)
    duplicate = records + [records[0]]
    assert "recorded twice" in _rejected(_zip(_with_episodes(members, duplicate))).reason

    missing = [dict(r) for r in records]
    del missing[0]["transcript"]
    error = _rejected(_zip(_with_episodes(members, missing)))
    assert error.reason == "missing field 'transcript'" and error.field == "line 1: transcript"

    config = json.loads(members["config.json"])
    del config["task_order"]
    error = _rejected(_zip({**members, "config.json": json.dumps(config).encode()}))
    assert error.member == "config.json" and "task_order" in error.reason
    config = json.loads(members["config.json"])
    config["envs"][0]["id"] = "MemPO-DoesNotExist-v0"
    other_env = [{**r, "env_id": "MemPO-DoesNotExist-v0"} for r in records]
    error = _rejected(_zip({**_with_episodes(members, other_env), "config.json": json.dumps(config).encode()}))
    assert "not a registered MemPO-Gym id" in error.reason


def test_archive_level_tampering_is_rejected(members: dict[str, bytes]) -> None:
    episodes = members["episodes.jsonl"]
    same_length = episodes.replace(b'"turns":2', b'"turns":3', 1)
    assert len(same_length) == len(episodes) and same_length != episodes
    error = _rejected(_zip({**members, "episodes.jsonl": same_length}, fix_manifest=False))
    assert (error.member, error.field) == ("episodes.jsonl", "sha256") and "checksum mismatch" in error.reason
    error = _rejected(_zip({**members, "episodes.jsonl": episodes + b"\n"}, fix_manifest=False))
    assert (error.member, error.field) == ("episodes.jsonl", "size")

    no_manifest = {k: v for k, v in members.items() if k != "manifest.json"}
    assert _rejected(_zip(no_manifest)).reason == "missing manifest.json"

    error = _rejected(_zip({**members, "notes.json": b"{}"}, fix_manifest=False))
    assert error.member == "notes.json" and "unexpected member" in error.reason
    error = _rejected(_zip({k: v for k, v in members.items() if k != "config.json"}, fix_manifest=False))
    assert error.member == "config.json" and "missing from the archive" in error.reason

    assert "path traversal" in _rejected(_zip({**members, "../evil.json": b"{}"})).reason
    assert "absolute path" in _rejected(_zip({**members, "/etc/evil.json": b"{}"})).reason
    assert "no folders" in _rejected(_zip({**members, "sub/evil.json": b"{}"})).reason

    def symlink(info: zipfile.ZipInfo) -> None:
        if info.filename == "config.json":
            info.external_attr = 0o120777 << 16
    error = _rejected(_zip(members, tweak=symlink))
    assert error.member == "config.json" and "symbolic links" in error.reason

    limit = len(members["config.json"]) + 1  # the episodes member is larger
    assert len(members["episodes.jsonl"]) > limit
    error = _rejected(_zip(members), ArchiveLimits(max_member_bytes=limit))
    assert error.member == "episodes.jsonl" and f"above the {limit}-byte limit" in error.reason
    assert "members" in _rejected(_zip(members), ArchiveLimits(max_members=2)).reason
    bomb = {**members, "episodes.jsonl": b"\x00" * (4 * 1024 * 1024)}
    error = _rejected(_zip(bomb))
    assert error.member == "episodes.jsonl" and "zip bomb" in error.reason

    error = _rejected(_zip({**members, "config.json": b"{not json"}))
    assert error.member == "config.json" and "bad JSON" in error.reason
    manifest = json.loads(members["manifest.json"])
    manifest["schema_version"] = 1
    error = _rejected(_zip({**members, "manifest.json": json.dumps(manifest).encode()}, fix_manifest=False))
    assert (error.member, error.field) == ("manifest.json", "schema_version")
    assert "not a readable zip archive" in _rejected(b"random bytes, not a zip").reason


_VALID_NAMES = ["manifest.json", "config.json", "episodes.jsonl", "x.json", "../a", "/abs", "d/e.json"]
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@st.composite
def _episode_like(draw: st.DrawFn) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": draw(st.text(max_size=6)), "env_id": draw(st.sampled_from([ENV_ID, "MemPO-Nope-v0", "x:y"])),
        "task_id": draw(st.sampled_from(["synthwiki-test-0-0", "tiny-404", ""])),
        "prediction": draw(st.none() | st.text(max_size=10)),
        "tokens_total": draw(st.integers(-2, 500)), "tokens_peak": draw(st.integers(-2, 500)),
        "tokens_generated": draw(st.integers(-2, 500)),
        "transcript": draw(st.lists(st.fixed_dictionaries({
            "context": st.text(max_size=40) | st.just("Question: Who founded Karovi?\n"),
            "output": st.text(max_size=20) | st.just("<answer>Mila Voss</answer>"),
            "input_tokens": st.integers(-1, 60), "output_tokens": st.integers(-1, 30)}), max_size=3)),
    }
    for key in draw(st.lists(st.sampled_from(sorted(base)), max_size=2)):
        base[key] = draw(_json_values)  # break a field now and then
    return base


@st.composite
def _submission_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "zip", "json"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "zip":
        files = draw(st.dictionaries(st.sampled_from(_VALID_NAMES), st.binary(max_size=200), max_size=4))
        return _zip(files, fix_manifest=False)
    config = draw(st.sampled_from([
        {"agent": {"name": "fz"}, "seed": 0, "episodes": 2, "task_order": "permutation",
         "envs": [{"id": ENV_ID, "kwargs": {"num_tasks": 3}}]},
        {"agent": {"name": "fz"}, "seed": 0, "episodes": 1, "task_order": "sample",
         "envs": [{"id": ENV_ID, "kwargs": {"max_turns": 0}}]},
    ]) | _json_values)
    episodes = draw(st.lists(_episode_like() | _json_values, min_size=0, max_size=3))
    files = {"manifest.json": json.dumps({"schema_version": draw(st.sampled_from([2, 2, 1, "2"])),
                                          "submission": {"name": "f", "contact": "z"}}).encode(),
             "config.json": json.dumps(config).encode(),
             "episodes.jsonl": "".join(json.dumps(e) + "\n" for e in episodes).encode()}
    return _zip(files)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_submission_bytes())
def test_fuzzed_submissions_never_crash_the_scorer(data: bytes) -> None:
    try:
        result = score_submission(data)
    except SubmissionRejected as exc:
        assert str(exc).startswith("submission rejected: ")
    else:
        assert result["status"] == "accepted"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_mutations_of_a_valid_submission_never_crash_the_scorer(members: dict[str, bytes],
                                                                       data: st.DataObject) -> None:
    """Valid archive, one field anywhere in config/episodes replaced by random JSON (reaches the deep checks)."""
    records = _episodes(members)
    config = json.loads(members["config.json"])
    target: Any = data.draw(st.sampled_from(["config", "episode", "call"]))
    if target == "config":
        node: Any = config
    else:
        node = data.draw(st.sampled_from(records))
        if target == "call":
            node = data.draw(st.sampled_from(node["transcript"]))
    key = data.draw(st.sampled_from(sorted(node)))
    node[key] = data.draw(_json_values)
    mutated = {**_with_episodes(members, records), "config.json": json.dumps(config).encode()}
    try:
        result = score_submission(_zip(mutated))
    except SubmissionRejected as exc:
        assert exc.reason
    else:
        assert result["envs"][ENV_ID]["n"] == len(records)


class GoldReader(Agent):
    """Reads the task's golds at reset and answers at once (F1 = 1; not declared a control)."""

    name = "gold-reader"

    def reset(self, task: Any, slot: int = 0) -> None:
        self.answer = "; ".join(q.answers[0] for q in task.questions)

    def act(self, observation: Any, info: Any, slot: int = 0) -> str:
        return f"<answer>{self.answer}</answer>"


def test_leaderboard_markdown_html_and_chromium(tmp_path: Path) -> None:
    from mempo_gym.agent import make_agent

    results = tmp_path / "results"
    plan = [("Gold", GoldReader(), KWARGS), ("Guess", GuessFirst(), KWARGS), ("Oracle", make_agent("oracle"), KWARGS),
            ("Wide", GoldReader(), {**KWARGS, "context_budget": 8192})]
    for name, agent, kwargs in plan:
        run = tmp_path / name
        evaluate(ENV_ID, agent, episodes=6, seed=21, out=run, env_kwargs=kwargs, progress=False)
        write_result(score_submission(submit_run(run, name=name, contact="c@x")), results / f"{name}.score.json")
    (results / "junk.json").write_text('{"not": "a result"}')
    paths = build_leaderboard(results)
    markdown = paths["markdown"].read_text()
    sections = markdown.split("\n## ")[1:]
    assert len(sections) == 2  # the context_budget=8192 run is grouped apart, never ranked with the others
    main = next(sec for sec in sections if "context_budget" not in sec.splitlines()[0])
    wide = next(sec for sec in sections if "context_budget" in sec.splitlines()[0])
    assert main.index("| 1 | Gold |") < main.index("| 2 | Guess |") < main.index("| control | Oracle | oracle (control)")
    assert "| 1 | Wide |" in wide and "Wide" not in main
    page = paths["html"].read_text()
    assert "<script>" in page and 'src="data:image/png;base64,' in page and "http" not in page.split("<body>")[1]

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium); HTML not checked in a browser")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    shot = tmp_path / "leaderboard.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1200,800", paths["html"].as_uri()],
                   capture_output=True, timeout=120, check=True)
    print(f"leaderboard screenshot: {shot}")
    from PIL import Image

    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 20  # text, table and plot rendered, not a blank page
    dom = subprocess.run(flags + ["--dump-dom", paths["html"].as_uri() + "#sort=f1"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    rows = _table_rows(dom)
    assert rows[0][1] == "Guess"  # the JS re-sorted by F1, ascending
    f1s = [float(r[5]) for r in rows]
    assert f1s == sorted(f1s) and f1s[0] < f1s[-1]
    assert [r[0] for r in _table_rows(page)] == ["1", "2", "control"]  # as written: ranked by F1, control last


def _table_rows(document: str, holding: str = "Gold") -> list[list[str]]:
    """``data-v`` values of each body row of the leaderboard table that lists ``holding``
    (each settings group has its own table)."""
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tables: list[list[list[str]]] = []
            self.in_body = self.in_table = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "table" and "board" in (dict(attrs).get("class") or ""):
                self.in_table = True
                self.tables.append([])
            elif tag == "tbody" and self.in_table:
                self.in_body = True
            elif tag == "tr" and self.in_body:
                self.tables[-1].append([])
            elif tag == "td" and self.in_body:
                self.tables[-1][-1].append(dict(attrs).get("data-v") or "")

        def handle_endtag(self, tag: str) -> None:
            if tag == "tbody":
                self.in_body = self.in_table = False

    parser = Tables()
    parser.feed(document)
    return next(rows for rows in parser.tables if any(holding in row for row in rows))


def test_reference_oracle_on_synthwiki_is_accepted_with_perfect_score(tmp_path: Path) -> None:
    pytest.importorskip("mempo_agents.registry", reason="mempo_agents (reference agents) is not installed")
    from mempo_gym.agent import make_agent

    env_id = "MemPO-SynthWiki-2obj-v0"
    run = tmp_path / "oracle"
    frame = evaluate(env_id, make_agent("oracle"), episodes=4, seed=0, out=run, batch_size=2,
                     env_kwargs={"num_tasks": 12}, progress=False)
    assert frame["f1"].tolist() == [1.0] * 4
    result = score_submission(submit_run(run, name="Oracle", contact="c@x"))
    env = result["envs"][env_id]
    assert (env["n"], env["f1"], env["kwargs"]["num_tasks"]) == (4, 1.0, 12)
    assert env["tokens_total"] == pytest.approx(frame["tokens_total"].mean())
