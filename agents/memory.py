"""MEM1's think-state memory now lives in the env library (it is a memory method, usable by
name: ``gym.make(..., memory="mem1")``); re-exported here for existing imports."""

from mempo_gym.core.context import ThinkStateMemory

__all__ = ["ThinkStateMemory"]
