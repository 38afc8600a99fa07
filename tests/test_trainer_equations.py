"""Each MemPO trainer equation against hand-computed numbers on tiny tensors."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from mempo_gym.core.context import TurnRecord  # noqa: E402
from mempo_gym.core.protocol import parse_turn  # noqa: E402

from mempo_agents.trainer.checkpoint import optimizer_from_flat, optimizer_to_flat  # noqa: E402
from mempo_agents.trainer.config import TrainerConfig  # noqa: E402
from mempo_agents.trainer.mempo import (  # noqa: E402
    TaskRef,
    Trajectory,
    Turn,
    allowed_objectives,
    answer_probability,
    build_sequences,
    clipped_surrogate,
    draw_tasks,
    group_normalize,
    kl_k3,
    memory_advantages,
    memory_reward_inputs,
    memory_rewards,
    memory_token_mask,
    mempo_loss,
    right_aligned,
    signal_probability,
    signal_weights,
    token_advantages,
    trajectory_advantages,
    trajectory_reward,
)
from mempo_agents.trainer.word_tokenizer import build_word_tokenizer  # noqa: E402

WORDS = ["is", "1", "2", "=", ":", "|", ";", "Vema", "Gaga", "Kizu", "Who", "?", "Question", "X"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tok():
    return build_word_tokenizer(WORDS)


class _Out:
    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits


class TriggerLM(torch.nn.Module):
    """A fixed causal LM: next-token distribution ``probs_seen`` once token ``trigger`` has
    appeared in the prefix, else ``probs_unseen`` (exact numbers for hand computation)."""

    def __init__(self, vocab: int, trigger: int, probs_seen: list[float], probs_unseen: list[float]) -> None:
        super().__init__()
        self.trigger = trigger
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.register_buffer("seen", torch.log(torch.tensor(probs_seen + [1e-30] * (vocab - len(probs_seen)))))
        self.register_buffer("unseen", torch.log(torch.tensor(probs_unseen + [1e-30] * (vocab - len(probs_unseen)))))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: object) -> _Out:
        seen = (input_ids == self.trigger).long().cumsum(-1) > 0
        logits = torch.where(seen[..., None], self.seen, self.unseen) + 0 * self.dummy
        return _Out(logits)


# ---------------------------------------------------------------- trajectory reward / advantage
def test_group_normalize_hand_computed() -> None:
    # mean 2, sample std 1 -> [-1, 0, 1]
    assert torch.allclose(group_normalize(torch.tensor([1.0, 2.0, 3.0])), torch.tensor([-1.0, 0.0, 1.0]))
    # [0, 1]: mean .5, sample std sqrt(.5) -> ±0.7071
    assert torch.allclose(group_normalize(torch.tensor([0.0, 1.0])), torch.tensor([-0.70710678, 0.70710678]))


def test_group_normalize_guards_equal_rewards_and_single_member() -> None:
    assert torch.equal(group_normalize(torch.tensor([0.7, 0.7, 0.7])), torch.zeros(3))
    assert torch.equal(group_normalize(torch.tensor([0.9])), torch.zeros(1))


def test_trajectory_advantages_are_per_group() -> None:
    adv = trajectory_advantages([1.0, 0.0, 0.5, 0.5, 0.3], groups=[0, 0, 1, 1, 2])
    assert adv.tolist()[:2] == pytest.approx([0.70710678, -0.70710678])
    assert adv.tolist()[2:] == [0.0, 0.0, 0.0]  # equal rewards, and a group of one


def test_trajectory_reward_requires_valid_format() -> None:
    ok = {"answered": True, "malformed_turns": 0, "f1": 0.5, "em": 0.0}
    assert trajectory_reward(ok, "f1") == 0.5
    assert trajectory_reward(ok, "em") == 0.0
    assert trajectory_reward({**ok, "malformed_turns": 1}, "f1", format_penalty=0.2) == -0.2
    assert trajectory_reward({**ok, "answered": False}, "f1") == 0.0


# ---------------------------------------------------------------- memory reward (Eq. 4-5)
def test_answer_probability_is_geometric_mean_of_token_probs() -> None:
    model = TriggerLM(vocab=6, trigger=5, probs_seen=[0.5, 0.125, 0.375], probs_unseen=[0.25, 0.25, 0.5])
    # prefix without the trigger: targets [0, 2] -> sqrt(0.25 * 0.5)
    # prefix with the trigger:    targets [0, 1] -> sqrt(0.5 * 0.125) = 0.25
    p = answer_probability(model, [[3, 4], [5, 4]], [[0, 2], [0, 1]])
    assert p.tolist() == pytest.approx([math.sqrt(0.125), 0.25], rel=1e-5)


def _traj(tok, mem_texts: list[str | None], prompt: str = "Question : Who ?\n") -> Trajectory:
    turns, records = [], []
    for i, mem in enumerate(mem_texts):
        text = (f"<mem> {mem} </mem> " if mem is not None else "") + "<search> Gaga </search>"
        parsed = parse_turn(text)
        ids = tok.encode(text, add_special_tokens=False)
        turns.append(Turn([1], ids, [0.0] * len(ids), memory_token_mask(tok, ids), parsed.mem))
        records.append(TurnRecord(index=i, parsed=parsed, information="Gaga is X"))
    return Trajectory(group=0, task_id="t", golds=[("Kizu",)], prompt=prompt, turns=turns, records=records, metrics={})


def test_memory_reward_inputs_condition_on_memory_and_on_full_history(tok) -> None:
    traj = _traj(tok, ["1 : Gaga", None, "1 = Kizu"])
    rows = memory_reward_inputs(traj, tok)
    assert [r[0] for r in rows] == [0, 2]  # turns that wrote a <mem>
    t, with_mem, history, answer = rows[1]
    assert tok.decode(with_mem) == "Question : Who ? <mem> 1 = Kizu </mem> <answer>"
    # history before turn 2: the prompt + turns 0 and 1 in full, with their information
    assert tok.decode(history) == (
        "Question : Who ? <mem> 1 : Gaga </mem> <search> Gaga </search> <information> Gaga is X </information> "
        "<search> Gaga </search> <information> Gaga is X </information> <answer>"
    )
    assert tok.decode(answer) == "Kizu"  # the gold answer's tokens only: no closing tag (Eq. 5)
    # at turn 0 the history is the prompt alone
    assert tok.decode(rows[0][2]) == "Question : Who ? <answer>"


def test_memory_reward_is_memory_probability_minus_history_baseline(tok) -> None:
    kizu, close = tok.convert_tokens_to_ids("Kizu"), tok.convert_tokens_to_ids("</answer>")
    trigger = tok.convert_tokens_to_ids("=")  # only the answered memory "1 = Kizu" holds it
    vocab = len(tok)
    seen = [1e-30] * vocab
    unseen = [1e-30] * vocab
    seen[kizu], seen[close] = 0.8, 0.2
    unseen[kizu], unseen[close] = 0.1, 0.9
    model = TriggerLM(vocab, trigger, seen, unseen)
    traj = _traj(tok, ["1 : Gaga", "1 = Kizu"])
    r = memory_rewards(model, [traj], tok)[0]
    # turn 0: neither prefix holds "=": P = .1 both -> 0
    assert r[0] == pytest.approx(0.0, abs=1e-6)
    # turn 1: memory holds "=": P(Kizu) = .8 ; history (turn 0 only) lacks it: .1. The closing tag's
    # probability (.2 vs .9) is not part of P(answer | .) (averaging it in would give .4 - .3).
    assert r[1] == pytest.approx(0.8 - 0.1, abs=1e-5)


def test_memory_advantage_normalises_per_turn_or_per_group() -> None:
    rewards = [{0: 0.1, 1: 0.5}, {0: 0.3, 1: 0.5}, {0: 0.2}]
    per_turn = memory_advantages(rewards, groups=[0, 0, 0], norm="turn")
    # turn 0: [.1, .3, .2] -> mean .2, sample std .1 -> [-1, 1, 0]; turn 1: equal -> 0
    assert per_turn[0][0] == pytest.approx(-1.0) and per_turn[1][0] == pytest.approx(1.0)
    assert per_turn[2][0] == pytest.approx(0.0) and per_turn[0][1] == 0.0 and per_turn[1][1] == 0.0
    per_group = memory_advantages(rewards, groups=[0, 0, 0], norm="group")
    values = torch.tensor([0.1, 0.5, 0.3, 0.5, 0.2])
    expected = (values - values.mean()) / values.std()
    got = [per_group[0][0], per_group[0][1], per_group[1][0], per_group[1][1], per_group[2][0]]
    assert got == pytest.approx(expected.tolist(), rel=1e-5)


def test_memory_advantage_never_mixes_groups() -> None:
    adv = memory_advantages([{0: 0.0}, {0: 1.0}, {0: 5.0}], groups=[0, 0, 1], norm="turn")
    assert adv[2][0] == 0.0  # alone in its group
    assert adv[0][0] == pytest.approx(-0.70710678)


# ---------------------------------------------------------------- combined advantage (Eq. 9) and masks
def test_memory_token_mask_covers_the_mem_block(tok) -> None:
    ids = tok.encode("<mem> 1 = Vema </mem> <search> Gaga </search>", add_special_tokens=False)
    assert memory_token_mask(tok, ids) == [True] * 5 + [False] * 3
    assert memory_token_mask(tok, tok.encode("<search> Gaga </search>", add_special_tokens=False)) == [False] * 3


def test_token_advantages_add_weighted_memory_term_on_mem_tokens_only() -> None:
    turn = Turn([9, 9], [1, 2, 3, 4], [0.0] * 4, [True, True, False, False], "m")
    assert token_advantages(turn, 0.5, -2.0, 0.25).tolist() == [0.0, 0.0, 0.5, 0.5]
    assert token_advantages(turn, 0.5, None, 1.0).tolist() == [0.5] * 4
    assert token_advantages(turn, 0.5, -2.0, 0.0).tolist() == [0.5] * 4  # w = 0: plain GRPO


def test_build_sequences_masks_env_tokens_and_normalises_by_trajectory_length() -> None:
    t_a = Turn([7, 7, 7], [1, 2], [-0.1, -0.2], [True, False], "m")
    t_b = Turn([8], [3, 4, 5], [-0.3, -0.4, -0.5], [False, False, False], None)
    tr1 = Trajectory(0, "x", [("a",)], "", [t_a, t_b], [], {})
    tr2 = Trajectory(0, "x", [("a",)], "", [Turn([6], [1], [-1.0], [False], None)], [], {})
    seqs = build_sequences([tr1, tr2], torch.tensor([1.0, -1.0]), [{0: 2.0}, {}], memory_weight=1.0)
    assert [s.context_ids for s in seqs] == [[7, 7, 7], [8], [6]]  # env-inserted: no loss
    assert [s.generated_ids for s in seqs] == [[1, 2], [3, 4, 5], [1]]
    assert seqs[0].advantages == [3.0, 1.0] and seqs[1].advantages == [1.0, 1.0, 1.0]
    assert seqs[2].advantages == [-1.0]
    # weight = 1 / (G * |o_i|): G = 2, |o_1| = 5, |o_2| = 1
    assert [s.weight for s in seqs] == pytest.approx([0.1, 0.1, 0.5])
    # per-token terms are right-aligned like completion_logprobs' columns
    assert right_aligned([s.advantages for s in seqs[:2]], 3).tolist() == [[0.0, 3.0, 1.0], [1.0, 1.0, 1.0]]


def test_memory_advantage_of_a_group_without_trajectory_signal_is_an_explicit_choice() -> None:
    rewards = [{0: 0.1}, {0: 0.3}, {0: 0.0}, {0: 0.4}]
    groups = [0, 0, 1, 1]
    traj = [0.0, 0.0, 1.0, 0.0]  # group 0 all failed (A^T = 0), group 1 has signal
    applied = memory_advantages(rewards, groups, "turn", traj, flat_groups="apply")
    skipped = memory_advantages(rewards, groups, "turn", traj, flat_groups="skip")
    assert applied[0][0] == pytest.approx(-0.70710678) and applied[1][0] == pytest.approx(0.70710678)
    assert skipped[0][0] == 0.0 and skipped[1][0] == 0.0  # no trajectory signal: no update at all
    assert skipped[2] == applied[2] and skipped[3] == applied[3]
    with pytest.raises(ValueError, match="flat_groups"):
        memory_advantages(rewards, groups, flat_groups="sometimes")


def test_memory_advantage_without_std_keeps_the_scale_of_the_memory_reward() -> None:
    # two memories whose P(answer) differ by a few thousandths, and one alone at its turn index
    rewards = [{0: 0.101, 1: 0.5}, {0: 0.104}]
    groups = [0, 0]
    scaled = memory_advantages(rewards, groups, "turn", scale="std")
    centred = memory_advantages(rewards, groups, "turn", scale="none")
    # float32: the difference of 0.101 and 0.104 is exact to about 1e-5 relative
    assert scaled[0][0] == pytest.approx(-0.70710678, rel=1e-4) and scaled[1][0] == pytest.approx(0.70710678, rel=1e-4)
    assert centred[0][0] == pytest.approx(-0.0015, rel=1e-4) and centred[1][0] == pytest.approx(0.0015, rel=1e-4)
    assert centred[0][1] == 0.0 and scaled[0][1] == 0.0  # a bucket of one: nothing to compare with
    with pytest.raises(ValueError, match="scale"):
        memory_advantages(rewards, groups, scale="max")


# ---------------------------------------------------------------- objective (Eq. 10)
def test_clipped_surrogate_hand_computed() -> None:
    ratio = torch.tensor([1.5, 0.5, 0.5, 1.5])
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    got = clipped_surrogate(torch.log(ratio), torch.zeros(4), adv, clip_eps=0.2)
    # min(ρA, clip(ρ)A): 1.5->1.2 ; 0.5 -> 0.5 ; -0.5 vs -0.8 -> -0.8 ; -1.5 vs -1.2 -> -1.5
    assert got.tolist() == pytest.approx([1.2, 0.5, -0.8, -1.5])


def test_kl_k3_hand_computed_and_nonnegative() -> None:
    got = kl_k3(torch.log(torch.tensor([0.5, 0.3])), torch.log(torch.tensor([0.25, 0.3])))
    assert got.tolist() == pytest.approx([0.5 - math.log(0.5) - 1.0, 0.0], abs=1e-6)
    assert (kl_k3(torch.randn(100), torch.randn(100)) >= 0).all()


def test_mempo_loss_hand_computed() -> None:
    logp = torch.log(torch.tensor([[1.0, 0.5, 0.9]]))
    old = torch.log(torch.tensor([[1.0, 0.25, 0.9]]))  # ratios 1, 2, 1
    ref = torch.log(torch.tensor([[1.0, 0.25, 0.9]]))
    adv = torch.tensor([[9.0, 1.0, -1.0]])
    mask = torch.tensor([[False, True, True]])  # position 0 is an env token: no loss
    weight = torch.tensor([0.5])
    loss, stats = mempo_loss(logp, old, ref, adv, mask, weight, clip_eps=0.2, kl_beta=0.1)
    kl_tok = 0.5 - math.log(0.5) - 1.0  # r = .25/.5
    # token 1: -min(2*1, 1.2*1) + .1*kl ; token 2: -(-1) + 0 ; times weight .5
    expected = 0.5 * ((-1.2 + 0.1 * kl_tok) + 1.0)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert stats["clip_frac"] == pytest.approx(0.5) and stats["tokens"] == 2
    assert stats["kl"] == pytest.approx(kl_tok / 2, rel=1e-5)
    no_kl, _ = mempo_loss(logp, old, None, adv, mask, weight, clip_eps=0.2, kl_beta=0.1)
    assert float(no_kl) == pytest.approx(0.5 * (-1.2 + 1.0), rel=1e-5)


# ---------------------------------------------------------------- config, curriculum, checkpoint state
def test_curriculum_schedule() -> None:
    schedule = [[0, [1]], [10, [1, 2]], [30, [2, 4]]]
    assert allowed_objectives(schedule, 0) == {1}
    assert allowed_objectives(schedule, 10) == {1, 2}
    assert allowed_objectives(schedule, 99) == {2, 4}
    assert allowed_objectives([], 5) is None


def test_signal_probability_is_the_chance_a_group_has_unequal_rewards() -> None:
    assert signal_probability(0.0, 4) == 0.0 and signal_probability(1.0, 4) == 0.0
    assert signal_probability(0.5, 2) == pytest.approx(0.5)  # right-wrong or wrong-right
    assert signal_probability(0.92, 4) == pytest.approx(1 - 0.92 ** 4 - 0.08 ** 4)
    # the shipped adapter's held-out EM at k = 1 / 2 / 4 / 8: groups at k = 4 carry a signal most often
    weights = signal_weights({1: 0.92, 2: 0.89, 4: 0.66, 8: 0.237}, 4)
    assert max(weights, key=weights.get) == 4 and weights[1] < weights[2] < weights[8] < weights[4]


def _pool() -> list[TaskRef]:  # 8 tasks at k=1 and 2 at k=4 per world, as in the RL recipe's pool
    return [TaskRef(0, i, 1) for i in range(8)] + [TaskRef(0, 8 + i, 4) for i in range(2)]


def test_draw_tasks_uniform_is_rng_sample_and_weights_pick_k_first() -> None:
    import random

    pool = _pool()
    assert draw_tasks(pool, 3, random.Random(5)) == random.Random(5).sample(pool, 3)  # old runs draw the same
    assert draw_tasks(pool, 3, random.Random(5), {}) == random.Random(5).sample(pool, 3)
    rng = random.Random(0)
    uniform = sum(draw_tasks(pool, 1, rng)[0].objectives == 4 for _ in range(4000)) / 4000
    weighted = sum(draw_tasks(pool, 1, rng, {1: 1.0, 4: 1.0})[0].objectives == 4 for _ in range(4000)) / 4000
    assert uniform == pytest.approx(0.2, abs=0.03) and weighted == pytest.approx(0.5, abs=0.03)
    only4 = draw_tasks(pool, 5, rng, {4: 1.0})  # a k without weight is never drawn; no task twice
    assert sorted(r.index for r in only4) == [8, 9]
    both = draw_tasks(pool, 10, rng, {1: 0.1, 4: 5.0})
    assert sorted((r.source, r.index) for r in both) == [(0, i) for i in range(10)]
    with pytest.raises(ValueError, match="positive weight"):
        draw_tasks(pool, 1, rng, {2: 1.0, 8: 1.0})


def test_config_round_trip_and_errors(tmp_path) -> None:
    cfg = TrainerConfig(stage="grpo", model_config={"hidden_size": 32}, env_sources=[{"seed": 1}])
    for name in ("c.yaml", "c.json"):
        cfg.save(tmp_path / name)
        assert TrainerConfig.load(tmp_path / name) == cfg
    assert not cfg.use_memory_reward and TrainerConfig(stage="mempo", init_model="m").use_memory_reward
    with pytest.raises(ValueError, match="stage"):
        TrainerConfig(stage="ppo", init_model="m")
    with pytest.raises(ValueError, match="unknown trainer config keys"):
        TrainerConfig.from_dict({"init_model": "m", "learning_rate": 1.0})
    with pytest.raises(ValueError, match="init_model"):
        TrainerConfig()
    with pytest.raises(ValueError, match="memory_scale"):
        TrainerConfig(init_model="m", memory_scale="max")
    weighted = TrainerConfig(init_model="m", objectives_weights={"4": 2, 8: 0.5})  # JSON keys are strings
    assert weighted.objectives_weights == {4: 2.0, 8: 0.5}
    weighted.save(tmp_path / "w.json")
    assert TrainerConfig.load(tmp_path / "w.json") == weighted
    for bad in ({4: -1.0}, {4: 0.0}, {"four": 1.0}):
        with pytest.raises(ValueError, match="objectives_weights"):
            TrainerConfig(init_model="m", objectives_weights=bad)


def test_optimizer_state_flattens_without_pickle() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.AdamW([p], lr=0.1)
    p.grad = torch.ones(3)
    opt.step()
    tensors, meta = optimizer_to_flat(opt.state_dict())
    assert set(tensors) == {"0.step", "0.exp_avg", "0.exp_avg_sq"}
    restored = optimizer_from_flat(tensors, meta)
    opt2 = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))], lr=0.5)
    opt2.load_state_dict(restored)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert opt2.param_groups[0]["lr"] == 0.1
