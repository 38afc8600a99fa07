"""The one environment class behind every MemPO-Gym task.

An episode shows a task (one or several questions), then alternates agent turns and
environment answers until the agent answers, runs out of turns or of context budget.
Tasks differ only in the :class:`~mempo_gym.records.Task` records and the
:class:`~mempo_gym.core.tools.SearchTool` they are given; memory methods differ only in
the :class:`~mempo_gym.core.context.ContextManager`.

Two action modes with identical semantics and accounting:

* ``action_mode="token"`` — the action is one token id (``Discrete(len(tokenizer))``);
  the observation holds the context ids padded to ``context_budget`` (a buffer the env
  updates in place, a copy of which each step returns).
* ``action_mode="text"`` — the action is one whole turn (the fast path for LLM agents):
  either a string, which is tokenized, or the exact token ids the model sampled (a list or
  tuple of ints, or a 1-D integer numpy array). Both are fed through exactly the same
  per-token turn logic; ids after the turn's end are dropped like text after a stop string.

Exact ids: :attr:`MemoryEnv.context_ids` are the ids of the next call's context (what the
meter counts as that call's input) and every transcript entry carries ``output_ids`` (what
it counts as the output), so a trainer can feed and train on exactly the metered tokens.

Unrepresentable text: when a text action does not survive ``decode(encode(text))`` (e.g.
a word-level tokenizer maps an unknown word to ``<unk>``), the turn's transcript entry gets
``"altered": True`` and a warning is logged once per episode; with
``unrepresentable="error"`` the step raises ``ValueError`` instead and the episode is left
as it was. Differences in whitespace only are not alterations (a word-level tokenizer
re-spaces text; the tag parser ignores whitespace), and lone surrogates become U+FFFD.

A turn ends at the first ``</search>`` or ``</answer>``, at EOS, at ``max_turn_tokens``
or when the context reaches ``context_budget``. See :mod:`mempo_gym.core.protocol` for how
a turn is judged, :mod:`mempo_gym.core.meter` for what is summed and
:mod:`mempo_gym.core.tokens` for how text becomes counted tokens (the prompt is encoded
once per episode and each new context only from a seam near the end of the text it shares
with the previous one, so the env's cost per turn does not grow with the horizon).

Episode ends:

* an answer: ``terminated=True``, reward = the task score (``reward="f1"`` default,
  ``"em"``, or ``"f1_format"`` = F1 minus ``format_penalty`` if any turn was malformed);
* ``max_turns`` turns without an answer, or a context that no longer fits in
  ``context_budget`` (the next context, or context plus generation, reaching the budget):
  ``truncated=True`` with reward ``truncation_reward`` (default 0.0: an unanswered task
  scores zero) and ``info["truncated_reason"]``.
"""

from __future__ import annotations

import copy
import logging
import re
import time
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mempo_gym.core.context import ContextManager, SelfMemory, TurnRecord
from mempo_gym.core.meter import TokenMeter
from mempo_gym.core.tokens import Encoded, TokenCounter
from mempo_gym.core.protocol import ParsedTurn, StopDetector, cut_at_stop, find_stop, parse_turn
from mempo_gym.core.spaces import UnicodeText, context_space, max_token_chars
from mempo_gym.core.tools import SearchTool, ToolFatalError
from mempo_gym.metrics import score_answer
from mempo_gym.prompts import MEMPO_INSTRUCTIONS, PROMPTS_VERSION, render_prompt
from mempo_gym.records import Task
from mempo_gym.tokenizer import load_tokenizer, tokenizer_name

logger = logging.getLogger(__name__)

REWARDS = ("f1", "em", "f1_format")
ACTION_MODES = ("text", "token")
UNREPRESENTABLE = ("warn", "error")
MALFORMED_FEEDBACK = (
    "Your previous turn was malformed: {reason}. End every turn with "
    "<search> query </search> or <answer> answer </answer>."
)
_SURROGATES = re.compile("[\ud800-\udfff]")


def _squash(text: str) -> str:
    return "".join(text.split())


def _altered(text: str, output: str, end: str) -> bool:
    """Whether the decoded turn ``output`` differs from the text ``text`` the agent wrote,
    ignoring whitespace. A turn cut short (EOS, ``max_turn_tokens``, budget) need only be a
    prefix of the text; a trailing U+FFFD there is a character cut between tokens."""
    got = _squash(output)
    if end == "stop":  # the stopping token may carry characters past the stop string
        return _squash(cut_at_stop(output)) != _squash(cut_at_stop(text))
    want = _squash(text)
    if end == "end_of_text":
        return got != want
    return not want.startswith(got.rstrip("\ufffd"))


class MemoryEnv(gym.Env):
    """Multi-turn search-and-answer environment with pluggable context management.

    Args:
        tasks: the tasks to draw episodes from (``reset`` picks one with ``np_random``,
            or ``options={"task_index": i}`` / ``{"task_id": id}``).
        search_tool: answers ``<search>`` queries.
        tokenizer: any transformers tokenizer, a saved-tokenizer folder, or ``None`` for
            the default SmolLM2 tokenizer.
        memory: the :class:`ContextManager` (default :class:`SelfMemory`).
        action_mode: ``"text"`` or ``"token"``.
        context_budget: the largest context (input + generated tokens of one call).
        max_turns: turns allowed before truncation.
        max_turn_tokens: tokens one turn may generate.
        reward: ``"f1"``, ``"em"`` or ``"f1_format"``.
        format_penalty: subtracted by ``"f1_format"`` when any turn was malformed.
        truncation_reward: reward of a truncated episode.
        instructions: text shown above the question(s) (see :mod:`mempo_gym.prompts`).
        unrepresentable: what a text action the tokenizer cannot represent does:
            ``"warn"`` (mark the transcript entry ``altered`` and log once per episode) or
            ``"error"`` (raise ``ValueError``; the turn is not taken).
        env_config: extra JSON-serialisable settings recorded by :meth:`describe`.
    """

    metadata = {"render_modes": ["ansi", "human"]}

    def __init__(
        self,
        tasks: Sequence[Task],
        search_tool: SearchTool,
        *,
        tokenizer: Any = None,
        memory: ContextManager | None = None,
        action_mode: str = "text",
        context_budget: int = 4096,
        max_turns: int = 8,
        max_turn_tokens: int = 512,
        reward: str = "f1",
        format_penalty: float = 0.5,
        truncation_reward: float = 0.0,
        instructions: str = MEMPO_INSTRUCTIONS,
        render_mode: str | None = None,
        env_config: dict[str, Any] | None = None,
        unrepresentable: str = "warn",
    ) -> None:
        if not tasks:
            raise ValueError("MemoryEnv needs at least one task")
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        if unrepresentable not in UNREPRESENTABLE:
            raise ValueError(f"unrepresentable must be one of {UNREPRESENTABLE}, got {unrepresentable!r}")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        if context_budget < 2 or max_turns < 1 or max_turn_tokens < 1:
            raise ValueError("context_budget >= 2, max_turns >= 1 and max_turn_tokens >= 1 are required")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        if not isinstance(search_tool, SearchTool):
            raise TypeError("search_tool must have search(query) -> str and describe() methods")
        memory = memory if memory is not None else SelfMemory()
        if not isinstance(memory, ContextManager):
            raise TypeError("memory must implement the ContextManager protocol (name, reset, build, describe)")

        self.tasks = list(tasks)
        self._task_index = {t.id: i for i, t in enumerate(self.tasks)}
        self.search_tool = search_tool
        self.tokenizer = load_tokenizer(tokenizer)
        self.memory = memory
        self.action_mode = action_mode
        self.context_budget = int(context_budget)
        self.max_turns = int(max_turns)
        self.max_turn_tokens = int(max_turn_tokens)
        self.reward_name = reward
        self.format_penalty = float(format_penalty)
        self.truncation_reward = float(truncation_reward)
        self.instructions = instructions
        self.render_mode = render_mode
        self.env_config = dict(env_config or {})
        self.unrepresentable = unrepresentable
        # Constructor settings (everything but tasks, tool, tokenizer, memory) for clone().
        self._settings: dict[str, Any] = {
            "action_mode": action_mode, "context_budget": self.context_budget, "max_turns": self.max_turns,
            "max_turn_tokens": self.max_turn_tokens, "reward": reward, "format_penalty": self.format_penalty,
            "truncation_reward": self.truncation_reward, "instructions": instructions,
            "render_mode": render_mode, "env_config": dict(self.env_config), "unrepresentable": unrepresentable,
        }

        self.vocab_size = len(self.tokenizer)
        self.eos_token_id: int | None = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else (self.eos_token_id or 0))
        self._stop = StopDetector(self.tokenizer)
        self.token_counter = TokenCounter(self.tokenizer)

        budget_box = spaces.Box(0, self.context_budget, shape=(1,), dtype=np.int64)
        counters = {
            "length": budget_box,
            "budget_remaining": budget_box,
            "tokens_used": spaces.Box(0, self.max_turns * self.context_budget, shape=(1,), dtype=np.int64),
            "turn": spaces.Discrete(self.max_turns + 1),
        }
        if action_mode == "token":
            self.action_space = spaces.Discrete(self.vocab_size)
            self.observation_space = spaces.Dict(
                {"tokens": spaces.Box(0, self.vocab_size - 1, shape=(self.context_budget,), dtype=np.int64), **counters}
            )
        else:
            self.action_space = UnicodeText(max_length=2**24)
            self.observation_space = spaces.Dict(
                {"context": context_space(self.context_budget, max_token_chars(self.tokenizer)), **counters}
            )

        self._task: Task | None = None
        self._described: dict[str, Any] | None = None
        self.meter = TokenMeter()
        self._turns: list[TurnRecord] = []
        self._transcript: list[dict[str, Any]] = []
        self._prompt = ""
        self._context = ""
        self._context_ids: list[int] = []
        self._prompt_enc: Encoded | None = None
        self._context_enc: Encoded | None = None
        self._turn_ids: list[int] = []
        # Token mode: the observation buffer, updated in place (positions < _filled may be non-pad).
        self._buf = np.full(self.context_budget if action_mode == "token" else 0, self.pad_token_id, dtype=np.int64)
        self._filled = 0
        self._altered: bool = False
        self._warned_altered = False
        self._done = True
        self._malformed = 0
        self._searches = 0
        self._search_errors = 0
        self._started = 0.0

    # ------------------------------------------------------------------ episode API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        if "task_id" in options:
            if options["task_id"] not in self._task_index:
                raise KeyError(f"unknown task_id {options['task_id']!r}")
            index = self._task_index[options["task_id"]]
        elif "task_index" in options:
            index = int(options["task_index"])
            if not 0 <= index < len(self.tasks):
                raise IndexError(f"task_index {index} out of range 0..{len(self.tasks) - 1}")
        else:
            index = int(self.np_random.integers(len(self.tasks)))
        self._task = self.tasks[index]
        self.memory.reset()
        self.meter.reset()
        self._turns, self._transcript, self._turn_ids = [], [], []
        self._altered = self._warned_altered = False
        self._malformed = self._searches = self._search_errors = 0
        self._done = False
        self._started = time.perf_counter()
        self._prompt = render_prompt(self.instructions, [q.text for q in self._task.questions])
        if self._prompt_enc is None or self._prompt_enc.text != self._prompt:  # once per episode (or task)
            self._prompt_enc = self.token_counter.encode(self._prompt)
        self._context_enc = None
        self._set_context(self.memory.build(self._prompt, self._turns))
        info = self._step_info()
        info["settings"] = self.describe()
        if len(self._context_ids) + 1 > self.context_budget:
            raise ValueError(
                f"The prompt of task {self._task.id!r} is {len(self._context_ids)} tokens, which leaves no room "
                f"in context_budget={self.context_budget}; raise context_budget."
            )
        return self._observation(), info

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self._done or self._task is None:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        end: str | None = None
        if self.action_mode == "token":
            token = int(action)
            if not 0 <= token < self.vocab_size:
                raise ValueError(f"token id {action!r} is outside the action space Discrete({self.vocab_size})")
            end = self._push_token(token)
            if end is None:
                return self._observation(), 0.0, False, False, self._step_info()
            return self._finish_turn(end)
        if isinstance(action, str):
            text = self._turn_text(action)
            end = self._push_turn(self.token_counter.ids(text))
            output = self._decode_turn()
            self._altered = _altered(text, output, end)
            if self._altered and self.unrepresentable == "error":
                self._turn_ids = []
                raise ValueError(
                    "the env's tokenizer cannot represent this turn's text (decoding its tokens gives "
                    f"{output[:80]!r}); write only text the tokenizer represents, or make the env with "
                    "unrepresentable='warn'"
                )
            if self._altered and not self._warned_altered:
                self._warned_altered = True
                logger.warning(
                    "task %r: the env's tokenizer altered a text action (decoded as %r); the turn is marked "
                    "'altered' in the transcript (warned once per episode)", self._task.id, output[:80],
                )
            return self._finish_turn(end, output)
        ids = self._validate_ids(action)
        self._altered = False
        return self._finish_turn(self._push_turn(ids))

    # ------------------------------------------------------------------ turn logic
    def _validate_ids(self, action: Any) -> Sequence[int]:
        """A token-id turn as a list of ints, or a clear error."""
        if isinstance(action, np.ndarray):
            if action.ndim != 1 or not (np.issubdtype(action.dtype, np.integer) or action.size == 0):
                raise TypeError(
                    f"a token-id turn must be a 1-D integer array, got shape {action.shape} dtype {action.dtype}"
                )
            ids = action.astype(np.int64, copy=False).tolist()
        elif isinstance(action, (list, tuple)):
            if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in action):
                raise TypeError("a token-id turn must hold only ints")
            ids = [int(i) for i in action]
        else:
            raise TypeError(
                "action_mode='text' takes a str (one whole turn) or its token ids (list/tuple of ints or a "
                f"1-D integer numpy array), got {type(action).__name__}"
            )
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(
                f"token id {bad[0]} is outside the tokenizer's vocabulary 0..{self.vocab_size - 1}; "
                "pass ids from the env's tokenizer"
            )
        return ids

    def _push_turn(self, ids: Sequence[int]) -> str:
        """Push a whole turn's ids; return why it ended (``"end_of_text"`` when all were taken)."""
        for token in ids:
            end = self._push_token(token)
            if end:
                return end
        return "end_of_text"

    def _decode_turn(self) -> str:
        return self.tokenizer.decode(self._turn_ids, skip_special_tokens=True)

    def _turn_text(self, action: str) -> str:
        """The part of a text action that is tokenized: text far past a stop string is never
        tokenized, and lone surrogates (not encodable as UTF-8) become U+FFFD."""
        text = _SURROGATES.sub("\ufffd", action)
        stop = find_stop(text)
        if stop >= 0:
            return text[: stop + 32]  # slack keeps any token that merges across the stop
        return text[: self.max_turn_tokens * 64]

    def _push_token(self, token: int) -> str | None:
        """Append one generated token; return why the turn ended, or ``None``."""
        self._turn_ids.append(token)
        if self.action_mode == "token":
            pos = len(self._context_ids) + len(self._turn_ids) - 1
            if pos < self.context_budget:
                self._buf[pos] = token
                self._filled = max(self._filled, pos + 1)
        if self._stop.is_eos(token):
            return "eos"
        if self._stop.completes_stop(self._turn_ids):
            return "stop"
        if len(self._turn_ids) >= self.max_turn_tokens:
            return "max_turn_tokens"
        if len(self._context_ids) + len(self._turn_ids) >= self.context_budget:
            return "context_budget"
        return None

    def _finish_turn(self, end: str, output: str | None = None) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        assert self._task is not None
        if output is None:
            output = self._decode_turn()
        parsed: ParsedTurn = parse_turn(output)
        self.meter.record(len(self._context_ids), len(self._turn_ids))
        information: str | None = None
        if parsed.action == "search":
            information = self._search(parsed.query or "")
        elif parsed.action == "none":
            self._malformed += 1
            information = MALFORMED_FEEDBACK.format(reason=parsed.malformed)
        self._turns.append(TurnRecord(index=len(self._turns), parsed=parsed, information=information))
        self._transcript.append(
            {
                "turn": len(self._turns) - 1,
                "context": self._context,
                "output": output,
                "output_ids": list(self._turn_ids),
                "input_tokens": len(self._context_ids),
                "output_tokens": len(self._turn_ids),
                "altered": self._altered,
                "end": end,
                "action": parsed.action,
                "malformed": parsed.malformed,
                "information": information,
            }
        )
        self._turn_ids = []
        self._altered = False
        if self.action_mode == "token":  # the finished turn leaves the buffer (until the next context)
            end = min(len(self._context_ids), self.context_budget)
            self._buf[end:self._filled] = self.pad_token_id
            self._filled = min(self._filled, end)

        if parsed.action == "answer":
            return self._end_episode(parsed.answer or "", terminated=True, reason=None)
        if end == "context_budget":
            return self._end_episode(None, terminated=False, reason="context_budget")
        if len(self._turns) >= self.max_turns:
            return self._end_episode(None, terminated=False, reason="max_turns")
        self._set_context(self.memory.build(self._prompt, self._turns))
        if len(self._context_ids) + 1 > self.context_budget:
            return self._end_episode(None, terminated=False, reason="context_budget")
        info = self._step_info()
        so_far = self._metrics(score_answer("", self._task.golds), None, self.truncation_reward, None)
        so_far.pop("wall_time_s")  # steps stay deterministic (Gymnasium's check_env compares infos)
        info["metrics"] = so_far
        return self._observation(), 0.0, False, False, info

    def _search(self, query: str) -> str:
        self._searches += 1
        try:
            return self.search_tool.search(query)
        except ToolFatalError:
            raise
        except Exception as exc:  # a failing tool must not end a long benchmark run
            self._search_errors += 1
            logger.warning("search tool raised %s: %s", type(exc).__name__, exc)
            return f"Search failed: {type(exc).__name__}: {exc}"

    def _end_episode(self, prediction: str | None, *, terminated: bool, reason: str | None) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        assert self._task is not None
        self._done = True
        score = score_answer(prediction or "", self._task.golds)
        if not terminated:
            reward = self.truncation_reward
        elif self.reward_name == "em":
            reward = float(score.em)
        elif self.reward_name == "f1_format":
            reward = float(score.f1) - (self.format_penalty if self._malformed else 0.0)
        else:
            reward = float(score.f1)
        info = self._step_info()
        info["metrics"] = self._metrics(score, prediction, reward, reason)
        info["transcript"] = list(self._transcript)
        if reason:
            info["truncated_reason"] = reason
        return self._observation(), reward, terminated, not terminated, info

    def _metrics(self, score: Any, prediction: str | None, reward: float, reason: str | None) -> dict[str, Any]:
        """``info["metrics"]``: final at the end of an episode, the metrics so far on other steps
        (so an outside ``TimeLimit`` that cuts the episode still hands over its metrics)."""
        assert self._task is not None
        return {
            **score.to_dict(),
            "prediction": prediction,
            "golds": [list(g) for g in self._task.golds],
            "reward": reward,
            "answered": prediction is not None,
            **self.meter.summary(),
            "turns": len(self._turns),
            "searches": self._searches,
            "search_errors": self._search_errors,
            "malformed_turns": self._malformed,
            "truncated_reason": reason,
            "wall_time_s": time.perf_counter() - self._started,
        }

    # ------------------------------------------------------------------ observations
    def _set_context(self, text: str) -> None:
        """Make ``text`` the next call's context, encoding it by the seam rule of
        :mod:`mempo_gym.core.tokens` from the previous context or the prompt."""
        prev, prompt = self._context_enc, self._prompt_enc
        if prev is not None and text.startswith(prev.text):
            enc, same = self.token_counter.extend(prev, text)
        elif prompt is not None and text.startswith(prompt.text):
            enc, same = self.token_counter.extend(prompt, text)
            n = min(same, len(prompt.ids))
            same = n if prev is not None and prev.ids[:n] == prompt.ids[:n] else 0
        else:
            enc, same = self.token_counter.encode(text), 0
        self._context, self._context_enc, self._context_ids = text, enc, enc.ids
        if self.action_mode == "token":
            ids, buf = enc.ids, self._buf
            end = min(len(ids), self.context_budget)
            start = min(same, end)
            buf[start:end] = ids[start:end]
            if self._filled > end:
                buf[end:self._filled] = self.pad_token_id
            self._filled = end

    def _observation(self) -> dict[str, Any]:
        length = min(len(self._context_ids) + len(self._turn_ids), self.context_budget)
        counters = {
            "length": np.array([length], dtype=np.int64),
            "budget_remaining": np.array([self.context_budget - length], dtype=np.int64),
            "tokens_used": np.array([min(self.meter.total, self.max_turns * self.context_budget)], dtype=np.int64),
            "turn": len(self._turns) if len(self._turns) <= self.max_turns else self.max_turns,
        }
        if self.action_mode == "token":
            return {"tokens": self._buf.copy(), **counters}  # one memcpy: gymnasium wants fresh data
        return {"context": self._context, **counters}

    def _step_info(self) -> dict[str, Any]:
        assert self._task is not None
        return {
            "context": self._context,
            "task_id": self._task.id,
            "num_objectives": self._task.num_objectives,
            "turn": len(self._turns),
            "tokens_used": self.meter.total,
            "malformed_turns": self._malformed,
            "searches": self._searches,
        }

    # ------------------------------------------------------------------ introspection
    @property
    def task(self) -> Task | None:
        """The current episode's task."""
        return self._task

    @property
    def turns(self) -> list[TurnRecord]:
        """The finished turns of the current episode."""
        return list(self._turns)

    @property
    def context(self) -> str:
        """The context the next model call sees (without the current partial turn)."""
        return self._context

    @property
    def last_call(self) -> dict[str, Any] | None:
        """The transcript entry of the latest finished turn of this episode (``None`` before
        the first): ``output_ids``, ``input_tokens``, ``output``, ``end``, ``action`` ..."""
        return self._transcript[-1] if self._transcript else None

    @property
    def context_ids(self) -> tuple[int, ...]:
        """The exact token ids of the next call's context (what the meter counts as its input).

        A model fed these ids sees exactly what is metered; no re-encoding of :attr:`context`."""
        return tuple(self._context_ids)

    def clone(self, memory: ContextManager | None = None, **overrides: Any) -> "MemoryEnv":
        """A fresh environment with the same tasks, search tool, tokenizer and settings.

        Args:
            memory: the new env's memory method (default: a deep copy of this one's).
            overrides: constructor settings to change (e.g. ``action_mode="text"``).
        """
        settings = {**copy.deepcopy(self._settings), **overrides}
        return type(self)(
            self.tasks, self.search_tool, tokenizer=self.tokenizer,
            memory=memory if memory is not None else copy.deepcopy(self.memory), **settings,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` with the environment's tokenizer."""
        return self.token_counter.count(text)

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable settings of this environment (also ``info["settings"]`` at reset),
        recorded in run configs so results are comparable."""
        if self._described is None:
            self._described = self._describe()
        return copy.deepcopy(self._described)

    def _describe(self) -> dict[str, Any]:
        return {
            "memory": self.memory.describe(),
            "action_mode": self.action_mode,
            "context_budget": self.context_budget,
            "max_turns": self.max_turns,
            "max_turn_tokens": self.max_turn_tokens,
            "reward": self.reward_name,
            "format_penalty": self.format_penalty,
            "truncation_reward": self.truncation_reward,
            "unrepresentable": self.unrepresentable,
            "instructions": self.instructions,
            "prompts_version": PROMPTS_VERSION,
            "tokenizer": tokenizer_name(self.tokenizer),
            "search_tool": dict(self.search_tool.describe()),
            "num_tasks": len(self.tasks),
            **self.env_config,
        }

    def render(self) -> str | None:
        text = self._context + (self.tokenizer.decode(self._turn_ids) if self._turn_ids else "")
        if self.render_mode == "human":
            print(text)
            return None
        return text


__all__ = [
    "ACTION_MODES", "MALFORMED_FEEDBACK", "MemoryEnv", "REWARDS", "UNREPRESENTABLE"
]
