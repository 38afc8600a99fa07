"""Top-k by partial selection: the same answer as a full sort by (score desc, position asc)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mempo_gym.retrieval.base import top_k_positions


def by_full_sort(scores: np.ndarray, k: int, positive_only: bool) -> list[tuple[int, float]]:
    idx = [i for i in range(len(scores)) if scores[i] > 0 or not positive_only]
    idx.sort(key=lambda i: (-scores[i], i))
    return [(i, float(scores[i])) for i in idx[:k]]


@settings(max_examples=100, deadline=None)
@given(scores=st.lists(st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, 3.25]) | st.floats(-5, 5), max_size=80),
       k=st.integers(1, 12), positive_only=st.booleans())
def test_partial_selection_equals_full_sort_with_ties_by_position(scores, k, positive_only) -> None:
    arr = np.asarray(scores, dtype=float)
    assert top_k_positions(arr, k, positive_only) == by_full_sort(arr, k, positive_only)


def test_many_ties_keep_the_earliest_positions() -> None:
    scores = np.zeros(100_000)
    scores[50:40_055] = 1.0
    scores[99_999] = 2.0
    assert top_k_positions(scores, 3, positive_only=True) == [(99_999, 2.0), (50, 1.0), (51, 1.0)]
    assert top_k_positions(scores, 0) == []
