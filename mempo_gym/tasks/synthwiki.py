"""SynthWiki: procedurally generated multi-hop QA over fictional worlds.

A world is a set of invented entities (countries, cities, organisations, people, works)
linked by functional relations; each entity becomes one encyclopedia-style
:class:`~mempo_gym.records.Document` titled with its name. Questions chain relations
("bridge": *In which year was the founder of the employer of Karovi Temu born?*) or
compare two chained entities ("comparison": *Who was born earlier, Sadu Pel or the
director of Tarsa?*). The facts are invented, so nothing can be answered without search.

Everything is a pure function of :class:`SynthWikiConfig`: the world of split ``s`` and
seed ``n`` comes from ``random.Random(sha256("synthwiki-world", s, n))``, so train, dev and
test are different worlds, identical on every platform and run (no salted ``hash``, no
set iteration).

Word-splitting rule (for a word-level tokenizer over :func:`synthwiki_vocabulary`):
``split_words(text)`` is ``re.findall(r"<[^>]+>|\\w+|[^\\w\\s]", text)`` (tags, words,
single punctuation marks); :func:`split_pieces` keeps a word that is in the vocabulary
and splits any other capitalised CV-syllable word into syllable pieces
(``Karovi`` -> ``Ka ##ro ##vi``; decode by gluing ``##`` pieces to the previous one).
Every document, question and answer the generator emits splits into vocabulary entries.

Schema (``->`` marks a relation, one target per entity)::

    country       -> capital (city)
    city          -> country
    organisation  -> headquarters (city), -> founder (person); founded YEAR
    person        -> birthplace (city), -> employer (organisation); born YEAR
    work          -> creator (person: "director" of a film, "author" of a book); released YEAR

Questions start from core entities and follow relations between core entities only;
``num_distractors`` adds documents of the same form (which may point at core entities)
that no question needs. A question with ``h`` hops has ``h`` supporting documents.

>>> config = SynthWikiConfig(seed=0, num_entities=30, num_tasks=2, hops=3, kinds=("bridge",))
>>> world = generate_world(config)
>>> len(world.documents), world.world_id
(30, 'synthwiki-train-0')
>>> world.document_of("Nolo").text
'Nolo is a city in Zomigi.'
>>> question = generate_tasks(world, config)[1].questions[0]
>>> question.text, question.answers
('In which country is the birthplace of the director of Ronu?', ('Zomigi',))
>>> for title, text in zip(question.supporting_titles, question.supporting_texts):
...     print(f"{title}: {text}")
Ronu: Ronu is a film by Bomu Batu, released in 1985.
Bomu Batu: Bomu Batu was born in Nolo in 1954 and works for Monu.
Nolo: Nolo is a city in Zomigi.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from random import Random
from typing import Collection, Mapping, Sequence, TypeVar

from mempo_gym.records import Document, Question, Task
from mempo_gym.tasks.compose import compose_tasks
from mempo_gym.tasks.names import (
    MAX_POOL_SIZE,
    SPLIT_BUCKETS,
    PoolNamer,
    SyllableNamer,
    derive_seed,
    name_pool,
    split_capacity,
    split_syllables,
    syllable_pieces,
)

T = TypeVar("T")

SOURCE = "synthwiki"
SPLITS: tuple[str, ...] = tuple(SPLIT_BUCKETS)
NAME_STYLES = ("syllable", "pool")
QUESTION_KINDS = ("bridge", "comparison")
MAX_HOPS = 8
MIN_ENTITIES = 10

COUNTRY, CITY, ORGANISATION, PERSON, WORK = "country", "city", "organisation", "person", "work"
ENTITY_TYPES: tuple[str, ...] = (COUNTRY, CITY, ORGANISATION, PERSON, WORK)
#: Share of each type among a world's entities; people take the remainder (~40%).
TYPE_SHARES: Mapping[str, float] = {COUNTRY: 0.05, CITY: 0.15, ORGANISATION: 0.15, WORK: 0.25}
ENTITY_KINDS: Mapping[str, tuple[str, ...]] = {
    ORGANISATION: ("company", "university", "bank"),
    WORK: ("film", "book"),
}

DOCUMENT_TEMPLATES: Mapping[str, str] = {
    COUNTRY: "{name} is a country with capital {capital}.",
    CITY: "{name} is a city in {country}.",
    ORGANISATION: "{name} is a {kind} in {headquarters}, founded in {year} by {founder}.",
    PERSON: "{name} was born in {birthplace} in {year} and works for {employer}.",
    WORK: "{name} is a {kind} by {creator}, released in {year}.",
}
#: How an inner hop is referred to: "the director of Tarsa".
PHRASE_TEMPLATE = "the {noun} of {x}"
YEAR_VERBS: Mapping[str, str] = {PERSON: "born", ORGANISATION: "founded", WORK: "released"}
YEAR_QUESTION = "In which year was {x} {verb}?"
COMPARISON_TEMPLATE = "{wh} was {verb} {direction}, {a} or {b}?"
COMPARISON_WH: Mapping[str, str] = {PERSON: "Who", ORGANISATION: "Which", WORK: "Which"}
COMPARISON_DIRECTIONS = ("earlier", "later")
TAGS: tuple[str, ...] = (
    "<mem>", "</mem>", "<think>", "</think>", "<search>", "</search>",
    "<answer>", "</answer>", "<information>", "</information>",
)
PUNCTUATION: tuple[str, ...] = (".", ",", "?", ";", ":", "|")
#: Small integers, e.g. objective numbers in compact memories ("1: Karo | 2: 1942").
NUMBER_WORDS: tuple[str, ...] = tuple(str(i) for i in range(21))

WORD_PATTERN = re.compile(r"<[^>]+>|\w+|[^\w\s]")


@dataclass(frozen=True)
class Relation:
    """A functional relation: every ``source`` entity has exactly one ``target`` entity.

    ``nouns`` and ``questions`` are keyed by the source entity's kind (``""`` = any kind):
    the noun names the hop inside a phrase, the question asks for the target directly.
    """

    name: str
    source: str
    target: str
    nouns: Mapping[str, str]
    questions: Mapping[str, str]

    def noun(self, kind: str) -> str:
        return self.nouns[kind] if kind in self.nouns else self.nouns[""]

    def question(self, kind: str) -> str:
        return self.questions[kind] if kind in self.questions else self.questions[""]


RELATIONS: tuple[Relation, ...] = (
    Relation("creator", WORK, PERSON, {"film": "director", "book": "author"},
             {"film": "Who directed {x}?", "book": "Who wrote {x}?"}),
    Relation("birthplace", PERSON, CITY, {"": "birthplace"}, {"": "Where was {x} born?"}),
    Relation("employer", PERSON, ORGANISATION, {"": "employer"}, {"": "Who employs {x}?"}),
    Relation("headquarters", ORGANISATION, CITY, {"": "headquarters"}, {"": "Where is {x} based?"}),
    Relation("founder", ORGANISATION, PERSON, {"": "founder"}, {"": "Who founded {x}?"}),
    Relation("country", CITY, COUNTRY, {"": "country"}, {"": "In which country is {x}?"}),
    Relation("capital", COUNTRY, CITY, {"": "capital"}, {"": "What is the capital of {x}?"}),
)
RELATIONS_FROM: Mapping[str, tuple[Relation, ...]] = {
    t: tuple(r for r in RELATIONS if r.source == t) for t in ENTITY_TYPES
}


def _reachable_types() -> dict[tuple[str, int], frozenset[str]]:
    """``(type, steps) -> types`` reachable by exactly ``steps`` relation hops (schema level)."""
    reach = {(t, 0): frozenset([t]) for t in ENTITY_TYPES}
    for steps in range(1, MAX_HOPS):
        for t in ENTITY_TYPES:
            reach[(t, steps)] = frozenset().union(*(reach[(r.target, steps - 1)] for r in RELATIONS_FROM[t]))
    return reach


_REACH = _reachable_types()


@dataclass(frozen=True)
class SynthWikiConfig:
    """Everything that determines a SynthWiki world and its tasks.

    World fields: ``seed``, ``split``, ``num_entities``, ``num_distractors``,
    ``name_style``, ``syllables``, ``pool_size``, ``pool_seed``, ``year_range``.
    Task fields: ``num_tasks``, ``objectives``, ``hops``, ``kinds``, ``task_seed``.

    Attributes:
        seed: world seed; with ``split`` it fixes the world.
        split: ``"train"``, ``"dev"`` or ``"test"``; different splits are different worlds
            and, with ``name_style="syllable"``, never share an entity name.
        num_entities: core entities (questions are about these); at least 10.
        num_distractors: extra entities/documents no question needs (corpus size =
            ``num_entities + num_distractors``).
        name_style: ``"syllable"`` (fresh CV-syllable names, people get two words) or
            ``"pool"`` (one word per entity from a shared pool of ``pool_size`` words).
        syllables: inclusive range of syllables per name word (syllable style).
        pool_size: size of the shared name pool (pool style; at least the corpus size).
        pool_seed: which pool (pool style); part of the vocabulary.
        year_range: inclusive range of years (each year is one vocabulary word).
        num_tasks: tasks :func:`generate_tasks` returns.
        objectives: questions per task (k).
        hops: supporting documents per question, an int or an inclusive ``(lo, hi)`` range
            (also accepts a ``range``); comparisons use at least 2.
        kinds: question kinds to draw from, uniformly: ``"bridge"``, ``"comparison"``.
        task_seed: varies the questions drawn from the same world.
    """

    seed: int = 0
    split: str = "train"
    num_entities: int = 120
    num_distractors: int = 0
    name_style: str = "syllable"
    syllables: tuple[int, int] = (2, 3)
    pool_size: int = 400
    pool_seed: int = 0
    year_range: tuple[int, int] = (1800, 2020)
    num_tasks: int = 100
    objectives: int = 1
    hops: int | tuple[int, int] = (1, 4)
    kinds: tuple[str, ...] = QUESTION_KINDS
    task_seed: int = 0

    def __post_init__(self) -> None:
        def integer(name: str, value: object, minimum: int) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"SynthWikiConfig.{name} must be an integer >= {minimum}, got {value!r}")

        def int_range(name: str, value: object) -> tuple[int, int]:
            if isinstance(value, range) and len(value) > 0 and value.step == 1:
                value = (value.start, value.stop - 1)
            if isinstance(value, int) and not isinstance(value, bool):
                value = (value, value)
            if (
                not isinstance(value, (tuple, list)) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
                or value[0] > value[1]
            ):
                raise ValueError(
                    f"SynthWikiConfig.{name} must be an int or an inclusive (lo, hi) pair with lo <= hi, got {value!r}"
                )
            return (value[0], value[1])

        integer("seed", self.seed, -(2**63))
        integer("task_seed", self.task_seed, -(2**63))
        integer("pool_seed", self.pool_seed, -(2**63))
        if self.split not in SPLITS:
            raise ValueError(f"SynthWikiConfig.split must be one of {SPLITS}, got {self.split!r}")
        integer("num_entities", self.num_entities, MIN_ENTITIES)
        integer("num_distractors", self.num_distractors, 0)
        integer("num_tasks", self.num_tasks, 0)
        integer("objectives", self.objectives, 1)
        if self.name_style not in NAME_STYLES:
            raise ValueError(f"SynthWikiConfig.name_style must be one of {NAME_STYLES}, got {self.name_style!r}")
        syllables = int_range("syllables", self.syllables)
        if syllables[0] < 1 or syllables[1] > 4:
            raise ValueError(f"SynthWikiConfig.syllables must lie within 1..4, got {syllables}")
        integer("pool_size", self.pool_size, 1)
        if self.pool_size > MAX_POOL_SIZE:
            raise ValueError(f"SynthWikiConfig.pool_size must be at most {MAX_POOL_SIZE}, got {self.pool_size}")
        years = int_range("year_range", self.year_range)
        if years[1] - years[0] < 40 or years[0] < 0:
            raise ValueError(
                f"SynthWikiConfig.year_range must span at least 40 non-negative years "
                f"(people are born >= 40 years before its end), got {years}"
            )
        hops = int_range("hops", self.hops)
        if hops[0] < 1 or hops[1] > MAX_HOPS:
            raise ValueError(f"SynthWikiConfig.hops must lie within 1..{MAX_HOPS}, got {hops}")
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        if not kinds or any(k not in QUESTION_KINDS for k in kinds):
            raise ValueError(f"SynthWikiConfig.kinds must be a non-empty subset of {QUESTION_KINDS}, got {self.kinds!r}")
        object.__setattr__(self, "syllables", syllables)
        object.__setattr__(self, "year_range", years)
        object.__setattr__(self, "hops", hops)
        object.__setattr__(self, "kinds", tuple(dict.fromkeys(kinds)))
        self._check_name_capacity()

    def _check_name_capacity(self) -> None:
        total = self.num_entities + self.num_distractors
        if self.name_style == "pool":
            if total > self.pool_size:
                raise ValueError(
                    f"name_style='pool' needs one pool word per entity: {total} entities > "
                    f"pool_size={self.pool_size}; raise pool_size (max {MAX_POOL_SIZE}) or use name_style='syllable'"
                )
            return
        one_word = sum(
            n - c[PERSON] for n, c in ((self.num_entities, _type_counts(self.num_entities, 2)),
                                       (self.num_distractors, _type_counts(self.num_distractors, 0)))
        )
        people = self.corpus_size - one_word
        if one_word > split_capacity(self.syllables) or people > split_capacity(self.syllables, words=2):
            raise ValueError(
                f"a world of {self.corpus_size} entities needs more names than syllables={self.syllables} "
                f"offers per split ({split_capacity(self.syllables)} one-word names); widen `syllables`"
            )

    @property
    def corpus_size(self) -> int:
        return self.num_entities + self.num_distractors


WORLD_FIELDS = (
    "seed", "split", "num_entities", "num_distractors", "name_style", "syllables",
    "pool_size", "pool_seed", "year_range",
)


@dataclass(frozen=True)
class Entity:
    """One world entity. ``links`` maps relation names to target entity indices."""

    index: int
    name: str
    type: str
    kind: str
    year: int | None
    links: Mapping[str, int]
    core: bool


@dataclass(frozen=True)
class SynthWorld:
    """A generated world: entity table, relation facts and the document corpus.

    ``documents[i]`` is in a seeded random order; ``document_of(name)`` finds one by title.
    """

    world_id: str
    config: SynthWikiConfig
    entities: list[Entity]
    documents: list[Document]
    _entity_by_name: dict[str, int] = field(repr=False, compare=False)
    _document_by_entity: list[int] = field(repr=False, compare=False)

    def entity(self, name: str) -> Entity:
        """The entity titled ``name``."""
        try:
            return self.entities[self._entity_by_name[name]]
        except KeyError:
            raise KeyError(f"no entity named {name!r} in {self.world_id}") from None

    def document_of(self, name: str) -> Document:
        """The document titled ``name``."""
        return self.documents[self._document_by_entity[self.entity(name).index]]

    def core_entities(self, type: str | None = None) -> list[Entity]:
        """Core entities (those questions are about), optionally of one type."""
        return [e for e in self.entities if e.core and (type is None or e.type == type)]

    def facts(self) -> list[tuple[str, str, str]]:
        """The relation table as ``(subject, relation, object)``; years as ``"year"`` facts."""
        rows: list[tuple[str, str, str]] = []
        for e in self.entities:
            if e.kind:
                rows.append((e.name, "kind", e.kind))
            if e.year is not None:
                rows.append((e.name, "year", str(e.year)))
            rows.extend((e.name, rel, self.entities[t].name) for rel, t in e.links.items())
        return rows


def _pick(rng: Random, items: Sequence[T]) -> T:
    """A uniform element (one ``random()`` draw, faster than ``Random.choice``)."""
    return items[int(rng.random() * len(items))]


def _between(rng: Random, lo: int, hi: int) -> int:
    """A uniform integer in ``[lo, hi]`` (one ``random()`` draw)."""
    return lo + int(rng.random() * (hi - lo + 1))


def _type_counts(n: int, minimum: int) -> dict[str, int]:
    counts = {t: max(minimum, int(n * TYPE_SHARES[t])) for t in ENTITY_TYPES if t != PERSON}
    counts[PERSON] = n - sum(counts.values())
    return {t: counts[t] for t in ENTITY_TYPES}


class _WorldBuilder:
    """Builds the entity table tier by tier (core first, then distractors)."""

    def __init__(self, rng: Random, namer: SyllableNamer | PoolNamer, config: SynthWikiConfig) -> None:
        self.rng = rng
        self.namer = namer
        self.person_words = 2 if config.name_style == "syllable" else 1
        self.years = config.year_range
        self.names: list[str] = []
        self.types: list[str] = []
        self.kinds: list[str] = []
        self.year_of: list[int | None] = []
        self.links: list[dict[str, int]] = []
        self.core: list[bool] = []
        self.of_type: dict[str, list[int]] = {t: [] for t in ENTITY_TYPES}
        self.core_of_type: dict[str, list[int]] = {t: [] for t in ENTITY_TYPES}

    def _new(self, type_: str, core: bool, kind: str = "", year: int | None = None) -> int:
        index = len(self.names)
        self.names.append(self.namer.name(self.person_words if type_ == PERSON else 1))
        self.types.append(type_)
        self.kinds.append(kind)
        self.year_of.append(year)
        self.links.append({})
        self.core.append(core)
        self.of_type[type_].append(index)
        if core:
            self.core_of_type[type_].append(index)
        return index

    def add_tier(self, counts: Mapping[str, int], core: bool) -> None:
        rng, links = self.rng, self.links
        lo, hi = self.years
        targets = self.core_of_type if core else self.of_type  # core points at core only

        countries = [self._new(COUNTRY, core) for _ in range(counts[COUNTRY])]
        cities = [self._new(CITY, core) for _ in range(counts[CITY])]
        own_cities: dict[int, list[int]] = {c: [] for c in countries}
        for i, city in enumerate(cities):  # every new country gets at least one new city
            country = countries[i] if i < len(countries) else _pick(rng, targets[COUNTRY])
            links[city]["country"] = country
            if country in own_cities:
                own_cities[country].append(city)
        for country in countries:
            links[country]["capital"] = _pick(rng, own_cities[country])

        people = [self._new(PERSON, core, year=_between(rng, lo, hi - 40)) for _ in range(counts[PERSON])]
        for person in people:
            links[person]["birthplace"] = _pick(rng, targets[CITY])
        for _ in range(counts[ORGANISATION]):
            founder = _pick(rng, targets[PERSON])
            born = self.year_of[founder]
            assert born is not None
            org = self._new(
                ORGANISATION, core, kind=_pick(rng, ENTITY_KINDS[ORGANISATION]), year=_between(rng, born + 20, hi)
            )
            links[org]["headquarters"] = _pick(rng, targets[CITY])
            links[org]["founder"] = founder
        for person in people:
            links[person]["employer"] = _pick(rng, targets[ORGANISATION])
        for _ in range(counts[WORK]):
            creator = _pick(rng, targets[PERSON])
            born = self.year_of[creator]
            assert born is not None
            work = self._new(
                WORK, core, kind=_pick(rng, ENTITY_KINDS[WORK]), year=_between(rng, born + 18, min(born + 80, hi))
            )
            links[work]["creator"] = creator

    def finish(self, config: SynthWikiConfig, world_id: str) -> SynthWorld:
        names = self.names
        entity_by_name = {name: i for i, name in enumerate(names)}
        if len(entity_by_name) != len(names):
            raise AssertionError("entity names must be unique within a world")
        entities = [
            Entity(i, names[i], self.types[i], self.kinds[i], self.year_of[i], self.links[i], self.core[i])
            for i in range(len(names))
        ]
        order = list(range(len(entities)))
        self.rng.shuffle(order)
        documents = [
            Document(id=f"{world_id}-{i}", title=names[i], text=_render_document(entities[i], names))
            for i in order
        ]
        document_by_entity = [0] * len(order)
        for position, i in enumerate(order):
            document_by_entity[i] = position
        return SynthWorld(world_id, config, entities, documents, entity_by_name, document_by_entity)


def _render_document(entity: Entity, names: Sequence[str]) -> str:
    values = {rel: names[target] for rel, target in entity.links.items()}
    return DOCUMENT_TEMPLATES[entity.type].format(name=entity.name, kind=entity.kind, year=entity.year, **values)


def world_id(config: SynthWikiConfig) -> str:
    """``synthwiki-{split}-{seed}``: the corpus name tasks refer to in ``meta["world"]``."""
    return f"{SOURCE}-{config.split}-{config.seed}"


def generate_world(config: SynthWikiConfig) -> SynthWorld:
    """The world (entities, facts, one document per entity) that ``config`` describes."""
    rng = Random(derive_seed("synthwiki-world", config.split, config.seed))
    total = config.corpus_size
    namer: SyllableNamer | PoolNamer
    if config.name_style == "pool":
        namer = PoolNamer(rng, name_pool(config.pool_size, config.pool_seed), total)
    else:
        namer = SyllableNamer(rng, config.syllables, config.split, reserved=_TEMPLATE_WORD_SET)
    builder = _WorldBuilder(rng, namer, config)
    builder.add_tier(_type_counts(config.num_entities, minimum=2), core=True)
    if config.num_distractors:
        builder.add_tier(_type_counts(config.num_distractors, minimum=0), core=False)
    return builder.finish(config, world_id(config))


# ---------------------------------------------------------------- questions


@dataclass(frozen=True)
class _Chain:
    """Entities visited in hop order and the phrase that names the last one."""

    path: tuple[int, ...]
    phrase: str


def _walk(world: SynthWorld, rng: Random, start: int, steps: int, end_type: str | None) -> _Chain | None:
    """Follow ``steps`` random relations from ``start`` without revisiting an entity."""
    entities = world.entities
    path = [start]
    phrase = entities[start].name
    for done in range(steps):
        here = entities[path[-1]]
        left = steps - done - 1
        options = [
            r for r in RELATIONS_FROM[here.type]
            if here.links[r.name] not in path and (end_type is None or end_type in _REACH[(r.target, left)])
        ]
        if not options:
            return None
        relation = _pick(rng, options)
        path.append(here.links[relation.name])
        phrase = PHRASE_TEMPLATE.format(noun=relation.noun(here.kind), x=phrase)
    return _Chain(tuple(path), phrase)


def _chain_to(world: SynthWorld, rng: Random, docs: int, end_type: str, starts: Mapping[str, list[int]]) -> _Chain | None:
    """A chain of ``docs`` documents that ends at an entity of ``end_type``."""
    start_types = [t for t in ENTITY_TYPES if end_type in _REACH[(t, docs - 1)] and starts[t]]
    if not start_types:
        return None
    start = _pick(rng, starts[_pick(rng, start_types)])
    return _walk(world, rng, start, docs - 1, end_type)


@dataclass(frozen=True)
class _Sampled:
    text: str
    answer: str
    path: tuple[int, ...]
    kind: str


def _sample_bridge(world: SynthWorld, rng: Random, hops: int, core: list[int]) -> _Sampled | None:
    chain = _walk(world, rng, _pick(rng, core), hops - 1, None)
    if chain is None:
        return None
    last = world.entities[chain.path[-1]]
    finals: list[Relation | None] = [r for r in RELATIONS_FROM[last.type] if last.links[r.name] not in chain.path]
    if last.year is not None:
        finals.append(None)  # None = the year attribute
    if not finals:
        return None
    final = _pick(rng, finals)
    if final is None:
        text = YEAR_QUESTION.format(x=chain.phrase, verb=YEAR_VERBS[last.type])
        answer = str(last.year)
    else:
        text = final.question(last.kind).format(x=chain.phrase)
        answer = world.entities[last.links[final.name]].name
    return _Sampled(text, answer, chain.path, "bridge")


def _sample_comparison(
    world: SynthWorld, rng: Random, hops: int, starts: Mapping[str, list[int]]
) -> _Sampled | None:
    hops = max(hops, 2)
    left = _between(rng, 1, hops - 1)
    right = hops - left
    types = [
        t for t in YEAR_VERBS
        if any(t in _REACH[(s, left - 1)] for s in ENTITY_TYPES) and any(t in _REACH[(s, right - 1)] for s in ENTITY_TYPES)
    ]
    if not types:
        return None
    end_type = _pick(rng, types)
    a = _chain_to(world, rng, left, end_type, starts)
    b = _chain_to(world, rng, right, end_type, starts)
    if a is None or b is None or set(a.path) & set(b.path):
        return None
    year_a, year_b = world.entities[a.path[-1]].year, world.entities[b.path[-1]].year
    assert year_a is not None and year_b is not None
    if year_a == year_b:  # a tie has no unique answer
        return None
    direction = _pick(rng, COMPARISON_DIRECTIONS)
    a_wins = (year_a < year_b) == (direction == "earlier")
    winner = world.entities[(a if a_wins else b).path[-1]]
    text = COMPARISON_TEMPLATE.format(
        wh=COMPARISON_WH[end_type], verb=YEAR_VERBS[end_type], direction=direction, a=a.phrase, b=b.phrase
    )
    return _Sampled(text, winner.name, a.path + b.path, "comparison")


def _check_answer_unique(world: SynthWorld, sampled: _Sampled) -> None:
    """Guard the uniqueness argument: titles are unique and every relation is functional, so
    a chain that never revisits an entity has one answer; a bridge answer never names a hop."""
    names = [world.entities[i].name for i in sampled.path]
    if len(set(sampled.path)) != len(sampled.path):
        raise AssertionError(f"question revisits an entity: {sampled.text}")
    if sampled.kind == "bridge" and sampled.answer in names:
        raise AssertionError(f"bridge answer is one of its own hops: {sampled.text}")


def _task_config(world: SynthWorld, config: SynthWikiConfig | None) -> SynthWikiConfig:
    if config is None:
        return world.config
    different = [f for f in WORLD_FIELDS if getattr(config, f) != getattr(world.config, f)]
    if different:
        raise ValueError(
            f"config describes another world than {world.world_id} (fields {different} differ); "
            "pass the world's own config, or generate_world(config) first"
        )
    return config


_TRIES_PER_QUESTION = 1000


def generate_tasks(world: SynthWorld, config: SynthWikiConfig | None = None) -> list[Task]:
    """``config.num_tasks`` tasks of ``config.objectives`` questions each about ``world``.

    The world's questions are drawn without repetition (distinct texts), then grouped with
    :func:`~mempo_gym.tasks.compose.compose_tasks`, so every question is used once. Task ids
    are ``{world_id}-{k}obj-{i}``; ``meta`` holds ``world``, ``members``, ``objectives``.
    """
    config = _task_config(world, config)
    needed = config.num_tasks * config.objectives
    if needed == 0:
        return []
    rng = Random(derive_seed("synthwiki-tasks", config.split, config.seed, config.task_seed))
    core = [e.index for e in world.entities if e.core]
    starts = {t: [e.index for e in world.entities if e.core and e.type == t] for t in ENTITY_TYPES}
    lo, hi = config.hops  # type: ignore[misc]
    texts: set[str] = set()
    pool: list[Task] = []
    while len(pool) < needed:
        kind = _pick(rng, config.kinds)
        hops = _between(rng, lo, hi)
        for _ in range(_TRIES_PER_QUESTION):
            if kind == "bridge":
                sampled = _sample_bridge(world, rng, hops, core)
            else:
                sampled = _sample_comparison(world, rng, hops, starts)
            if sampled is not None and sampled.text not in texts:
                break
        else:
            raise ValueError(
                f"{world.world_id} yielded no new {hops}-hop {kind} question after {_TRIES_PER_QUESTION} "
                f"tries ({len(pool)} of {needed} found); lower num_tasks * objectives, change hops, "
                "or raise num_entities"
            )
        assert sampled is not None
        _check_answer_unique(world, sampled)
        texts.add(sampled.text)
        titles = tuple(world.entities[i].name for i in sampled.path)
        question = Question(
            text=sampled.text,
            answers=(sampled.answer,),
            supporting_titles=titles,
            supporting_texts=tuple(world.documents[world._document_by_entity[i]].text for i in sampled.path),
            kind=sampled.kind,
        )
        pool.append(
            Task(
                id=f"{world.world_id}-q{len(pool)}",
                questions=(question,),
                source=SOURCE,
                split=config.split,
                meta={"world": world.world_id, "kind": sampled.kind, "hops": len(titles)},
            )
        )
    return compose_tasks(
        pool, config.objectives, config.num_tasks, seed=config.task_seed, source=SOURCE,
        id_prefix=world.world_id, keep_meta=("world",),
    )


def generate_synthwiki(config: SynthWikiConfig) -> tuple[SynthWorld, list[Task]]:
    """``generate_world(config)`` and its ``generate_tasks``, in one call."""
    world = generate_world(config)
    return world, generate_tasks(world, config)


# ---------------------------------------------------------------- vocabulary


def split_words(text: str) -> list[str]:
    """Tags, words and single punctuation marks: ``re.findall(r"<[^>]+>|\\w+|[^\\w\\s]", text)``.

    >>> split_words("<answer> Karo Vimu; 1942 </answer>")
    ['<answer>', 'Karo', 'Vimu', ';', '1942', '</answer>']
    """
    return WORD_PATTERN.findall(text)


def _template_words() -> list[str]:
    texts: list[str] = list(DOCUMENT_TEMPLATES.values())
    texts += [PHRASE_TEMPLATE, YEAR_QUESTION, COMPARISON_TEMPLATE]
    for relation in RELATIONS:
        texts += list(relation.nouns.values()) + list(relation.questions.values())
    for kinds in ENTITY_KINDS.values():
        texts += list(kinds)
    texts += list(YEAR_VERBS.values()) + list(COMPARISON_WH.values()) + list(COMPARISON_DIRECTIONS)
    words: dict[str, None] = {}
    for text in texts:
        for word in split_words(re.sub(r"\{\w+\}", " ", text)):
            if word not in PUNCTUATION:
                words[word] = None
    return list(words)


TEMPLATE_WORDS: tuple[str, ...] = tuple(_template_words())
_TEMPLATE_WORD_SET = frozenset(TEMPLATE_WORDS)


def synthwiki_vocabulary(config: SynthWikiConfig | None = None, extra_words: Sequence[str] = ()) -> list[str]:
    """Every word the generator can emit under ``config``, in a fixed order.

    Order: tags, punctuation, template words, small numbers (0-20), years, then name
    pieces (``Ba`` ... ``Zu``, ``##ba`` ... ``##zu``) for ``name_style="syllable"`` or the
    pool words for ``"pool"``, then ``extra_words`` (e.g. prompt words) not yet listed.
    It depends only on ``name_style``, ``pool_size``, ``pool_seed`` and ``year_range``, so
    train, dev and test share it. Special tokens (pad, eos ...) are the tokenizer's own.

    >>> vocab = synthwiki_vocabulary()
    >>> vocab[:2], "director" in vocab, "1942" in vocab, "##ro" in vocab
    (['<mem>', '</mem>'], True, True, True)
    >>> len(synthwiki_vocabulary()), len(synthwiki_vocabulary(SynthWikiConfig(name_style="pool", pool_size=300)))
    (440, 600)
    """
    config = config or SynthWikiConfig()
    lo, hi = config.year_range
    words: list[str] = [*TAGS, *PUNCTUATION, *TEMPLATE_WORDS, *NUMBER_WORDS]
    words += [str(y) for y in range(lo, hi + 1)]
    if config.name_style == "pool":
        words += list(name_pool(config.pool_size, config.pool_seed))
    else:
        words += syllable_pieces()
    for word in extra_words:
        pieces = split_words(word)
        if pieces != [word]:
            raise ValueError(f"extra word {word!r} is not one word under split_words (got {pieces})")
        words.append(word)
    return list(dict.fromkeys(words))


def split_pieces(text: str, vocabulary: Collection[str]) -> list[str]:
    """``text`` as vocabulary entries: whole words when listed, else CV-syllable pieces.

    Raises ``ValueError`` naming the first word that is neither (pass a ``set`` for speed).

    >>> vocab = set(synthwiki_vocabulary())
    >>> split_pieces("Who founded Karovi?", vocab)
    ['Who', 'founded', 'Ka', '##ro', '##vi', '?']
    """
    pieces: list[str] = []
    for word in WORD_PATTERN.findall(text):
        if word in vocabulary:
            pieces.append(word)
            continue
        syllables = split_syllables(word)
        if syllables is None or any(s not in vocabulary for s in syllables):
            raise ValueError(
                f"word {word!r} is not in the vocabulary and does not split into its syllable pieces; "
                "add it with synthwiki_vocabulary(config, extra_words=[...])"
            )
        pieces.extend(syllables)
    return pieces
