"""Gymnasium ids of MemPO-Gym. Registered on ``import mempo_gym`` (and through the
``gymnasium.envs`` entry point, so ``gym.make("MemPO-…")`` works after ``import gymnasium``).

Every id takes the keyword arguments of :mod:`mempo_gym.envs.factory`; presets only
change defaults. ``max_episode_steps`` is not set: episodes end by answer, ``max_turns``
or the context budget.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

SYNTHWIKI_OBJECTIVES = (2, 4, 8, 16)
#: Registered task counts where the default (200) would ask for more distinct questions than the
#: default 120-entity world holds (it yields about 2,400 bridge questions; 16 x 200 = 3,200).
SYNTHWIKI_NUM_TASKS = {16: 100}
HOTPOTQA_OBJECTIVES = (2, 4, 6, 8, 10)
QA_FAMILIES = {"HotpotQA": "hotpotqa", "2Wiki": "2wiki", "MuSiQue": "musique", "NQ": "nq", "Bamboogle": "bamboogle"}


def _register(env_id: str, entry_point: str, kwargs: dict[str, Any]) -> None:
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=entry_point, kwargs=kwargs, disable_env_checker=True)


def registered_ids() -> list[str]:
    """All MemPO-Gym ids, sorted."""
    register_envs()
    return sorted(i for i in gym.registry if i.startswith("MemPO-"))


def register_envs() -> None:
    """Register every MemPO-Gym id (idempotent)."""
    synth = "mempo_gym.envs.synthwiki:make_synthwiki_env"
    _register("MemPO-SynthWiki-v0", synth, {"objectives": 1})
    for k in SYNTHWIKI_OBJECTIVES:
        extra = {"num_tasks": SYNTHWIKI_NUM_TASKS[k]} if k in SYNTHWIKI_NUM_TASKS else {}
        _register(f"MemPO-SynthWiki-{k}obj-v0", synth, {"objectives": k, **extra})
    _register("MemPO-SynthWiki-Large-v0", synth, {"objectives": 1, "num_distractors": 9880})

    qa = "mempo_gym.envs.qa:make_qa_env"
    for name, family in QA_FAMILIES.items():
        _register(f"MemPO-{name}-v0", qa, {"family": family})
    for k in HOTPOTQA_OBJECTIVES:
        _register(f"MemPO-HotpotQA-{k}obj-v0", qa, {"family": "hotpotqa", "objectives": k})
    _register("MemPO-HotpotQA-NQ-2obj-v0", qa, {"family": ["hotpotqa", "nq"], "objectives": 2})

    web = "mempo_gym.envs.websearch:make_websearch_env"
    _register("MemPO-WebSearch-v0", web, {"family": "bamboogle"})
    _register("MemPO-WebSearch-NQ-v0", web, {"family": "nq"})
    _register("MemPO-WebSearch-HotpotQA-v0", web, {"family": "hotpotqa"})
    for k in (2, 4):
        _register(f"MemPO-WebSearch-{k}obj-v0", web, {"family": ["bamboogle", "nq"], "objectives": k})
