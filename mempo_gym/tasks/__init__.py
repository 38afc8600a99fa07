"""Task generators and composition: SynthWiki worlds and multi-objective tasks.

:mod:`~mempo_gym.tasks.synthwiki` generates fictional worlds (corpus + questions),
:mod:`~mempo_gym.tasks.compose` groups single-question tasks into k-objective ones, and
:mod:`~mempo_gym.tasks.names` invents the entity names.
"""

from mempo_gym.tasks.compose import compose_mixed_tasks, compose_tasks
from mempo_gym.tasks.synthwiki import (
    SynthWikiConfig,
    SynthWorld,
    generate_synthwiki,
    generate_tasks,
    generate_world,
    split_pieces,
    split_words,
    synthwiki_vocabulary,
)

__all__ = [
    "SynthWikiConfig",
    "SynthWorld",
    "compose_mixed_tasks",
    "compose_tasks",
    "generate_synthwiki",
    "generate_tasks",
    "generate_world",
    "split_pieces",
    "split_words",
    "synthwiki_vocabulary",
]
