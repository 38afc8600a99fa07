"""Adapters to LLM-RL frameworks; each imports its framework only when used.

* :mod:`mempo_gym.integrations.gem` — a ``gem.Env`` view of any MemPO-Gym env (GEM).
* :mod:`mempo_gym.integrations.trl` — a prompt dataset and a reward function for TRL's
  ``GRPOTrainer`` (plain GRPO; the MemPO loss on TRL is ``mempo_agents.trainer.trl_mempo``).
* :mod:`mempo_gym.integrations.verifiers` — a verifiers taskset and env, loaded by name
  (``mempo_gym.integrations.verifiers``).

Nothing here is imported by ``import mempo_gym``.
"""
