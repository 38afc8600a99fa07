"""The reproduction's table scores a stopped evaluation cell on its complete prefix only."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce_mempo.py"


def load_script():
    spec = importlib.util.spec_from_file_location("reproduce_mempo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


def test_a_stopped_cell_is_scored_on_the_first_tasks_of_the_order_only(capsys) -> None:
    repro = load_script()
    # finished out of order, as the harness's refilled batch finishes them; 2 and 4 still running
    finished = [{"episode_index": i, "em": float(i % 2)} for i in (1, 0, 3, 5, 6)]
    prefix = repro.complete_prefix(finished)
    assert [e["episode_index"] for e in prefix] == [0, 1]
    assert "3 finished episode(s) outside episodes 0..1" in capsys.readouterr().err
    assert repro.complete_prefix([{"episode_index": i} for i in (2, 0, 1)]) == [
        {"episode_index": 0}, {"episode_index": 1}, {"episode_index": 2}]
    assert repro.complete_prefix([{"episode_index": 1}]) == []
    # a shard that began at episode 3 (``--episodes K=3:N``) is scored from there
    assert [e["episode_index"] for e in repro.complete_prefix([{"episode_index": i} for i in (4, 3, 6)], 3)] == [3, 4]


def test_episode_ranges_are_a_count_or_a_shard_and_anything_else_is_refused() -> None:
    repro = load_script()
    assert repro.episode_range("50", "--episodes") == (0, 50)
    assert repro.episode_range("41:50", "--episodes") == (41, 50)
    for bad in ("", "x", "50:41", "5:5", "-1:4", "1:2:3"):
        with pytest.raises(SystemExit, match="is not N or FIRST:END"):
            repro.episode_range(bad, "--episodes")


def test_paired_differences_match_tasks_by_index_and_resample_tasks() -> None:
    repro = load_script()
    # A answers tasks 0-5, B answers 0-1 and 6-7 (B also played task 9, A did not)
    a = [{"episode_index": i, "em": float(i < 6), "f1": float(i < 6), "tokens_total": 100} for i in range(8)]
    b = [{"episode_index": i, "em": float(i < 2 or i >= 6), "f1": float(i < 2 or i >= 6), "tokens_total": 150}
         for i in [*range(8), 9]]
    (row,) = repro.paired_differences({("mempo", 1): a, ("grpo", 1): b})
    assert (row["a"], row["b"], row["n"]) == ("mempo", "grpo", 8)
    assert row["em"] == pytest.approx(6 / 8 - 4 / 8) and row["tokens_total"] == pytest.approx(-50)
    assert (row["a_only"], row["b_only"]) == (4, 2)
    lo, hi = row["em_ci"]
    assert -1.0 <= lo < row["em"] < hi <= 1.0
    # identical models: the difference and its interval are exactly 0
    (same,) = repro.paired_differences({("mempo", 2): a, ("grpo", 2): a})
    assert same["em"] == 0.0 and same["em_ci"] == (0.0, 0.0)
    assert "| mempo - grpo | 1 | 8 | +0.250" in repro.markdown_differences([row])


def test_seed_pooled_differences_average_each_tasks_difference_over_the_seeds() -> None:
    repro = load_script()

    def cell(right: set[int], tasks: range = range(4)) -> list[dict[str, Any]]:
        return [{"episode_index": i, "em": float(i in right), "f1": float(i in right), "tokens_total": 1} for i in tasks]

    cells = {  # seed 8: MemPO wins tasks 0 and 1; seed 9: GRPO wins task 0; task 4 only in one cell
        ("sft", 4): cell({2}, range(5)),
        ("mempo-apply-fp0.5-s8", 4): cell({0, 1, 2}), ("grpo-fp0.5-s8", 4): cell({2}),
        ("mempo-apply-fp0.5-s9", 4): cell({2}), ("grpo-fp0.5-s9", 4): cell({0, 2}),
        ("mempo-apply-fp0.5-s9", 1): cell({0}), ("grpo-fp0.5-s9", 1): cell({0}),  # k=1: one seed, no row
    }
    rows = {(r["a"], r["b"], r["k"]): r for r in repro.seed_pooled_differences(cells)}
    assert set(rows) == {("mempo-apply-fp0.5", "grpo-fp0.5", 4), ("mempo-apply-fp0.5", "sft", 4),
                         ("grpo-fp0.5", "sft", 4)}
    pooled = rows[("mempo-apply-fp0.5", "grpo-fp0.5", 4)]
    # per task: ((1 - 0) + (0 - 1)) / 2, (1 + 0) / 2, 0, 0 -> mean 0.125 over the 4 tasks all four cells played
    assert (pooled["n"], pooled["seeds"]) == (4, "8,9") and pooled["em"] == pytest.approx(0.125)
    assert pooled["em_ci"][0] <= 0.125 <= pooled["em_ci"][1]
    assert rows[("grpo-fp0.5", "sft", 4)]["em"] == pytest.approx(0.125)  # seed 9's GRPO won task 0 against SFT
    assert "| mempo-apply-fp0.5 - grpo-fp0.5 | 8,9 | 4 | 4 | +0.125" in repro.markdown_pooled([pooled])


def test_a_stage_records_the_commands_of_the_adapter_it_continued(tmp_path, monkeypatch) -> None:
    repro = load_script()
    shipped = tmp_path / "shipped"  # a shipped adapter folder keeps COMMAND.txt inside it
    shipped.mkdir()
    (shipped / "COMMAND.txt").write_text("python benchmarks/reproduce_mempo.py sft --name a", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["reproduce_mempo.py", "rl", "--algo", "grpo"])
    (tmp_path / "run").mkdir()
    repro.record_command(tmp_path / "run", shipped)
    assert (tmp_path / "run" / "COMMAND.txt").read_text(encoding="utf-8").splitlines() == [
        "python benchmarks/reproduce_mempo.py sft --name a", "python benchmarks/reproduce_mempo.py rl --algo grpo"]
    stage = tmp_path / "stage"  # a stage folder: COMMAND.txt beside its adapter/
    (stage / "adapter").mkdir(parents=True)
    (stage / "COMMAND.txt").write_text("sft line\n", encoding="utf-8")
    repro.record_command(tmp_path / "run", stage / "adapter")
    assert (tmp_path / "run" / "COMMAND.txt").read_text(encoding="utf-8").splitlines()[0] == "sft line"


def test_rl_run_folders_name_their_memory_settings_and_seed() -> None:
    repro = load_script()
    assert [repro.rl_run_name("grpo", "apply", "none"), repro.rl_run_name("mempo", "skip", "std"),
            repro.rl_run_name("mempo", "apply", "std"), repro.rl_run_name("mempo", "skip", "none"),
            repro.rl_run_name("grpo", "apply", "std", seed=2), repro.rl_run_name("mempo", "apply", "std", seed=2)] == [
        "grpo", "mempo-skip", "mempo-apply", "mempo-skip-center", "grpo-s2", "mempo-apply-s2"]
    assert repro.rl_run_name("mempo", "apply", "std", seed=2, format_penalty=0.5) == "mempo-apply-fp0.5-s2"
    assert repro.rl_run_name("grpo", "apply", "std", format_penalty=0.25) == "grpo-fp0.25"
    assert repro.rl_run_name("mempo", "apply", "std", seed=9, format_penalty=0.5, weighted=True) == "mempo-apply-fp0.5-kw-s9"


def test_a_k_weighted_run_is_paired_with_grpo_drawn_the_same_way_and_with_the_run_drawn_alike() -> None:
    repro = load_script()
    pairs = repro.comparison_pairs(["sft", "grpo-fp0.5-s9", "mempo-apply-fp0.5-s9", "grpo-fp0.5-kw-s9",
                                    "mempo-apply-fp0.5-kw-s9"])
    assert ("mempo-apply-fp0.5-kw-s9", "grpo-fp0.5-kw-s9") in pairs and ("mempo-apply-fp0.5-s9", "grpo-fp0.5-s9") in pairs
    assert ("mempo-apply-fp0.5-kw-s9", "grpo-fp0.5-s9") not in pairs
    assert ("grpo-fp0.5-kw-s9", "grpo-fp0.5-s9") in pairs and ("grpo-fp0.5-kw-s9", "sft") in pairs


def test_a_resumed_rl_run_refuses_other_settings_than_it_was_started_with(tmp_path: Path) -> None:
    repro = load_script()
    preset = repro.PRESETS["shipped"]
    cfg = repro.rl_config("mempo", tmp_path / "adapter", preset, 9, "apply", format_penalty=0.5)
    cfg.save(tmp_path / "config.yaml")
    longer = repro.rl_config("mempo", tmp_path / "adapter", preset, 9, "apply", format_penalty=0.5)
    longer.steps += 4
    repro.check_resumed_config(tmp_path, longer)  # more steps: allowed
    weighted = repro.rl_config("mempo", tmp_path / "adapter", preset, 9, "apply", format_penalty=0.5,
                               k_weights={4: 1.0, 8: 1.0})
    with pytest.raises(SystemExit, match="other objectives_weights; resume it with the options"):
        repro.check_resumed_config(tmp_path, weighted)


def test_k_weights_parse_as_weights_or_as_success_rates() -> None:
    repro = load_script()
    assert repro.parse_k_weights("", 4) == {} and repro.parse_k_weights("4=1,8=0.5", 4) == {4: 1.0, 8: 0.5}
    signal = repro.parse_k_weights("signal:1=0.92,4=0.66", 4)
    assert signal[1] == pytest.approx(1 - 0.92 ** 4 - 0.08 ** 4) and signal[4] > signal[1]
    for bad in ("4", "four=1", "signal:4=1.5", "4=0", "4=-1,8=2"):
        with pytest.raises(SystemExit, match="k-weights"):
            repro.parse_k_weights(bad, 4)


def test_a_format_penalty_run_is_paired_with_grpo_of_its_penalty_and_with_the_run_without_it() -> None:
    repro = load_script()
    assert repro.penalty_suffix("mempo-apply-fp0.5-s2") == "-fp0.5" and repro.penalty_suffix("mempo-apply-s2") == ""
    pairs = repro.comparison_pairs(["sft", "grpo", "grpo-fp0.5", "mempo-apply", "mempo-apply-fp0.5",
                                    "grpo-fp0.5-s2", "mempo-apply-fp0.5-s2"])
    assert ("mempo-apply-fp0.5", "grpo-fp0.5") in pairs and ("mempo-apply-fp0.5", "grpo") not in pairs
    assert ("mempo-apply-fp0.5-s2", "grpo-fp0.5-s2") in pairs and ("mempo-apply-fp0.5-s2", "mempo-apply-fp0.5") in pairs
    assert ("grpo-fp0.5", "grpo") in pairs and ("mempo-apply-fp0.5", "mempo-apply") in pairs
    assert ("mempo-apply-fp0.5-s2", "mempo-apply-s2") in pairs  # the penalty ablation at the same seed


def test_table_pairs_each_mempo_run_with_the_grpo_run_of_its_seed() -> None:
    repro = load_script()
    pairs = repro.comparison_pairs(["sft", "grpo", "grpo-s2", "mempo-apply", "mempo-apply-s2", "full-context"])
    assert ("mempo-apply", "grpo") in pairs and ("mempo-apply-s2", "grpo-s2") in pairs
    assert ("mempo-apply-s2", "grpo") not in pairs  # different seeds are not the paired comparison
    assert {("grpo", "sft"), ("grpo-s2", "sft"), ("mempo-apply", "sft"), ("mempo-apply-s2", "sft")} <= set(pairs)
    assert ("grpo-s2", "grpo") in pairs and ("mempo-apply-s2", "mempo-apply") in pairs  # run-to-run spread
    assert ("sft", "full-context") in pairs
    assert [m for m in sorted(["oracle", "mempo-apply-s2", "sft", "grpo-s2", "grpo", "base"], key=repro.model_rank)] == [
        "base", "sft", "grpo", "grpo-s2", "mempo-apply-s2", "oracle"]


def test_curves_say_n_a_for_memory_reward_only_where_the_run_did_not_compute_it(tmp_path) -> None:
    from mempo_agents.trainer.config import TrainerConfig

    repro = load_script()
    row = {"step": 1, "reward": 0.5, "em": 0.5, "p_answer_given_mem": 0.25, "memory_reward": 0.125, "kl": 0.0,
           "grad_norm": 0.1, "cpu_s": 10.0}
    for name, stage in (("grpo-s2", "grpo"), ("mine", "mempo")):  # a seed replicate; a run named by --name
        (tmp_path / name).mkdir()
        TrainerConfig(init_model="m", stage=stage, log_memory_reward=stage == "mempo").save(tmp_path / name / "config.yaml")
    results = tmp_path / "results.md"
    repro.write_results(results, tmp_path, "table", {"grpo-s2": [dict(row, stage="grpo-s2")], "mine": [dict(row, stage="mine")]})
    lines = results.read_text(encoding="utf-8").splitlines()
    assert "| grpo-s2 | 1 | 0.500 | 0.500 | n/a | n/a |" in "\n".join(lines)
    assert "| mine | 1 | 0.500 | 0.500 | 0.250 | 0.1250 |" in "\n".join(lines)
    # the header names the runs folder the table was made from, so the command can be rerun as written
    assert f"table --out {tmp_path.as_posix()} --results" in lines[2]


@pytest.mark.parametrize("options", [{}, {"open_all": True, "decision_reason": "first-digit"},
                                     {"decision_reason": "digits"}, {"decision_reason": "digits", "numbering": "n/k"}])
@pytest.mark.parametrize("memory", ["self", "full"])
def test_key_turns_are_the_first_turn_and_each_comparison_decision(memory: str, options: dict[str, Any]) -> None:
    from mempo_gym.tokenizer import load_hf_tokenizer

    from mempo_agents.trainer.mempo import task_refs
    from mempo_agents.trainer.oracle import CompactOracleAgent
    from mempo_agents.trainer.sft import collect_demonstrations

    repro = load_script()
    tokenizer = load_hf_tokenizer()
    env = repro.make_env(2, "train", 1, 8, memory)
    agent = CompactOracleAgent(note_tag="mem" if memory == "self" else "think", **options)
    demos, stats = collect_demonstrations(agent, [env], task_refs([env]), tokenizer)
    texts = [(tokenizer.decode(d.context_ids), tokenizer.decode(d.output_ids)) for d in demos]
    first = [o for c, o in texts if "<information>" not in c.split("\nQuestions", 1)[1]]
    decided = [o for c, o in texts if " = " in o]
    key = [o for c, o in texts if repro.is_key_turn(c, o)]
    assert len(first) == stats["kept"] and decided and set(key) == set(first) | set(decided)
    assert len(repro.repeat_key_turns(demos, tokenizer, 2)) == len(demos) + len(key)
    assert repro.repeat_key_turns(demos, tokenizer, 1) == demos
    with pytest.raises(SystemExit, match="--key-turn-repeats must be >= 1"):
        repro.repeat_key_turns(demos, tokenizer, 0)


@pytest.mark.parametrize("numbering", ["n", "n/k"])
@pytest.mark.parametrize("memory", ["self", "full"])
def test_transition_turns_are_the_turns_that_open_the_next_question_or_answer(memory: str, numbering: str) -> None:
    from mempo_gym.tokenizer import load_hf_tokenizer

    from mempo_agents.trainer.mempo import task_refs
    from mempo_agents.trainer.oracle import CompactOracleAgent
    from mempo_agents.trainer.sft import collect_demonstrations

    repro = load_script()
    tokenizer = load_hf_tokenizer()
    agent = CompactOracleAgent(note_tag="mem" if memory == "self" else "think", decision_reason="digits",
                               numbering=numbering)
    for k in (1, 2, 4):
        env = repro.make_env(k, "train", 1, 4, memory)
        demos, stats = collect_demonstrations(agent, [env], task_refs([env]), tokenizer)
        texts = [(tokenizer.decode(d.context_ids), tokenizer.decode(d.output_ids)) for d in demos]
        flagged = [o for c, o in texts if repro.is_transition_turn(c, o)]
        # each episode opens questions 2..k and answers once: k transitions (none at k=1)
        assert len(flagged) == (k * stats["kept"] if k > 1 else 0), (k, flagged)
        assert all(o.count(" | ") >= 1 for o in flagged)
        repeated = repro.repeat_key_turns(demos, tokenizer, 1, 3)
        assert len(repeated) == len(demos) + 2 * len(flagged)
    assert repro.entries_in(" 1/2 : Piza | 2/2 : later Gopebi Kume 1809 , Vifisu Tuluko 1835 : 1 = 1 , 8 = 8") == 2
    with pytest.raises(SystemExit, match="--transition-repeats must be >= 1"):
        repro.repeat_key_turns(demos, tokenizer, 1, 0)


def test_a_later_sft_round_is_paired_with_its_full_context_round_and_a_sampled_eval_with_greedy() -> None:
    repro = load_script()
    pairs = repro.comparison_pairs(["sft", "sft-self-r3", "full-context", "full-context-r3", "sft-rt0.7"])
    assert ("sft-self-r3", "full-context-r3") in pairs and ("sft-self-r3", "sft") in pairs
    assert ("sft-rt0.7", "sft") in pairs and ("sft", "full-context") in pairs
    assert repro.eval_name("sft", 0.7) == "sft-rt0.7" and repro.eval_name("sft", None) == "sft"
    later = repro.comparison_pairs(["sft", "sft-self-r10", "sft-self-r8", "sft-self-r6", "full-context-r8"])
    assert ("sft-self-r8", "sft-self-r6") in later and ("sft-self-r10", "sft-self-r8") in later
    assert ("sft-self-r10", "sft-self-r6") not in later and ("sft-self-r8", "full-context-r8") in later


def test_an_rl_run_from_a_later_round_is_paired_with_that_round_and_the_grpo_run_from_it() -> None:
    repro = load_script()
    assert repro.start_suffix("grpo-r8-fp0.5-s8") == "-r8" and repro.start_suffix("mempo-apply-fp0.5-s2") == ""
    pairs = repro.comparison_pairs(["sft", "sft-self-r8", "grpo-fp0.5-s8", "grpo-r8-fp0.5-s8",
                                    "mempo-apply-r8-fp0.5-s8"])
    assert ("mempo-apply-r8-fp0.5-s8", "grpo-r8-fp0.5-s8") in pairs
    assert ("mempo-apply-r8-fp0.5-s8", "grpo-fp0.5-s8") not in pairs  # another start adapter
    assert {("grpo-r8-fp0.5-s8", "sft-self-r8"), ("mempo-apply-r8-fp0.5-s8", "sft-self-r8")} <= set(pairs)
    assert ("grpo-r8-fp0.5-s8", "sft") not in pairs and ("grpo-fp0.5-s8", "sft") in pairs


def test_a_retrained_full_context_round_is_paired_with_the_newest_self_round_before_it() -> None:
    repro = load_script()
    pairs = repro.comparison_pairs(["sft-self-r6", "sft-self-r8", "full-context-r8", "full-context-r9"])
    assert ("sft-self-r8", "full-context-r9") in pairs and ("sft-self-r8", "full-context-r8") in pairs
    assert ("sft-self-r6", "full-context-r9") not in pairs
    assert ("sft-self-r8", "full-context-r8") in repro.comparison_pairs(["sft-self-r8", "full-context-r8"])
    assert not [p for p in repro.comparison_pairs(["sft-self-r8", "full-context-r6"]) if p[1] == "full-context-r6"]


def test_adapter_settings_name_the_demonstrator_options() -> None:
    repro = load_script()
    settings = repro.agent_settings("self", open_all=True, decision_reason="digits", numbering="n/k",
                                    key_turn_repeats=2)
    assert settings["trained_on"]["open_all"] is True and settings["trained_on"]["key_turn_repeats"] == 2
    assert settings["trained_on"]["oracle_style"] == "relations" and settings["backend"]["chat_template"] is False
    assert settings["trained_on"]["decision_reason"] == "digits" and settings["trained_on"]["numbering"] == "n/k"
    with pytest.raises(SystemExit):  # the flags parse; a bad value of --key-turn-repeats is refused by argparse types
        repro.main(["sft", "--key-turn-repeats", "x"])


def test_adapter_settings_record_the_training_precision_and_fp32_is_the_default() -> None:
    repro = load_script()
    assert repro.agent_settings("self")["backend"]["dtype"] == "float32"
    assert repro.agent_settings("full", "bfloat16")["backend"]["dtype"] == "bfloat16"
    assert repro.PRECISIONS["fp32"] == ("no", "float32") and repro.PRECISIONS["bf16"] == ("bf16", "bfloat16")
    assert repro.rl_config("grpo", Path("x"), repro.PRESETS["smoke"], 0, "apply").mixed_precision == "no"
    assert repro.rl_config("grpo", Path("x"), repro.PRESETS["smoke"], 0, "apply", precision="bf16").mixed_precision == "bf16"


def test_auto_precision_is_bf16_only_on_a_cpu_with_bf16_units_and_a_named_one_is_kept() -> None:
    from mempo_agents.hardware import has_bf16_units

    repro = load_script()
    assert repro.resolve_precision("auto") == ("bf16" if has_bf16_units() else "fp32")
    assert repro.resolve_precision("fp32") == "fp32" and repro.resolve_precision("bf16") == "bf16"
    assert repro.build_parser().parse_args(["all"]).precision == "auto"  # the command line's default
    args = repro.parse_args(["all", "--precision", "auto", "--out", "o"])
    jobs = repro.recipe_jobs(args, repro.PRESETS["smoke"])
    assert all(job.argv[job.argv.index("--precision") + 1] in ("fp32", "bf16") for job in jobs)  # never "auto"


@pytest.mark.parametrize("units", [True, False])
def test_bf16_named_on_a_cpu_without_bf16_units_is_kept_with_a_warning(
        units: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import mempo_agents.hardware

    repro = load_script()
    monkeypatch.setattr(mempo_agents.hardware, "has_bf16_units", lambda: units)
    assert repro.resolve_precision("bf16") == "bf16" and repro.resolve_precision("fp32") == "fp32"
    assert repro.resolve_precision("auto") == ("bf16" if units else "fp32")
    warned = capsys.readouterr().err
    assert ("warning: --precision bf16 on a CPU without bf16 units" in warned) is not units
    assert warned.count("\n") == (0 if units else 1)  # one line, for the named bf16 only


def test_worlds_of_rebuilds_each_train_world_once_with_every_task_entity() -> None:
    repro = load_script()
    envs = [repro.make_env(k, "train", 1, 3, "self") for k in (1, 2)]
    worlds = repro.worlds_of(envs)
    assert len(worlds) == 1
    names = {e.name for e in worlds[0].entities}
    for env in envs:
        for task in env.unwrapped.tasks:
            assert all(t in names for q in task.questions for t in q.supporting_titles)


def test_the_decision_format_of_an_adapter_is_read_from_its_settings(tmp_path: Path) -> None:
    repro = load_script()
    for name, trained_on, reason in [("digits", {"decision_reason": "digits"}, "digits"),
                                     ("r3", {"check_digits": True}, "first-digit"), ("r1", {}, "none")]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "mempo_agent.json").write_text(json.dumps({"trained_on": trained_on}), encoding="utf-8")
        assert repro.decision_reason_of(folder) == reason
    assert repro.decision_reason_of(tmp_path / "missing") == "none"
    shipped = Path(__file__).resolve().parents[1] / "agents" / "checkpoints" / "mempo-smollm2-135m-lora"
    assert repro.decision_reason_of(shipped) in ("none", "digits")


def test_the_entry_numbering_of_an_adapter_is_read_from_its_settings(tmp_path: Path) -> None:
    repro = load_script()
    (tmp_path / "mempo_agent.json").write_text(json.dumps({"trained_on": {"numbering": "n/k"}}), encoding="utf-8")
    assert repro.numbering_of(tmp_path) == "n/k"
    assert repro.numbering_of(tmp_path / "missing") == "n"  # adapters before --numbering wrote 'n : …'
    with pytest.raises(SystemExit):
        repro.main(["sft", "--numbering", "k"])


def test_transition_drills_need_n_of_k_labels(capsys) -> None:
    repro = load_script()
    with pytest.raises(SystemExit):
        repro.main(["sft", "--transition-drills", "5"])
    assert "--transition-drills needs --numbering n/k" in capsys.readouterr().err
    assert repro.agent_settings("self", transition_drills=5)["trained_on"]["transition_drills"] == 5


def write_cell(out: Path, model: str, k: int, em: list[float], tasks: str = "t", first: int = 0) -> None:
    """An eval cell folder as the harness writes it; ``first`` > 0: a shard from that episode on."""
    folder = out / "eval" / f"{model}-k{k}"
    folder.mkdir(parents=True)
    lines = [json.dumps({"episode_index": i, "task_id": f"{tasks}{i}", "f1": x, "em": x, "tokens_total": 100 + i,
                         "tokens_peak": 50, "tokens_generated": 20, "turns": 3, "malformed_turns": 0})
             for i, x in enumerate(em, first)]
    (folder / "episodes.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    if first:
        config = {"format": "mempo-gym-run", "episodes": first + len(em), "first": first}
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")


def table_args(out: Path, *scores: Path) -> Any:
    import argparse

    return argparse.Namespace(out=str(out), results="", scores=[str(p) for p in scores])


def test_a_later_table_pairs_new_cells_with_the_scores_an_earlier_table_wrote(tmp_path: Path, capsys) -> None:
    repro = load_script()
    first, second = tmp_path / "first", tmp_path / "second"
    write_cell(first, "sft", 1, [1, 1, 0, 1])
    repro.stage_table(table_args(first))
    scores = first / "scores.jsonl"
    lines = [json.loads(line) for line in scores.read_text(encoding="utf-8").splitlines()]
    assert [(r["model"], r["k"], r["episode_index"], r["task_id"], r["em"]) for r in lines] == [
        ("sft", 1, 0, "t0", 1), ("sft", 1, 1, "t1", 1), ("sft", 1, 2, "t2", 0), ("sft", 1, 3, "t3", 1)]
    # the earlier folder is gone; its scores still pair a new full-context cell with the SFT cell
    import shutil

    shutil.rmtree(first / "eval")
    write_cell(second, "full-context", 1, [0, 1, 0, 0])
    repro.stage_table(table_args(second, scores))
    result = json.loads((second / "results.json").read_text(encoding="utf-8"))
    assert {(r["model"], r["n"], r["em"]) for r in result["table"]} == {("sft", 4, 0.75), ("full-context", 4, 0.25)}
    (pair,) = result["paired"]
    assert (pair["a"], pair["b"], pair["n"], pair["em"], pair["a_only"], pair["b_only"]) == (
        "sft", "full-context", 4, 0.5, 2, 0)
    assert "| sft - full-context | 1 | 4 | +0.500" in capsys.readouterr().out
    # the second table's scores hold both cells, so they can be carried on again
    assert {json.loads(line)["model"] for line in (second / "scores.jsonl").read_text().splitlines()} == {
        "sft", "full-context"}


def test_a_cell_in_the_eval_folder_takes_precedence_over_its_earlier_scores(tmp_path: Path, capsys) -> None:
    repro = load_script()
    earlier = tmp_path / "earlier.jsonl"
    earlier.write_text(json.dumps({"model": "sft", "k": 1, "episode_index": 0, "task_id": "t0", "em": 0.0}) + "\n")
    write_cell(tmp_path / "out", "sft", 1, [1, 1])
    repro.stage_table(table_args(tmp_path / "out", earlier))
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text())["table"]
    assert (row["n"], row["em"]) == (2, 1.0)
    assert "its scores in" in capsys.readouterr().err


@pytest.mark.parametrize("line, message", [
    ("not json", "line 2 is not a score line"),
    ('{"model": "sft", "k": 1, "episode_index": 0}', "line 2 is not a score line"),
    ('{"model": "sft", "k": 0, "episode_index": 0, "task_id": "t"}', "line 2: model, k"),
    ('{"model": "sft", "k": 1, "episode_index": 1, "task_id": "t", "em": "1"}', "line 2: em must be numbers"),
    ('{"model": "sft", "k": 1, "episode_index": 0, "task_id": "t0"}', "scores a task twice"),
])
def test_a_bad_scores_file_stops_the_table_with_its_line_and_writes_nothing(tmp_path: Path, line: str,
                                                                            message: str) -> None:
    repro = load_script()
    path = tmp_path / "scores.jsonl"
    path.write_text(json.dumps({"model": "sft", "k": 1, "episode_index": 0, "task_id": "t0", "em": 1.0}) + "\n"
                    + line + "\n")
    write_cell(tmp_path / "out", "full-context", 1, [1])
    with pytest.raises(SystemExit, match=message):
        repro.stage_table(table_args(tmp_path / "out", path))
    assert not (tmp_path / "out" / "results.json").exists()
    with pytest.raises(SystemExit, match="no such file"):
        repro.stage_table(table_args(tmp_path / "out", tmp_path / "missing.jsonl"))


def test_cells_that_played_other_tasks_are_never_paired(tmp_path: Path) -> None:
    repro = load_script()
    write_cell(tmp_path / "a", "sft", 1, [1, 0], tasks="seed0-")
    repro.stage_table(table_args(tmp_path / "a"))
    write_cell(tmp_path / "b", "full-context", 1, [1, 0], tasks="seed1-")
    with pytest.raises(SystemExit, match=r"full-context and sft at k=1 played different tasks as episode 0|"
                                         r"sft and full-context at k=1 played different tasks as episode 0"):
        repro.stage_table(table_args(tmp_path / "b", tmp_path / "a" / "scores.jsonl"))


def test_shards_of_a_cell_are_pooled_and_paired_as_one_cell(tmp_path: Path, capsys) -> None:
    repro = load_script()
    write_cell(tmp_path / "b", "full-context", 1, [0, 1], first=2)  # --episodes 1=2:4 in another --out
    repro.stage_table(table_args(tmp_path / "b"))
    (row,) = json.loads((tmp_path / "b" / "results.json").read_text())["table"]
    assert (row["n"], row["em"]) == (2, 0.5)
    write_cell(tmp_path / "a", "full-context", 1, [1, 0])  # --episodes 1=2
    write_cell(tmp_path / "a", "sft", 1, [1, 1, 1, 1])
    repro.stage_table(table_args(tmp_path / "a", tmp_path / "b" / "scores.jsonl"))
    result = json.loads((tmp_path / "a" / "results.json").read_text())
    assert {(r["model"], r["n"], r["em"]) for r in result["table"]} == {("sft", 4, 1.0), ("full-context", 4, 0.5)}
    (pair,) = result["paired"]
    assert (pair["n"], pair["em"], pair["a_only"], pair["b_only"]) == (4, 0.5, 2, 0)
    assert "2 episode(s) from" in capsys.readouterr().err and "pooled with the 2 already scored"
    pooled = [json.loads(line) for line in (tmp_path / "a" / "scores.jsonl").read_text().splitlines()]
    assert [r["episode_index"] for r in pooled if r["model"] == "full-context"] == [0, 1, 2, 3]
