"""The one-to-one assignment that maximises a total score (the Hungarian algorithm), for likeness.

``best_assignment(scores)``: rows (identities) to columns (faces), each column used at most once,
as many pairs as the smaller side allows, with the largest total score. Kuhn-Munkres in its
shortest-augmenting-path form with row and column potentials: O(k^2 * m) time for k = min(rows,
columns) and m = max(rows, columns), exact for any size, so there is no size bound and no fallback
(4 identities and 50 faces: about 800 steps). Plain Python, no scipy.
"""

from __future__ import annotations

import math
from typing import Sequence


def _min_cost_rows(cost: list[list[float]]) -> list[int]:
    """For n <= m rows of m costs: the column of each row in an assignment of minimum total cost."""
    n, m = len(cost), len(cost[0])
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)  # potentials (index 0: the virtual start)
    owner, way = [0] * (m + 1), [0] * (m + 1)  # owner[j]: row (1-based) on column j; way: the path back
    for row in range(1, n + 1):
        owner[0], j0 = row, 0
        slack, used = [math.inf] * (m + 1), [False] * (m + 1)
        while owner[j0]:  # grow the alternating tree until it reaches a free column
            used[j0] = True
            i0, delta, j1 = owner[j0], math.inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    reduced = cost[i0 - 1][j - 1] - u[i0] - v[j]
                    if reduced < slack[j]:
                        slack[j], way[j] = reduced, j0
                    if slack[j] < delta:
                        delta, j1 = slack[j], j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    slack[j] -= delta
            j0 = j1
        while j0:  # flip the path: each column on it takes the row before it
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    out = [0] * n
    for j in range(1, m + 1):
        if owner[j]:
            out[owner[j] - 1] = j - 1
    return out


def best_assignment(scores: Sequence[Sequence[float]]) -> list[int | None]:
    """``scores[i][j]``: how well row i fits column j (finite numbers). Returns, for each row, its
    column or None. Every row gets a distinct column when there are at least as many columns;
    otherwise every column is used and ``rows - columns`` rows get None. Among those assignments,
    the returned one has the largest sum of ``scores[i][column]``. Raises ``ValueError`` for a
    ragged matrix or a non-finite score."""
    rows = [[float(x) for x in r] for r in scores]
    if not rows:
        return []
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError("scores must have the same number of columns in every row")
    if not all(math.isfinite(x) for r in rows for x in r):
        raise ValueError("scores must be finite numbers")
    if width == 0:
        return [None] * len(rows)
    if len(rows) <= width:
        return list(_min_cost_rows([[-x for x in r] for r in rows]))
    columns = _min_cost_rows([[-rows[i][j] for i in range(len(rows))] for j in range(width)])  # transposed
    out: list[int | None] = [None] * len(rows)
    for j, i in enumerate(columns):
        out[i] = j
    return out
