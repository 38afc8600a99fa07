"""Reduce an HTML page to its main readable text with the stdlib ``html.parser``.

Scripts, styles, navigation and other boilerplate elements are dropped, block elements
become line breaks, whitespace is collapsed. When the page marks its content with
``<main>`` or ``<article>``, only that content is kept.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import NamedTuple

#: Elements whose whole content is boilerplate or code, never page text.
SKIPPED_ELEMENTS = frozenset({
    "script", "style", "nav", "noscript", "template", "svg", "iframe", "header", "footer",
    "aside", "form", "button", "select", "canvas", "object",
})
#: Elements that hold the page's main content when present.
MAIN_ELEMENTS = frozenset({"main", "article"})
#: Elements that end a line of text.
BLOCK_ELEMENTS = frozenset({
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th",
    "table", "section", "article", "main", "blockquote", "pre", "dd", "dt", "dl", "hr",
    "figcaption", "caption", "title", "body", "html",
})
#: Elements that never have an end tag.
VOID_ELEMENTS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
})

_SPACES = re.compile(r"[^\S\n]+")


class HtmlText(NamedTuple):
    """Title (from ``<title>``, else the first ``<h1>``) and main text of a page."""

    title: str
    text: str


class _MainTextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_depth = 0
        self.main_depth = 0
        self.in_title = False
        self.h1_depth = 0
        self.title_parts: list[str] = []
        self.h1_parts: list[str] = []
        self.all_parts: list[str] = []
        self.main_parts: list[str] = []

    def _newline(self) -> None:
        self.all_parts.append("\n")
        if self.main_depth:
            self.main_parts.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID_ELEMENTS:
            if tag in BLOCK_ELEMENTS:
                self._newline()
            return
        if tag in SKIPPED_ELEMENTS:
            self.skip_depth += 1
        elif tag in MAIN_ELEMENTS and not self.skip_depth:
            self.main_depth += 1
        if tag == "title":
            self.in_title = True
        elif tag == "h1":
            self.h1_depth += 1
        if tag in BLOCK_ELEMENTS:
            self._newline()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCK_ELEMENTS:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED_ELEMENTS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in MAIN_ELEMENTS and not self.skip_depth:
            self.main_depth = max(0, self.main_depth - 1)
        if tag == "title":
            self.in_title = False
        elif tag == "h1":
            self.h1_depth = max(0, self.h1_depth - 1)
        if tag in BLOCK_ELEMENTS:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
            return
        if self.skip_depth:
            return
        if self.h1_depth:
            self.h1_parts.append(data)
        self.all_parts.append(data)
        if self.main_depth:
            self.main_parts.append(data)


def collapse_whitespace(text: str) -> str:
    """Collapse runs of spaces within lines and drop empty lines."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> HtmlText:
    """Return the title and main text of an HTML document (tolerates broken markup)."""
    parser = _MainTextParser()
    parser.feed(html)
    parser.close()
    main = collapse_whitespace("".join(parser.main_parts))
    text = main or collapse_whitespace("".join(parser.all_parts))
    title = " ".join("".join(parser.title_parts).split())
    if not title:
        title = " ".join("".join(parser.h1_parts).split())
    return HtmlText(title=title, text=text)


def html_fragment_to_text(fragment: str) -> str:
    """Plain one-line text of a short HTML fragment (e.g. a snippet with ``<strong>``)."""
    return " ".join(html_to_text(fragment).text.split())
