"""Prefix KV caching for local greedy generation.

A full-context agent's prompt at turn t+1 starts with its prompt at turn t, and every prompt of
an env starts with the same instructions. :class:`PrefixCache` keeps the keys and values of
recent prompts (and of the tokens generated after them); :func:`greedy_generate` finds, for each
row of a batch, the longest cached prefix of its token ids and runs the model only on the rest.
A turn then costs the prefill of its new tokens instead of its whole context (vLLM's automatic
prefix caching, for ``transformers`` on CPU).

Rows of a batch reuse prefixes of different lengths, so the batch is laid out as
``[pad | cached prefix | pad | new tokens]``: each row's cached keys and values are
right-aligned at column ``C`` (the longest reused prefix), its new tokens right-aligned at the
end, the gaps masked out, and every position id is the token's index in its own sequence. The
model therefore computes the same attention as it would over the unpadded sequence; the results
agree with uncached generation up to float rounding (greedy tokens can differ where two logits
tie to rounding: benchmarks/prefix_cache.py measures how often).

Entries are stored per sequence (token ids plus one ``[heads, length, head_dim]`` key and value
tensor per layer, ~46 KB per position for SmolLM2-135M in float32). A row's new entry replaces the
one it reused, so a batch of episodes keeps about one entry per episode; beyond ``max_tokens``
cached positions the least recently used entries go.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from mempo_agents.kv_cache import cache_keyword, cache_layers


@dataclass
class CacheEntry:
    """The keys and values of one token sequence, per layer."""

    ids: Any  # 1-D LongTensor
    keys: list[Any]  # per layer: [kv_heads, length, head_dim]
    values: list[Any]


@dataclass
class PrefixCache:
    """Least-recently-used store of :class:`CacheEntry` objects, at most ``max_tokens`` positions.

    ``stats`` counts prompt tokens seen and prompt tokens whose keys and values were reused.
    """

    max_tokens: int
    entries: OrderedDict[int, CacheEntry] = field(default_factory=OrderedDict)
    stats: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "reused_tokens": 0})
    _next_key: int = 0

    def __post_init__(self) -> None:
        if int(self.max_tokens) < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")

    @property
    def size(self) -> int:
        """Cached positions, all entries together."""
        return sum(int(e.ids.shape[0]) for e in self.entries.values())

    def lookup(self, ids: Any) -> tuple[int, CacheEntry | None]:
        """The longest cached prefix of ``ids`` (a 1-D LongTensor), at most ``len(ids) - 1`` long
        so that at least one token is run (its logits start the generation), and its entry."""
        import torch

        best, best_key = 0, None
        limit = int(ids.shape[0]) - 1
        for key, entry in self.entries.items():
            n = min(limit, int(entry.ids.shape[0]))
            if n <= best:
                continue
            same = entry.ids[:n] == ids[:n]
            length = n if bool(same.all()) else int(torch.argmin(same.to(torch.int8)))
            if length > best:
                best, best_key = length, key
        if best_key is None:
            return 0, None
        self.entries.move_to_end(best_key)
        return best, self.entries[best_key]

    def store(self, entry: CacheEntry) -> None:
        """Add ``entry``; entries it extends are dropped (they are its prefixes), then the least
        recently used ones until at most ``max_tokens`` positions are cached."""
        length = int(entry.ids.shape[0])
        if length > self.max_tokens:
            return
        for key in [k for k, e in self.entries.items()
                    if e.ids.shape[0] <= length and bool((e.ids == entry.ids[: e.ids.shape[0]]).all())]:
            del self.entries[key]
        self.entries[self._next_key] = entry
        self._next_key += 1
        total = self.size
        while total > self.max_tokens:
            _, dropped = self.entries.popitem(last=False)
            total -= int(dropped.ids.shape[0])

    def discard(self, entry: CacheEntry) -> None:
        """Drop ``entry`` if it is still stored."""
        for key in [k for k, e in self.entries.items() if e is entry]:
            del self.entries[key]


def greedy_generate(
    model: Any,
    rows: Sequence[Sequence[int]],
    store: PrefixCache,
    max_new_tokens: int,
    pad_id: int,
    finish_ids: set[int],
    is_done: Callable[[list[int]], bool],
) -> list[list[int]]:
    """Greedy continuation of each token sequence in ``rows``, reusing cached prefixes.

    A row ends at a token in ``finish_ids`` (kept in its output, as ``generate`` does), when
    ``is_done(generated_ids)`` says so (a stop string), or after ``max_new_tokens``; a finished row
    leaves the batch, so the rows still generating do not carry it. Each row's
    prompt and the tokens it fed back are stored in ``store`` afterwards, in place of the entries
    the rows reused (an episode's next turn extends its newest prompt, not an older one).
    """
    import torch
    from transformers import DynamicCache

    prompts = [torch.tensor(list(r), dtype=torch.long) for r in rows]
    if any(p.numel() == 0 for p in prompts) or max_new_tokens < 1:
        raise ValueError("greedy_generate needs at least one prompt token per row and max_new_tokens >= 1")
    found = [store.lookup(p) for p in prompts]
    reused = [n for n, _ in found]
    batch = len(prompts)
    width_cached = max(reused)
    width_new = max(int(p.numel()) - n for p, n in zip(prompts, reused))
    input_ids = torch.full((batch, width_new), pad_id, dtype=torch.long)
    positions = torch.zeros((batch, width_new), dtype=torch.long)
    mask = torch.zeros((batch, width_cached + width_new), dtype=torch.long)
    for row, (prompt, n) in enumerate(zip(prompts, reused)):
        new = prompt[n:]
        input_ids[row, width_new - new.numel():] = new
        positions[row, width_new - new.numel():] = torch.arange(n, n + new.numel())
        mask[row, width_cached - n: width_cached] = 1
        mask[row, width_cached + width_new - new.numel():] = 1
        store.stats["prompt_tokens"] += int(prompt.numel())
        store.stats["reused_tokens"] += n
    cache = DynamicCache()
    sources = [entry for _, entry in found]
    del found
    if width_cached:
        sample = next(e for e in sources if e is not None)
        for layer in range(len(sample.keys)):
            heads, _, dim = sample.keys[layer].shape
            keys = sample.keys[layer].new_zeros((batch, heads, width_cached, dim))
            values = sample.values[layer].new_zeros((batch, heads, width_cached, dim))
            for row, (n, source) in enumerate(zip(reused, sources)):
                if source is not None and n:
                    keys[row, :, width_cached - n:] = source.keys[layer][:, :n]
                    values[row, :, width_cached - n:] = source.values[layer][:, :n]
            cache.update(keys, values, layer)
        del sample, keys, values
    for source in sources:  # copied into the batch; each row's new entry will hold the prefix it reused
        if source is not None:
            store.discard(source)
    sources.clear()  # their memory goes before the batch grows
    generated: list[list[int]] = [[] for _ in range(batch)]
    finished: dict[int, CacheEntry] = {}
    active = list(range(batch))  # the row of each position in the running batch
    next_position = torch.tensor([int(p.numel()) for p in prompts], dtype=torch.long)

    def entry_of(position: int, row: int) -> CacheEntry:
        """The row's sequence as the cache holds it: its prompt, then the tokens it fed back."""
        columns = mask[position].nonzero().squeeze(1)
        fed = generated[row][: int(columns.numel()) - int(prompts[row].numel())]
        return CacheEntry(ids=torch.cat([prompts[row], torch.tensor(fed, dtype=torch.long)]),
                          keys=[k[position][:, columns] for k, _ in cache_layers(cache)],  # indexing copies
                          values=[v[position][:, columns] for _, v in cache_layers(cache)])

    keyword = cache_keyword(model)
    with torch.inference_mode():
        out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                    logits_to_keep=1, **{keyword: cache})
        for step in range(max_new_tokens):
            tokens = out.logits[:, -1].argmax(-1)
            keep = []
            for position, row in enumerate(active):
                generated[row].append(int(tokens[position]))
                if step == max_new_tokens - 1 or int(tokens[position]) in finish_ids or is_done(generated[row]):
                    finished[row] = entry_of(position, row)
                else:
                    keep.append(position)
            if not keep:
                break
            if len(keep) < len(active):  # finished rows leave the batch
                index = torch.tensor(keep, dtype=torch.long)
                cache.batch_select_indices(index)
                mask, next_position, tokens = mask[index], next_position[index], tokens[index]
                active = [active[p] for p in keep]
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long)], dim=1)
            out = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=next_position[:, None],
                        use_cache=True, logits_to_keep=1, **{keyword: cache})
            next_position += 1
    for row in range(batch):
        store.store(finished[row])
    return generated
