"""Observations for requested factors when the rows do not form one full grid (a user's own data).

Metrics ask for observations of factor vectors they build themselves: BetaVAE and FactorVAE scores
copy one factor's value into other sampled vectors, which may give a combination that no row holds.
`RowIndex.rows_for` answers every request with an existing row, drawn with an explicit generator:

1. The combination exists: one of its rows, uniformly (a file may hold several per combination).
2. It does not, and the rows one factor away from it all differ in the same factor j: the
   requested value of factor j is what cannot be combined with the rest, so it is kept, and the
   row is drawn uniformly among those with that value (the distribution given factor j). This is
   the case of a fixed factor copied into a sampled vector: the fixed factor survives, the others
   are redrawn from the data.
3. Rows one factor away differ in several factors: one of those factors is drawn uniformly, then a
   row that differs from the request in that factor only.
4. No row is one factor away: a row among those agreeing with the request in the most factors.
"""

from __future__ import annotations

import numpy as np

from disentbench.errors import BenchError

#: factor combinations are indexed as int64 mixed-radix keys
MAX_COMBINATIONS = 2**62


def combination_weights(sizes: tuple[int, ...]) -> np.ndarray:
    """Row-major weights (last factor fastest) of the mixed-radix combination key."""
    if float(np.prod(np.asarray(sizes, dtype=np.float64))) >= MAX_COMBINATIONS:
        raise BenchError(f"factor sizes {list(sizes)} give more than 2^62 combinations; use fewer bins or factors")
    weights = np.ones(len(sizes), dtype=np.int64)
    for j in range(len(sizes) - 2, -1, -1):
        weights[j] = weights[j + 1] * sizes[j + 1]
    return weights


class _Sorted:
    """Keys sorted once, with the rows they come from: the rows of a key are one contiguous range."""

    def __init__(self, keys: np.ndarray):
        self.order = np.argsort(keys, kind="stable")
        self.keys = keys[self.order]

    def ranges(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.searchsorted(self.keys, queries, "left"), np.searchsorted(self.keys, queries, "right")

    def pick(self, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A row uniformly within each non-empty range [lo, hi), from uniforms u in [0, 1)."""
        return self.order[lo + np.minimum((u * (hi - lo)).astype(np.int64), hi - lo - 1)]


class RowIndex:
    """Lookup structures over the rows' factor classes (N, K): one sorted key array for the full
    combination, one per factor for the combination without that factor, one per factor for its
    values. Memory: about 2 (2K + 1) N int64."""

    def __init__(self, classes: np.ndarray, sizes: tuple[int, ...]):
        self.classes = np.ascontiguousarray(classes, dtype=np.int64)
        self.weights = combination_weights(sizes)
        keys = self.classes @ self.weights
        self.full = _Sorted(keys)
        self.without = [_Sorted(keys - self.classes[:, j] * self.weights[j]) for j in range(len(sizes))]
        self.values = [_Sorted(self.classes[:, j].copy()) for j in range(len(sizes))]

    @property
    def distinct(self) -> int:
        return int(len(np.unique(self.full.keys)))

    def rows_for(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One existing row per requested factor vector (n, K), by the rules of the module doc."""
        f = np.asarray(factors, dtype=np.int64)
        n, k = f.shape
        u = rng.random((n, 2))  # one uniform to choose a factor, one to choose a row, per request
        q = f @ self.weights
        lo, hi = self.full.ranges(q)
        rows = np.full(n, -1, dtype=np.int64)
        found = hi > lo
        rows[found] = self.full.pick(lo[found], hi[found], u[found, 1])
        miss = np.flatnonzero(~found)
        if not len(miss):
            return rows
        near = np.zeros((len(miss), k), dtype=bool)  # rows one factor away, differing in factor j
        bounds = []
        for j in range(k):
            lo_j, hi_j = self.without[j].ranges(q[miss] - f[miss, j] * self.weights[j])
            near[:, j] = hi_j > lo_j
            bounds.append((lo_j, hi_j))
        count = near.sum(axis=1)
        # rule 3 (and rule 2 when no row has the kept value): the j-th factor that is near, j drawn
        pick = np.minimum((u[miss, 0] * np.maximum(count, 1)).astype(np.int64), np.maximum(count, 1) - 1)
        chosen = np.argmax(np.cumsum(near, axis=1) > pick[:, None], axis=1)
        for j in range(k):
            sel = (count > 0) & (chosen == j)
            if sel.any():
                lo_j, hi_j = bounds[j][0][sel], bounds[j][1][sel]
                rows[miss[sel]] = self.without[j].pick(lo_j, hi_j, u[miss[sel], 1])
        # rule 2: one factor only is near: keep its requested value, draw among the rows holding it
        for j in range(k):
            sel = (count == 1) & near[:, j]
            if sel.any():
                glo, ghi = self.values[j].ranges(f[miss[sel], j])
                has = ghi > glo
                rows[miss[sel][has]] = self.values[j].pick(glo[has], ghi[has], u[miss[sel][has], 1])
        # rule 4: nothing one factor away (never the case for vectors the metrics build)
        for i in miss[count == 0]:
            agree = (self.classes == f[i]).sum(axis=1)
            best = np.flatnonzero(agree == agree.max())
            rows[i] = best[min(int(u[i, 1] * len(best)), len(best) - 1)]
        return rows
