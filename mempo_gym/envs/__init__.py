"""Registered environments: task data + search tool + memory mode assembled into a MemoryEnv.

The env core (:mod:`mempo_gym.core`) knows nothing of datasets or retrievers; this
package wires them: :mod:`.factory` (shared assembly), :mod:`.synthwiki`, :mod:`.qa`
(real datasets), :mod:`.websearch`, and :mod:`.registration` (the Gymnasium ids).
"""
