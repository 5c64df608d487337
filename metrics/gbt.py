"""scikit-learn's GradientBoostingClassifier (the reference DCI estimator) re-implemented in numba.

DCI fits one GradientBoostingClassifier per factor with scikit-learn's defaults (log loss, 100
stages, learning rate 0.1, depth-3 regression trees on the negative gradient, one tree per class
and stage). On dSprites' 113 classes that is 11,300 trees per model; scikit-learn sorts every
feature again in every node of every tree (~28 ms a tree on this machine), which is why other
suites shrink DCI's sample sizes. The codes never change during boosting, so this module sorts
each feature once and grows every tree by *stable partitions* of the presorted lists (O(F N) per
tree level instead of O(F N log N)), compiled with numba (~5 ms a tree at 10,000 x 10, against
~28 ms in scikit-learn; `python -m disentbench.bench.perf metrics` measures it).

What it replicates, read from scikit-learn 1.9 (sklearn/tree/_splitter.pyx, _partitioner.pyx,
_criterion.pyx, _tree.pyx, _utils.pyx; sklearn/ensemble/_gb.py; sklearn/_loss/_loss.pyx.tp):
- codes cast to float32; split candidates between sorted neighbours that differ by more than
  FEATURE_THRESHOLD (float32 arithmetic); threshold = v_prev / 2 + v / 2 in float64; a feature is
  constant in a node when max <= min + FEATURE_THRESHOLD;
- the depth-first builder (left child first), its leaf rules (depth 3, fewer than 2 samples,
  impurity <= DBL_EPSILON, a split whose improvement + DBL_EPSILON < 0), the squared-error
  proxy sum_l^2 / n_l + sum_r^2 / n_r, and the criterion's running sums (forward from the last
  position, or backward from the node's end when that is shorter); with criterion="friedman_mse",
  the FriedmanMSE proxy and improvement of scikit-learn up to 1.8 (its boosting default then; 1.9
  removed it), bit for bit that release's trees (tests/test_gbt_criterion.py);
- the splitter's feature visit order: its Fisher-Yates draws from the tree's own xorshift state
  (seeded by one randint(0, 2**31 - 1) per tree from the shared RandomState), with its constant
  feature bookkeeping across nodes, and "first strictly better split wins" - so exact ties, as
  between duplicated latents, are resolved as scikit-learn resolves them;
- leaf values: one Newton step, mean(-g) (K-1)/K / mean(p (1-p)) (no (K-1)/K for two classes),
  with the same safe division; gradients with scikit-learn's softmax / binomial arithmetic; the
  initial raw prediction from scikit-learn's own prior estimator and link;
- feature_importances_: per tree sum over splits of n imp - n_l imp_l - n_r imp_r over the root's
  n, averaged over the trees with more than one node, normalised to sum 1; predict = argmax of
  the raw predictions (raw >= 0 for two classes).

Sums round exactly as scikit-learn's do because their order is replayed too: scikit-learn keeps
one samples array per tree, re-sorts it by every feature it visits with its own unstable introsort,
and partitions it in place after each split. Sorting values without repeats has one result (the
presorted list); sorts of values repeated on different samples (discrete, rounded or dead latents,
or the few float32 collisions of 10,000 continuous codes) are replayed with a port of that
introsort, followed only into the parts that order the repeats, and memoised across trees; leaf
values use numpy's pairwise summation, as np.mean does. The result is bit for bit scikit-learn's:
tests/test_metric_dci.py compares importances and predictions with assert_array_equal on
continuous, discrete, rounded, duplicated and dead-latent codes, binary and multi-class.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from numba import njit
from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss
from sklearn.dummy import DummyClassifier

RAND_R_MAX = 2147483647
#: sklearn.tree._splitter: values closer than this are one value (float32 arithmetic)
FEATURE_THRESHOLD = np.float32(1e-7)
DBL_EPSILON = 2.220446049250313e-16
#: the scikit-learn release whose trees this module replicates (and the tests compare against)
REPLICATES_SKLEARN = "1.9"
#: the split criterion of the trees grown here: scikit-learn 1.9's squared error (its boosting default
#: up to 1.8, and so that of disentanglement_lib's published runs, was friedman_mse)
TREE_CRITERION = "squared_error"
#: the criteria the trees can split on: scikit-learn 1.9's squared error (the default), and the
#: friedman_mse of scikit-learn up to 1.8 (bit for bit its FriedmanMSE: see _scan_feature)
CRITERIA = ("squared_error", "friedman_mse")


def friedman_flag(criterion: str) -> bool:
    """The kernels' flag for `criterion` (True: friedman_mse); ValueError for another name."""
    if criterion not in CRITERIA:
        raise ValueError(f"tree criterion {criterion!r} is unknown; choose one of: {', '.join(CRITERIA)}")
    return criterion == "friedman_mse"


def sklearn_tree_criterion() -> str:
    """The criterion the installed scikit-learn's GradientBoostingClassifier splits on by default:
    friedman_mse before 1.9, squared error from 1.9 on (where `criterion` has no effect)."""
    import sklearn

    major, minor = (int(part) for part in sklearn.__version__.split(".")[:2])
    return "friedman_mse" if (major, minor) < (1, 9) else "squared_error"


def tree_criteria(criterion: str = TREE_CRITERION) -> str:
    """What DCI's trees split on, per backend, for the provenance of every score: DCI's option
    `criterion` (default squared_error), which both backends honour (the sklearn backend passes it
    to scikit-learn before 1.9, where it chooses the trees; from 1.9 only squared_error exists)."""
    friedman_flag(criterion)
    return f"numba: {criterion}; sklearn: {criterion}"


_version_warned = False


def _warn_if_other_sklearn() -> None:
    """Other scikit-learn releases may grow other trees (before 1.9 the boosting trees used the
    friedman_mse criterion by default): say so once, and how to get that release's own numbers."""
    global _version_warned
    import sklearn

    if not _version_warned and not sklearn.__version__.startswith(REPLICATES_SKLEARN + "."):
        _version_warned = True
        warnings.warn(
            f"metrics.gbt replicates scikit-learn {REPLICATES_SKLEARN}'s gradient boosting; installed "
            f"scikit-learn {sklearn.__version__} may build other trees: use dci backend='sklearn' for its "
            f"own numbers",
            RuntimeWarning,
            stacklevel=3,
        )


@njit(cache=True, nogil=True)
def _rand_int(state: np.ndarray, low: int, high: int) -> int:
    """sklearn.tree._utils.rand_int: xorshift32 on state[0], modulo RAND_R_MAX + 1, then range."""
    s = state[0]
    if s == 0:
        s = 1
    s ^= (s << 13) & 0xFFFFFFFF
    s ^= s >> 17
    s ^= (s << 5) & 0xFFFFFFFF
    state[0] = s
    return low + (s % (RAND_R_MAX + 1)) % (high - low)


@njit(cache=True, nogil=True)
def _swap(values, indices, i, j):
    tv = values[i]
    values[i] = values[j]
    values[j] = tv
    ti = indices[i]
    indices[i] = indices[j]
    indices[j] = ti


@njit(cache=True, nogil=True)
def _sift_down(values, indices, off, root, end):
    while True:
        child = root * 2 + 1
        maxind = root
        if child < end and values[off + maxind] < values[off + child]:
            maxind = child
        if child + 1 < end and values[off + maxind] < values[off + child + 1]:
            maxind = child + 1
        if maxind == root:
            return
        _swap(values, indices, off + root, off + maxind)
        root = maxind


@njit(cache=True, nogil=True)
def _heapsort(values, indices, off, n):
    start = (n - 2) // 2
    while True:
        _sift_down(values, indices, off, start, n)
        if start == 0:
            break
        start -= 1
    end = n - 1
    while end > 0:
        _swap(values, indices, off, off + end)
        _sift_down(values, indices, off, 0, end)
        end -= 1


@njit(cache=True, nogil=True)
def _introsort3_ties(values, indices, start, n, tie_vals, n_ties, legacy=False):
    """scikit-learn's simultaneous_sort(use_three_way_partition=True) (sklearn/utils/_sorting.pyx:
    introsort, median-of-3 pivot, 3-way partition, heapsort when too deep, insertion sort below 16)
    on values/indices[start:start+n], followed only into the parts that hold one of the values
    tie_vals[:n_ties] (ascending). The sort is not stable, so the order it leaves equal values in
    decides the order of scikit-learn's sums; this replays it. `legacy`: the sort of scikit-learn up
    to 1.8 (sklearn/tree/_partitioner.pyx's own introsort), the same but partitioning down to parts
    of one sample, without the insertion sort.

    Every step of the sort works on one contiguous part and depends on nothing outside it, and
    values end at their rank positions, so the order scikit-learn's sort leaves the samples of a
    repeated value in is found by partitioning only the parts whose value range contains it
    (~2-3 n steps instead of n log n). Other positions are left unsorted: the caller reads only
    the repeated values' spans.
    """
    if n <= 0:
        return
    st_off = np.empty(256, np.int64)
    st_n = np.empty(256, np.int64)
    st_d = np.empty(256, np.int64)
    st_lo = np.empty(256, np.float32)
    st_hi = np.empty(256, np.float32)
    st_off[0], st_n[0], st_d[0] = start, n, 2 * np.int64(np.log2(n))
    st_lo[0], st_hi[0] = -np.inf, np.inf  # the part holds the values strictly between lo and hi
    top = 1
    while top > 0:
        top -= 1
        off, m, maxd = st_off[top], st_n[top], st_d[top]
        lo_v, hi_v = st_lo[top], st_hi[top]
        while True:
            t = np.searchsorted(tie_vals[:n_ties], lo_v, side="right")  # ascending
            if t >= n_ties or not tie_vals[t] < hi_v:
                break
            if legacy:
                if m <= 1:
                    break
            elif m <= 15:
                for i in range(1, m):
                    tv = values[off + i]
                    ti = indices[off + i]
                    j = i
                    while j > 0 and values[off + j - 1] > tv:
                        values[off + j] = values[off + j - 1]
                        indices[off + j] = indices[off + j - 1]
                        j -= 1
                    values[off + j] = tv
                    indices[off + j] = ti
                break
            if maxd <= 0:
                _heapsort(values, indices, off, m)
                break
            maxd -= 1
            a, b, c = values[off], values[off + m // 2], values[off + m - 1]
            if a < b:
                pivot = b if b < c else (c if a < c else a)
            elif b < c:
                pivot = a if a < c else c
            else:
                pivot = b
            i = 0
            lo = 0
            hi = m
            while i < hi:
                if values[off + i] < pivot:
                    _swap(values, indices, off + i, off + lo)
                    i += 1
                    lo += 1
                elif values[off + i] > pivot:
                    hi -= 1
                    _swap(values, indices, off + i, off + hi)
                else:
                    i += 1
            st_off[top], st_n[top], st_d[top], st_lo[top], st_hi[top] = off, lo, maxd, lo_v, pivot
            top += 1
            off += hi
            m -= hi
            lo_v = pivot


@njit(cache=True, nogil=True)
def _mix(h, v):
    """splitmix64 step: folds the integer v into the 64-bit hash h."""
    x = h ^ (np.uint64(v) + np.uint64(0x9E3779B97F4A7C15))
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True, nogil=True)
def _memo_find(memo_keys, k1, k2):
    """Slot of the 128-bit key (k1, k2) in the open-addressing table, or of the empty slot where it
    would go (memo_keys[slot, 2] == 0 marks empty)."""
    mask = memo_keys.shape[0] - 1
    slot = np.int64(k1 & np.uint64(mask))
    while memo_keys[slot, 2] != 0 and not (memo_keys[slot, 0] == k1 and memo_keys[slot, 1] == k2):
        slot = (slot + 1) & mask
    return slot


@njit(cache=True, nogil=True, inline="always")
def _update_sum_left(g, order, sum_left, pos, new_pos, end, s_tot):
    """RegressionCriterion.update: move order[pos:new_pos] to the left sum, adding forward, or, when
    that is longer than the rest, restarting from the node total and subtracting from the end."""
    if (new_pos - pos) <= (end - new_pos):
        for q in range(pos, new_pos):
            sum_left += g[order[q]]
        return sum_left
    sum_left = s_tot
    for q in range(end - 1, new_pos - 1, -1):
        sum_left -= g[order[q]]
    return sum_left


@njit(cache=True, nogil=True)
def _load_samples(out, src, node_order, idx, cur, start, end):
    """Write the splitter's samples array for [start, end) into `out`: the node's own order
    (src -2), feature src's sorted list (src >= 0, a sort without repeats has one result) or the
    replayed order held in `cur` (src -1)."""
    if src == -2:
        row = node_order
    elif src >= 0:
        row = idx[src]
    else:
        row = cur
    for q in range(start, end):
        out[q] = row[q]


class TreeData(NamedTuple):
    """The training codes as every tree of one classifier reads them (never written)."""

    codes_t: np.ndarray  # (F, N) float32: the codes, one row per feature
    values: np.ndarray  # (F, N) float32: each feature's values in ascending order
    order: np.ndarray  # (F, N) int32: their samples (a stable sort)
    tied: np.ndarray  # (F,) bool: the feature repeats a value on samples that differ
    dup: np.ndarray  # (N,) int32: samples with equal dup are interchangeable in every sum


class LevelLists(NamedTuple):
    """Every feature's sorted list, partitioned down to the nodes of depth 1, 2, ... (one level a
    row; the root's lists are TreeData's)."""

    values: np.ndarray  # (max(D - 1, 1), F, N) float32
    order: np.ndarray  # (max(D - 1, 1), F, N) int32


class SplitterState(NamedTuple):
    """The splitter's state within one tree: its random draws, feature order and the features it
    knows are constant (they are never drawn again below the node that found them)."""

    rng_state: np.ndarray  # (1,) int64: xorshift state
    features: np.ndarray  # (F,) int64: the feature order the Fisher-Yates draws permute
    constant: np.ndarray  # (F,) int64: features known constant, in order of discovery
    skip: np.ndarray  # (F,) bool: features whose sorted lists are not partitioned


class NodeStack(NamedTuple):
    """The depth-first builder's nodes still to grow: one array per _Node field, one row a node."""

    start: np.ndarray  # (2 D + 2,) int64
    end: np.ndarray  # (2 D + 2,) int64
    depth: np.ndarray  # (2 D + 2,) int64
    parent: np.ndarray  # (2 D + 2,) int64
    is_left: np.ndarray  # (2 D + 2,) int64
    impurity: np.ndarray  # (2 D + 2,) float64
    n_known: np.ndarray  # (2 D + 2,) int64
    sample_set: np.ndarray  # (2 D + 2, 2) uint64: _Node.set1, set2
    arrangement: np.ndarray  # (2 D + 2, 2) uint64: _Node.arr1, arr2


class SortReplay(NamedTuple):
    """scikit-learn's sorts replayed where values repeat, and the memo of their outcomes (kept
    across the trees of a builder, whose recurring arrangements make replays rare)."""

    cur: np.ndarray  # (N,) int32: the samples array as the last replayed sort left it
    cur_vals: np.ndarray  # (N,) float32: the values the replayed sort orders
    tie_vals: np.ndarray  # (N,) float32: the repeated values of the feature being sorted
    tie_start: np.ndarray  # (N,) int64: their spans in the node's sorted list
    tie_end: np.ndarray  # (N,) int64
    tie_buf: np.ndarray  # (N,) int32: the spans' samples in the order the sort leaves them
    memo_keys: np.ndarray  # (2**15, 3) uint64: hash table of replays (k1, k2, occupied)
    memo_span: np.ndarray  # (2**15,) int64: where in pool each replay's spans start
    pool: np.ndarray  # (2**21,) int32: the memoised spans
    pool_top: np.ndarray  # (2,) int64: pool entries used, memo slots used


class TreeNodes(NamedTuple):
    """The tree being grown: its nodes, each training sample's leaf and the leaf values."""

    leaf_of: np.ndarray  # (N,) int32
    feature: np.ndarray  # (2**(D + 1),) int64: split feature (-2: leaf)
    threshold: np.ndarray  # (2**(D + 1),) float64: split threshold (-2.0: leaf)
    left: np.ndarray  # (2**(D + 1),) int64: left child (-1: leaf)
    right: np.ndarray  # (2**(D + 1),) int64: right child (-1: leaf)
    value: np.ndarray  # (2**(D + 1),) float64


class LeafScratch(NamedTuple):
    """The leaf values' Newton step: the samples' gradients and hessians grouped by leaf."""

    count: np.ndarray  # (2**(D + 1),) int64: samples per leaf
    pos: np.ndarray  # (2**(D + 1),) int64: next free position of each leaf in num/hess
    num: np.ndarray  # (N,) float64
    hess: np.ndarray  # (N,) float64


class TreeWorkspace(NamedTuple):
    """Everything one tree builder writes (one per worker thread), reused by every tree it grows.
    Its steps take the parts they touch. Shapes here: N samples, F features, D = max_depth."""

    levels: LevelLists
    members: np.ndarray  # (D + 1, N) int32: by depth, each node's samples in scikit-learn's order
    mark: np.ndarray  # (N,) uint8: 1 where a sample of the node being split goes left
    splitter: SplitterState
    stack: NodeStack
    replay: SortReplay
    tree: TreeNodes
    leaves: LeafScratch


class _Node(NamedTuple):
    """One node to grow: samples [start, end) of members[depth]. The two 128-bit hashes name the
    node's sample set (the path of splits) and the samples array's arrangement on entry."""

    start: int
    end: int
    depth: int
    parent: int  # -1: the root
    is_left: int
    impurity: float
    n_known: int  # features known constant from its ancestors
    set1: np.uint64
    set2: np.uint64
    arr1: np.uint64
    arr2: np.uint64


class _SamplesArray(NamedTuple):
    """Where the splitter's samples array is within a node (src -2: the node's own order, f >= 0:
    feature f's sorted list, -1: the replay's cur) and the 128-bit hash naming its arrangement."""

    src: int
    hash1: np.uint64
    hash2: np.uint64


class _Split(NamedTuple):
    """The best split of a node: samples [start, pos) go left (pos == end: none found)."""

    feature: int
    pos: int
    threshold: float
    n_constant: int  # features known constant in the node, for its children
    samples: _SamplesArray  # as the search's last sort left it


def _workspace(n: int, num_f: int, max_depth: int) -> TreeWorkspace:
    """Scratch arrays of one tree builder (one per worker thread), with its memo of sort replays."""
    levels = max(max_depth - 1, 1)
    cap = 2 ** (max_depth + 1)
    depth_cap = 2 * max_depth + 2
    stack = NodeStack(
        *(np.empty(depth_cap, np.int64) for _ in range(5)),
        np.empty(depth_cap, np.float64),
        np.empty(depth_cap, np.int64),
        np.empty((depth_cap, 2), np.uint64),
        np.empty((depth_cap, 2), np.uint64),
    )
    replay = SortReplay(
        cur=np.empty(n, np.int32),
        cur_vals=np.empty(n, np.float32),
        tie_vals=np.empty(n, np.float32),
        tie_start=np.empty(n, np.int64),
        tie_end=np.empty(n, np.int64),
        tie_buf=np.empty(n, np.int32),
        memo_keys=np.zeros((1 << 15, 3), np.uint64),
        memo_span=np.zeros(1 << 15, np.int64),
        pool=np.empty(1 << 21, np.int32),
        pool_top=np.zeros(2, np.int64),
    )
    return TreeWorkspace(
        levels=LevelLists(np.empty((levels, num_f, n), np.float32), np.empty((levels, num_f, n), np.int32)),
        members=np.empty((max_depth + 1, n), np.int32),
        mark=np.empty(n, np.uint8),
        splitter=SplitterState(
            np.empty(1, np.int64), np.empty(num_f, np.int64), np.empty(num_f, np.int64), np.empty(num_f, np.bool_)
        ),
        stack=stack,
        replay=replay,
        tree=TreeNodes(
            np.empty(n, np.int32),
            np.empty(cap, np.int64),
            np.empty(cap, np.float64),
            np.empty(cap, np.int64),
            np.empty(cap, np.int64),
            np.empty(cap),
        ),
        leaves=LeafScratch(np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(n), np.empty(n)),
    )


@njit(cache=True, nogil=True, inline="always")
def _swap_entries(a: np.ndarray, i: int, j: int) -> None:
    """Swap a[i] and a[j] (the splitter's feature order)."""
    t = a[i]
    a[i] = a[j]
    a[j] = t


@njit(cache=True, nogil=True, inline="always")
def _push(stack: NodeStack, top: int, node: _Node) -> int:
    """Put `node` on the stack at height `top`; returns the new height."""
    stack.start[top] = node.start
    stack.end[top] = node.end
    stack.depth[top] = node.depth
    stack.parent[top] = node.parent
    stack.is_left[top] = node.is_left
    stack.impurity[top] = node.impurity
    stack.n_known[top] = node.n_known
    stack.sample_set[top, 0] = node.set1
    stack.sample_set[top, 1] = node.set2
    stack.arrangement[top, 0] = node.arr1
    stack.arrangement[top, 1] = node.arr2
    return top + 1


@njit(cache=True, nogil=True, inline="always")
def _pop(stack: NodeStack, top: int) -> _Node:
    """The node at height `top` (the caller lowers the height)."""
    return _Node(
        stack.start[top],
        stack.end[top],
        stack.depth[top],
        stack.parent[top],
        stack.is_left[top],
        stack.impurity[top],
        stack.n_known[top],
        stack.sample_set[top, 0],
        stack.sample_set[top, 1],
        stack.arrangement[top, 0],
        stack.arrangement[top, 1],
    )


@njit(cache=True, nogil=True, inline="always")
def _reset_splitter(splitter: SplitterState, seed: int) -> None:
    """A new tree's splitter: its own xorshift state, features in order, none known constant."""
    splitter.rng_state[0] = seed
    features, constant = splitter.features, splitter.constant
    for f in range(features.shape[0]):
        features[f] = f
        constant[f] = 0


@njit(cache=True, nogil=True, inline="always")
def _root(root_order: np.ndarray) -> _Node:
    """The root node, with scikit-learn's samples array before any sort (0..N-1) in root_order."""
    n_all = root_order.shape[0]
    for i in range(n_all):
        root_order[i] = i
    set1 = np.uint64(0x243F6A8885A308D3)
    set2 = np.uint64(0x13198A2E03707344)
    return _Node(
        np.int64(0),
        np.int64(n_all),
        np.int64(0),
        np.int64(-1),
        np.int64(0),
        0.0,
        np.int64(0),
        set1,
        set2,
        _mix(set1, 1),
        _mix(set2, 1),
    )


@njit(cache=True, nogil=True, inline="always")
def _node_sums(g: np.ndarray, node_order: np.ndarray, start: int, end: int) -> tuple[float, float]:
    """The node's sum and sum of squares of g, added in its samples' order (criterion.init)."""
    s_tot = 0.0
    sq_tot = 0.0
    for q in range(start, end):
        v = g[node_order[q]]
        s_tot += v
        sq_tot += v * v
    return s_tot, sq_tot


@njit(cache=True, nogil=True, inline="always")
def _sorted_lists(data: TreeData, levels: LevelLists, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Every feature's sorted values and samples, partitioned down to the nodes of `depth`."""
    if depth == 0:
        return data.values, data.order
    return levels.values[depth - 1], levels.order[depth - 1]


@njit(cache=True, nogil=True, inline="always")
def _find_ties(sv: np.ndarray, si: np.ndarray, dup: np.ndarray, replay: SortReplay, start: int, end: int) -> int:
    """Spans of the node's sorted list sv/si[start:end] whose value repeats on samples that differ
    (equal samples are interchangeable in every sum): into replay.tie_*; returns their count."""
    tie_vals, tie_start, tie_end = replay.tie_vals, replay.tie_start, replay.tie_end
    n_ties = 0
    q = start + 1
    while q < end:
        if sv[q] == sv[q - 1] and dup[si[q]] != dup[si[q - 1]]:
            r = q - 1
            while r > start and sv[r - 1] == sv[q]:
                r -= 1
            e = q + 1
            while e < end and sv[e] == sv[q]:
                e += 1
            tie_vals[n_ties] = sv[q]
            tie_start[n_ties] = r
            tie_end[n_ties] = e
            n_ties += 1
            q = e
        else:
            q += 1
    return n_ties


@njit(cache=True, nogil=True, inline="always")
def _replay_sort(
    x_f: np.ndarray,
    node_order: np.ndarray,
    idx: np.ndarray,
    replay: SortReplay,
    node: _Node,
    src: int,
    n_ties: int,
    legacy: bool,
) -> None:
    """Sort a copy of the samples array (at src) by x_f as scikit-learn does (as up to 1.8 if
    legacy), only as far as the repeated values need, and put the spans' samples, in the order it
    leaves them, in tie_buf."""
    start, end = node.start, node.end
    cur, cur_vals, tie_buf = replay.cur, replay.cur_vals, replay.tie_buf
    _load_samples(cur, src, node_order, idx, cur, start, end)
    for q in range(start, end):
        cur_vals[q] = x_f[cur[q]]
    _introsort3_ties(cur_vals, cur, start, end - start, replay.tie_vals, n_ties, legacy)
    k = 0
    for t in range(n_ties):
        for q in range(replay.tie_start[t], replay.tie_end[t]):
            tie_buf[k] = cur[q]
            k += 1


@njit(cache=True, nogil=True, inline="always")
def _memo_store(replay: SortReplay, slot: int, k1: np.uint64, k2: np.uint64, n_span: int) -> None:
    """Keep tie_buf[:n_span] under the key (k1, k2) while the pool and the table have room."""
    pool, tie_buf = replay.pool, replay.tie_buf
    if replay.pool_top[0] + n_span <= pool.shape[0] and replay.pool_top[1] * 10 < replay.memo_keys.shape[0] * 7:
        off = replay.pool_top[0]
        for q in range(n_span):
            pool[off + q] = tie_buf[q]
        replay.memo_keys[slot, 0] = k1
        replay.memo_keys[slot, 1] = k2
        replay.memo_keys[slot, 2] = 1
        replay.memo_span[slot] = off
        replay.pool_top[0] += n_span
        replay.pool_top[1] += 1


@njit(cache=True, nogil=True, inline="always")
def _tie_order(
    x_f: np.ndarray,
    node_order: np.ndarray,
    idx: np.ndarray,
    replay: SortReplay,
    node: _Node,
    feat: int,
    samples: _SamplesArray,
    n_ties: int,
    legacy: bool,
) -> None:
    """Fill tie_buf with the repeated values' samples in the order scikit-learn's sort by feat
    leaves them: that depends only on the samples array's arrangement and on feat, so it is read
    from the memo when seen before, else replayed and memoised (a memo serves one fit, so one sort:
    legacy or not)."""
    k1 = _mix(samples.hash1, feat + 2)
    k2 = _mix(samples.hash2, feat + 2)
    slot = _memo_find(replay.memo_keys, k1, k2)
    n_span = 0
    for t in range(n_ties):
        n_span += replay.tie_end[t] - replay.tie_start[t]
    if replay.memo_keys[slot, 2] != 0:  # seen: the spans' order is stored
        off = replay.memo_span[slot]
        pool, tie_buf = replay.pool, replay.tie_buf
        for q in range(n_span):
            tie_buf[q] = pool[off + q]
        return
    _replay_sort(x_f, node_order, idx, replay, node, samples.src, n_ties, legacy)
    _memo_store(replay, slot, k1, k2, n_span)


@njit(cache=True, nogil=True, inline="always")
def _apply_tie_order(replay: SortReplay, si: np.ndarray, node: _Node, feat: int, n_ties: int) -> _SamplesArray:
    """Write the samples array sorted by feat into cur: the sorted list si, its tied spans in
    tie_buf's order; it is named by the node's set, feat and the spans' order."""
    cur, tie_buf = replay.cur, replay.tie_buf
    for q in range(node.start, node.end):
        cur[q] = si[q]
    k = 0
    c1 = _mix(node.set1, feat + 2)
    c2 = _mix(node.set2, feat + 2)
    for t in range(n_ties):
        for q in range(replay.tie_start[t], replay.tie_end[t]):
            cur[q] = tie_buf[k]
            c1 = _mix(c1, tie_buf[k] + 2)
            c2 = _mix(c2, tie_buf[k] + 2)
            k += 1
    return _SamplesArray(np.int64(-1), _mix(c1, 1), _mix(c2, 1))


@njit(cache=True, nogil=True, inline="always")
def _sort_feature(
    data: TreeData,
    node_order: np.ndarray,
    vals: np.ndarray,
    idx: np.ndarray,
    replay: SortReplay,
    node: _Node,
    feat: int,
    samples: _SamplesArray,
    legacy: bool,
) -> _SamplesArray:
    """sort_samples_and_feature_values(feat): the samples array after the sort. A sort of values
    without repeats has one result, the presorted list; repeats on samples that differ get
    scikit-learn's order (up to 1.8's if legacy) replayed into cur."""
    sv = vals[feat]
    si = idx[feat]
    if sv[node.end - 1] == sv[node.start]:
        return samples  # all equal: the sort leaves the samples array as it is
    n_ties = 0
    if data.tied[feat]:
        n_ties = _find_ties(sv, si, data.dup, replay, node.start, node.end)
    if n_ties == 0:
        return _SamplesArray(feat, _mix(_mix(node.set1, feat + 2), 0), _mix(_mix(node.set2, feat + 2), 0))
    _tie_order(data.codes_t[feat], node_order, idx, replay, node, feat, samples, n_ties, legacy)
    return _apply_tie_order(replay, si, node, feat, n_ties)


@njit(cache=True, nogil=True, inline="always")
def _scan_feature(
    g: np.ndarray,
    sv: np.ndarray,
    si: np.ndarray,
    start: int,
    end: int,
    s_tot: float,
    feat: int,
    best: tuple[float, int, int, float],
    friedman: bool,
) -> tuple[float, int, int, float]:
    """The splitter's scan of a sorted feature with the criterion's running sums: candidates between
    neighbours more than FEATURE_THRESHOLD apart, the criterion's proxy (squared error:
    sum_l^2 / n_l + sum_r^2 / n_r; friedman_mse: (n_r sum_l - n_l sum_r)^2 / (n_l n_r), as
    FriedmanMSE.proxy_impurity_improvement, unit weights), the first strictly better wins. best and
    the result: (proxy, feature, pos, threshold)."""
    best_proxy, best_f, best_p, best_thr = best
    sum_left = 0.0
    pos = start
    p = start + 1
    while p < end:
        if sv[p] <= sv[p - 1] + FEATURE_THRESHOLD:
            p += 1
            continue
        sum_left = _update_sum_left(g, si, sum_left, pos, p, end, s_tot)
        pos = p
        sum_right = s_tot - sum_left
        if friedman:
            n_left = np.float64(p - start)
            n_right = np.float64(end - p)
            diff = n_right * sum_left - n_left * sum_right
            proxy = diff * diff / (n_left * n_right)
        else:
            proxy = sum_left * sum_left / (p - start) + sum_right * sum_right / (end - p)
        if proxy > best_proxy:
            best_proxy = proxy
            best_f = feat
            best_p = p
            best_thr = np.float64(sv[p - 1]) / 2.0 + np.float64(sv[p]) / 2.0
        p += 1
    return best_proxy, best_f, best_p, best_thr


@njit(cache=True, nogil=True, inline="always")
def _remember_constants(splitter: SplitterState, n_known: int, n_found: int) -> None:
    """After a node's search, as the splitter does: the known constant features back in front of
    the order, the ones found in this node recorded after them (for its subtree)."""
    features, constant = splitter.features, splitter.constant
    for q in range(n_known):
        features[q] = constant[q]
    for q in range(n_known, n_known + n_found):
        constant[q] = features[q]


@njit(cache=True, nogil=True, inline="always")
def _find_best_split(
    data: TreeData, g: np.ndarray, ws: TreeWorkspace, node: _Node, s_tot: float, friedman: bool
) -> _Split:
    """BestSplitter.node_split_best: draw the features in the splitter's order (Fisher-Yates from
    the tree's xorshift state, known constant features skipped, new ones set aside), sort the
    samples array by each and scan it. Returns the _Split (pos == node.end: none)."""
    splitter = ws.splitter
    replay = ws.replay
    node_order = ws.members[node.depth]
    features, rng_state, cur = splitter.features, splitter.rng_state, replay.cur
    num_f = features.shape[0]
    vals, idx = _sorted_lists(data, ws.levels, node.depth)
    n_known = node.n_known
    n_total = n_known
    samples = _SamplesArray(np.int64(-2), node.arr1, node.arr2)
    best = (-np.inf, np.int64(-1), node.end, 0.0)
    f_i = num_f
    n_visited = 0
    n_found = 0
    n_drawn = 0
    while f_i > n_total and (n_visited < num_f or n_visited <= n_found + n_drawn):
        n_visited += 1
        f_j = _rand_int(rng_state, n_drawn, f_i - n_found)
        if f_j < n_known:
            _swap_entries(features, n_drawn, f_j)
            n_drawn += 1
            continue
        f_j += n_found
        feat = features[f_j]
        # friedman_mse is scikit-learn <= 1.8's default: its trees also sort as that release did
        samples = _sort_feature(data, node_order, vals, idx, replay, node, feat, samples, friedman)
        sv = vals[feat]
        if sv[node.end - 1] <= sv[node.start] + FEATURE_THRESHOLD:  # constant in this node
            _swap_entries(features, f_j, n_total)
            n_found += 1
            n_total += 1
            continue
        f_i -= 1
        _swap_entries(features, f_i, f_j)
        si = cur if samples.src == -1 else idx[feat]  # -1 here: replayed by this sort (not all equal)
        best = _scan_feature(g, sv, si, node.start, node.end, s_tot, feat, best, friedman)
    _remember_constants(splitter, n_known, n_found)
    return _Split(best[1], best[2], best[3], n_total, samples)


@njit(cache=True, nogil=True, inline="always")
def _partition_samples(
    x_f: np.ndarray,
    idx: np.ndarray,
    node_order: np.ndarray,
    child_order: np.ndarray,
    mark: np.ndarray,
    cur: np.ndarray,
    node: _Node,
    split: _Split,
) -> None:
    """partition_samples_final: mark the samples going left, then partition the samples array as
    the search's last sort left it into the children's part of child_order."""
    start, end = node.start, node.end
    for q in range(start, end):
        s = node_order[q]
        mark[s] = 1 if x_f[s] <= split.threshold else 0
    _load_samples(child_order, split.samples.src, node_order, idx, cur, start, end)
    lo = start
    hi = end
    while lo < hi:
        if mark[child_order[lo]]:
            lo += 1
        else:
            hi -= 1
            tmp = child_order[lo]
            child_order[lo] = child_order[hi]
            child_order[hi] = tmp


@njit(cache=True, nogil=True, inline="always")
def _children_impurity(
    g: np.ndarray, child_order: np.ndarray, start: int, pos: int, end: int, s_tot: float, sq_tot: float
) -> tuple[float, float, float]:
    """criterion.reset(); update(pos); children_impurity(): on the partitioned samples array.
    Returns the children's impurities and the left sum (FriedmanMSE's improvement reads it)."""
    n_left = pos - start
    n_right = end - pos
    sum_left = _update_sum_left(g, child_order, 0.0, start, pos, end, s_tot)
    sq_left = 0.0
    for q in range(start, pos):
        v = g[child_order[q]]
        sq_left += v * v
    sum_right = s_tot - sum_left
    sq_right = sq_tot - sq_left
    imp_left = sq_left / n_left - (sum_left / n_left) ** 2
    imp_right = sq_right / n_right - (sum_right / n_right) ** 2
    return imp_left, imp_right, sum_left


@njit(cache=True, nogil=True, inline="always")
def _apply_split(
    data: TreeData, g: np.ndarray, ws: TreeWorkspace, node: _Node, split: _Split, s_tot: float, sq_tot: float
) -> tuple[float, float, float]:
    """Partition the node's samples into members[depth + 1] by the split; the children's impurities
    and the left sum."""
    _, idx = _sorted_lists(data, ws.levels, node.depth)
    child_order = ws.members[node.depth + 1]
    _partition_samples(
        data.codes_t[split.feature], idx, ws.members[node.depth], child_order, ws.mark, ws.replay.cur, node, split
    )
    return _children_impurity(g, child_order, node.start, split.pos, node.end, s_tot, sq_tot)


@njit(cache=True, nogil=True, inline="always")
def _improvement(n_all: int, impurity: float, node: _Node, split: _Split, imp_left: float, imp_right: float) -> float:
    """criterion.impurity_improvement, weighted by the node's share of the samples."""
    n = node.end - node.start
    n_left = split.pos - node.start
    n_right = node.end - split.pos
    return (np.float64(n) / n_all) * (
        impurity - np.float64(n_right) / n * imp_right - np.float64(n_left) / n * imp_left
    )


@njit(cache=True, nogil=True, inline="always")
def _friedman_improvement(node: _Node, split: _Split, sum_left: float, s_tot: float) -> float:
    """FriedmanMSE.impurity_improvement (one output, unit weights): (n_r sum_l - n_l sum_r)^2 /
    (n_l n_r n), the sums as criterion.reset(); update(pos) leave them on the partitioned array."""
    n_left = np.float64(split.pos - node.start)
    n_right = np.float64(node.end - split.pos)
    diff = n_right * sum_left - n_left * (s_tot - sum_left)  # (scikit-learn divides by n_outputs, 1)
    return diff * diff / (n_left * n_right * np.float64(node.end - node.start))


@njit(cache=True, nogil=True, inline="always")
def _add_node(tree: TreeNodes, node: _Node, node_id: int) -> None:
    """Link node `node_id` under its parent, with no children yet."""
    if node.parent >= 0:
        if node.is_left:
            tree.left[node.parent] = node_id
        else:
            tree.right[node.parent] = node_id
    tree.left[node_id] = -1
    tree.right[node_id] = -1


@njit(cache=True, nogil=True, inline="always")
def _make_leaf(tree: TreeNodes, node_order: np.ndarray, node: _Node, node_id: int) -> None:
    """Mark node `node_id` a leaf and its samples as in it."""
    tree.feature[node_id] = -2
    tree.threshold[node_id] = -2.0
    leaf_of = tree.leaf_of
    for q in range(node.start, node.end):
        leaf_of[node_order[q]] = node_id


@njit(cache=True, nogil=True, inline="always")
def _make_split(tree: TreeNodes, node_id: int, split: _Split) -> None:
    """Give node `node_id` its split."""
    tree.feature[node_id] = split.feature
    tree.threshold[node_id] = split.threshold


@njit(cache=True, nogil=True, inline="always")
def _impurity_decrease(node: _Node, split: _Split, impurity: float, imp_left: float, imp_right: float) -> float:
    """The split's weighted impurity decrease (what feature_importances_ adds up)."""
    n = node.end - node.start
    n_left = split.pos - node.start
    n_right = node.end - split.pos
    return n * impurity - n_left * imp_left - n_right * imp_right


@njit(cache=True, nogil=True, inline="always")
def _partition_sorted_lists(data: TreeData, ws: TreeWorkspace, node: _Node, split: _Split) -> None:
    """Stable partition (branch-free) of every feature's sorted list of the node, by ws.mark, into its
    children's parts of the next level; features constant here are never sorted in the subtree."""
    vals, idx = _sorted_lists(data, ws.levels, node.depth)
    dst_vals = ws.levels.values[node.depth]
    dst_idx = ws.levels.order[node.depth]
    mark = ws.mark
    splitter = ws.splitter
    skip, constant = splitter.skip, splitter.constant
    skip[:] = False
    for q in range(split.n_constant):
        skip[constant[q]] = True
    for f in range(vals.shape[0]):
        if skip[f]:
            continue
        li = node.start
        ri = split.pos
        for q in range(node.start, node.end):
            s = idx[f, q]
            m = np.int64(mark[s])
            dst = ri + m * (li - ri)
            dst_idx[f, dst] = s
            dst_vals[f, dst] = vals[f, q]
            li += m
            ri += 1 - m


@njit(cache=True, nogil=True, inline="always")
def _child(node: _Node, node_id: int, split: _Split, is_left: int, impurity: float) -> _Node:
    """The left (is_left 1) or right child of a split node: its samples, its sample set's hash
    (the parent's, the feature and the split position, the side) and its arrangement's."""
    split1 = _mix(_mix(node.set1, split.feature + 2), split.pos - node.start + 2)
    split2 = _mix(_mix(node.set2, split.feature + 2), split.pos - node.start + 2)
    set1 = _mix(split1, is_left + 2)
    set2 = _mix(split2, is_left + 2)
    start, end = (node.start, split.pos) if is_left else (split.pos, node.end)
    return _Node(
        start,
        end,
        node.depth + 1,
        node_id,
        is_left,
        impurity,
        split.n_constant,
        set1,
        set2,
        _mix(_mix(set1, split.samples.hash1), 3),
        _mix(_mix(set2, split.samples.hash2), 3),
    )


@njit(cache=True, nogil=True, inline="always")
def _push_children(
    stack: NodeStack, top: int, node: _Node, node_id: int, split: _Split, imp_left: float, imp_right: float
) -> int:
    """Push the children, the right one first: the left one is popped (grown) first."""
    top = _push(stack, top, _child(node, node_id, split, np.int64(0), imp_right))
    return _push(stack, top, _child(node, node_id, split, np.int64(1), imp_left))


@njit(cache=True, nogil=True)
def _grow_tree(
    data: TreeData,
    g: np.ndarray,
    seed: int,
    max_depth: int,
    importance: np.ndarray,
    ws: TreeWorkspace,
    friedman: bool,
) -> int:
    """Grow one regression tree on the residuals g as scikit-learn's DepthFirstTreeBuilder does
    (left child first; a leaf at max_depth, below 2 samples, at impurity <= DBL_EPSILON, or where no
    split improves), splitting on squared error or (friedman) friedman_mse. Writes the nodes and
    each sample's leaf into ws.tree, adds the tree's importances to `importance`, returns the node
    count.

    scikit-learn keeps one samples array, re-sorted by every feature it visits, and partitions it
    after the split: that order fixes how its sums round. A sort of values without repeats has one
    result (the presorted list); only sorts of values repeated on different samples are replayed
    (_introsort3_ties), and their outcome is memoised: it depends only on the arrangement the
    samples array had and on the feature, and those recur across the trees of a classifier (every
    root starts from 0..N-1; the same splits recur stage after stage). An arrangement is named by
    a 128-bit hash of how it arose: the node's sample set (the path of splits), the last sorted
    feature and the order it left in the repeated values' spans.
    """
    n_all = data.values.shape[1]
    tree, stack, members = ws.tree, ws.stack, ws.members
    _reset_splitter(ws.splitter, seed)
    top = _push(stack, 0, _root(members[0]))
    n_nodes = 0
    while top > 0:
        top -= 1
        node = _pop(stack, top)
        n = node.end - node.start
        s_tot, sq_tot = _node_sums(g, members[node.depth], node.start, node.end)
        impurity = node.impurity if n_nodes > 0 else sq_tot / n - (s_tot / n) ** 2  # the root's own
        is_leaf = node.depth >= max_depth or n < 2 or impurity <= DBL_EPSILON
        if not is_leaf:
            split = _find_best_split(data, g, ws, node, s_tot, friedman)
            is_leaf = split.pos >= node.end
        if not is_leaf:
            imp_left, imp_right, sum_left = _apply_split(data, g, ws, node, split, s_tot, sq_tot)
            # a "split" whose rounded children are no purer is a leaf (min_impurity_decrease=0);
            # friedman_mse's improvement is a square, so it never is
            if friedman:
                improvement = _friedman_improvement(node, split, sum_left, s_tot)
            else:
                improvement = _improvement(n_all, impurity, node, split, imp_left, imp_right)
            is_leaf = improvement + DBL_EPSILON < 0.0
        node_id = n_nodes
        n_nodes += 1
        _add_node(tree, node, node_id)
        if is_leaf:
            _make_leaf(tree, members[node.depth], node, node_id)
            continue
        _make_split(tree, node_id, split)
        importance[split.feature] += _impurity_decrease(node, split, impurity, imp_left, imp_right)
        if node.depth + 1 < max_depth:  # the children may split: partition every feature's sorted list
            _partition_sorted_lists(data, ws, node, split)
        top = _push_children(stack, top, node, node_id, split, imp_left, imp_right)
    for f in range(importance.shape[0]):
        importance[f] /= n_all
    return n_nodes


@njit(cache=True, nogil=True)
def _pairwise_sum(a, start, n):
    """numpy's pairwise summation of a[start:start + n] (what np.mean adds up), bit for bit."""
    if n < 8:
        res = 0.0
        for i in range(start, start + n):
            res += a[i]
        return res
    if n <= 128:
        r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
        r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
        i = 8
        while i < n - (n % 8):
            j = start + i
            r0 += a[j]
            r1 += a[j + 1]
            r2 += a[j + 2]
            r3 += a[j + 3]
            r4 += a[j + 4]
            r5 += a[j + 5]
            r6 += a[j + 6]
            r7 += a[j + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[start + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, start, n2) + _pairwise_sum(a, start + n2, n - n2)


@njit(cache=True, nogil=True)
def _neg_gradient(raw, y_enc, g):
    """-(HalfMultinomialLoss / HalfBinomialLoss).gradient, with scikit-learn's arithmetic."""
    t_count, n = raw.shape
    if t_count == 1:
        for i in range(n):
            r = raw[0, i]
            yt = np.float64(y_enc[i])
            if r > -37:
                e = np.exp(-r)
                grad = ((1 - yt) - yt * e) / (1 + e)
            else:
                grad = np.exp(r) - yt
            g[0, i] = -grad
        return
    p = np.empty(t_count)
    for i in range(n):
        mx = raw[0, i]
        for k in range(1, t_count):
            if mx < raw[k, i]:
                mx = raw[k, i]
        total = 0.0
        for k in range(t_count):
            p[k] = np.exp(raw[k, i] - mx)
            total += p[k]
        for k in range(t_count):
            pk = p[k] / total
            g[k, i] = -(pk - (1.0 if y_enc[i] == k else 0.0))


@njit(cache=True, nogil=True, inline="always")
def _leaf_values(
    tree: TreeNodes,
    leaves: LeafScratch,
    gk: np.ndarray,
    y_enc: np.ndarray,
    k: int,
    t_count: int,
    num_classes: int,
    n_nodes: int,
) -> None:
    """_update_terminal_regions into tree.value: one Newton step per leaf, the means taken as
    np.mean takes them, over the leaf's samples in index order."""
    n = gk.shape[0]
    leaf_of, value = tree.leaf_of, tree.value
    count, pos, nums, hess = leaves.count, leaves.pos, leaves.num, leaves.hess
    factor = (num_classes - 1) / num_classes
    count[:n_nodes] = 0
    for i in range(n):
        count[leaf_of[i]] += 1
    acc = 0
    for leaf in range(n_nodes):
        pos[leaf] = acc
        acc += count[leaf]
    for i in range(n):
        leaf = leaf_of[i]
        yk = np.float64(y_enc[i] == k) if t_count > 1 else np.float64(y_enc[i])
        prob = yk - gk[i]
        nums[pos[leaf]] = gk[i]
        hess[pos[leaf]] = prob * (1 - prob)
        pos[leaf] += 1
    acc = 0
    for leaf in range(n_nodes):
        c = count[leaf]
        if c == 0:
            value[leaf] = 0.0
            continue
        num = _pairwise_sum(nums, acc, c) / c
        if t_count > 1:
            num *= factor
        den = _pairwise_sum(hess, acc, c) / c
        value[leaf] = 0.0 if abs(den) < 1e-150 else num / den
        acc += c


@njit(cache=True, nogil=True, inline="always")
def _add_tree_output(
    tree: TreeNodes, x_eval_t: np.ndarray, k: int, learning_rate: float, raw: np.ndarray, raw_eval: np.ndarray
) -> None:
    """Add the tree's leaf values, times the learning rate, to row k of the raw predictions: by
    each training sample's leaf, and by walking the tree for each evaluation code."""
    leaf_of, value = tree.leaf_of, tree.value
    left, right, feature, threshold = tree.left, tree.right, tree.feature, tree.threshold
    for i in range(raw.shape[1]):
        raw[k, i] += learning_rate * value[leaf_of[i]]
    for i in range(x_eval_t.shape[1]):
        node = 0
        while left[node] != -1:
            if x_eval_t[feature[node], i] <= threshold[node]:
                node = left[node]
            else:
                node = right[node]
        raw_eval[k, i] += learning_rate * value[node]


@njit(cache=True, nogil=True)
def _stage_trees(
    ks: np.ndarray,
    stage: int,
    data: TreeData,
    x_eval_t: np.ndarray,
    y_enc: np.ndarray,
    num_classes: int,
    seeds: np.ndarray,
    learning_rate: float,
    max_depth: int,
    g: np.ndarray,
    raw: np.ndarray,
    raw_eval: np.ndarray,
    importances: np.ndarray,
    relevant: np.ndarray,
    ws: TreeWorkspace,
    friedman: bool,
) -> None:
    """Grow the trees of classes `ks` of one boosting stage on the stage's negative gradient g, set
    their leaf values and add them to the raw predictions (rows k of raw/raw_eval only, so
    disjoint sets of classes can run in parallel threads with their own workspaces); `friedman`:
    split on friedman_mse instead of squared error."""
    t_count = raw.shape[0]
    for k in ks:
        tree = stage * t_count + k
        n_nodes = _grow_tree(data, g[k], seeds[tree], max_depth, importances[tree], ws, friedman)
        relevant[tree] = n_nodes > 1
        _leaf_values(ws.tree, ws.leaves, g[k], y_enc, k, t_count, num_classes, n_nodes)
        _add_tree_output(ws.tree, x_eval_t, k, learning_rate, raw, raw_eval)


def _boost(
    data: PresortedCodes,
    tied,
    dup,
    x_eval_t,
    y_enc,
    num_classes,
    init_raw,
    seeds,
    n_stages,
    learning_rate,
    max_depth,
    pool=None,
    workers: int = 1,
    friedman: bool = False,
):
    """All stages of one classifier (trees split on friedman_mse if `friedman`, else on squared
    error); each stage's class-trees split over `workers` threads of `pool`
    (class k always on worker k % workers, so a worker's replay memo sees its classes' recurring
    trees). Returns per-tree importances (S*T, F), whether each tree has more than one node, and the
    raw predictions on the training codes (T, N) and on x_eval_t."""
    t_count = init_raw.shape[0]
    n, m = data.num_samples, x_eval_t.shape[1]
    raw = np.repeat(init_raw[:, None], n, axis=1)
    raw_eval = np.repeat(init_raw[:, None], m, axis=1)
    g = np.empty((t_count, n))
    importances = np.zeros((n_stages * t_count, data.num_features))
    relevant = np.zeros(n_stages * t_count, dtype=np.bool_)
    workers = max(1, min(workers if pool is not None else 1, t_count))
    groups = [np.arange(w, t_count, workers) for w in range(workers)]
    spaces = [_workspace(n, data.num_features, max_depth) for _ in range(workers)]
    codes = TreeData(data.codes_t, data.values, data.order, tied, dup)
    args = (
        codes,
        x_eval_t,
        y_enc,
        num_classes,
        seeds,
        learning_rate,
        max_depth,
        g,
        raw,
        raw_eval,
        importances,
        relevant,
    )
    for stage in range(n_stages):
        _neg_gradient(raw, y_enc, g)
        if workers == 1:
            _stage_trees(groups[0], stage, *args, spaces[0], friedman)
        else:
            futures = [pool.submit(_stage_trees, ks, stage, *args, ws, friedman) for ks, ws in zip(groups, spaces)]
            for future in futures:
                future.result()
    return importances, relevant, raw, raw_eval


class PresortedCodes:
    """Codes as the trees see them (float32), each feature sorted once; shared by all factors."""

    def __init__(self, codes: np.ndarray):
        x32 = np.ascontiguousarray(codes, dtype=np.float32)
        if x32.ndim != 2:
            raise ValueError(f"codes must be 2-D (samples, latents), got shape {x32.shape}")
        order = np.argsort(x32, axis=0, kind="stable").T  # (F, N)
        self.order = np.ascontiguousarray(order, dtype=np.int32)
        self.values = np.ascontiguousarray(np.take_along_axis(x32.T, order, axis=1))
        self.codes_t = np.ascontiguousarray(x32.T)
        self.num_samples, self.num_features = x32.shape

    def repeats(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tied, dup): dup[i] numbers the distinct (code row, label) pairs; tied[f] says whether
        feature f has equal values on samples that differ in dup. Samples with equal dup are
        interchangeable in every sum of every tree, so only ties between different ones need
        scikit-learn's sort replayed (duplicated rows, as sampling a finite grid gives, do not)."""
        keys = np.concatenate([self.codes_t.view(np.uint32), labels.reshape(1, -1).astype(np.uint32)]).T
        _, dup = np.unique(keys, axis=0, return_inverse=True)
        dup = np.ascontiguousarray(dup.reshape(-1), dtype=np.int32)
        same_value = self.values[:, 1:] == self.values[:, :-1]
        differ = dup[self.order[:, 1:]] != dup[self.order[:, :-1]]
        return np.ascontiguousarray(np.any(same_value & differ, axis=1)), dup


def _init_raw(y: np.ndarray, num_classes: int) -> np.ndarray:
    """GradientBoostingClassifier's initial raw prediction, from scikit-learn's own prior and link."""
    loss = HalfBinomialLoss() if num_classes == 2 else HalfMultinomialLoss(n_classes=num_classes)
    proba = DummyClassifier(strategy="prior").fit(np.zeros((len(y), 1)), y).predict_proba(np.zeros((1, 1)))
    if num_classes == 2:
        proba = proba[:, 1]
    eps = np.finfo(np.float64).eps
    proba = np.clip(proba, eps, 1 - eps, dtype=np.float64)
    return np.asarray(loss.link.link(proba), dtype=np.float64).reshape(-1)


def fit_predict(
    codes: PresortedCodes | np.ndarray,
    labels,
    eval_codes,
    seed: int,
    n_estimators: int = 100,
    learning_rate: float = 0.1,
    max_depth: int = 3,
    pool=None,
    workers: int = 1,
    criterion: str = TREE_CRITERION,
):
    """Fit like GradientBoostingClassifier(random_state=seed) on (codes, labels); the class-trees of
    each stage run on `workers` threads of the executor `pool` (the result does not depend on it).
    `criterion`: the trees' split criterion, "squared_error" (scikit-learn 1.9's) or "friedman_mse"
    (the default of scikit-learn up to 1.8, bit for bit its GradientBoostingClassifier's).

    Returns (feature_importances_, predicted labels of the training codes, of `eval_codes`).
    """
    friedman = friedman_flag(criterion)
    _warn_if_other_sklearn()
    data = codes if isinstance(codes, PresortedCodes) else PresortedCodes(codes)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != data.num_samples:
        raise ValueError(f"{len(labels)} labels for {data.num_samples} codes")
    classes, y_enc = np.unique(labels, return_inverse=True)
    num_classes = len(classes)
    if num_classes < 2:
        raise ValueError("gradient boosting needs at least two classes")
    init = _init_raw(y_enc, num_classes)
    t_count = 1 if num_classes == 2 else num_classes
    # one randint(0, RAND_R_MAX) per tree from the shared RandomState, in fitting order
    seeds = np.random.RandomState(seed).randint(0, RAND_R_MAX, size=n_estimators * t_count).astype(np.int64)
    x_eval_t = np.ascontiguousarray(np.asarray(eval_codes, dtype=np.float32).T)
    tied, dup = data.repeats(y_enc)
    imps, relevant, raw, raw_eval = _boost(
        data,
        tied,
        dup,
        x_eval_t,
        y_enc.astype(np.int64),
        num_classes,
        init,
        seeds,
        n_estimators,
        float(learning_rate),
        max_depth,
        pool,
        workers,
        friedman,
    )
    if relevant.any():
        avg = np.mean(imps[relevant], axis=0, dtype=np.float64)
        importance = avg / np.sum(avg)
    else:
        importance = np.zeros(data.num_features)

    def decide(r: np.ndarray) -> np.ndarray:
        return classes[(r[0] >= 0).astype(int)] if t_count == 1 else classes[np.argmax(r, axis=0)]

    return importance, decide(raw), decide(raw_eval)


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) every kernel on a tiny problem, so that timing
    a real fit does not include the one-time compilation."""
    rng = np.random.default_rng(0)
    codes = np.round(rng.normal(size=(40, 2)), 1)
    for num_classes in (2, 3):
        for criterion in CRITERIA:
            fit_predict(codes, np.arange(40) % num_classes, codes[:5], seed=0, n_estimators=2, criterion=criterion)
