"""MemPO / GRPO / SFT training for any transformers causal LM (``python -m mempo_agents.trainer``)."""

from mempo_agents.trainer.config import TrainerConfig
from mempo_agents.trainer.word_tokenizer import build_word_tokenizer

__all__ = ["TrainerConfig", "build_word_tokenizer"]
