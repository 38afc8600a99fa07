"""Question-answering dataset files -> :class:`mempo_gym.records.Task` lists.

One loader per published format, each taking a file path (the registry in
:mod:`mempo_gym.data.registry` maps dataset names to paths):

==========================  ==========================================================
:func:`load_hotpotqa`       official HotpotQA JSON (distractor, fullwiki, and the
                            paragraph-level variant whose sentence lists hold one string)
:func:`load_2wikimultihopqa` official 2WikiMultihopQA JSON (HotpotQA layout + evidences)
:func:`load_musique`        official MuSiQue JSONL (answer aliases, decomposition)
:func:`load_nq_open`        NQ-open JSONL ``{question, answer: [..]}``
:func:`load_bamboogle`      Bamboogle JSON list ``{question, answer}``
:func:`load_flashrag`       FlashRAG JSONL ``{id, question, golden_answers}`` (TriviaQA,
                            PopQA, NQ, ... as used by Search-R1)
:func:`load_hf_table`       Hugging Face ``datasets`` Parquet / Arrow files of any of the
                            layouts above (needs ``pyarrow``)
==========================  ==========================================================

Every task has one question; ``Question.supporting_titles`` (and ``supporting_texts``
when the file ships the paragraphs) are in hop order where the dataset labels it
(MuSiQue decomposition), else in the order of the dataset's supporting facts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from mempo_gym.data.errors import DatasetError, DatasetFormatError, DatasetNotFoundError
from mempo_gym.data.readers import RecordContext, iter_jsonl, read_json_list
from mempo_gym.records import Question, Task

__all__ = [
    "load_hotpotqa",
    "load_2wikimultihopqa",
    "load_musique",
    "load_nq_open",
    "load_bamboogle",
    "load_flashrag",
    "load_hf_table",
    "record_paragraphs",
    "iter_format_records",
    "CONTEXT_FORMATS",
]

PathLike = Path | str
Converter = Callable[[Mapping[str, Any], RecordContext], Task]

#: Formats whose records carry their own (gold + distractor) paragraphs.
CONTEXT_FORMATS = ("hotpotqa", "2wikimultihopqa", "musique")


# --- record iteration ------------------------------------------------------------------


def _require_file(path: PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(
            f"dataset file {path} does not exist"
            + (" (it is a folder)" if path.is_dir() else ""),
            missing=(path,),
        )
    return path


def _json_records(path: Path) -> Iterator[tuple[RecordContext, Mapping[str, Any]]]:
    for index, value in enumerate(read_json_list(path)):
        ctx = RecordContext(path, index)
        yield ctx, ctx.as_object(value)


def _jsonl_records(path: Path) -> Iterator[tuple[RecordContext, Mapping[str, Any]]]:
    for index, line, value in iter_jsonl(path):
        ctx = RecordContext(path, index, line)
        yield ctx, ctx.as_object(value)


def iter_format_records(path: PathLike, fmt: str) -> Iterator[tuple[RecordContext, Mapping[str, Any]]]:
    """Raw records of a file in one of the supported formats, with their location."""
    path = _require_file(path)
    if fmt in ("musique", "nq_open", "flashrag"):
        return _jsonl_records(path)
    if fmt in ("hotpotqa", "2wikimultihopqa", "bamboogle"):
        return _json_records(path)
    raise ValueError(f"unknown QA file format {fmt!r}")


def _collect(
    records: Iterable[tuple[RecordContext, Mapping[str, Any]]],
    convert: Converter,
    limit: int | None,
) -> list[Task]:
    """Convert records to tasks, stopping after ``limit``; ids must be unique per file set."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    tasks: list[Task] = []
    seen: dict[str, int | None] = {}
    for ctx, record in records:
        if limit is not None and len(tasks) >= limit:
            break
        task = convert(record, ctx)
        if task.id in seen:
            raise ctx.error(f"duplicate id {task.id!r} (first seen at record {seen[task.id]})", "id")
        seen[task.id] = ctx.index
        tasks.append(task)
    return tasks


# --- HotpotQA layout (HotpotQA and 2WikiMultihopQA) ---------------------------------------


#: How each dataset's sentence lists join back into paragraphs: HotpotQA sentences are
#: exact spans of the paragraph (leading spaces kept), 2Wiki sentences are stripped.
_SENTENCE_JOINERS = {"hotpotqa": "", "2wikimultihopqa": " "}


def _join_sentences(sentences: Sequence[str], joiner: str | None) -> str:
    """Rebuild a paragraph; ``joiner=None`` guesses ("" if any later sentence starts
    with whitespace, as in HotpotQA, else " ")."""
    if joiner is None:
        joiner = "" if any(s[:1].isspace() for s in sentences[1:]) else " "
    return joiner.join(sentences).strip()


def _hotpot_paragraphs(
    record: Mapping[str, Any], ctx: RecordContext, joiner: str | None
) -> list[tuple[str, str]]:
    context = ctx.get(record, "context", list)
    paragraphs: list[tuple[str, str]] = []
    for k, item in enumerate(context):
        field = f"context[{k}]"
        if not (isinstance(item, list) and len(item) == 2):
            raise ctx.error("expected a [title, [sentences]] pair", field)
        title = ctx.check(item[0], str, f"{field}[0]")
        sentences = ctx.string_list(item[1], f"{field}[1]", allow_empty=True)
        paragraphs.append((title, _join_sentences(sentences, joiner)))
    return paragraphs


def _hotpot_supporting_facts(record: Mapping[str, Any], ctx: RecordContext) -> list[list[Any]]:
    facts = ctx.get(record, "supporting_facts", list)
    out: list[list[Any]] = []
    for k, fact in enumerate(facts):
        field = f"supporting_facts[{k}]"
        if not (isinstance(fact, list) and len(fact) == 2):
            raise ctx.error("expected a [title, sentence_index] pair", field)
        ctx.check(fact[0], str, f"{field}[0]")
        ctx.check(fact[1], int, f"{field}[1]")
        out.append([fact[0], fact[1]])
    return out


def _hotpot_layout_task(
    record: Mapping[str, Any],
    ctx: RecordContext,
    *,
    source: str,
    split: str,
    meta: dict[str, Any],
    joiner: str | None,
) -> Task:
    task_id = ctx.text(record, "_id")
    question = ctx.text(record, "question")
    answers = ctx.answers([ctx.get(record, "answer", str)], "answer")
    facts = _hotpot_supporting_facts(record, ctx)
    paragraphs = dict(reversed(_hotpot_paragraphs(record, ctx, joiner)))  # first title wins
    titles = tuple(dict.fromkeys(title for title, _ in facts))
    texts = tuple(paragraphs[t] for t in titles) if all(t in paragraphs for t in titles) else ()
    kind = record.get("type", "")
    ctx.check(kind, str, "type")
    return Task(
        id=task_id,
        questions=(Question(question, answers, titles, texts, kind),),
        source=source,
        split=split,
        meta={**meta, "supporting_facts": facts},
    )


def _hotpotqa_converter(source: str, split: str, setting: str) -> Converter:
    def convert(record: Mapping[str, Any], ctx: RecordContext) -> Task:
        level = record.get("level", "")
        ctx.check(level, str, "level")
        return _hotpot_layout_task(
            record, ctx, source=source, split=split, meta={"setting": setting, "level": level},
            joiner=_SENTENCE_JOINERS["hotpotqa"],
        )
    return convert


def load_hotpotqa(
    path: PathLike,
    split: str = "dev",
    *,
    source: str = "hotpotqa",
    setting: str = "distractor",
    limit: int | None = None,
) -> list[Task]:
    """Tasks from an official HotpotQA JSON file (``_id, question, answer, type, level,
    supporting_facts, context``).

    ``setting`` ("distractor", "fullwiki", "paragraphs", ...) is recorded in
    ``Task.meta["setting"]``. Supporting titles follow the order of first mention in
    ``supporting_facts`` (HotpotQA does not label hops). In fullwiki files a supporting
    paragraph may be absent from ``context``; ``supporting_texts`` is then empty.
    """
    return _collect(
        iter_format_records(path, "hotpotqa"), _hotpotqa_converter(source, split, setting), limit
    )


def _two_wiki_converter(source: str, split: str) -> Converter:
    def convert(record: Mapping[str, Any], ctx: RecordContext) -> Task:
        evidences = record.get("evidences", [])
        ctx.check(evidences, list, "evidences")
        return _hotpot_layout_task(
            record, ctx, source=source, split=split, meta={"evidences": evidences},
            joiner=_SENTENCE_JOINERS["2wikimultihopqa"],
        )
    return convert


def load_2wikimultihopqa(
    path: PathLike, split: str = "dev", *, source: str = "2wikimultihopqa", limit: int | None = None
) -> list[Task]:
    """Tasks from an official 2WikiMultihopQA JSON file (HotpotQA layout + ``evidences``).

    Supporting titles follow ``supporting_facts`` order, which in 2Wiki follows the
    evidence chain; the evidence triples are kept in ``Task.meta["evidences"]``.
    """
    return _collect(
        iter_format_records(path, "2wikimultihopqa"), _two_wiki_converter(source, split), limit
    )


# --- MuSiQue ---------------------------------------------------------------------------


def _musique_paragraphs(
    record: Mapping[str, Any], ctx: RecordContext
) -> list[tuple[int, str, str, bool]]:
    """``(idx, title, text, is_supporting)`` for each paragraph."""
    paragraphs = ctx.get(record, "paragraphs", list)
    out: list[tuple[int, str, str, bool]] = []
    for k, para in enumerate(paragraphs):
        field = f"paragraphs[{k}]"
        if not isinstance(para, Mapping):
            raise ctx.error("expected an object {idx, title, paragraph_text, is_supporting}", field)
        idx = ctx.get(para, "idx", int, field=f"{field}.idx")
        title = ctx.get(para, "title", str, field=f"{field}.title")
        text = ctx.get(para, "paragraph_text", str, field=f"{field}.paragraph_text")
        supporting = para.get("is_supporting", False)
        ctx.check(supporting, bool, f"{field}.is_supporting")
        out.append((idx, title, text, supporting))
    return out


def _musique_converter(source: str, split: str) -> Converter:
    def convert(record: Mapping[str, Any], ctx: RecordContext) -> Task:
        task_id = ctx.text(record, "id")
        question = ctx.text(record, "question")
        answer = ctx.get(record, "answer", str)
        aliases = ctx.string_list(record.get("answer_aliases", []), "answer_aliases",
                                  allow_empty=True)
        answers = ctx.answers([answer, *aliases], "answer")
        paragraphs = _musique_paragraphs(record, ctx)
        by_idx = {idx: (title, text) for idx, title, text, _ in paragraphs}
        decomposition = record.get("question_decomposition", [])
        ctx.check(decomposition, list, "question_decomposition")
        hop_order: list[int] = []
        for k, step in enumerate(decomposition):
            field = f"question_decomposition[{k}]"
            if not isinstance(step, Mapping):
                raise ctx.error("expected an object", field)
            support = step.get("paragraph_support_idx")
            if support is None:
                continue
            ctx.check(support, int, f"{field}.paragraph_support_idx")
            if support not in by_idx:
                raise ctx.error(f"refers to paragraph idx {support}, which is not in "
                                "'paragraphs'", f"{field}.paragraph_support_idx")
            if support not in hop_order:
                hop_order.append(support)
        hop_order += [idx for idx, _, _, sup in paragraphs if sup and idx not in hop_order]
        answerable = record.get("answerable", True)
        ctx.check(answerable, bool, "answerable")
        kind = task_id.split("__", 1)[0] if "__" in task_id else ""
        q = Question(
            question,
            answers,
            supporting_titles=tuple(by_idx[i][0] for i in hop_order),
            supporting_texts=tuple(by_idx[i][1] for i in hop_order),
            kind=kind,
        )
        return Task(
            id=task_id, questions=(q,), source=source, split=split,
            meta={"question_decomposition": decomposition, "answerable": answerable},
        )
    return convert


def load_musique(
    path: PathLike, split: str = "dev", *, source: str = "musique", limit: int | None = None
) -> list[Task]:
    """Tasks from an official MuSiQue JSONL file.

    Answers are ``answer`` then ``answer_aliases``. Supporting paragraphs are in hop
    order (``question_decomposition[*].paragraph_support_idx``); the decomposition is in
    ``Task.meta["question_decomposition"]``; ``Question.kind`` is the id prefix
    (``"2hop"``, ``"3hop1"``, ...).
    """
    return _collect(iter_format_records(path, "musique"), _musique_converter(source, split), limit)


# --- open-domain single-hop formats -------------------------------------------------------


def _nq_open_converter(source: str, split: str) -> Converter:
    def convert(record: Mapping[str, Any], ctx: RecordContext) -> Task:
        question = ctx.text(record, "question")
        answers = ctx.answers(ctx.string_list(ctx.get(record, "answer", list), "answer"), "answer")
        return Task(id=f"{source}-{split}-{ctx.index}", questions=(Question(question, answers),),
                    source=source, split=split)
    return convert


def load_nq_open(
    path: PathLike, split: str = "dev", *, source: str = "nq_open", limit: int | None = None
) -> list[Task]:
    """Tasks from NQ-open JSONL (``{question, answer: [...]}``); ids are ``nq_open-SPLIT-N``."""
    return _collect(iter_format_records(path, "nq_open"), _nq_open_converter(source, split), limit)


def _bamboogle_converter(source: str, split: str) -> Converter:
    def convert(record: Mapping[str, Any], ctx: RecordContext) -> Task:
        question = ctx.text(record, "question")
        answers = ctx.answers([ctx.get(record, "answer", str)], "answer")
        return Task(id=f"{source}-{split}-{ctx.index}", questions=(Question(question, answers),),
                    source=source, split=split)
    return convert


def load_bamboogle(
    path: PathLike, split: str = "test", *, source: str = "bamboogle", limit: int | None = None
) -> list[Task]:
    """Tasks from the Bamboogle JSON list (``{question, answer}``)."""
    return _collect(iter_format_records(path, "bamboogle"), _bamboogle_converter(source, split),
                    limit)


def _flashrag_converter(source: str, split: str) -> Converter:
    def convert(record: Mapping[str, Any], ctx: RecordContext) -> Task:
        raw_id = record.get("id", f"{source}-{split}-{ctx.index}")
        ctx.check(raw_id, (str, int), "id")
        question = ctx.text(record, "question")
        golds = ctx.string_list(ctx.get(record, "golden_answers", list), "golden_answers")
        answers = ctx.answers(golds, "golden_answers")
        metadata = record.get("metadata", {})
        ctx.check(metadata, (dict, type(None)), "metadata")
        return Task(id=str(raw_id), questions=(Question(question, answers),), source=source,
                    split=split, meta={"metadata": metadata} if metadata else {})
    return convert


def load_flashrag(
    path: PathLike, source: str | None = None, split: str | None = None, *, limit: int | None = None
) -> list[Task]:
    """Tasks from a FlashRAG-style JSONL file (``{id, question, golden_answers, metadata}``).

    FlashRAG stores ``DATASET/SPLIT.jsonl``, so ``source`` defaults to the parent folder
    name and ``split`` to the file stem.
    """
    path = Path(path)
    source = source or path.parent.name or "flashrag"
    split = split if split is not None else path.name.split(".")[0]
    return _collect(iter_format_records(path, "flashrag"), _flashrag_converter(source, split), limit)


# --- Hugging Face datasets files (Parquet / Arrow) ----------------------------------------------


def _require_pyarrow() -> Any:
    if importlib.util.find_spec("pyarrow") is None:
        raise DatasetError(
            "reading Hugging Face Parquet/Arrow files needs pyarrow: pip install pyarrow"
        )
    import pyarrow  # noqa: F401  (import only when needed; optional dependency)
    import pyarrow.ipc
    import pyarrow.parquet

    return pyarrow


def _table_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.parquet")) + sorted(path.glob("*.arrow"))
        if not files:
            raise DatasetNotFoundError(
                f"no *.parquet or *.arrow files in folder {path}", missing=(path,)
            )
        return files
    return [_require_file(path)]


def _read_table(pa: Any, path: Path) -> Any:
    try:
        if path.suffix == ".parquet":
            return pa.parquet.read_table(path)
        with pa.memory_map(str(path)) as source:
            try:
                return pa.ipc.open_stream(source).read_all()  # what `datasets` writes
            except pa.ArrowInvalid:
                source.seek(0)
                return pa.ipc.open_file(source).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DatasetFormatError(path, f"not a readable Parquet/Arrow table: {exc}") from None


def _columnar_to_pairs(value: Any, keys: tuple[str, str], ctx: RecordContext, field: str) -> Any:
    """HF stores [[a, b], ...] pairs as {key0: [a...], key1: [b...]}; convert back."""
    if isinstance(value, Mapping):
        first, second = (ctx.check(value.get(k), list, f"{field}.{k}") for k in keys)
        if len(first) != len(second):
            raise ctx.error(f"{keys[0]} and {keys[1]} have different lengths", field)
        return [[a, b] for a, b in zip(first, second)]
    return value


def _hf_converter(columns: set[str], source: str, split: str, path: Path) -> Converter:
    if {"question", "golden_answers"} <= columns:
        return _flashrag_converter(source, split)
    if {"paragraphs", "question_decomposition"} <= columns:
        return _musique_converter(source, split)
    if {"context", "supporting_facts"} <= columns:
        def convert(record: Mapping[str, Any], ctx: RecordContext) -> Task:
            row = dict(record)
            if "_id" not in row and "id" in row:
                row["_id"] = row["id"]
            row["context"] = _columnar_to_pairs(row["context"], ("title", "sentences"), ctx, "context")
            row["supporting_facts"] = _columnar_to_pairs(
                row["supporting_facts"], ("title", "sent_id"), ctx, "supporting_facts")
            meta = {k: row[k] for k in ("level", "evidences") if isinstance(row.get(k), (str, list))}
            return _hotpot_layout_task(row, ctx, source=source, split=split, meta=meta,
                                       joiner=None)
        return convert
    if {"question", "answer"} <= columns:
        nq, simple = _nq_open_converter(source, split), _bamboogle_converter(source, split)
        return lambda record, ctx: (nq if isinstance(record.get("answer"), list) else simple)(record, ctx)
    raise DatasetFormatError(
        path, f"unrecognised table layout (columns: {sorted(columns)}); expected FlashRAG "
        "(question, golden_answers), MuSiQue, HotpotQA/2Wiki (context, supporting_facts) or "
        "(question, answer) columns"
    )


def load_hf_table(
    path: PathLike, source: str, split: str = "", *, limit: int | None = None
) -> list[Task]:
    """Tasks from Hugging Face ``datasets`` files on disk: a ``.parquet`` file, an
    ``.arrow`` file (``save_to_disk`` / cache shards), or a folder of them (read in name
    order).

    The layout is detected from the columns: FlashRAG (``golden_answers``), MuSiQue,
    HotpotQA/2Wiki (``context``/``supporting_facts``, in the HF columnar form
    ``{title: [...], sentences: [...]}`` or the official pair lists), NQ-open (``answer``
    list) or plain ``{question, answer}``. Requires ``pyarrow``.
    """
    pa = _require_pyarrow()
    files = _table_files(Path(path))

    converters: dict[Path, Converter] = {}

    def records() -> Iterator[tuple[RecordContext, Mapping[str, Any]]]:
        for file in files:
            table = _read_table(pa, file)
            converters[file] = _hf_converter(set(table.column_names), source, split, file)
            for index, row in enumerate(table.to_pylist()):
                yield RecordContext(file, index), row

    def convert_row(record: Mapping[str, Any], ctx: RecordContext) -> Task:
        return converters[ctx.path](record, ctx)

    return _collect(records(), convert_row, limit)


# --- context paragraphs (for corpus building) ------------------------------------------------


def record_paragraphs(fmt: str, record: Mapping[str, Any], ctx: RecordContext) -> list[tuple[str, str]]:
    """``(title, text)`` of every context paragraph of one record (gold and distractors)."""
    if fmt in _SENTENCE_JOINERS:
        return _hotpot_paragraphs(record, ctx, _SENTENCE_JOINERS[fmt])
    if fmt == "musique":
        return [(title, text) for _, title, text, _ in _musique_paragraphs(record, ctx)]
    raise ValueError(f"format {fmt!r} carries no context paragraphs; use one of {CONTEXT_FORMATS}")
