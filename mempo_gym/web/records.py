"""Plain records exchanged between web-search providers, the cache and the tool."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping


def _require_str(record: str, field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{record}.{field} must be a string, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class WebResult:
    """One search hit: page title, its URL and a short plain-text snippet."""

    title: str
    url: str
    snippet: str

    def __post_init__(self) -> None:
        for name in ("title", "url", "snippet"):
            _require_str("WebResult", name, getattr(self, name))

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "WebResult":
        return cls(title=d["title"], url=d["url"], snippet=d["snippet"])


@dataclass(frozen=True)
class WebPage:
    """The main text of one opened page.

    ``truncated`` is True when the provider stopped reading the page early (byte cap),
    so the text is only its beginning.
    """

    url: str
    title: str
    text: str
    truncated: bool = False

    def __post_init__(self) -> None:
        for name in ("url", "title", "text"):
            _require_str("WebPage", name, getattr(self, name))
        if not isinstance(self.truncated, bool):
            raise ValueError("WebPage.truncated must be a bool")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "WebPage":
        return cls(url=d["url"], title=d["title"], text=d["text"], truncated=d.get("truncated", False))
