"""Real QA datasets and corpora: locating, loading, pooling and downloading them.

>>> from mempo_gym.data import get_dataset_spec
>>> get_dataset_spec("musique-ans-dev").source
'musique'

Typical use::

    from mempo_gym.data import load_dataset, load_corpus, load_context_corpus
    tasks = load_dataset("hotpotqa-dev-distractor")        # list[Task]
    docs = load_context_corpus("hotpotqa-dev-distractor")   # list[Document]

Files are looked up in :func:`resolve_data_dir` (``data_dir=``, else ``$MEMPO_GYM_DATA``,
else ``~/.cache/mempo_gym/data``); a missing dataset raises
:class:`DatasetNotFoundError` telling where to put it and the download command.
"""

from mempo_gym.data.corpora import (
    iter_jsonl_corpus,
    load_jsonl_corpus,
    load_title_text_corpus,
    load_wiki_summaries,
    parse_flashrag_contents,
    pool_context_paragraphs,
    wiki_summaries_path,
)
from mempo_gym.data.download import download, download_dataset, read_manifest, sha256_file
from mempo_gym.data.errors import (
    ChecksumError,
    DatasetError,
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadError,
    UnknownDatasetError,
    UnsafeArchiveError,
)
from mempo_gym.data.loaders import (
    load_2wikimultihopqa,
    load_bamboogle,
    load_flashrag,
    load_hf_table,
    load_hotpotqa,
    load_musique,
    load_nq_open,
)
from mempo_gym.data.paths import DATA_DIR_ENV, default_data_dir, resolve_data_dir
from mempo_gym.data.registry import (
    REGISTRY,
    DatasetSpec,
    RemoteFile,
    dataset_available,
    dataset_files,
    get_dataset_spec,
    list_datasets,
    load_context_corpus,
    load_corpus,
    load_dataset,
)

__all__ = [
    "ChecksumError", "DATA_DIR_ENV", "DatasetError", "DatasetFormatError",
    "DatasetNotFoundError", "DatasetSpec", "DownloadError", "REGISTRY", "RemoteFile",
    "UnknownDatasetError", "UnsafeArchiveError", "dataset_available", "dataset_files", "default_data_dir",
    "download", "download_dataset", "get_dataset_spec", "iter_jsonl_corpus", "list_datasets",
    "load_2wikimultihopqa", "load_bamboogle", "load_context_corpus", "load_corpus",
    "load_dataset", "load_flashrag", "load_hf_table", "load_hotpotqa", "load_jsonl_corpus",
    "load_musique", "load_nq_open", "load_title_text_corpus", "load_wiki_summaries",
    "parse_flashrag_contents", "pool_context_paragraphs", "read_manifest",
    "resolve_data_dir", "sha256_file", "wiki_summaries_path",
]
