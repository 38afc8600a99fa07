"""Which env ids and settings a submission may ask the scorer to build, and within what bounds.

Everything here is checked on the submitted JSON BEFORE anything is instantiated: an id
outside the registered ``MemPO-`` ids (``CartPole-v1``, ``module:Id``) or a setting not
in :data:`ALLOWED` (or out of its bounds) is refused without building an env. The bounds
cap the work one submission can cause: turns per episode, tokens per turn and context,
and the sizes of the worlds/task sets the scorer must generate.

Settings that name paths on the submitter's machine (:data:`PATH_KWARGS`) are dropped
(the scorer uses its own data directory); web-search runs are rebuilt in strict replay
mode over the cache carried in the submission (see :mod:`mempo_gym.leaderboard.replay`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from mempo_gym.leaderboard.errors import SubmissionRejected
from mempo_gym.tokenizer import DEFAULT_TOKENIZER

#: Env kwargs naming paths on the submitter's machine; dropped (the scorer's data dir is used).
PATH_KWARGS = frozenset({"data_dir", "index_cache_dir", "cache_dir", "cache_path"})
MAX_ENVS = 32
MAX_EPISODES_PER_ENV = 20_000
MAX_EPISODES_TOTAL = 50_000


@dataclass(frozen=True)
class Setting:
    """One allowed keyword: a validator returning an error text (or ``None``) for a JSON value."""

    check: Callable[[Any], str | None]
    families: frozenset[str] = frozenset({"synthwiki", "qa", "web"})


def _int(lo: int, hi: int, none: bool = False) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if v is None and none:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            return f"must be an integer in [{lo}, {hi}]" + (" or null" if none else "")
        return None
    return check


def _float(lo: float, hi: float) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
            return f"must be a number in [{lo}, {hi}]"
        return None
    return check


def _choice(*options: Any) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if any(v == o and type(v) is type(o) for o in options) else f"must be one of {list(options)}"
    return check


def _text(max_chars: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if isinstance(v, str) and len(v) <= max_chars else f"must be a string of at most {max_chars} characters"
    return check


def _names(max_items: int, max_chars: int = 80) -> Callable[[Any], str | None]:
    """A name or a short list of names (datasets, corpora, families)."""
    def check(v: Any) -> str | None:
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list) or not 1 <= len(items) <= max_items or not all(
                isinstance(i, str) and 0 < len(i) <= max_chars and i.replace("-", "").replace("_", "").isalnum()
                for i in items):
            return f"must be a name or a list of at most {max_items} names (letters, digits, - and _)"
        return None
    return check


def _pair(lo: int, hi: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if _int(lo, hi)(v) is None:
            return None
        if isinstance(v, list) and len(v) == 2 and all(_int(lo, hi)(x) is None for x in v) and v[0] <= v[1]:
            return None
        return f"must be an integer in [{lo}, {hi}] or a pair [lo, hi] within it"
    return check


def _kinds(v: Any) -> str | None:
    ok = isinstance(v, list) and 1 <= len(v) <= 2 and all(k in ("bridge", "comparison") for k in v)
    return None if ok else "must be a list drawn from ['bridge', 'comparison']"


def _tokenizer(v: Any) -> str | None:
    if v in (None, DEFAULT_TOKENIZER):
        return None
    return f"submissions are verified with the env's default tokenizer ({DEFAULT_TOKENIZER}) only"


SYNTH, QA, WEB = frozenset({"synthwiki"}), frozenset({"qa"}), frozenset({"web"})
QA_WEB = QA | WEB

#: The allowlist: keyword -> validator (and the env families that take it).
ALLOWED: dict[str, Setting] = {
    # MemoryEnv and the shared factory
    "memory": Setting(_choice("self", "full", "window", "external")),
    "window_k": Setting(_int(1, 64)),
    "external_top_k": Setting(_int(1, 64)),
    "external_ranker": Setting(_choice("bm25")),
    "retriever": Setting(_choice("bm25"), SYNTH | QA),
    "top_k": Setting(_int(1, 20)),
    "passage_token_cap": Setting(_int(1, 2048, none=True), SYNTH | QA),
    "tokenizer": Setting(_tokenizer),
    "action_mode": Setting(_choice("text", "token")),
    "context_budget": Setting(_int(256, 32_768)),
    "max_turns": Setting(_int(1, 64, none=True)),
    "max_turn_tokens": Setting(_int(1, 2048)),
    "reward": Setting(_choice("f1", "em", "f1_format")),
    "format_penalty": Setting(_float(0.0, 1.0)),
    "truncation_reward": Setting(_float(-1.0, 1.0)),
    "instructions": Setting(_text(16_000)),
    "render_mode": Setting(_choice(None, "ansi")),
    "unrepresentable": Setting(_choice("warn", "error")),
    "objectives": Setting(_int(1, 16)),
    # SynthWiki worlds (sizes bounded: the scorer generates the world)
    "split": Setting(_choice("train", "dev", "test"), SYNTH),
    "seed": Setting(_int(0, 2**62), SYNTH),
    "num_tasks": Setting(_int(1, 5_000, none=True)),
    "search": Setting(_choice("bm25", "title"), SYNTH),
    "num_entities": Setting(_int(10, 5_000), SYNTH),
    "num_distractors": Setting(_int(0, 20_000), SYNTH),
    "name_style": Setting(_choice("syllable", "pool"), SYNTH),
    "syllables": Setting(_pair(1, 6), SYNTH),
    "pool_size": Setting(_int(10, 50_000), SYNTH),
    "pool_seed": Setting(_int(0, 2**62), SYNTH),
    "year_range": Setting(_pair(1, 3000), SYNTH),
    "hops": Setting(_pair(1, 8), SYNTH),
    "kinds": Setting(_kinds, SYNTH),
    "task_seed": Setting(_int(0, 2**62), SYNTH),
    # real datasets (local files under the scorer's data dir)
    "family": Setting(_names(4), QA_WEB),
    "dataset": Setting(_names(4), QA_WEB),
    "corpus": Setting(_names(8), QA),
    "compose_seed": Setting(_int(0, 2**62), QA_WEB),
    "limit": Setting(_int(1, 1_000_000, none=True), QA_WEB),
    # web search (rebuilt in strict replay over the carried cache)
    "provider": Setting(_choice("offline"), WEB),
    "extra_corpus": Setting(lambda v: None if v == [] else _names(4)(v), WEB),
    "mode": Setting(_choice("record", "replay"), WEB),
    "strict_replay": Setting(_choice(True, False), WEB),
    "page_token_cap": Setting(_int(1, 2048), WEB),
}


def env_family(env_id: str) -> str:
    """``"synthwiki"``, ``"web"`` or ``"qa"`` for a registered MemPO id."""
    if env_id.startswith("MemPO-SynthWiki"):
        return "synthwiki"
    if env_id.startswith("MemPO-WebSearch"):
        return "web"
    return "qa"


def registered_mempo_ids() -> frozenset[str]:
    """The ids the scorer may build: the registered ``MemPO-`` ids of this library."""
    from mempo_gym.envs.registration import registered_ids

    return frozenset(registered_ids())


def check_env_settings(env_id: str, kwargs: Mapping[str, Any], where: str, member: str) -> tuple[dict[str, Any], list[str]]:
    """The kwargs the scorer may build ``env_id`` with, and the path settings it dropped.

    Raises :class:`SubmissionRejected` naming the id or setting, before anything is built.
    """
    if not env_id.startswith("MemPO-") or env_id not in registered_mempo_ids():
        raise SubmissionRejected(
            f"env id {env_id[:80]!r} is not a registered MemPO-Gym id; the scorer builds only those "
            "(see mempo_gym.registered_ids())", member=member, field=f"{where}.id")
    family = env_family(env_id)
    built: dict[str, Any] = {}
    ignored: list[str] = []
    for key in sorted(kwargs):
        value = kwargs[key]
        if key in PATH_KWARGS:
            ignored.append(key)
            continue
        if isinstance(value, dict) and "__object__" in value:
            raise SubmissionRejected(
                f"setting {key!r} was an object ({str(value.get('__object__'))[:80]}); the scorer can rebuild only "
                "settings given by name", member=member, field=f"{where}.kwargs.{key}")
        setting = ALLOWED.get(key)
        if setting is None or family not in setting.families:
            raise SubmissionRejected(
                f"setting {key[:80]!r} is not one the scorer accepts for {env_id}", member=member,
                field=f"{where}.kwargs.{key[:80]}")
        error = setting.check(value)
        if error:
            raise SubmissionRejected(f"setting {key!r}={str(value)[:80]!r} {error}", member=member,
                                     field=f"{where}.kwargs.{key}")
        if key != "tokenizer":
            built[key] = value
    if family == "web" and built.get("mode") not in ("record", "replay"):
        raise SubmissionRejected(
            "web-search runs are scored by replaying their search cache: run with mode='record' and "
            "cache_path=... and submit the cache with the run", member=member, field=f"{where}.kwargs.mode")
    return built, ignored


#: Keyword arguments that choose the evaluated method (or how the scorer replays), not the benchmark.
METHOD_KWARGS = frozenset({"memory", "window_k", "external_top_k", "external_ranker", "instructions", "action_mode",
                           "reward", "format_penalty", "truncation_reward", "render_mode", "unrepresentable", "mode",
                           "strict_replay"})


def benchmark_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The benchmark part of ``gym.make`` kwargs (method and path settings dropped)."""
    return {k: v for k, v in kwargs.items() if k not in METHOD_KWARGS and k not in PATH_KWARGS and k != "tokenizer"}


#: describe() keys that belong to the evaluated method, not to the benchmark.
METHOD_DESCRIBE_KEYS = frozenset({"memory", "instructions", "action_mode", "reward", "format_penalty",
                                  "truncation_reward", "web_mode", "data_files"})
_TOOL_RUN_KEYS = frozenset({"mode", "strict", "cache"})


def benchmark_settings(described: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an env's ``describe()`` that makes two runs comparable (method settings dropped).

    >>> benchmark_settings({"memory": {"name": "full"}, "context_budget": 4096})
    {'context_budget': 4096}
    """
    out = {k: v for k, v in described.items() if k not in METHOD_DESCRIBE_KEYS}
    tool = out.get("search_tool")
    if isinstance(tool, dict):
        out["search_tool"] = {k: v for k, v in tool.items() if k not in _TOOL_RUN_KEYS}
    return out


def differing_settings(described: Mapping[str, Any], reference: Mapping[str, Any]) -> list[str]:
    """Top-level benchmark settings where ``described`` differs from ``reference``.

    >>> differing_settings({"context_budget": 10**9, "memory": "full"}, {"context_budget": 4096, "memory": "self"})
    ['context_budget']
    """
    a, b = benchmark_settings(described), benchmark_settings(reference)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
