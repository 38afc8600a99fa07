"""`reproduce_mempo.py all`: the whole recipe as jobs, run as parallel processes in dependency order."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mempo_agents.hardware import describe_cpu
from tests.test_reproduce_mempo_table import load_script

pytest.importorskip("torch")

# a stand-in stage script: records when it ran, sleeps, fails when asked; real processes, real exit codes
STAGE = textwrap.dedent("""
    import json, sys, time
    name, seconds, rc, trace = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    start = time.time()
    sum(i * i for i in range(2000000))  # some CPU time to account (~0.2 s: the record rounds to 0.1 s)
    held = b"x" * (600 * 2**20) if name == "a" else b""  # job a holds 600 MB (written, so resident)
    time.sleep(seconds)
    with open(trace, "a") as f:
        f.write(json.dumps({"job": name, "start": start, "end": time.time()}) + "\\n")
    sys.exit(rc)
""")


def trace_of(path: Path) -> dict[str, dict[str, float]]:
    return {row["job"]: row for row in map(json.loads, path.read_text().splitlines())}


def test_jobs_run_in_parallel_after_their_dependencies_and_a_rerun_skips_finished_ones(tmp_path: Path) -> None:
    repro = load_script()
    script, trace = tmp_path / "stage.py", tmp_path / "trace.jsonl"
    script.write_text(STAGE)
    job = lambda name, s, after=(): repro.Job(name, (name, str(s), "0", str(trace)), after)  # noqa: E731
    jobs = [job("a", 0.6), job("b", 0.6), job("c", 0.1, ("a",)), job("d", 0.1, ("a", "b"))]
    repro.run_jobs(jobs, 2, tmp_path / "out", script=script)
    ran = trace_of(trace)
    assert set(ran) == {"a", "b", "c", "d"}
    assert ran["b"]["start"] < ran["a"]["end"] and ran["a"]["start"] < ran["b"]["end"]  # two at once
    assert ran["c"]["start"] >= ran["a"]["end"] and ran["d"]["start"] >= max(ran["a"]["end"], ran["b"]["end"])
    rows = [json.loads(line) for line in (tmp_path / "out" / "jobs.jsonl").read_text().splitlines()]
    assert [r["rc"] for r in rows if r["job"] != "all"] == [0, 0, 0, 0]
    assert all(r["cpu_s"] > 0 and r["wall_s"] >= 0.1 for r in rows if r["job"] != "all")
    peak = {r["job"]: r["max_rss_gb"] for r in rows if r["job"] != "all"}
    assert peak["a"] >= 0.59 and max(peak["b"], peak["c"], peak["d"]) < 0.2, peak  # not this process's size
    assert rows[-1]["job"] == "all" and rows[-1]["workers"] == 2 and rows[-1]["failed"] == []
    assert rows[-1]["cpu"] == describe_cpu()  # the host, for the wall times
    assert (tmp_path / "out" / "logs" / "a.log").is_file()

    trace.unlink()  # a second run: the same jobs are done; a job with other arguments runs again
    repro.run_jobs([*jobs[:3], repro.Job("d", ("d", "0.1", "0", str(trace), "x"), ("a", "b"))], 2,
                   tmp_path / "out", script=script)
    assert set(trace_of(trace)) == {"d"}


def test_two_heavy_jobs_never_run_at_once_and_a_light_one_runs_beside_them(tmp_path: Path) -> None:
    repro = load_script()
    script, trace = tmp_path / "stage.py", tmp_path / "trace.jsonl"
    script.write_text(STAGE)
    job = lambda name, heavy: repro.Job(name, (name, "0.5", "0", str(trace)), heavy=heavy)  # noqa: E731
    repro.run_jobs([job("rl-1", True), job("rl-2", True), job("eval", False)], 2, tmp_path / "out", script=script)
    ran = trace_of(trace)
    assert ran["rl-2"]["start"] >= ran["rl-1"]["end"]  # the second heavy job waited, with a worker free
    assert ran["eval"]["start"] < ran["rl-1"]["end"]  # the light job took that worker
    argv = ["all", "--preset", "hour", "--out", "runs/h"]
    jobs = repro.recipe_jobs(repro.build_parser().parse_args(argv), repro.PRESETS["hour"], repro.given_options(argv))
    assert not any(j.heavy for j in jobs)  # RL at the default 1,024-token minibatches (~5.5 GB) runs side by side
    argv += ["--minibatch-tokens", "4096"]
    jobs = repro.recipe_jobs(repro.build_parser().parse_args(argv), repro.PRESETS["hour"], repro.given_options(argv))
    assert {j.name for j in jobs if j.heavy} == {"grpo-fp0.5", "mempo-apply-fp0.5"}  # larger ones: one at a time


def test_a_failed_job_skips_the_jobs_after_it_and_the_others_finish(tmp_path: Path) -> None:
    repro = load_script()
    script, trace = tmp_path / "stage.py", tmp_path / "trace.jsonl"
    script.write_text(STAGE)
    jobs = [repro.Job("bad", ("bad", "0", "3", str(trace))), repro.Job("good", ("good", "0", "0", str(trace))),
            repro.Job("after-bad", ("after-bad", "0", "0", str(trace)), ("bad",)),
            repro.Job("after-good", ("after-good", "0", "0", str(trace)), ("good",))]
    with pytest.raises(SystemExit, match=r"2 of 4 jobs did not finish: bad \(exit 3, see .*bad.log\); "
                                         r"after-bad \(skipped: bad failed\)"):
        repro.run_jobs(jobs, 2, tmp_path / "out", script=script)
    assert set(trace_of(trace)) == {"bad", "good", "after-good"}  # "bad" ran (and exited 3); its follower did not
    with pytest.raises(SystemExit, match="--jobs must be at least 1, got 0"):  # 0 workers would wait forever
        repro.run_jobs(jobs, 0, tmp_path / "out", script=script)
    with pytest.raises(ValueError, match="not in the list"):
        repro.run_jobs([repro.Job("x", ("x",), ("missing",))], 1, tmp_path / "out", script=script)


def test_the_hour_preset_is_one_round_per_memory_mode_with_equal_rl_budgets() -> None:
    repro = load_script()
    parser = repro.build_parser()
    argv = ["all", "--preset", "hour", "--out", "runs/h", "--jobs", "2"]
    jobs = repro.recipe_jobs(parser.parse_args(argv), repro.PRESETS["hour"], repro.given_options(argv))
    by_name = {job.name: job for job in jobs}
    assert [job.name for job in jobs[:2]] == ["sft-full", "sft-self"]  # the longest chain first
    parsed = {job.name: parser.parse_args(job.argv) for job in jobs}  # every job is a valid command of the script
    for memory, steps in (("self", 600), ("full", 140)):
        sft = parsed[f"sft-{memory}"]
        assert (sft.stage, sft.memory, sft.init, sft.sft_steps, sft.sft_lr) == ("sft", memory, "", steps, 1.5e-3)
        assert (sft.decision_reason, sft.numbering, sft.comparison_drills, sft.transition_drills,
                sft.transition_repeats) == ("none", "n", 0, 0, 1)
        assert sft.pack == (memory == "full")  # whole full-context episodes; self-memory turns do not pack
    grpo, mempo = parsed["grpo-fp0.5"], parsed["mempo-apply-fp0.5"]
    for rl, algo in ((grpo, "grpo"), (mempo, "mempo")):
        assert (rl.stage, rl.rl_stage, rl.init, rl.format_penalty, rl.resume) == (
            "rl", algo, str(Path("runs/h") / "sft-self" / "adapter"), 0.5, True)
    assert {k: v for k, v in vars(grpo).items() if k not in ("rl_stage", "name")} == \
        {k: v for k, v in vars(mempo).items() if k not in ("rl_stage", "name")}  # equal budgets
    assert by_name["grpo-fp0.5"].after == ("sft-self",)
    assert by_name["eval-full-context"].after == ("sft-full",) and by_name["eval-base"].after == ()
    assert {parsed[n].models for n in by_name if n.startswith("eval-")} == {
        "full-context", "sft", "grpo-fp0.5", "mempo-apply-fp0.5", "base", "oracle"}
    assert all(parsed[n].ks == "1,2" for n in by_name if n.startswith("eval-"))
    assert all(parsed[n].prefix_cache_tokens == 0 for n in by_name if n.startswith("eval-"))
    argv = ["all", "--preset", "hour", "--prefix-cache-tokens", "65536"]  # evaluations reuse prompt prefixes
    jobs = repro.recipe_jobs(parser.parse_args(argv), repro.PRESETS["hour"], repro.given_options(argv))
    assert {parser.parse_args(job.argv).prefix_cache_tokens for job in jobs if job.name.startswith("eval-")} == {65536}
    # an option given on the command line wins over the preset's recipe
    argv = ["all", "--preset", "hour", "--comparison-drills", "100", "--format-penalty", "0"]  # 0: the default
    jobs = repro.recipe_jobs(parser.parse_args(argv), repro.PRESETS["hour"], repro.given_options(argv))
    assert parser.parse_args(jobs[1].argv).comparison_drills == 100
    assert parser.parse_args(jobs[0].argv).pack and not parser.parse_args(jobs[1].argv).pack
    assert "grpo" in {job.name for job in jobs}
    assert repro.given_options(["all", "--preset", "hour", "--check-digits"]) == {"stage", "preset", "decision_reason"}


def test_the_full_preset_keeps_its_two_rounds_and_command_line_options_hold_for_every_round() -> None:
    repro = load_script()
    parser = repro.build_parser()
    argv = ["all", "--out", "runs/f", "--decision-reason", "digits"]
    jobs = {job.name: job for job in repro.recipe_jobs(parser.parse_args(argv), repro.PRESETS["full"],
                                                       repro.given_options(argv))}
    first, second = parser.parse_args(jobs["sft-self-r1"].argv), parser.parse_args(jobs["sft-self"].argv)
    assert jobs["sft-self"].after == ("sft-self-r1",) and jobs["sft-self-r1"].after == ()
    assert (first.init, first.seed, first.sft_steps, first.sft_lr) == ("", 0, 350, 1.5e-3)
    assert (second.init, second.seed, second.sft_steps, second.sft_lr) == (
        str(Path("runs/f") / "sft-self-r1" / "adapter"), 1, 400, 1e-3)
    assert first.decision_reason == second.decision_reason == "digits"
    assert {"grpo", "mempo-apply"} <= set(jobs)


SFT_FIELDS = ("memory", "seed", "sft_steps", "sft_lr", "decision_reason", "numbering", "comparison_drills",
              "transition_drills", "transition_repeats", "key_turn_repeats", "open_all")


@pytest.mark.parametrize("memory, folder", [("self", "mempo-smollm2-135m-lora"),
                                            ("full", "full-context-smollm2-135m-lora")])
def test_the_shipped_preset_runs_the_rounds_the_shipped_adapter_records(memory: str, folder: str) -> None:
    """The chain of ``all --preset shipped`` is the chain of SFT commands in the shipped adapter's
    COMMAND.txt, in order, each round from the one before (only the folders differ)."""
    repro = load_script()
    parser = repro.build_parser()
    recorded = (Path(__file__).resolve().parents[1] / "agents" / "checkpoints" / folder / "COMMAND.txt").read_text()
    commands = [parser.parse_args(line.split("reproduce_mempo.py", 1)[1].split("#")[0].split())
                for line in recorded.splitlines() if line.startswith("python benchmarks/reproduce_mempo.py sft ")]
    jobs = [job for job in repro.recipe_jobs(parser.parse_args(["all", "--preset", "shipped", "--out", "o"]),
                                             repro.PRESETS["shipped"], {"stage", "preset", "out"})
            if job.argv[:3] == ("sft", "--memory", memory)]
    chain = [parser.parse_args(job.argv) for job in jobs]
    effective = lambda a: tuple((a.sft_steps or repro.PRESETS["full"].sft_steps) if f == "sft_steps"  # noqa: E731
                                else (a.sft_lr or repro.SFT_LR) if f == "sft_lr" else getattr(a, f) for f in SFT_FIELDS)
    assert [effective(a) for a in chain] == [effective(a) for a in commands]
    assert len(chain) == (6 if memory == "self" else 7)
    assert [a.init for a in chain] == ["", *(str(Path("o") / job.name / "adapter") for job in jobs[:-1])]
    assert jobs[-1].name == f"sft-{memory}"


def test_the_results_file_accounts_for_the_jobs(tmp_path: Path) -> None:
    repro = load_script()
    record = tmp_path / "jobs.jsonl"
    record.write_text("\n".join(json.dumps(r) for r in [
        {"job": "sft-self", "argv": ["sft", "--memory", "self"], "rc": 0, "wall_s": 600.0, "cpu_s": 590.0,
         "max_rss_gb": 3.25},
        {"job": "sft-old", "argv": ["sft", "--memory", "self"], "rc": 0, "wall_s": 60.0, "cpu_s": 59.0},
        {"job": "sft-full", "argv": ["sft", "--memory", "full"], "rc": 1, "wall_s": 6.0, "cpu_s": 5.0},
        {"job": "all", "workers": 2, "wall_s": 3000.0, "failed": ["sft-full"]},  # a record from before hosts were
        {"job": "all", "workers": 2, "wall_s": 600.0, "failed": [], "cpu": "AMD EPYC, 2 cores, avx2"}]) + "\n")
    text = "\n".join(repro.jobs_section(record))
    assert "| sft-self | 10.0 | 9.8 | 3.25 | `python benchmarks/reproduce_mempo.py sft --memory self` |" in text
    assert "| sft-old | 1.0 | 1.0 | n/a |" in text  # a record from before peak memory was kept
    assert "| sft-full |" not in text
    assert "An `all` run with 2 workers: 50.0 min wall, not finished: sft-full." in text
    assert "An `all` run with 2 workers on AMD EPYC, 2 cores, avx2: 10.0 min wall." in text
    assert repro.jobs_section(tmp_path / "none.jsonl") == []
