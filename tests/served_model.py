"""A real ``mempo-gym serve`` process on 127.0.0.1 for tests (see :class:`mempo_agents.serve.ServerProcess`)."""

from mempo_agents.serve import ServerProcess as ServedModel

__all__ = ["ServedModel"]
