"""Dense retrieval with the real bundled all-MiniLM-L6-v2, faiss index types, hybrid RRF."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mempo_gym.records import Document
from mempo_gym.retrieval.bm25 import BM25Retriever
from mempo_gym.retrieval.dense import DenseRetriever, VectorIndex
from mempo_gym.retrieval.embedding import SentenceEmbedder
from mempo_gym.retrieval.hybrid import HybridRetriever
from mempo_gym.retrieval.ranking import rank_texts
from mempo_gym.retrieval.search_tool import RetrieverSearchTool

FACTS = [
    ("Photosynthesis", "Green plants use sunlight, water and carbon dioxide to produce glucose and oxygen."),
    ("Volcano", "A rupture in the crust of a planet through which molten lava, ash and gases escape."),
    ("Great Wall of China", "A series of fortifications built across northern China over many centuries."),
    ("Penicillin", "An antibiotic discovered by Alexander Fleming in 1928 from Penicillium mould."),
    ("Mount Everest", "Earth's highest mountain above sea level, located in the Himalayas."),
    ("Honeybee", "A social insect that collects nectar and pollen and makes honey in hives."),
    ("Jazz", "A music genre that originated in New Orleans, known for swing and improvisation."),
    ("Chess", "A two-player strategy board game played on a checkered board with 64 squares."),
    ("Tsunami", "A series of large ocean waves usually caused by an undersea earthquake."),
    ("Olympic Games", "An international multi-sport event held every four years."),
    ("Black hole", "A region of spacetime where gravity is so strong that nothing, not even light, escapes."),
    ("Coffee", "A brewed drink prepared from roasted seeds of the Coffea plant."),
    ("Printing press", "Johannes Gutenberg's movable-type machine that spread books across Europe."),
    ("Amazon rainforest", "The largest tropical forest on Earth, covering much of the Amazon basin."),
    ("Insulin", "A hormone made by the pancreas that regulates blood sugar levels."),
    ("Sahara", "The largest hot desert in the world, spanning North Africa."),
    ("Telephone", "A device for transmitting speech over distance, patented by Alexander Graham Bell."),
    ("Penguin", "A flightless seabird of the Southern Hemisphere adapted to swimming."),
    ("Glacier", "A persistent body of dense ice that moves slowly under its own weight."),
    ("Vaccination", "Giving a vaccine to stimulate the immune system to protect against disease."),
    ("Roman Colosseum", "An oval amphitheatre in the centre of Rome that hosted gladiator contests."),
    ("Bicycle", "A pedal-driven, human-powered vehicle with two wheels attached to a frame."),
    ("Moon landing", "In 1969 Apollo 11 astronauts became the first people to walk on the Moon."),
    ("Earthquake", "The shaking of the Earth's surface caused by a sudden release of energy in the crust."),
    ("Silk Road", "An ancient network of trade routes linking China with the Mediterranean."),
    ("Dolphin", "An intelligent marine mammal known for echolocation and playful behaviour."),
    ("Electric car", "An automobile propelled by electric motors using energy stored in batteries."),
    ("Pyramids of Giza", "Ancient Egyptian royal tombs built on the Giza plateau near Cairo."),
    ("Rainbow", "An optical phenomenon of coloured arcs caused by refraction of sunlight in water droplets."),
    ("Bread", "A staple food baked from a dough of flour and water, often leavened with yeast."),
    ("Shakespeare", "An English playwright who wrote Hamlet, Macbeth and Romeo and Juliet."),
    ("Internet", "A global system of interconnected computer networks using the TCP/IP protocols."),
    ("Tea", "An aromatic beverage made by pouring hot water over cured leaves of Camellia sinensis."),
    ("Hurricane", "A rotating tropical storm with strong winds that forms over warm ocean water."),
    ("Piano", "A keyboard instrument in which hammers strike strings when keys are pressed."),
    ("DNA", "The molecule carrying genetic instructions for the development of living organisms."),
    ("Eiffel Tower", "A wrought-iron lattice tower on the Champ de Mars in Paris."),
    ("Football", "A team sport in which two sides of eleven players try to kick a ball into a goal."),
    ("Solar panel", "A device that converts light from the Sun into electricity using photovoltaic cells."),
    ("Coral reef", "An underwater ecosystem built by colonies of tiny animals in warm shallow seas."),
    ("Mona Lisa", "A portrait painted by Leonardo da Vinci, displayed in the Louvre."),
    ("Thermometer", "An instrument that measures temperature."),
    ("Wolf", "A large wild canine that lives and hunts in packs."),
    ("Cheese", "A dairy product made by coagulating milk proteins."),
    ("Windmill", "A structure that converts wind power into rotational energy with sails or blades."),
    ("Antarctica", "Earth's southernmost continent, almost entirely covered by an ice sheet."),
    ("Steam engine", "A heat engine that performs mechanical work using steam as its working fluid."),
    ("Origami", "The Japanese art of folding paper into decorative shapes and figures."),
    ("Lighthouse", "A tower with a bright lamp that guides ships at sea at night."),
    ("Compass", "A navigation instrument whose magnetised needle points toward magnetic north."),
]
CORPUS = [Document(f"f{i}", t, x) for i, (t, x) in enumerate(FACTS)]

# Paraphrases sharing (almost) no content word with their target document.
PARAPHRASES = {
    "How do leaves turn light into food?": "Photosynthesis",
    "giant sea wave after a seabed quake": "Tsunami",
    "hormone controlling glucose in the bloodstream": "Insulin",
    "which tool helps sailors find north": "Compass",
    "first humans on the lunar surface": "Moon landing",
    "frozen river of ice creeping down a valley": "Glacier",
}


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder()  # bundled all-MiniLM-L6-v2, loaded once


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def dense(embedder: SentenceEmbedder, shared_cache: Path) -> DenseRetriever:
    return DenseRetriever(CORPUS, embedder=embedder, cache_dir=shared_cache, show_progress=False)


def test_default_embedder_is_minilm(embedder: SentenceEmbedder) -> None:
    assert embedder.dim == 384
    assert "all-MiniLM-L6-v2" in embedder.model_name
    texts = ["short", "a much longer sentence about rivers and bridges", ""]
    batch = embedder.embed(texts)
    assert batch.shape == (3, 384) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch[:2], axis=1), 1.0, atol=1e-5)
    singles = np.vstack([embedder.embed([t]) for t in texts])
    np.testing.assert_allclose(batch, singles, atol=1e-4)  # length sorting keeps order


def test_dense_finds_paraphrased_documents(dense: DenseRetriever) -> None:
    bm25 = BM25Retriever(CORPUS, cache=False)
    lexical_top1 = 0
    for query, title in PARAPHRASES.items():
        hits = dense.search(query, 3)
        assert hits[0].doc.title == title, (query, [h.doc.title for h in hits])
        assert -1.0 <= hits[1].score <= hits[0].score <= 1.0
        lex = bm25.search(query, 1)
        lexical_top1 += bool(lex) and lex[0].doc.title == title
    assert lexical_top1 < len(PARAPHRASES)  # the queries really need semantics
    assert dense.search("   ", 3) == []
    assert [[h.doc for h in row] for row in dense.search_batch(list(PARAPHRASES), 2)] == [
        [h.doc for h in dense.search(q, 2)] for q in PARAPHRASES
    ]
    json.dumps(dense.describe())


def test_dense_cache_reuses_embeddings_and_rebuilds_corruption(
    embedder: SentenceEmbedder, tmp_path: Path
) -> None:
    first = DenseRetriever(CORPUS, embedder=embedder, cache_dir=tmp_path, show_progress=False)
    assert not first.embeddings_from_cache
    expected = [[(h.doc.id, h.score) for h in first.search(q, 5)] for q in PARAPHRASES]

    hnsw = DenseRetriever(CORPUS, embedder=embedder, cache_dir=tmp_path, index_type="hnsw")
    assert hnsw.embeddings_from_cache and not hnsw.index_from_cache  # embeddings shared
    hnsw_again = DenseRetriever(CORPUS, embedder=embedder, cache_dir=tmp_path, index_type="hnsw")
    assert hnsw_again.index_from_cache
    assert [h.doc.id for h in hnsw_again.search("ocean waves", 3)] == [
        h.doc.id for h in hnsw.search("ocean waves", 3)
    ]

    emb_entry = next(p for p in tmp_path.iterdir() if p.name.startswith("embeddings-"))
    npy = emb_entry / "embeddings.npy"
    npy.write_bytes(npy.read_bytes()[:-100])  # truncated
    rebuilt = DenseRetriever(CORPUS, embedder=embedder, cache_dir=tmp_path, show_progress=False)
    assert not rebuilt.embeddings_from_cache
    got = [[(h.doc.id, h.score) for h in rebuilt.search(q, 5)] for q in PARAPHRASES]
    assert [[i for i, _ in row] for row in got] == [[i for i, _ in row] for row in expected]
    np.testing.assert_allclose(
        [s for row in got for _, s in row], [s for row in expected for _, s in row], atol=1e-5
    )

    faiss_entry = next(p for p in tmp_path.iterdir() if p.name.startswith("faiss-"))
    index_file = faiss_entry / "index.faiss"
    data = bytearray(index_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flipped byte, same size
    index_file.write_bytes(bytes(data))
    again = DenseRetriever(CORPUS, embedder=embedder, cache_dir=tmp_path, index_type="hnsw")
    assert again.embeddings_from_cache and not again.index_from_cache


def test_dense_index_types_agree_on_small_corpus(
    embedder: SentenceEmbedder, dense: DenseRetriever, shared_cache: Path
) -> None:
    for index_type in ("ivf", "hnsw"):
        approx = DenseRetriever(
            CORPUS, embedder=embedder, index_type=index_type, cache_dir=shared_cache,
            show_progress=False,
        )
        assert approx.embeddings_from_cache  # only the faiss structure is new
        for query in PARAPHRASES:
            assert approx.search(query, 1)[0].doc == dense.search(query, 1)[0].doc
        assert approx.describe()["index_type"] == index_type


def _random_unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_approximate_indexes_on_random_vectors(index_type: str, tmp_path: Path) -> None:
    base = _random_unit_vectors(4000, 48, seed=0)
    noise = np.random.default_rng(1).standard_normal((200, 48)).astype(np.float32) * 0.05
    queries = base[:200] + noise
    exact = VectorIndex(48, "flat").build(base).search(queries, 10)
    approx = VectorIndex(48, index_type).build(base)  # type: ignore[arg-type]
    got = approx.search(queries, 10)
    assert [row[0][0] for row in got] == list(range(200))  # each query's source vector
    def recall(rows: list[list[tuple[int, float]]]) -> float:
        return float(np.mean([len({i for i, _ in a} & {i for i, _ in e}) / 10
                              for a, e in zip(rows, exact)]))

    # Random 48-d vectors are the hard case for IVF/HNSW (no cluster structure).
    assert recall(got) >= (0.5 if index_type == "ivf" else 0.8), recall(got)
    if index_type == "ivf":
        assert approx.nlist == VectorIndex.default_nlist(4000) and approx.nprobe >= 8
        exhaustive = VectorIndex(48, "ivf", nprobe=approx.nlist).build(base)
        assert recall(exhaustive.search(queries, 10)) == 1.0  # all cells probed = exact
    approx.save(tmp_path / "index.faiss")
    loaded = VectorIndex(48, index_type).load(tmp_path / "index.faiss", 4000)  # type: ignore[arg-type]
    assert loaded.search(queries, 10) == got
    with pytest.raises(ValueError, match="ntotal"):
        VectorIndex(48, index_type).load(tmp_path / "index.faiss", 3999)  # type: ignore[arg-type]


def test_vector_index_bad_settings() -> None:
    with pytest.raises(ValueError, match="index_type"):
        VectorIndex(8, "lsh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nlist"):
        VectorIndex(8, "ivf", nlist=50).build(_random_unit_vectors(10, 8, 0))
    with pytest.raises(ValueError, match="shape"):
        VectorIndex(8).build(np.zeros((3, 4), dtype=np.float32))
    small = VectorIndex(8).build(_random_unit_vectors(3, 8, 0))
    assert len(small.search(_random_unit_vectors(1, 8, 1), 10)[0]) == 3  # k capped at ntotal


def test_hybrid_combines_lexical_and_semantic(embedder: SentenceEmbedder, dense: DenseRetriever) -> None:
    bm25 = BM25Retriever(CORPUS, cache=False)
    hybrid = HybridRetriever(bm25, dense)
    assert hybrid.search("Penicillium mould Fleming", 1)[0].doc.title == "Penicillin"
    assert hybrid.search("which tool helps sailors find north", 1)[0].doc.title == "Compass"
    hits = hybrid.search("Eiffel Tower", 5)
    assert hits[0].doc.title == "Eiffel Tower"
    assert hits[0].score == pytest.approx(2 / 61)  # rank 1 in both lists
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert hybrid.search("", 3) == []
    json.dumps(hybrid.describe())
    tool = RetrieverSearchTool(hybrid, top_k=2, passage_token_cap=5)
    assert tool.search("Eiffel Tower").startswith("Doc 1 (Title: Eiffel Tower) A wrought-iron lattice")
    with pytest.raises(ValueError, match="different corpora"):
        HybridRetriever(BM25Retriever(CORPUS[:10], cache=False), dense)


def test_rank_texts_by_embedding(embedder: SentenceEmbedder) -> None:
    memory = ["The user's dog is named Biscuit.", "Meeting moved to Thursday at 3pm.",
              "Paris is the capital of France.", ""]
    assert rank_texts("what is my pet called", memory, 1, method="embedding", model=embedder) == [0]
    assert rank_texts("when is the appointment", memory, 2, method="embedding")[0] == 1
    assert sorted(rank_texts("France", memory, 10, method="embedding")) == [0, 1, 2, 3]


def test_embedding_progress_bar(embedder: SentenceEmbedder, capsys: pytest.CaptureFixture[str]) -> None:
    embedder.embed_documents(["one", "two", "three"], show_progress=True)
    assert "Embedding documents" in capsys.readouterr().err
