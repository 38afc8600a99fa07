"""Replay verification: step a submission's recorded agent outputs through the real env.

The agent's outputs are the only free part of a transcript. For each episode the scorer
resets the env rebuilt from the recorded id and settings to the episode's task (the one
the run's seed, task order and episode index imply: :mod:`mempo_gym.harness.task_order`)
and, call by call,

1. compares the recorded ``context`` with the env's context (before stepping, so a forged
   or oversized context is refused without tokenizing it);
2. steps the recorded output — the generated token ids (``output_ids``) when the
   transcript has them, else the ``output`` text — exactly as the run did;

then compares every recorded per-call field (``output``, ``input_tokens``,
``output_tokens``, and where present ``information``, ``action``, ``end``,
``malformed``, ``output_ids``) and the episode's ``prediction``, token totals,
truncation and reward with what the env produced. The first difference refuses the
submission with the episode, the turn and the field. Token counts come from the env that
replays the run; nothing is re-tokenised separately.

What replay proves: every context, search result, parse, truncation, reward and token
count is what this library's env gives for these outputs on these tasks, with these
settings; the run asked exactly the implied tasks, each once. What it cannot prove: how
the outputs were produced. An agent that regenerates a public SynthWiki world (its
generator and seeds are public) or reads public golds can answer without searching; a
host who needs more runs submitted agents itself on worlds from a seed it keeps
(``mempo-gym suite --world-seed``; :mod:`mempo_gym.suite`). Web-search runs are checked
against the search cache carried in the submission, which proves consistency with that
cache, not that the web answered so.
"""

from __future__ import annotations

from typing import Any, Mapping

from mempo_gym.core.env import MemoryEnv
from mempo_gym.leaderboard.errors import SubmissionRejected
from mempo_gym.leaderboard.schema import EPISODES

#: Per-call fields compared when the record has them (the first four are required).
CALL_FIELDS = ("output", "input_tokens", "output_tokens", "information", "action", "end", "malformed", "output_ids")
#: Episode fields compared with the env's final metrics when the record has them.
EPISODE_FIELDS = ("prediction", "tokens_total", "tokens_peak", "tokens_generated", "calls", "turns",
                  "truncated_reason", "reward", "answered", "searches", "malformed_turns")


def _short(value: Any, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def _inside_information(text: str, at: int) -> bool:
    """Whether position ``at`` of a context lies inside an ``<information>`` block."""
    start = text.rfind("<information>", 0, at + 1)
    return start >= 0 and text.find("</information>", start) >= at


def _context_reason(recorded: str, context: str, env: MemoryEnv) -> str:
    at = _first_difference(recorded, context)
    where = " inside an <information> block (the search results are not the env's)" \
        if _inside_information(context, at) or _inside_information(recorded, at) else ""
    return (f"context differs from the env's{where} at character {at} (recorded {len(recorded)} characters, "
            f"env {len(context)}, with memory={env.memory.name!r}): recorded {_short(recorded[at:at + 40])}, "
            f"env {_short(context[at:at + 40])}")


def _refuse(reason: str, where: str, field: str) -> SubmissionRejected:
    return SubmissionRejected(reason, member=EPISODES, field=f"{where}: {field}")


def replay_episode(env: MemoryEnv, record: Mapping[str, Any], reset: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Replay one recorded episode through ``env``; return the env's final metrics.

    ``reset`` holds the ``env.reset`` keyword arguments the run used for this episode.
    Raises :class:`SubmissionRejected` at the first field that differs.
    """
    env.reset(**reset)
    task = env.task
    assert task is not None
    if record["task_id"] != task.id:
        raise _refuse(f"task_id {_short(record['task_id'])} is not the task this episode asks: the run's seed, "
                      f"task order and episode index give {task.id!r}", where, "task_id")
    calls = record["transcript"]
    info: dict[str, Any] = {}
    done = False
    for turn, call in enumerate(calls):
        if done:
            raise _refuse(f"the transcript has {len(calls)} calls but the env ended the episode after {turn}",
                          where, f"transcript[{turn}]")
        context = env.context
        if call["context"] != context:
            raise _refuse(_context_reason(call["context"], context, env), where, f"turn {turn}: context")
        action: Any = call["output_ids"] if "output_ids" in call else call["output"]
        _, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        last = env.turns[-1]
        if "information" in call and call["information"] != last.information:
            raise _refuse(f"information {_short(call['information'])} is not what the env answered "
                          f"({_short(last.information)})", where, f"turn {turn}: information")
    if not done:
        raise _refuse(f"the transcript ends after {len(calls)} calls but the episode is not over (no answer, "
                      "turns and budget left)", where, f"transcript[{len(calls)}]")
    produced = info["transcript"]
    for turn, (call, made) in enumerate(zip(calls, produced)):
        for name in CALL_FIELDS:
            if name in call and name in made and call[name] != made[name]:
                note = ""
                if name == "output" and call[name].startswith(made[name]):
                    note = " (text after the turn's end is not part of the turn: the env stops at </search> or </answer>)"
                raise _refuse(f"{name} {_short(call[name])} differs from the env's {_short(made[name])}{note}",
                              where, f"turn {turn}: {name}")
    metrics = info["metrics"]
    for name in EPISODE_FIELDS:
        if name in record and record[name] != metrics.get(name):
            raise _refuse(f"{name} {_short(record[name])} differs from the env's {_short(metrics.get(name))}",
                          where, name)
    return metrics
