"""Comparison drills: short SFT examples of the one decision the agent gets wrong most.

On held-out SynthWiki worlds the SFT agent reads both years of a comparison correctly and
then picks the winner at chance: teacher-forced on the oracle's own decision turns
(:func:`decision_points`), the shipped adapter put more probability on the right entity in 43
of 95 decisions. A demonstration turn holds one such decision among ~300 context tokens, so
a fraction of an epoch shows the model a few hundred of them. A drill is the decision alone,
in the memory format the oracle writes (:func:`~mempo_agents.trainer.oracle.decision_entry`)::

    Question: Who was born earlier, Kipi Mefutu or Suzi Pidete?
    <mem> 1 : Zikegu | 2 : earlier Kipi Mefutu 1842 , Suzi Pidete 1950 =  ->  " Kipi Mefutu"

about 60 tokens, loss on the winner's name only (the context is never a target, so the
model is not taught to write years it has not read). Names and their question verbs come
from a training world's entities that have a year; the years are drawn afresh from the
world's ``year_range``, so every pair of years is as likely as any other.

In that plain format SmolLM2-135M stays at chance through 2,000 drills. With
``reason="digits"`` the target walks the years digit by digit first
(``" : 2 = 2 , 0 = 0 , 1 = 1 , 8 > 4 = Futusi"``, :func:`~mempo_agents.trainer.oracle.digit_walk`);
that it learns within ~1,200 drills, picking the right winner in 94% of held-out drills
(``benchmarks/comparison_formats.py``, ``benchmarks/results/comparison_formats.md``).
"""

from __future__ import annotations

import random
import re
from typing import Any, Sequence

from mempo_gym.tasks.synthwiki import COMPARISON_TEMPLATE, COMPARISON_WH, YEAR_VERBS, SynthWorld

from mempo_agents.trainer.oracle import NUMBERINGS, comparison_winner, decision_entry, entry_label
from mempo_agents.trainer.sft import Demonstration

#: The oracle's decision entry in any of its formats (:data:`~mempo_agents.trainer.oracle.DECISION_REASONS`).
DECISION = re.compile(r"(\d+(?:/\d+)?) : (earlier|later) (.+?) (\d{3,4}) , (.+?) (\d{3,4}) (?:: (?:\d = \d , )*\d [<>] \d )?= ")


def dated_pools(worlds: Sequence[SynthWorld], what: str) -> list[tuple[str, list[str], tuple[int, int]]]:
    """``(entity type, names, the world's year range)`` for each type with at least two dated
    entities in each world: the pairs a comparison can be drawn from."""
    pools = []
    for world in worlds:
        for etype in YEAR_VERBS:
            names = [e.name for e in world.entities if e.type == etype and e.year is not None]
            if len(names) >= 2:
                pools.append((etype, names, world.config.year_range))
    if not pools:
        raise ValueError(f"{what} need a world with at least two dated entities of one type")
    return pools


def _draw_comparison(
    rng: random.Random, pools: Sequence[tuple[str, list[str], tuple[int, int]]],
) -> tuple[str, str, tuple[str, str], tuple[str, str]]:
    """``(entity type, direction, (name, year), (name, year))``: two entities of one pool and two
    different years drawn afresh from its world's range."""
    etype, names, (lo, hi) = rng.choice(pools)
    a, b = rng.sample(names, 2)
    year_a, year_b = rng.sample(range(lo, hi + 1), 2)
    return etype, rng.choice(("earlier", "later")), (a, str(year_a)), (b, str(year_b))


def _drill(tokenizer: Any, context: str, target: str) -> Demonstration:
    """A drill's tokens, loss on ``target`` only; refused if splitting there changes the tokens."""
    context_ids = tokenizer.encode(context, add_special_tokens=False)
    output_ids = tokenizer.encode(target, add_special_tokens=False)
    if tokenizer.encode(context + target, add_special_tokens=False) != context_ids + output_ids:
        raise AssertionError(f"the drill's split changes its tokens: {context!r} + {target!r}")
    return Demonstration(tuple(context_ids), tuple(output_ids))


def comparison_drills(
    worlds: Sequence[SynthWorld], count: int, rng: random.Random, tokenizer: Any, max_answered: int = 3,
    reason: str = "none", numbering: str = "n", max_total: int = 8,
) -> list[Demonstration]:
    """``count`` drills over the dated entities of ``worlds`` (see the module docstring).

    A drill's decision is entry ``j + 1`` after ``j`` answered entries (``i : NAME``,
    ``j`` uniform in ``0..max_answered``), as in a multi-question memory. With a ``reason``
    (:func:`~mempo_agents.trainer.oracle.decision_entry`) the context ends at the second year
    and the target is the reason, ``=`` and the winner: ``" : 2 = 2 , 0 = 0 , 1 = 1 , 8 > 4 =
    Futusi"`` (the years are still never a target). With ``numbering="n/k"`` the entries are
    labelled ``2/5 : …`` as the oracle labels them (:func:`~mempo_agents.trainer.oracle.entry_label`),
    the number of questions uniform in ``j + 1..max(j + 1, max_total)``."""
    if numbering not in NUMBERINGS:
        raise ValueError(f"numbering must be one of {', '.join(NUMBERINGS)}, got {numbering!r}")
    pools = dated_pools(worlds, "comparison drills")
    answered = sorted({name for _, names, _ in pools for name in names})
    drills = []
    for _ in range(count):
        etype, direction, first, second = _draw_comparison(rng, pools)
        winner = comparison_winner(direction, first, second)
        slot = rng.randint(0, max_answered) + 1
        total = rng.randint(slot, max(slot, max_total)) if numbering == "n/k" else None
        entries = [f"{entry_label(j, total)} : {rng.choice(answered)}" for j in range(1, slot)]
        entry = decision_entry(slot, direction, first, second, reason, total)
        # the plain entry is "<years> = <winner>": cut after the years (with a reason) or after the '='
        plain = decision_entry(slot, direction, first, second, total=total)
        cut = len(plain) - len(f" = {winner}") if reason != "none" else len(plain) - len(f" {winner}")
        entries.append(entry[:cut])
        question = COMPARISON_TEMPLATE.format(wh=COMPARISON_WH[etype], verb=YEAR_VERBS[etype],
                                              direction=direction, a=first[0], b=second[0])
        context = f"Question: {question}\n<mem> " + " | ".join(entries)
        target = entry[cut:]
        drills.append(_drill(tokenizer, context, target))
    return drills


def transition_drills(
    worlds: Sequence[SynthWorld], count: int, rng: random.Random, tokenizer: Any, reason: str = "digits",
    max_total: int = 8, note_tag: str = "mem",
) -> list[Demonstration]:
    """``count`` drills of the turn's other decision: after a finished entry, open the next
    question or answer. The memory is labelled ``n/k`` (:func:`~mempo_agents.trainer.oracle.entry_label`)
    and the context ends at finished entry ``j`` of ``k`` (half the time a comparison's decision
    entry, in the ``reason`` format)::

        <mem> 1/3 : Kipa | 2/3 : later Digu 1848 , Piza 1892 : 1 = 1 , 8 = 8 , 4 < 9 = Piza  ->  " | 3/3 :"
        <mem> 1/2 : Kipa | 2/2 : Zikegu  ->  " </mem> <answer> Kipa ; Zikegu </answer>"

    ``j < k`` targets the next entry's label, ``j = k`` the answer with every entry's answer in
    order, each half of the drills (``k`` uniform in ``2..max_total`` when the memory goes on,
    ``1..max_total`` when it is complete). Without them an agent trained on the oracle's turns
    answered k=2 tasks after their first question in 72 of 100 episodes (``n`` labels) and 36 of
    63 (``n/k`` labels, 0.17 epoch). ``note_tag="think"`` writes the entries as the full-context
    counterpart does (:class:`~mempo_agents.trainer.oracle.CompactOracleAgent`), closing ``</think>``."""
    if note_tag not in ("mem", "think"):
        raise ValueError(f"note_tag must be 'mem' or 'think', got {note_tag!r}")
    if max_total < 2:
        raise ValueError(f"max_total must be at least 2 (a memory that goes on), got {max_total}")
    pools = dated_pools(worlds, "transition drills")
    pool = sorted({e.name for world in worlds for e in world.entities})
    drills = []
    for i in range(count):
        goes_on = i % 2 == 0
        total = rng.randint(2, max_total) if goes_on else rng.randint(1, max_total)
        j = rng.randint(1, total - 1) if goes_on else total
        entries, golds = [], []
        for n in range(1, j + 1):
            if n == j and rng.random() < 0.5:  # the finished entry is a comparison's decision
                _, direction, first, second = _draw_comparison(rng, pools)
                entries.append(decision_entry(n, direction, first, second, reason, total))
                golds.append(comparison_winner(direction, first, second))
            else:
                golds.append(rng.choice(pool))
                entries.append(f"{entry_label(n, total)} : {golds[-1]}")
        context = f"<{note_tag}> " + " | ".join(entries)
        target = (f" | {entry_label(j + 1, total)} :" if goes_on
                  else f" </{note_tag}> <answer> {' ; '.join(golds)} </answer>")
        drills.append(_drill(tokenizer, context, target))
    return drills


def decision_points(demos: Sequence[Demonstration], tokenizer: Any) -> list[tuple[list[int], str, str]]:
    """``(ids up to the decision's '=', right name, wrong name)`` for each demonstration turn
    that decides a comparison (the oracle's ``i : earlier A 1967 , B 1866 = B`` entry)."""
    points = []
    for demo in demos:
        text = tokenizer.decode(demo.output_ids)
        match = DECISION.search(text)
        if match is None:
            continue
        _, direction, a, year_a, b, year_b = match.groups()
        right = comparison_winner(direction, (a, year_a), (b, year_b))
        wrong = b if right == a else a
        cut = next(i for i in range(1, len(demo.output_ids) + 1)
                   if len(tokenizer.decode(demo.output_ids[:i])) >= match.end() - 1)
        points.append((list(demo.context_ids) + list(demo.output_ids[:cut]), right, wrong))
    return points


def decision_accuracy(model: Any, points: Sequence[tuple[list[int], str, str]], tokenizer: Any,
                      batch: int = 8) -> float:
    """Fraction of decision points at which ``model`` gives the right name a higher
    probability (the sum of its tokens' log-probs) than the wrong one, teacher-forced."""
    import torch

    from mempo_agents.trainer.policy import completion_logprobs

    if not points:
        raise ValueError("no decision points: the demonstrations decide no comparison")
    hits = 0
    with torch.no_grad():
        for start in range(0, len(points), batch):
            chunk = points[start:start + batch]
            prompts = [ids for ids, _, _ in chunk for _ in range(2)]
            names = [name for _, right, wrong in chunk for name in (right, wrong)]
            completions = [tokenizer.encode(" " + name, add_special_tokens=False) for name in names]
            logp, _ = completion_logprobs(model, prompts, completions, pad_id=tokenizer.pad_token_id or 0)
            scores = logp.sum(-1).tolist()
            hits += sum(scores[2 * i] > scores[2 * i + 1] for i in range(len(chunk)))
    return hits / len(points)
