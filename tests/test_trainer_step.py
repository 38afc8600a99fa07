"""End-to-end pieces of the MemPO trainer on a tiny random LlamaForCausalLM and a tiny SynthWiki world."""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from typing import Any, Mapping

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from mempo_gym.core.context import FullContext, SelfMemory  # noqa: E402
from mempo_gym.core.env import MemoryEnv  # noqa: E402
from mempo_gym.core.protocol import StopDetector  # noqa: E402
from mempo_gym.tasks.names import name_pool  # noqa: E402
from mempo_gym.tasks.synthwiki import SynthWikiConfig, generate_tasks, generate_world, synthwiki_vocabulary  # noqa: E402

from mempo_agents.trainer.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from mempo_agents.trainer.config import TrainerConfig  # noqa: E402
from mempo_agents.trainer.mempo import (  # noqa: E402

    Trajectory,
    Turn,
    answer_probability,
    build_sequences,
    clone_env,
    memory_token_mask,
    mempo_loss,
    minibatches,
    right_aligned,
    run_episodes,
    sample_batch,
    task_refs,
    train_rl,
    trajectory_advantages,
    update_policy,
)
from mempo_agents.trainer.oracle import CompactOracleAgent  # noqa: E402
from mempo_agents.trainer.policy import completion_logprobs, target_logprobs  # noqa: E402
from mempo_agents.trainer.sft import collect_demonstrations, pack_episodes, sft_loss, sft_train  # noqa: E402
from mempo_agents.trainer.word_tokenizer import build_word_tokenizer, vocabulary_from_texts  # noqa: E402

POOL = 60


class TitleSearch:
    """Exact-title lookup (a real SearchTool over the world's documents)."""

    def __init__(self, docs: Any) -> None:
        self.by_title = {d.title: d.text for d in docs}

    def search(self, query: str) -> str:
        return self.by_title.get(query.strip(), "No results.")

    def describe(self) -> Mapping[str, Any]:
        return {"name": "title"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    vocab = synthwiki_vocabulary(SynthWikiConfig(name_style="pool", num_entities=20, pool_size=POOL, year_range=(1900, 1950)))
    extra = vocabulary_from_texts(["Questions (answer all, in order, separated by ';' inside one <answer> block):",
                                   "Question: No results.", "1 = A | 2 : B ; C"])
    return build_word_tokenizer(vocab + extra, save_dir=tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def world_env(tok):
    base = SynthWikiConfig(seed=3, num_entities=20, name_style="pool", pool_size=POOL, hops=2, kinds=("bridge",),
                           year_range=(1900, 1950))
    world = generate_world(base)
    tasks = generate_tasks(world, replace(base, objectives=1, num_tasks=4)) + generate_tasks(
        world, replace(base, objectives=2, num_tasks=2, task_seed=1))
    env = MemoryEnv(tasks, TitleSearch(world.documents), tokenizer=tok, memory=SelfMemory(), context_budget=256,
                    max_turns=4, max_turn_tokens=16, instructions="")
    titles = {d.title for d in world.documents}
    return env, [w for w in name_pool(POOL, 0) if w not in titles]


def tiny_llama(tok, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=512, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)).eval()


def test_word_tokenizer_round_trips_synthwiki_text(tok, world_env) -> None:
    env, _ = world_env
    q = env.tasks[0].questions[0]
    for text in (q.text, *q.supporting_texts, f"<mem> 1 = {q.answers[0]} </mem> <answer> {q.answers[0]} </answer>"):
        ids = tok.encode(text, add_special_tokens=False)
        assert tok.unk_token_id not in ids, text
        assert tok.encode(tok.decode(ids), add_special_tokens=False) == ids


def test_sampled_logprobs_match_a_full_forward_pass(tok) -> None:
    model = tiny_llama(tok)
    contexts = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15, 16]]  # different lengths: left padding
    gen, logp = sample_batch(model, contexts, [6, 4, 6], StopDetector(tok), tok.pad_token_id, 1.0,
                             torch.Generator().manual_seed(0))
    assert [len(g) for g in gen] == [len(lp) for lp in logp] and len(gen[1]) <= 4
    with torch.no_grad():
        scored, mask = completion_logprobs(model, contexts, gen)  # one batch, left-padded
    for r, (ctx, g, lp) in enumerate(zip(contexts, gen, logp)):
        ids = torch.tensor([ctx + g])
        with torch.no_grad():
            full = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
        full = full.gather(-1, ids[0, 1:, None]).squeeze(-1)[len(ctx) - 1:]
        assert full.tolist() == pytest.approx(lp, abs=1e-4)
        assert scored[r][mask[r]].tolist() == pytest.approx(lp, abs=1e-4)
    greedy1, _ = sample_batch(model, contexts, [5, 5, 5], StopDetector(tok), tok.pad_token_id, 0.0)
    greedy2, _ = sample_batch(model, contexts[::-1], [5, 5, 5], StopDetector(tok), tok.pad_token_id, 0.0)
    assert greedy1 == greedy2[::-1]  # batching does not change greedy outputs


def test_rollouts_record_env_context_and_generated_tokens(tok, world_env) -> None:
    env, _ = world_env
    model = tiny_llama(tok)
    slots = [(clone_env(env, SelfMemory()), 0), (clone_env(env, SelfMemory()), 4)]
    trajs = run_episodes(model, tok, slots, temperature=1.0, generator=torch.Generator().manual_seed(1))
    for tr in trajs:
        assert tr.metrics and "tokens_total" in tr.metrics and len(tr.turns) == len(tr.transcript)
        for turn, rec in zip(tr.turns, tr.transcript):
            # context ids are exactly the env's context; generated ids are what the env received
            assert turn.context_ids == tok.encode(rec["context"], add_special_tokens=False)
            assert len(turn.old_logprobs) == len(turn.generated_ids) == len(turn.mem_mask)
            # token-exact: the env metered exactly the ids the policy sampled (no text round trip)
            assert rec["output_ids"] == turn.generated_ids
            assert rec["output_tokens"] == len(turn.generated_ids) and rec["input_tokens"] == len(turn.context_ids)


def _oracle_trajectories(tok, env, model, index_pairs) -> list[Trajectory]:
    """Teacher-forced oracle episodes as trajectories, with the model's log-probs as old log-probs."""
    oracle = CompactOracleAgent()
    trajs = []
    for group, index in index_pairs:
        e = clone_env(env, SelfMemory())
        obs, info = e.reset(options={"task_index": index})
        oracle.reset(e.task, 0)
        turns, done = [], False
        while not done:
            text = oracle.act(obs, info, 0)
            ctx = list(e.context_ids)
            gen = tok.encode(text, add_special_tokens=False)
            with torch.no_grad():
                lp = completion_logprobs(model, [ctx], [gen])[0][0].tolist()
            turns.append(Turn(ctx, gen, lp, memory_token_mask(tok, gen), None))
            obs, _r, term, trunc, info = e.step(text)
            done = term or trunc
        trajs.append(Trajectory(group, e.task.id, e.task.golds, "", turns, e.turns, info["metrics"]))
    return trajs


def test_update_step_changes_parameters_and_lowers_loss_on_a_fixed_batch(tok, world_env) -> None:
    env, _ = world_env
    model = tiny_llama(tok)
    trajs = _oracle_trajectories(tok, env, model, [(0, 0), (0, 1), (1, 2), (1, 3)])
    rewards = [1.0, 0.0, 0.0, 1.0]
    seqs = build_sequences(trajs, trajectory_advantages(rewards, [0, 0, 1, 1]), None, 0.0)
    assert all(s.generated_ids and s.context_ids for s in seqs)
    cfg = TrainerConfig(stage="grpo", init_model="x", lr=3e-3, kl_beta=0.05, clip_eps=0.2, minibatch_tokens=256)

    def fixed_batch_loss(policy: Any, ref: Any) -> float:
        total = 0.0
        with torch.no_grad():
            for mb in minibatches(seqs, cfg.minibatch_tokens):
                args = ([s.context_ids for s in mb], [s.generated_ids for s in mb])
                logp, mask = completion_logprobs(policy, *args)
                ref_logp, _ = completion_logprobs(ref, *args)
                width = mask.shape[1]
                old = right_aligned([s.old_logprobs for s in mb], width)
                adv = right_aligned([s.advantages for s in mb], width)
                weight = torch.tensor([s.weight for s in mb])
                total += float(mempo_loss(logp, old, ref_logp, adv, mask, weight, cfg.clip_eps, cfg.kl_beta)[0])
        return total

    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    ref = copy.deepcopy(model).eval()
    before_params = [p.detach().clone() for p in model.parameters()]
    before = fixed_batch_loss(model, ref)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    policy, optimizer = accelerator.prepare(model, optimizer)
    for _ in range(3):
        stats = update_policy(policy, ref, optimizer, accelerator, seqs, cfg, tok.pad_token_id)
    after = fixed_batch_loss(accelerator.unwrap_model(policy), ref)
    assert any(not torch.equal(a, b) for a, b in zip(before_params, model.parameters()))
    assert after < before - 1e-4
    assert stats["kl"] >= 0 and stats["train_tokens"] == sum(len(s.advantages) for s in seqs)


def test_zero_advantage_batch_leaves_parameters_unchanged(tok, world_env) -> None:
    env, _ = world_env
    model = tiny_llama(tok)
    trajs = _oracle_trajectories(tok, env, model, [(0, 0), (0, 1)])
    seqs = build_sequences(trajs, trajectory_advantages([1.0, 1.0], [0, 0]), None, 0.0)  # equal rewards
    cfg = TrainerConfig(stage="grpo", init_model="x", lr=1e-2, kl_beta=0.1)
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    policy, optimizer = accelerator.prepare(model, optimizer)
    update_policy(policy, copy.deepcopy(model), optimizer, accelerator, seqs, cfg, tok.pad_token_id)
    assert all(torch.allclose(a, b) for a, b in zip(before, model.parameters()))


def test_sft_collects_correct_oracle_turns_skips_mistakes_and_learns(tok, world_env) -> None:
    env, decoys = world_env
    oracle = CompactOracleAgent(mistake_rate=0.5, decoys=decoys, seed=0)
    refs = task_refs([env])
    demos, stats = collect_demonstrations(oracle, [env], refs, tok)
    assert stats["kept"] >= 1 and stats["turns"] == len(demos)
    decoy_ids = {tok.convert_tokens_to_ids(d) for d in decoys}
    assert not any(set(d.output_ids) & decoy_ids for d in demos)  # mistakes are never targets
    no_results = tok.encode("No results.", add_special_tokens=False)
    recoveries = [d for d in demos if list(d.context_ids[-len(no_results) - 1:-1]) == no_results]
    assert recoveries, "the turn after a failed search is a target"
    model = tiny_llama(tok)
    batch = demos[:16]
    before = float(sft_loss(model, batch, tok.pad_token_id, "cpu")[0])
    model = sft_train(model, demos, tok.pad_token_id, epochs=8, batch_tokens=2048, lr=3e-3)
    after = float(sft_loss(model, batch, tok.pad_token_id, "cpu")[0])
    assert after < before - 0.5


def test_sft_loss_scores_the_same_tokens_as_completion_logprobs(tok, world_env) -> None:
    env, decoys = world_env
    demos, _ = collect_demonstrations(CompactOracleAgent(mistake_rate=0.3, decoys=decoys, seed=1), [env],
                                      task_refs([env]), tok)
    model, batch = tiny_llama(tok), demos[:8]
    logp, mask = completion_logprobs(model, [d.context_ids for d in batch], [d.output_ids for d in batch],
                                     pad_id=tok.pad_token_id)
    loss, n = sft_loss(model, batch, tok.pad_token_id)
    assert n == int(mask.sum())
    assert float(loss) == pytest.approx(float(-logp.sum() / n), rel=1e-5)
    with pytest.raises(ValueError, match="target positions"):
        target_logprobs(model, [batch[0].context_ids], [[0]])


def test_pack_episodes_merges_full_context_turns_with_the_same_loss_and_gradient(tok, world_env) -> None:
    env, decoys = world_env
    full = clone_env(env, FullContext())
    full.context_budget = 512
    oracle = CompactOracleAgent(mistake_rate=0.5, decoys=decoys, seed=0, note_tag="think")
    demos, stats = collect_demonstrations(oracle, [full], task_refs([full]), tok)
    packed = pack_episodes(demos)
    assert stats["kept"] <= len(packed) < len(demos)  # at least one per kept episode, and some turns merged
    assert sum(len(d.target_positions()) for d in packed) == sum(len(d.output_ids) for d in demos)
    merged = [d for d in packed if d.earlier_outputs]
    assert merged and all(d.context_ids[a:b] for d in merged for a, b in d.earlier_outputs)
    # a mistake turn (excluded by the oracle) stays inside a packed context without being a target
    decoy_ids = {tok.convert_tokens_to_ids(d) for d in decoys}
    targets = [d.context_ids[j] for d in merged for a, b in d.earlier_outputs for j in range(a, b)]
    assert not set(targets) & decoy_ids
    assert any(set(d.context_ids) & decoy_ids for d in merged)

    def summed(batch_of: list) -> tuple[float, list[torch.Tensor]]:
        model = tiny_llama(tok)
        total = sum(sft_loss(model, [d], tok.pad_token_id)[0] * len(d.target_positions()) for d in batch_of)
        total.backward()
        return float(total), [p.grad.clone() for p in model.parameters()]

    loss_turns, grad_turns = summed(demos)
    loss_packed, grad_packed = summed(packed)
    assert loss_packed == pytest.approx(loss_turns, rel=1e-5)
    for a, b in zip(grad_turns, grad_packed):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    # self-memory turns never extend one another: nothing to pack
    self_demos, _ = collect_demonstrations(CompactOracleAgent(mistake_rate=0.5, decoys=decoys, seed=0), [env],
                                           task_refs([env]), tok)
    assert pack_episodes(self_demos) == self_demos
    assert pack_episodes(packed) == packed


def test_train_rl_checkpoints_and_resumes(tok, world_env, tmp_path) -> None:
    env, _ = world_env
    small = clone_env(env, SelfMemory())
    small.max_turns, small.max_turn_tokens = 2, 8
    model = tiny_llama(tok)
    cfg = TrainerConfig(stage="mempo", init_model="x", group_size=2, tasks_per_step=1, steps=2, lr=1e-3,
                        save_every=1, objectives_schedule=[[0, [1]]], minibatch_tokens=512)
    logs: list[tuple[int, dict[str, float]]] = []
    saved: list[int] = []

    def checkpoint(step: int, policy: Any, optimizer: Any) -> None:
        save_checkpoint(tmp_path / "last", policy, tok, step, cfg.to_dict(), optimizer)
        saved.append(step)

    train_rl(replace(cfg, steps=1), model, tok, [small], log=lambda s, st: logs.append((s, st)), checkpoint=checkpoint)
    assert saved == [1] and logs[0][0] == 1
    for key in ("reward", "f1", "tokens_total", "kl", "memory_reward", "loss"):
        assert key in logs[0][1]
    first = logs[0][1]  # one group of k=1 tasks; it has a signal only if its two rewards differ
    assert first["groups"] == 1 and first["signal_groups"] in (0.0, 1.0) and first["objectives"] == 1.0
    restored, tok2, state, opt_state = load_checkpoint(tmp_path / "last")
    assert state["step"] == 1 and opt_state is not None and len(tok2) == len(tok)
    ids = torch.tensor([[5, 6, 7]])
    assert torch.allclose(restored(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5)
    train_rl(cfg, restored, tok, [small], log=lambda s, st: logs.append((s, st)), checkpoint=checkpoint,
             start_step=state["step"], optimizer_state=opt_state)
    assert saved == [1, 2] and [s for s, _ in logs] == [1, 2]


def test_cli_resume_keeps_the_start_policy_as_kl_reference(tok, tmp_path) -> None:
    """``python -m mempo_agents.trainer --resume`` measures KL to ``init_model``, not to the
    resumed weights (a copy of those would restart KL at 0 on every resume)."""
    from mempo_agents.trainer.__main__ import kl_reference

    start = tiny_llama(tok, seed=0)
    start.save_pretrained(str(tmp_path / "init"), safe_serialization=True)
    tok.save_pretrained(str(tmp_path / "init"))
    cfg = TrainerConfig(stage="grpo", init_model=str(tmp_path / "init"), kl_beta=0.04)
    assert kl_reference(cfg, 0) is None and kl_reference(replace(cfg, kl_beta=0.0), 3) is None
    ref = kl_reference(cfg, 3)
    resumed = tiny_llama(tok, seed=1)  # stands in for weights moved by 3 updates
    ids = torch.tensor([[5, 6, 7]])
    assert torch.allclose(ref(input_ids=ids).logits, start(input_ids=ids).logits, atol=1e-6)
    assert not torch.allclose(ref(input_ids=ids).logits, resumed(input_ids=ids).logits, atol=1e-3)


def test_old_reference_and_new_logprobs_share_one_precision(tok, world_env) -> None:
    """On the first update with the reference equal to the policy, the ratio is exactly 1 and
    the KL exactly 0 under bf16 autocast (old/ref in fp32 and new in bf16 gave clip 0.0017, KL 0.0023)."""
    env, _ = world_env
    model = tiny_llama(tok)
    trajs = _oracle_trajectories(tok, env, model, [(0, 0), (0, 1), (1, 2), (1, 3)])
    seqs = build_sequences(trajs, trajectory_advantages([1.0, 0.0, 0.0, 1.0], [0, 0, 1, 1]), None, 0.0)
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    for epochs in (1, 2):
        AcceleratorState._reset_state(reset_partial_state=True)  # a fresh mixed-precision state
        cfg = TrainerConfig(stage="grpo", init_model="x", lr=0.0, kl_beta=0.1, clip_eps=1e-6, ppo_epochs=epochs,
                            minibatch_tokens=256)
        accelerator = Accelerator(cpu=True, mixed_precision="bf16")
        policy = copy.deepcopy(model)
        ref = copy.deepcopy(model).eval()
        optimizer = torch.optim.AdamW(policy.parameters(), lr=0.0)
        policy, optimizer = accelerator.prepare(policy, optimizer)
        stats = update_policy(policy, ref, optimizer, accelerator, seqs, cfg, tok.pad_token_id)
        assert stats["clip_frac"] == 0.0 and stats["kl"] == 0.0, (epochs, stats)
        assert stats["sampler_logprob_gap"] > 0.0  # bf16 scoring differs from the fp32 sampler: reported
    AcceleratorState._reset_state(reset_partial_state=True)


def test_a_row_longer_than_the_batch_budget_is_scored_through_the_kv_cache_with_the_same_result(tok, monkeypatch) -> None:
    """answer_probability prefills a row over ``max_tokens_per_batch`` in pieces (memory linear in its
    length); the probability is the one-pass value."""
    import mempo_agents.trainer.mempo as trainer

    scored_in_pieces = []
    real = trainer._long_row_logprob
    monkeypatch.setattr(trainer, "_long_row_logprob",
                        lambda m, p, t, piece: scored_in_pieces.append(len(p)) or real(m, p, t, piece))
    model = tiny_llama(tok, seed=3)
    g = torch.Generator().manual_seed(0)
    prefixes = [torch.randint(5, len(tok), (n,), generator=g).tolist() for n in (300, 41, 170)]
    targets = [[7, 9, 11], [12], [8, 8, 30, 31]]
    one_pass = answer_probability(model, prefixes, targets, max_tokens_per_batch=4096)
    assert scored_in_pieces == []
    pieces = answer_probability(model, prefixes, targets, max_tokens_per_batch=64)
    assert sorted(scored_in_pieces) == [170, 300]  # the rows over 64 tokens went through the cache
    assert pieces.tolist() == pytest.approx(one_pass.tolist(), rel=1e-4)
    assert 0 < float(one_pass.min()) and float(one_pass.max()) < 1
