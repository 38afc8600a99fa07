"""Errors raised inside the web-search package.

:class:`~mempo_gym.web.tool.WebSearchTool` turns provider failures and replay misses
into short information text (the env's tool must not raise for a query); cache
corruption and strict-replay misses are raised to the caller on purpose.
"""

from __future__ import annotations

from mempo_gym.core.tools import ToolFatalError


class WebSearchError(Exception):
    """Base class of every error of :mod:`mempo_gym.web`."""


class ProviderError(WebSearchError):
    """A provider could not answer (timeout, HTTP error, malformed or oversized reply...).

    The message is short and safe to show to the agent: it never contains an API key.
    """


class CacheError(WebSearchError):
    """The record/replay cache could not be opened, read or written."""


class CacheCorruptError(CacheError):
    """The cache file is not a valid search cache (bad file, schema, or row checksum)."""


class CacheMissError(CacheError, LookupError, ToolFatalError):
    """Replay mode was asked for a query or page that was never recorded."""
