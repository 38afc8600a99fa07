"""The forgery suite: every way of faking a leaderboard result that was tried against the scorer
(issue 11) is refused with a reason naming it, and honest submissions — from a MemPO-Gym run and
from a system that only follows docs/submission_format.md — are accepted and score the same as a
direct evaluation."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import zipfile
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import pytest

from mempo_gym.agent import Agent, make_agent
from mempo_gym.harness import evaluate
from mempo_gym.leaderboard import SubmissionRejected, score_submission, submit_run
from mempo_gym.leaderboard.schema import manifest_entry
from mempo_gym.prompts import render_prompt

pytest.importorskip("mempo_agents.oracle", reason="mempo_agents (reference agents) is not installed")

ENV_ID = "MemPO-SynthWiki-2obj-v0"
KWARGS = {"num_tasks": 12}
EPISODES, SEED = 12, 21


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("forgery") / "oracle"
    frame = evaluate(ENV_ID, make_agent("oracle"), episodes=EPISODES, seed=SEED, out=out, batch_size=3,
                     env_kwargs=KWARGS, progress=False)
    return out, frame


@pytest.fixture(scope="module")
def members(honest: tuple[Path, Any]) -> dict[str, bytes]:
    run, _ = honest
    path = submit_run(run, name="Oracle", contact="o@example.org", out=run.parent / "oracle.zip")
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist()}


def pack(members: dict[str, bytes], *, records: list[dict[str, Any]] | None = None,
         config: dict[str, Any] | None = None, mode: int | None = 0o100644, fix: bool = True) -> bytes:
    members = dict(members)
    if records is not None:
        members["episodes.jsonl"] = "".join(json.dumps(r) + "\n" for r in records).encode()
    if config is not None:
        members["config.json"] = json.dumps(config).encode()
    if fix:
        manifest = json.loads(members["manifest.json"])
        manifest["members"] = {n: manifest_entry(d) for n, d in members.items() if n != "manifest.json"}
        members["manifest.json"] = json.dumps(manifest).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def episodes(members: dict[str, bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in members["episodes.jsonl"].splitlines()]


def config_of(members: dict[str, bytes]) -> dict[str, Any]:
    return json.loads(members["config.json"])


def refused(data: bytes) -> SubmissionRejected:
    with pytest.raises(SubmissionRejected) as info:
        score_submission(data)
    return info.value


def recount(record: dict[str, Any]) -> None:
    calls = record["transcript"]
    record["tokens_total"] = sum(c["input_tokens"] + c["output_tokens"] for c in calls)
    record["tokens_peak"] = max(c["input_tokens"] + c["output_tokens"] for c in calls)
    record["tokens_generated"] = sum(c["output_tokens"] for c in calls)
    record["calls"] = record["turns"] = len(calls)


def searched(records: list[dict[str, Any]]) -> dict[str, Any]:
    """An episode with at least one search (its second call sees an <information> block)."""
    return next(r for r in records if len(r["transcript"]) >= 3)


# ------------------------------------------------------------------------------------------ honest

def test_honest_run_is_accepted_and_scores_as_the_direct_evaluation(honest: tuple[Path, Any],
                                                                    members: dict[str, bytes]) -> None:
    _, frame = honest
    result = score_submission(pack(members))
    env = result["envs"][ENV_ID]
    assert result["status"] == "accepted" and result["verification"] == "replay"
    assert env["n"] == EPISODES and env["task_order"] == "permutation"
    assert env["f1"] == pytest.approx(frame["f1"].mean()) == 1.0
    assert env["tokens_total"] == pytest.approx(frame["tokens_total"].mean())
    assert env["tokens_peak"] == pytest.approx(frame["tokens_peak"].mean())
    assert sorted(r["task_id"] for r in episodes(members)) == sorted(
        t.id for t in gym.make(ENV_ID, **KWARGS).unwrapped.tasks)  # every task once
    assert result["control"] is True  # the oracle is a control
    assert env["settings_group"] == "non-standard" and "num_tasks" in env["non_standard_settings"]
    assert env["answered_without_search"] == 0.0


def test_sampling_with_replacement_is_available_by_name_and_verified(tmp_path: Path) -> None:
    run = tmp_path / "sampled"
    frame = evaluate(ENV_ID, make_agent("oracle"), episodes=20, seed=3, out=run, env_kwargs=KWARGS,
                     progress=False, task_order="sample")
    assert frame["task_id"].nunique() < 20  # 20 draws from 12 tasks repeat some
    env = score_submission(submit_run(run, name="S", contact="c"))["envs"][ENV_ID]
    assert (env["n"], env["task_order"]) == (20, "sample")


def test_an_external_system_following_the_docs_is_accepted_and_scores_the_same(tmp_path: Path) -> None:
    """Written with plain json/hashlib/zipfile as docs/submission_format.md says, stepping the benchmark
    env through Gymnasium only; no ids in the transcript (text replay), a zip without mode bits."""
    env_id, seed, count = "MemPO-SynthWiki-v0", 5, 8
    env = gym.make(env_id, num_tasks=10).unwrapped
    order = sorted(range(len(env.tasks)), key=lambda j: hashlib.sha256(
        f"mempo-gym-order|{seed}|{env_id}|{j}".encode()).digest())  # the documented task order
    lines = []
    for i in range(count):
        obs, _ = env.reset(options={"task_index": order[i]})
        task, calls = env.task, []
        questions = [q.text for q in task.questions]
        done, info = False, {}
        while not done:
            context = obs["context"]
            output = (f"<search>{questions[0]}</search>" if not calls else
                      "<answer>" + context.split("(Title: ")[-1].split(")")[0] + "</answer>")
            obs, _, terminated, truncated, info = env.step(output)
            done = terminated or truncated
            calls.append({"context": context, "output": output})
        for call, made in zip(calls, info["transcript"]):
            call.update(input_tokens=made["input_tokens"], output_tokens=made["output_tokens"])
        m = info["metrics"]
        lines.append(json.dumps({
            "key": f"{env_id}#{i}", "env_id": env_id, "task_id": task.id, "prediction": m["prediction"],
            "tokens_total": m["tokens_total"], "tokens_peak": m["tokens_peak"],
            "tokens_generated": m["tokens_generated"], "transcript": calls}) + "\n")
    config = json.dumps({"agent": {"name": "title-guesser"}, "seed": seed, "episodes": count,
                         "task_order": "permutation", "envs": [{"id": env_id, "kwargs": {"num_tasks": 10}}]}).encode()
    body = "".join(lines).encode()
    manifest = json.dumps({"schema_version": 2, "submission": {"name": "External", "contact": "x@y"},
                           "members": {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                                       for n, d in (("config.json", config), ("episodes.jsonl", body))}}).encode()
    path = tmp_path / "external.zip"
    with zipfile.ZipFile(path, "w") as archive:  # plain writestr(name, data): no file-type bits
        for name, data in (("manifest.json", manifest), ("config.json", config), ("episodes.jsonl", body)):
            archive.writestr(name, data)
    result = score_submission(path)["envs"][env_id]

    class TitleGuesser(Agent):
        name = "title-guesser"

        def reset(self, task: Any, slot: int = 0) -> None:
            self.question = task.questions[0].text

        def act(self, observation: Any, info: Any, slot: int = 0) -> str:
            if info["turn"] == 0:
                return f"<search>{self.question}</search>"
            return "<answer>" + observation["context"].split("(Title: ")[-1].split(")")[0] + "</answer>"

    direct = evaluate(env_id, TitleGuesser(), episodes=count, seed=seed, env_kwargs={"num_tasks": 10}, progress=False)
    assert result["n"] == count
    assert result["f1"] == pytest.approx(direct["f1"].mean())
    assert result["tokens_total"] == pytest.approx(direct["tokens_total"].mean())


# ------------------------------------------------------------------------------------------ forgeries

def test_episodes_written_from_scratch_without_a_run_are_refused(members: dict[str, bytes]) -> None:
    env = gym.make(ENV_ID, **KWARGS).unwrapped
    records = episodes(members)
    forged = []
    for r in records:
        task = next(t for t in env.tasks if t.id == r["task_id"])
        context = "\n".join(f"Question: {q.text}" for q in task.questions) + "\n"
        output = "<answer>" + "; ".join(q.answers[0] for q in task.questions) + "</answer>"
        n_in, n_out = env.count_tokens(context), env.count_tokens(output)
        forged.append({**{k: r[k] for k in ("key", "env_id", "task_id")}, "prediction": output[8:-9],
                       "tokens_total": n_in + n_out, "tokens_peak": n_in + n_out, "tokens_generated": n_out,
                       "transcript": [{"context": context, "output": output, "input_tokens": n_in,
                                       "output_tokens": n_out}]})
    error = refused(pack(members, records=forged))
    assert "context differs" in error.reason and error.field.endswith("turn 0: context")


def test_golds_answered_at_once_on_the_true_prompt_are_counted_as_answered_without_search(
        members: dict[str, bytes]) -> None:
    """What replay cannot refuse: an agent that knows a public world's golds and answers at once is a
    valid (closed-book) agent. The result says so; hosts use private worlds (test_suite.py)."""
    env = gym.make(ENV_ID, **KWARGS).unwrapped
    records = episodes(members)
    recalled = []
    for r in records:
        task = next(t for t in env.tasks if t.id == r["task_id"])
        context = render_prompt(env.instructions, [q.text for q in task.questions])
        answer = "; ".join(q.answers[0] for q in task.questions)
        output = f"<answer>{answer}</answer>"
        n_in, n_out = env.count_tokens(context), env.count_tokens(output)
        recalled.append({**{k: r[k] for k in ("key", "env_id", "task_id")}, "prediction": answer,
                         "tokens_total": n_in + n_out, "tokens_peak": n_in + n_out, "tokens_generated": n_out,
                         "transcript": [{"context": context, "output": output, "input_tokens": n_in,
                                         "output_tokens": n_out}]})
    env_result = score_submission(pack(members, records=recalled))["envs"][ENV_ID]
    assert env_result["f1"] == 1.0 and env_result["answered_without_search"] == 1.0


def test_fabricated_information_is_refused(members: dict[str, bytes]) -> None:
    records = episodes(members)
    r = searched(records)
    fake = "Doc 1 (Title: Nowhere) The answer is whatever I say."
    old = r["transcript"][0]["information"]
    r["transcript"][0]["information"] = fake
    r["transcript"][1]["context"] = r["transcript"][1]["context"].replace(old, fake)
    recount(r)
    error = refused(pack(members, records=records))
    assert "information" in error.reason and r["key"] in error.field and "turn 0: information" in error.field
    del r["transcript"][0]["information"]  # without the field, the next context gives it away
    error = refused(pack(members, records=records))
    assert "inside an <information> block" in error.reason and "turn 1: context" in error.field


def test_shrunk_contexts_with_recomputed_counts_are_refused(members: dict[str, bytes]) -> None:
    records = episodes(members)
    r = searched(records)
    for call in r["transcript"]:
        call["context"] = call["context"][-300:]
        call["input_tokens"] = gym.make(ENV_ID, **KWARGS).unwrapped.count_tokens(call["context"])
    recount(r)
    error = refused(pack(members, records=records))
    assert "context differs" in error.reason and "turn 0: context" in error.field


def test_a_context_past_the_budget_is_refused_before_it_is_tokenised(members: dict[str, bytes]) -> None:
    records = episodes(members)
    r = records[0]
    r["transcript"][0]["context"] += " filler" * 7000  # > 6,000 tokens against the 4,096 budget
    r["transcript"][0]["input_tokens"] += 7000
    recount(r)
    error = refused(pack(members, records=records))
    assert "context differs" in error.reason and "turn 0: context" in error.field


def test_the_same_task_under_two_keys_is_refused(members: dict[str, bytes]) -> None:
    records = episodes(members)
    copy = {**records[0], **{k: records[1][k] for k in ("key", "episode_index", "episode_seed")}}
    error = refused(pack(members, records=[records[0], copy] + records[2:]))
    assert "counted twice" in error.reason and error.field.endswith("task_id")


def test_a_self_memory_run_relabelled_full_context_is_refused(members: dict[str, bytes]) -> None:
    config = config_of(members)
    config["envs"][0]["kwargs"]["memory"] = "full"
    error = refused(pack(members, config=config))
    assert "memory='full'" in error.reason and "context" in error.field


def test_task_ids_that_do_not_match_the_claimed_seed_are_refused(members: dict[str, bytes]) -> None:
    config = config_of(members)
    config["seed"] = SEED + 1
    error = refused(pack(members, config=config))
    assert "episode_seed" in error.reason or "seed" in error.reason
    records = [{k: v for k, v in r.items() if k != "episode_seed"} for r in episodes(members)]
    error = refused(pack(members, config=config, records=records))
    assert "not the task this episode asks" in error.reason and "seed" in error.reason


def test_junk_after_the_answer_billed_as_output_is_refused(members: dict[str, bytes]) -> None:
    records = episodes(members)
    last = records[0]["transcript"][-1]
    last["output"] += " and some more billed tokens"
    last["output_tokens"] += 6
    recount(records[0])
    error = refused(pack(members, records=records))
    assert "after the turn's end" in error.reason and error.field.endswith("output")
    records = episodes(members)
    last = records[0]["transcript"][-1]
    last["output_ids"] = last["output_ids"] + last["output_ids"][:6]  # junk ids after </answer>
    last["output_tokens"] += 6
    recount(records[0])
    error = refused(pack(members, records=records))
    assert "output_ids" in error.field or "output_tokens" in error.field


def test_a_cherry_picked_subset_is_refused(members: dict[str, bytes]) -> None:
    records = episodes(members)
    kept = [r for r in records if r["f1"] == 1.0][: EPISODES - 3]
    error = refused(pack(members, records=kept))
    assert "missing" in error.reason and "subset" in error.reason


def test_an_extra_episode_outside_the_task_set_is_refused(members: dict[str, bytes]) -> None:
    records = episodes(members)
    extra = {**records[0], "key": f"{ENV_ID}#{EPISODES}", "episode_index": EPISODES}
    extra.pop("episode_seed")
    error = refused(pack(members, records=records + [extra]))
    assert "extra episode" in error.reason


@pytest.mark.parametrize("tamper, field", [
    (lambda r: r.update(tokens_total=r["tokens_total"] - 10), "tokens_total"),
    (lambda r: r.update(tokens_peak=r["tokens_peak"] + 1), "tokens_peak"),
    (lambda r: [c.update(input_tokens=c["input_tokens"] - 5) for c in r["transcript"]] and recount(r), "input_tokens"),
    (lambda r: [c.update(output_tokens=c["output_tokens"] // 2) for c in r["transcript"]] and recount(r),
     "output_tokens"),
    (lambda r: r.update(prediction="something better"), "prediction"),
    (lambda r: r.update(reward=1.5), "reward"),
    (lambda r: r.update(truncated_reason="max_turns"), "truncated_reason"),
])
def test_claimed_counts_and_outcomes_are_checked_against_the_replay(
        members: dict[str, bytes], tamper: Callable[[dict], Any], field: str) -> None:
    records = episodes(members)
    tamper(records[3])
    error = refused(pack(members, records=records))
    assert error.member == "episodes.jsonl" and field in error.field and records[3]["key"] in error.field


def test_a_transcript_cut_short_or_run_on_is_refused(members: dict[str, bytes]) -> None:
    records = episodes(members)
    r = searched(records)
    r["transcript"] = r["transcript"][:-1]
    recount(r)
    assert "episode is not over" in refused(pack(members, records=records)).reason
    records = episodes(members)
    r = records[0]
    r["transcript"].append(dict(r["transcript"][-1]))
    recount(r)
    assert "ended the episode" in refused(pack(members, records=records)).reason


# ------------------------------------------------------------------------------------------ settings

def test_an_unknown_id_is_refused_without_being_built(members: dict[str, bytes],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real_make = gym.make
    monkeypatch.setattr(gym, "make", lambda env_id, **kw: built.append(env_id) or real_make(env_id, **kw))
    config = config_of(members)
    config["envs"][0]["id"] = "CartPole-v1"
    records = [{**r, "env_id": "CartPole-v1"} for r in episodes(members)]
    error = refused(pack(members, config=config, records=records))
    assert "not a registered MemPO-Gym id" in error.reason and error.field == "envs[0].id"
    assert built == []
    config["envs"][0]["id"] = "os:system"
    assert "registered-id name" in refused(pack(members, config=config, records=records)).reason


@pytest.mark.parametrize("key, value, reason", [
    ("context_budget", 10**9, "integer in [256, 32768]"),
    ("max_turns", 10**6, "integer in [1, 64]"),
    ("num_tasks", 10**7, "integer in [1, 5000]"),
    ("num_distractors", 10**8, "integer in [0, 20000]"),
    ("evil", 1, "not one the scorer accepts"),
    ("memory", {"__object__": "x.Y", "describe": None}, "was an object"),
    ("tokenizer", "gpt2", "default tokenizer"),
    ("retriever", "dense", "must be one of"),
])
def test_settings_outside_the_allowlist_or_its_bounds_are_refused(
        members: dict[str, bytes], key: str, value: Any, reason: str, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real_make = gym.make
    monkeypatch.setattr(gym, "make", lambda env_id, **kw: built.append(env_id) or real_make(env_id, **kw))
    config = config_of(members)
    config["envs"][0]["kwargs"][key] = value
    error = refused(pack(members, config=config))
    assert reason in error.reason and key in error.field and built == []


# ------------------------------------------------------------------------------------------ archives

def test_ordinary_zips_are_accepted_and_special_files_refused(members: dict[str, bytes]) -> None:
    assert score_submission(pack(members, mode=None))["status"] == "accepted"  # writestr(name, data) style
    assert score_submission(pack(members, mode=0o600))["status"] == "accepted"  # permission bits only
    for kind, expected in ((stat.S_IFLNK, "symbolic links"), (stat.S_IFCHR, "devices"),
                           (stat.S_IFIFO, "FIFOs"), (stat.S_IFDIR, "directories")):
        error = refused(pack(members, mode=kind | 0o644))
        assert expected in error.reason, (kind, error.reason)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json/", b"")
    assert "directories are not allowed" in refused(buffer.getvalue()).reason


def test_an_unlisted_member_is_refused_from_the_central_directory(members: dict[str, bytes]) -> None:
    import os

    big = os.urandom(3 * 1024 * 1024)  # incompressible: the ratio check does not fire
    error = refused(pack({**members, "episodes.jsonl.bak": big}, fix=False))
    assert error.member == "episodes.jsonl.bak" and "unexpected member" in error.reason
    data = members["episodes.jsonl"]
    error = refused(pack({**members, "episodes.jsonl": data + b"\n"}, fix=False))
    assert (error.member, error.field) == ("episodes.jsonl", "size")
    flipped = data.replace(b'"turns":', b'"turnz":', 1)
    error = refused(pack({**members, "episodes.jsonl": flipped}, fix=False))
    assert (error.member, error.field) == ("episodes.jsonl", "sha256")
