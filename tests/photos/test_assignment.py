"""The one-to-one assignment with the largest total (``photos.assignment``), against brute force."""

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperlora_ext.photos.assignment import best_assignment


def brute_force_best(scores: list[list[float]]) -> float:
    """The largest total over every one-to-one assignment of min(rows, columns) pairs."""
    rows, cols = len(scores), len(scores[0])
    if rows <= cols:
        return max(sum(scores[i][p[i]] for i in range(rows)) for p in itertools.permutations(range(cols), rows))
    return max(sum(scores[p[j]][j] for j in range(cols)) for p in itertools.permutations(range(rows), cols))


def total(scores, chosen) -> float:
    return sum(scores[i][j] for i, j in enumerate(chosen) if j is not None)


def test_beats_the_best_column_of_each_row():
    scores = [[0.9, 0.8],   # best column of both rows: 0 ...
              [0.85, 0.1]]  # ... greedy in row order: 0.9 + 0.1 = 1.0
    assert best_assignment(scores) == [1, 0]  # 0.8 + 0.85 = 1.65


def test_shapes():
    assert best_assignment([[0.2], [0.7], [0.5]]) == [None, 0, None]  # more rows than columns
    assert best_assignment([[0.1, 0.9, 0.3]]) == [1]  # more columns than rows
    assert best_assignment([]) == [] and best_assignment([[], []]) == [None, None]
    assert best_assignment([[-0.5, -0.9]]) == [0]  # a row gets a column even when every score is negative
    with pytest.raises(ValueError, match="same number of columns"):
        best_assignment([[0.1, 0.2], [0.3]])
    with pytest.raises(ValueError, match="finite"):
        best_assignment([[0.1, math.nan]])


def test_large_is_exact_and_quick():
    n = 60  # the score of row i at column j is high only at j = (7 * i) % n: a known optimum
    scores = [[1.0 if j == (7 * i) % n else 0.5 - 0.001 * ((i + j) % 13) for j in range(n)] for i in range(n)]
    assert best_assignment(scores) == [(7 * i) % n for i in range(n)]


matrices = st.integers(1, 6).flatmap(lambda rows: st.integers(1, 6).flatmap(lambda cols: st.lists(
    st.lists(st.one_of(st.floats(-1, 1), st.sampled_from([-1.0, 0.0, 0.5, 1.0])), min_size=cols, max_size=cols),
    min_size=rows, max_size=rows)))


@settings(max_examples=300, deadline=None)
@given(matrices)
def test_total_is_optimal_and_one_to_one(scores):
    chosen = best_assignment(scores)
    rows, cols = len(scores), len(scores[0])
    used = [j for j in chosen if j is not None]
    assert len(chosen) == rows and len(used) == len(set(used)) == min(rows, cols)
    assert all(0 <= j < cols for j in used)
    assert total(scores, chosen) == pytest.approx(brute_force_best(scores), abs=1e-9)
