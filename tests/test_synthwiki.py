"""SynthWiki generator: determinism, split separation, answerability, uniqueness, vocabulary.

Answerability is checked by an oracle written here from the document and question
templates alone: it parses each question, reads documents by exact title and must reach
the gold answer through exactly the supporting documents, in hop order.
"""

from __future__ import annotations

import doctest
import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mempo_gym.records import Document, Task
from mempo_gym.tasks import names as names_module
from mempo_gym.tasks import synthwiki as synthwiki_module
from mempo_gym.tasks.names import SPLIT_BUCKETS, name_bucket, name_pool, split_syllables
from mempo_gym.tasks.synthwiki import (
    TAGS,
    TEMPLATE_WORDS,
    SynthWikiConfig,
    SynthWorld,
    generate_synthwiki,
    generate_tasks,
    generate_world,
    split_pieces,
    split_words,
    synthwiki_vocabulary,
)

REPO = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------ text-only oracle

DOC_PATTERNS = {
    "country": re.compile(r"(?P<name>.+) is a country with capital (?P<capital>.+)\."),
    "city": re.compile(r"(?P<name>.+) is a city in (?P<country>.+)\."),
    "organisation": re.compile(
        r"(?P<name>.+) is a (?P<kind>company|university|bank) in (?P<headquarters>.+), "
        r"founded in (?P<year>\d+) by (?P<founder>.+)\."
    ),
    "person": re.compile(
        r"(?P<name>.+) was born in (?P<birthplace>.+) in (?P<year>\d+) and works for (?P<employer>.+)\."
    ),
    "work": re.compile(r"(?P<name>.+) is a (?P<kind>film|book) by (?P<creator>.+), released in (?P<year>\d+)\."),
}
NOUNS = {  # phrase noun -> (field, required entity type, required kind)
    "director": ("creator", "work", "film"),
    "author": ("creator", "work", "book"),
    "birthplace": ("birthplace", "person", None),
    "employer": ("employer", "person", None),
    "headquarters": ("headquarters", "organisation", None),
    "founder": ("founder", "organisation", None),
    "country": ("country", "city", None),
    "capital": ("capital", "country", None),
}
FINAL_QUESTIONS = [  # question pattern -> (field, required type, required kind)
    (re.compile(r"Who directed (?P<x>.+)\?"), ("creator", "work", "film")),
    (re.compile(r"Who wrote (?P<x>.+)\?"), ("creator", "work", "book")),
    (re.compile(r"Where was (?P<x>.+) born\?"), ("birthplace", "person", None)),
    (re.compile(r"Who employs (?P<x>.+)\?"), ("employer", "person", None)),
    (re.compile(r"Where is (?P<x>.+) based\?"), ("headquarters", "organisation", None)),
    (re.compile(r"Who founded (?P<x>.+)\?"), ("founder", "organisation", None)),
    (re.compile(r"In which country is (?P<x>.+)\?"), ("country", "city", None)),
    (re.compile(r"What is the capital of (?P<x>.+)\?"), ("capital", "country", None)),
    (re.compile(r"In which year was (?P<x>.+) born\?"), ("year", "person", None)),
    (re.compile(r"In which year was (?P<x>.+) founded\?"), ("year", "organisation", None)),
    (re.compile(r"In which year was (?P<x>.+) released\?"), ("year", "work", None)),
]
COMPARISON = re.compile(r"(?P<wh>Who|Which) was (?P<verb>born|founded|released) (?P<dir>earlier|later), (?P<a>.+) or (?P<b>.+)\?")
VERB_TYPE = {"born": "person", "founded": "organisation", "released": "work"}


class TextOracle:
    """Answers SynthWiki questions from document texts only, logging each title it reads."""

    def __init__(self, documents: list[Document]) -> None:
        self.texts = {d.title: d.text for d in documents}
        self.read: list[str] = []

    def facts(self, title: str) -> tuple[str, dict[str, str]]:
        self.read.append(title)
        text = self.texts[title]
        matches = [(t, p.fullmatch(text)) for t, p in DOC_PATTERNS.items()]
        matches = [(t, m) for t, m in matches if m]
        assert len(matches) == 1, f"document of {title!r} matches {len(matches)} templates: {text}"
        entity_type, match = matches[0]
        assert match["name"] == title
        return entity_type, match.groupdict()

    def lookup(self, title: str, field: str, required_type: str, required_kind: str | None) -> str:
        entity_type, facts = self.facts(title)
        assert entity_type == required_type, f"{field} asked of a {entity_type}: {title}"
        if required_kind is not None:
            assert facts["kind"] == required_kind
        return facts[field]

    def resolve(self, phrase: str) -> str:
        match = re.fullmatch(r"the (\w+) of (.+)", phrase)
        if match is None:
            assert phrase in self.texts, f"{phrase!r} is not a title"
            return phrase
        inner = self.resolve(match.group(2))
        return self.lookup(inner, *NOUNS[match.group(1)])

    def answer(self, text: str) -> str:
        self.read = []
        comparison = COMPARISON.fullmatch(text)
        if comparison:
            entity_type = VERB_TYPE[comparison["verb"]]
            assert comparison["wh"] == ("Who" if entity_type == "person" else "Which")
            a = self.resolve(comparison["a"])
            year_a = int(self.lookup(a, "year", entity_type, None))
            b = self.resolve(comparison["b"])
            year_b = int(self.lookup(b, "year", entity_type, None))
            assert a != b and year_a != year_b, f"no unique answer: {text}"
            return a if (year_a < year_b) == (comparison["dir"] == "earlier") else b
        for pattern, (field, required_type, kind) in FINAL_QUESTIONS:
            match = pattern.fullmatch(text)
            if match:
                return self.lookup(self.resolve(match["x"]), field, required_type, kind)
        raise AssertionError(f"question matches no template: {text}")


def check_answerable(world: SynthWorld, tasks: list[Task]) -> None:
    oracle = TextOracle(world.documents)
    for task in tasks:
        for q in task.questions:
            assert oracle.answer(q.text) == q.answers[0], q.text
            assert tuple(oracle.read) == q.supporting_titles, q.text
            assert q.supporting_texts == tuple(oracle.texts[t] for t in q.supporting_titles)
            if q.kind == "bridge":
                assert q.answers[0] in q.supporting_texts[-1]
                assert q.answers[0] not in q.supporting_titles, f"answer is one of its own hops: {q.text}"
            else:
                assert q.kind == "comparison" and q.answers[0] in q.supporting_titles


def digest(world: SynthWorld, tasks: list[Task]) -> str:
    payload = json.dumps([[d.to_dict() for d in world.documents], [t.to_dict() for t in tasks]], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


# ------------------------------------------------------------------ tests


def test_docstring_examples_pass() -> None:
    for module in (names_module, synthwiki_module):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


@pytest.mark.parametrize("name_style", ["syllable", "pool"])
def test_same_config_gives_identical_world_and_tasks(name_style: str) -> None:
    config = SynthWikiConfig(seed=3, num_entities=150, num_distractors=50, num_tasks=40, objectives=2, name_style=name_style)
    first = generate_synthwiki(config)
    second = generate_synthwiki(config)
    assert first[0].documents == second[0].documents
    assert first[1] == second[1]
    assert digest(*first) == digest(*second)


def test_output_does_not_depend_on_hash_seed() -> None:
    config = dict(seed=5, num_entities=120, num_distractors=30, num_tasks=20, objectives=2, hops=(1, 5))
    world, tasks = generate_synthwiki(SynthWikiConfig(**config))
    expected = digest(world, tasks)
    script = (
        "import sys, json, hashlib\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from mempo_gym.tasks.synthwiki import SynthWikiConfig, generate_synthwiki\n"
        f"w, ts = generate_synthwiki(SynthWikiConfig(**{config!r}))\n"
        "p = json.dumps([[d.to_dict() for d in w.documents], [t.to_dict() for t in ts]], sort_keys=True)\n"
        "print(hashlib.sha256(p.encode()).hexdigest())\n"
    )
    for hash_seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected


def test_splits_and_seeds_are_different_worlds_with_disjoint_syllable_names() -> None:
    worlds = {s: generate_world(SynthWikiConfig(split=s, seed=0, num_entities=300)) for s in ("train", "dev", "test")}
    titles = {s: {d.title for d in w.documents} for s, w in worlds.items()}
    assert not titles["train"] & titles["dev"]
    assert not titles["train"] & titles["test"]
    assert not titles["dev"] & titles["test"]
    for split, split_titles in titles.items():
        assert {name_bucket(t) for t in split_titles} == {SPLIT_BUCKETS[split]}
    other_seed = generate_world(SynthWikiConfig(split="train", seed=1, num_entities=300))
    assert [d.text for d in other_seed.documents] != [d.text for d in worlds["train"].documents]
    assert worlds["train"].world_id == "synthwiki-train-0" and other_seed.world_id == "synthwiki-train-1"


def test_pool_style_reassigns_one_shared_pool_per_world() -> None:
    config = SynthWikiConfig(name_style="pool", pool_size=400, num_entities=150)
    pool = set(name_pool(400, seed=0))
    train = generate_world(config)
    test = generate_world(SynthWikiConfig(name_style="pool", pool_size=400, num_entities=150, split="test"))
    for world in (train, test):
        assert all(d.title in pool for d in world.documents)
        assert all(len(split_words(d.title)) == 1 for d in world.documents)
    assert [d.text for d in train.documents] != [d.text for d in test.documents]
    shared = {d.title for d in train.documents} & {d.title for d in test.documents}
    assert shared, "pool names are meant to recur across worlds"
    assert any(train.entity(n).type != test.entity(n).type or train.document_of(n).text != test.document_of(n).text
               for n in shared)


@pytest.mark.parametrize(
    "config",
    [
        SynthWikiConfig(seed=0, num_entities=120, num_tasks=150, hops=(1, 4)),
        SynthWikiConfig(seed=1, num_entities=100, num_tasks=60, objectives=3, hops=(2, 8), split="dev"),
        SynthWikiConfig(seed=2, num_entities=150, num_tasks=80, name_style="pool", kinds=("comparison",), hops=(2, 5)),
        SynthWikiConfig(seed=4, num_entities=10, num_tasks=15, hops=(1, 3), split="test"),
        SynthWikiConfig(seed=6, num_entities=200, num_distractors=800, num_tasks=50, objectives=4, hops=(3, 6)),
    ],
    ids=["default", "deep-3obj", "pool-comparison", "tiny-world", "distractors-4obj"],
)
def test_every_question_is_answerable_through_its_supporting_documents(config: SynthWikiConfig) -> None:
    world, tasks = generate_synthwiki(config)
    assert len(tasks) == config.num_tasks
    check_answerable(world, tasks)
    lo, hi = config.hops
    for task in tasks:
        assert task.num_objectives == config.objectives
        assert task.split == config.split and task.source == "synthwiki"
        assert task.meta["world"] == world.world_id
        texts = [q.text for q in task.questions]
        assert len(set(texts)) == len(texts)
        for q in task.questions:
            assert q.kind in config.kinds
            minimum = max(lo, 2) if q.kind == "comparison" else lo
            assert minimum <= len(q.supporting_titles) <= max(hi, minimum)
            assert len(set(q.supporting_titles)) == len(q.supporting_titles)
            assert all(world.entity(t).core for t in q.supporting_titles)
    all_texts = [q.text for t in tasks for q in t.questions]
    assert len(set(all_texts)) == len(all_texts), "a world's questions are drawn without repetition"
    assert [t.id for t in tasks] == [f"{world.world_id}-{config.objectives}obj-{i}" for i in range(len(tasks))]


def test_question_mix_follows_config() -> None:
    config = SynthWikiConfig(seed=9, num_entities=150, num_tasks=400, hops=(1, 4))
    _, tasks = generate_synthwiki(config)
    kinds = Counter(q.kind for t in tasks for q in t.questions)
    hops = Counter(len(q.supporting_titles) for t in tasks for q in t.questions if q.kind == "bridge")
    assert 150 < kinds["bridge"] < 250 and 150 < kinds["comparison"] < 250
    assert set(hops) == {1, 2, 3, 4} and min(hops.values()) > 25
    bridge_only = generate_tasks(generate_world(config), SynthWikiConfig(seed=9, num_entities=150, num_tasks=30, kinds="bridge"))
    assert {q.kind for t in bridge_only for q in t.questions} == {"bridge"}


def test_world_is_a_consistent_functional_relation_table() -> None:
    world = generate_world(SynthWikiConfig(seed=11, num_entities=150, num_distractors=350))
    titles = [d.title for d in world.documents]
    assert len(set(titles)) == len(titles) == 500
    assert len({d.id for d in world.documents}) == 500
    relation_rows = Counter((s, r) for s, r, _ in world.facts())
    assert set(relation_rows.values()) == {1}, "every relation and attribute is functional"
    core_types = Counter(e.type for e in world.core_entities())
    assert sum(core_types.values()) == 150 and min(core_types.values()) >= 2
    for e in world.entities:
        if e.core:
            assert all(world.entities[t].core for t in e.links.values()), "core entities point at core only"
        if e.type == "country":
            assert world.entities[e.links["capital"]].links["country"] == e.index
        if e.type == "work":
            born = world.entities[e.links["creator"]].year
            assert born is not None and e.year is not None and born + 18 <= e.year <= born + 80
        if e.type == "organisation":
            born = world.entities[e.links["founder"]].year
            assert born is not None and e.year is not None and born + 20 <= e.year
        assert world.document_of(e.name).title == e.name


@pytest.mark.parametrize(
    "config",
    [
        SynthWikiConfig(seed=0, num_entities=300, num_tasks=300, hops=(1, 6)),
        SynthWikiConfig(seed=1, num_entities=300, num_tasks=300, name_style="pool", pool_size=350, split="test"),
        SynthWikiConfig(seed=2, num_entities=300, num_tasks=100, syllables=(1, 4), year_range=(1500, 1600)),
    ],
    ids=["syllable", "pool", "wide-syllables-old-years"],
)
def test_generated_text_splits_into_vocabulary_words_only(config: SynthWikiConfig) -> None:
    world, tasks = generate_synthwiki(config)
    vocabulary = synthwiki_vocabulary(config)
    assert len(set(vocabulary)) == len(vocabulary)
    vocab = set(vocabulary)
    used: set[str] = set()
    texts = [d.text for d in world.documents] + [d.title for d in world.documents]
    texts += [q.text for t in tasks for q in t.questions] + [a for t in tasks for q in t.questions for a in q.answers]
    for text in texts:
        used.update(split_pieces(text, vocab))
    lo, hi = config.year_range
    assert all(lo <= int(w) <= hi for w in used if w.isdigit())
    if config.name_style == "pool":
        assert not any(p.startswith("##") for p in vocabulary)
    answer = tasks[0].questions[0].answers[0]  # a compact memory and answer block split too
    split_pieces(f"<mem> 1: {answer} | 2: {lo} </mem> <answer> {answer} ; {lo} </answer>", vocab)


def test_every_template_word_is_emitted() -> None:
    world, tasks = generate_synthwiki(SynthWikiConfig(seed=0, num_entities=300, num_tasks=400, hops=(1, 2)))
    used = {w for d in world.documents for w in split_words(d.text)}
    used |= {w for t in tasks for q in t.questions for w in split_words(q.text)}
    assert set(TEMPLATE_WORDS) <= used, f"never emitted: {set(TEMPLATE_WORDS) - used}"


def test_vocabulary_is_shared_by_splits_and_seeds_and_lists_tags() -> None:
    base = synthwiki_vocabulary(SynthWikiConfig())
    assert base == synthwiki_vocabulary(SynthWikiConfig(split="test", seed=7, num_entities=500))
    assert base[: len(TAGS)] == list(TAGS)
    for word in ("<information>", "</information>", ";", "|", "?", "2020", "1800", "Ka", "##vi", "director"):
        assert word in base
    assert "1799" not in base and "2021" not in base
    assert not set(name_pool(400)) & set(TEMPLATE_WORDS)
    extended = synthwiki_vocabulary(SynthWikiConfig(), extra_words=["Question", "results", "director"])
    assert extended[: len(base)] == base and extended[len(base):] == ["Question", "results"]
    with pytest.raises(ValueError, match="not one word"):
        synthwiki_vocabulary(extra_words=["No results"])
    with pytest.raises(ValueError, match="'Tesm'"):
        split_pieces("Who founded Tesm?", set(base))
    assert split_syllables("Karovi") == ["Ka", "##ro", "##vi"]


def test_ten_thousand_document_corpus_with_distractors() -> None:
    config = SynthWikiConfig(seed=21, num_entities=500, num_distractors=9500, num_tasks=100, objectives=2, hops=(1, 4))
    world, tasks = generate_synthwiki(config)
    assert len(world.documents) == 10_000 == len({d.title for d in world.documents})
    assert sum(e.core for e in world.entities) == 500
    check_answerable(world, tasks)
    distractors = [e for e in world.entities if not e.core]
    assert any(world.entities[t].core for e in distractors for t in e.links.values()), "distractors mix into the world"


def test_hundred_thousand_document_corpus() -> None:
    config = SynthWikiConfig(seed=0, num_entities=1000, num_distractors=99_000, num_tasks=20, hops=(1, 4))
    world, tasks = generate_synthwiki(config)
    assert len(world.documents) == 100_000
    assert len({d.title for d in world.documents}) == 100_000
    assert len({d.id for d in world.documents}) == 100_000
    check_answerable(world, tasks)
    vocab = set(synthwiki_vocabulary(config))
    for document in world.documents[::97]:
        split_pieces(document.text, vocab)


def test_bad_configs_are_rejected_with_clear_errors() -> None:
    with pytest.raises(ValueError, match="split"):
        SynthWikiConfig(split="validation")
    with pytest.raises(ValueError, match="num_entities"):
        SynthWikiConfig(num_entities=5)
    with pytest.raises(ValueError, match="hops"):
        SynthWikiConfig(hops=(3, 2))
    with pytest.raises(ValueError, match="hops"):
        SynthWikiConfig(hops=9)
    with pytest.raises(ValueError, match="kinds"):
        SynthWikiConfig(kinds=("bridge", "trivia"))
    with pytest.raises(ValueError, match="pool_size"):
        SynthWikiConfig(name_style="pool", pool_size=300, num_entities=200, num_distractors=200)
    with pytest.raises(ValueError, match="syllables"):
        SynthWikiConfig(syllables=(1, 1), num_entities=1000)
    with pytest.raises(ValueError, match="year_range"):
        SynthWikiConfig(year_range=(1900, 1920))
    with pytest.raises(ValueError, match="name_style"):
        SynthWikiConfig(name_style="english")
    assert SynthWikiConfig(hops=range(2, 5)).hops == (2, 4)
    assert SynthWikiConfig(hops=3).hops == (3, 3)


def test_generate_tasks_rejects_foreign_config_and_exhausted_worlds() -> None:
    world = generate_world(SynthWikiConfig(seed=0, num_entities=20))
    with pytest.raises(ValueError, match=r"\['seed'\]"):
        generate_tasks(world, SynthWikiConfig(seed=1, num_entities=20))
    with pytest.raises(ValueError, match="no new 1-hop bridge question"):
        generate_tasks(world, SynthWikiConfig(seed=0, num_entities=20, hops=1, kinds="bridge", num_tasks=500))
    assert generate_tasks(world, SynthWikiConfig(seed=0, num_entities=20, num_tasks=0)) == []
    other = generate_tasks(world, SynthWikiConfig(seed=0, num_entities=20, num_tasks=10, task_seed=1))
    assert other != generate_tasks(world, SynthWikiConfig(seed=0, num_entities=20, num_tasks=10))
