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
  position, or backward from the node's end when that is shorter);
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

import numpy as np
from numba import njit
from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss
from sklearn.dummy import DummyClassifier

RAND_R_MAX = 2147483647
#: the scikit-learn release whose trees this module replicates (and the tests compare against)
REPLICATES_SKLEARN = "1.9"
_version_warned = False


def _warn_if_other_sklearn() -> None:
    """Other scikit-learn releases may grow other trees (before 1.9 the boosting trees used the
    friedman_mse criterion by default): say so once, and how to get that release's own numbers."""
    global _version_warned
    import sklearn

    if not _version_warned and not sklearn.__version__.startswith(REPLICATES_SKLEARN + "."):
        _version_warned = True
        warnings.warn(f"metrics.gbt replicates scikit-learn {REPLICATES_SKLEARN}'s gradient boosting; installed "
                      f"scikit-learn {sklearn.__version__} may build other trees: use dci backend='sklearn' for its "
                      f"own numbers", RuntimeWarning, stacklevel=3)


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
def _introsort3_ties(values, indices, start, n, tie_vals, n_ties):
    """scikit-learn's simultaneous_sort(use_three_way_partition=True) (sklearn/utils/_sorting.pyx:
    introsort, median-of-3 pivot, 3-way partition, heapsort when too deep, insertion sort below 16)
    on values/indices[start:start+n], followed only into the parts that hold one of the values
    tie_vals[:n_ties] (ascending). The sort is not stable, so the order it leaves equal values in
    decides the order of scikit-learn's sums; this replays it.

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
            if m <= 15:
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


@njit(cache=True, nogil=True)
def _grow_tree(x_t, vals0, order0, tied, dup, g, seed, max_depth, lvl_val, lvl_idx, members, cur, cur_vals, mark,
               leaf_of, node_feat, node_thr, node_left, node_right, importance, tie_vals, tie_start, tie_end,
               tie_buf, memo_keys, memo_span, pool, pool_top):
    """Grow one regression tree on the residuals g as scikit-learn's DepthFirstTreeBuilder does.

    x_t (F, N) float32 codes; vals0/order0 (F, N): each feature's values and sample indices in
    ascending order (stable); tied[f]: feature f repeats a value somewhere. lvl_val/lvl_idx
    (max_depth - 1, F, N) hold the sorted lists partitioned for the nodes of depth 1..;
    members (max_depth + 1, N) each node's samples in scikit-learn's order. Writes the nodes and
    each sample's leaf, adds the tree's importances to `importance`, returns the node count.

    scikit-learn keeps one samples array, re-sorted by every feature it visits, and partitions it
    after the split: that order fixes how its sums round. A sort of values without repeats has one
    result (the presorted list); only sorts of values repeated on different samples are replayed
    (_introsort3_ties), and their outcome is memoised: it depends only on the arrangement the
    samples array had and on the feature, and those recur across the trees of a classifier (every
    root starts from 0..N-1; the same splits recur stage after stage). An arrangement is named by
    a 128-bit hash of how it arose: the node's sample set (the path of splits), the last sorted
    feature and the order it left in the repeated values' spans.
    """
    num_f, n_all = vals0.shape
    thr32 = np.float32(1e-7)
    state = np.empty(1, dtype=np.int64)
    state[0] = seed
    features = np.arange(num_f)
    constant_features = np.zeros(num_f, dtype=np.int64)
    skip = np.zeros(num_f, dtype=np.bool_)
    cap = 2 * max_depth + 2
    st_start = np.empty(cap, np.int64)
    st_end = np.empty(cap, np.int64)
    st_depth = np.empty(cap, np.int64)
    st_parent = np.empty(cap, np.int64)
    st_left = np.empty(cap, np.int64)
    st_imp = np.empty(cap, np.float64)
    st_const = np.empty(cap, np.int64)
    st_set = np.empty((cap, 2), np.uint64)  # hash of the node's sample set
    st_arr = np.empty((cap, 2), np.uint64)  # hash of the samples array's arrangement on entry
    st_start[0], st_end[0], st_depth[0], st_parent[0], st_left[0], st_imp[0], st_const[0] = 0, n_all, 0, -1, 0, 0.0, 0
    st_set[0, 0], st_set[0, 1] = np.uint64(0x243F6A8885A308D3), np.uint64(0x13198A2E03707344)
    st_arr[0, 0], st_arr[0, 1] = _mix(st_set[0, 0], 1), _mix(st_set[0, 1], 1)
    top = 1
    for i in range(n_all):
        members[0, i] = i
    first = True
    n_nodes = 0
    while top > 0:
        top -= 1
        start, end, depth = st_start[top], st_end[top], st_depth[top]
        parent, is_left, impurity, n_known = st_parent[top], st_left[top], st_imp[top], st_const[top]
        set1, set2, arr1, arr2 = st_set[top, 0], st_set[top, 1], st_arr[top, 0], st_arr[top, 1]
        n = end - start
        s_tot = 0.0
        sq_tot = 0.0
        for q in range(start, end):
            v = g[members[depth, q]]
            s_tot += v
            sq_tot += v * v
        is_leaf = depth >= max_depth or n < 2
        if first:
            impurity = sq_tot / n - (s_tot / n) ** 2
            first = False
        is_leaf = is_leaf or impurity <= 2.220446049250313e-16
        best_f = -1
        best_p = end
        best_thr = 0.0
        n_total = n_known
        cur_src = -2  # the samples array: -2 node order (members), f >= 0 sorted list of f, -1 `cur`
        if not is_leaf:
            if depth == 0:
                vals = vals0
                idx = order0
            else:
                vals = lvl_val[depth - 1]
                idx = lvl_idx[depth - 1]
            best_proxy = -np.inf
            f_i = num_f
            n_visited = 0
            n_found = 0
            n_drawn = 0
            while f_i > n_total and (n_visited < num_f or n_visited <= n_found + n_drawn):
                n_visited += 1
                f_j = _rand_int(state, n_drawn, f_i - n_found)
                if f_j < n_known:
                    tmp = features[n_drawn]
                    features[n_drawn] = features[f_j]
                    features[f_j] = tmp
                    n_drawn += 1
                    continue
                f_j += n_found
                feat = features[f_j]
                # sort_samples_and_feature_values(feat)
                sv = vals[feat]
                si = idx[feat]
                if sv[end - 1] == sv[start]:
                    pass  # all equal: the sort leaves the samples array as it is
                else:
                    # values repeated on samples that differ (in code row or label) need
                    # scikit-learn's order; equal samples are interchangeable in every sum
                    n_ties = 0
                    if tied[feat]:
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
                    if n_ties == 0:
                        cur_src = feat
                        arr1 = _mix(_mix(set1, feat + 2), 0)
                        arr2 = _mix(_mix(set2, feat + 2), 0)
                    else:
                        k1 = _mix(arr1, feat + 2)
                        k2 = _mix(arr2, feat + 2)
                        slot = _memo_find(memo_keys, k1, k2)
                        n_span = 0
                        for t in range(n_ties):
                            n_span += tie_end[t] - tie_start[t]
                        if memo_keys[slot, 2] != 0:  # seen: the spans' order is stored
                            off = memo_span[slot]
                            for q in range(n_span):
                                tie_buf[q] = pool[off + q]
                        else:
                            _load_samples(cur, cur_src, members[depth], idx, cur, start, end)
                            for q in range(start, end):
                                cur_vals[q] = x_t[feat, cur[q]]
                            _introsort3_ties(cur_vals, cur, start, n, tie_vals, n_ties)
                            k = 0
                            for t in range(n_ties):
                                for q in range(tie_start[t], tie_end[t]):
                                    tie_buf[k] = cur[q]
                                    k += 1
                            if pool_top[0] + n_span <= pool.shape[0] and pool_top[1] * 10 < memo_keys.shape[0] * 7:
                                off = pool_top[0]
                                for q in range(n_span):
                                    pool[off + q] = tie_buf[q]
                                memo_keys[slot, 0] = k1
                                memo_keys[slot, 1] = k2
                                memo_keys[slot, 2] = 1
                                memo_span[slot] = off
                                pool_top[0] += n_span
                                pool_top[1] += 1
                        for q in range(start, end):
                            cur[q] = si[q]
                        k = 0
                        c1 = _mix(set1, feat + 2)
                        c2 = _mix(set2, feat + 2)
                        for t in range(n_ties):
                            for q in range(tie_start[t], tie_end[t]):
                                cur[q] = tie_buf[k]
                                c1 = _mix(c1, tie_buf[k] + 2)
                                c2 = _mix(c2, tie_buf[k] + 2)
                                k += 1
                        arr1 = _mix(c1, 1)
                        arr2 = _mix(c2, 1)
                        cur_src = -1
                        si = cur
                if sv[end - 1] <= sv[start] + thr32:
                    tmp = features[f_j]
                    features[f_j] = features[n_total]
                    features[n_total] = tmp
                    n_found += 1
                    n_total += 1
                    continue
                f_i -= 1
                tmp = features[f_i]
                features[f_i] = features[f_j]
                features[f_j] = tmp
                # the splitter's scan of the sorted feature, with the criterion's running sums
                sum_left = 0.0
                pos = start
                p = start + 1
                while p < end:
                    if sv[p] <= sv[p - 1] + thr32:
                        p += 1
                        continue
                    sum_left = _update_sum_left(g, si, sum_left, pos, p, end, s_tot)
                    pos = p
                    sum_right = s_tot - sum_left
                    proxy = sum_left * sum_left / (p - start) + sum_right * sum_right / (end - p)
                    if proxy > best_proxy:
                        best_proxy = proxy
                        best_f = feat
                        best_p = p
                        best_thr = np.float64(sv[p - 1]) / 2.0 + np.float64(sv[p]) / 2.0
                    p += 1
            for q in range(n_known):
                features[q] = constant_features[q]
            for q in range(n_known, n_known + n_found):
                constant_features[q] = features[q]
            is_leaf = best_p >= end
        if not is_leaf:
            n_left = best_p - start
            n_right = end - best_p
            for q in range(start, end):
                s = members[depth, q]
                mark[s] = 1 if x_t[best_f, s] <= best_thr else 0
            # partition_samples_final on the samples array as the last sort left it
            child = members[depth + 1]
            _load_samples(child, cur_src, members[depth], idx, cur, start, end)
            lo = start
            hi = end
            while lo < hi:
                if mark[child[lo]]:
                    lo += 1
                else:
                    hi -= 1
                    tmp32 = child[lo]
                    child[lo] = child[hi]
                    child[hi] = tmp32
            # criterion.reset(); update(best_p); children_impurity(); impurity_improvement()
            sum_left = _update_sum_left(g, child, 0.0, start, best_p, end, s_tot)
            sq_left = 0.0
            for q in range(start, best_p):
                v = g[child[q]]
                sq_left += v * v
            sum_right = s_tot - sum_left
            sq_right = sq_tot - sq_left
            imp_left = sq_left / n_left - (sum_left / n_left) ** 2
            imp_right = sq_right / n_right - (sum_right / n_right) ** 2
            improvement = (np.float64(n) / n_all) * (impurity - np.float64(n_right) / n * imp_right
                                                     - np.float64(n_left) / n * imp_left)
            # a "split" whose rounded children are no purer is a leaf (min_impurity_decrease=0)
            is_leaf = improvement + 2.220446049250313e-16 < 0.0
        node_id = n_nodes
        n_nodes += 1
        if parent >= 0:
            if is_left:
                node_left[parent] = node_id
            else:
                node_right[parent] = node_id
        node_left[node_id] = -1
        node_right[node_id] = -1
        if is_leaf:
            node_feat[node_id] = -2
            node_thr[node_id] = -2.0
            for q in range(start, end):
                leaf_of[members[depth, q]] = node_id
            continue
        node_feat[node_id] = best_f
        node_thr[node_id] = best_thr
        importance[best_f] += n * impurity - n_left * imp_left - n_right * imp_right
        if depth + 1 < max_depth:  # the children may split: partition every feature's sorted list
            dst_val = lvl_val[depth]
            dst_idx = lvl_idx[depth]
            skip[:] = False
            for q in range(n_total):  # constant here, so never sorted in the subtree
                skip[constant_features[q]] = True
            for f in range(num_f):
                if skip[f]:
                    continue
                li = start
                ri = best_p
                for q in range(start, end):  # stable partition, branch-free
                    s = idx[f, q]
                    m = np.int64(mark[s])
                    dst = ri + m * (li - ri)
                    dst_idx[f, dst] = s
                    dst_val[f, dst] = vals[f, q]
                    li += m
                    ri += 1 - m
        split1 = _mix(_mix(set1, best_f + 2), best_p - start + 2)
        split2 = _mix(_mix(set2, best_f + 2), best_p - start + 2)
        for side in range(2):  # right child first: the left one is popped (grown) first
            if side == 0:
                st_start[top], st_end[top], st_left[top], st_imp[top] = best_p, end, 0, imp_right
            else:
                st_start[top], st_end[top], st_left[top], st_imp[top] = start, best_p, 1, imp_left
            st_depth[top], st_parent[top], st_const[top] = depth + 1, node_id, n_total
            st_set[top, 0] = _mix(split1, side + 2)
            st_set[top, 1] = _mix(split2, side + 2)
            st_arr[top, 0] = _mix(_mix(st_set[top, 0], arr1), 3)
            st_arr[top, 1] = _mix(_mix(st_set[top, 1], arr2), 3)
            top += 1
    for f in range(num_f):
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


def _workspace(n: int, num_f: int, max_depth: int) -> tuple:
    """Scratch arrays of one tree builder (one per worker thread), with its memo of sort replays."""
    levels = max(max_depth - 1, 1)
    cap = 2 ** (max_depth + 1)
    return (np.empty((levels, num_f, n), np.float32), np.empty((levels, num_f, n), np.int32),
            np.empty((max_depth + 1, n), np.int32), np.empty(n, np.uint8), np.empty(n, np.int32),
            np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.int64), np.empty(n, np.int64),
            np.empty(n, np.int32), np.zeros((1 << 15, 3), np.uint64), np.zeros(1 << 15, np.int64),
            np.empty(1 << 21, np.int32), np.zeros(2, np.int64), np.empty(n, np.int32),
            np.empty(cap, np.int64), np.empty(cap, np.float64), np.empty(cap, np.int64), np.empty(cap, np.int64),
            np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(n), np.empty(n), np.empty(cap))


@njit(cache=True, nogil=True)
def _stage_trees(ks, stage, x_t, vals0, order0, tied, dup, x_eval_t, y_enc, num_classes, seeds, learning_rate,
                 max_depth, g, raw, raw_eval, importances, relevant, ws):
    """Grow the trees of classes `ks` of one boosting stage on the stage's negative gradient g, set
    their leaf values and add them to the raw predictions (rows k of raw/raw_eval only, so
    disjoint sets of classes can run in parallel threads with their own workspaces)."""
    (lvl_val, lvl_idx, members, mark, cur, cur_vals, tie_vals, tie_start, tie_end, tie_buf, memo_keys, memo_span,
     pool, pool_top, leaf_of, node_feat, node_thr, node_left, node_right, leaf_cnt, leaf_pos, buf_num, buf_hess,
     value) = ws
    n = x_t.shape[1]
    m = x_eval_t.shape[1]
    t_count = raw.shape[0]
    factor = (num_classes - 1) / num_classes
    for k in ks:
        tree = stage * t_count + k
        gk = g[k]
        n_nodes = _grow_tree(x_t, vals0, order0, tied, dup, gk, seeds[tree], max_depth, lvl_val, lvl_idx, members,
                             cur, cur_vals, mark, leaf_of, node_feat, node_thr, node_left, node_right,
                             importances[tree], tie_vals, tie_start, tie_end, tie_buf, memo_keys, memo_span, pool,
                             pool_top)
        relevant[tree] = n_nodes > 1
        # _update_terminal_regions: one Newton step per leaf, np.mean over its samples in index order
        leaf_cnt[:n_nodes] = 0
        for i in range(n):
            leaf_cnt[leaf_of[i]] += 1
        acc = 0
        for leaf in range(n_nodes):
            leaf_pos[leaf] = acc
            acc += leaf_cnt[leaf]
        for i in range(n):
            leaf = leaf_of[i]
            yk = np.float64(y_enc[i] == k) if t_count > 1 else np.float64(y_enc[i])
            prob = yk - gk[i]
            buf_num[leaf_pos[leaf]] = gk[i]
            buf_hess[leaf_pos[leaf]] = prob * (1 - prob)
            leaf_pos[leaf] += 1
        acc = 0
        for leaf in range(n_nodes):
            c = leaf_cnt[leaf]
            if c == 0:
                value[leaf] = 0.0
                continue
            num = _pairwise_sum(buf_num, acc, c) / c
            if t_count > 1:
                num *= factor
            den = _pairwise_sum(buf_hess, acc, c) / c
            value[leaf] = 0.0 if abs(den) < 1e-150 else num / den
            acc += c
        for i in range(n):
            raw[k, i] += learning_rate * value[leaf_of[i]]
        for i in range(m):
            node = 0
            while node_left[node] != -1:
                if x_eval_t[node_feat[node], i] <= node_thr[node]:
                    node = node_left[node]
                else:
                    node = node_right[node]
            raw_eval[k, i] += learning_rate * value[node]


def _boost(data: "PresortedCodes", tied, dup, x_eval_t, y_enc, num_classes, init_raw, seeds, n_stages,
           learning_rate, max_depth, pool=None, workers: int = 1):
    """All stages of one classifier; each stage's class-trees split over `workers` threads of `pool`
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
    args = (data.codes_t, data.values, data.order, tied, dup, x_eval_t, y_enc, num_classes, seeds, learning_rate,
            max_depth, g, raw, raw_eval, importances, relevant)
    for stage in range(n_stages):
        _neg_gradient(raw, y_enc, g)
        if workers == 1:
            _stage_trees(groups[0], stage, *args, spaces[0])
        else:
            futures = [pool.submit(_stage_trees, ks, stage, *args, ws) for ks, ws in zip(groups, spaces)]
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


def fit_predict(codes: PresortedCodes | np.ndarray, labels, eval_codes, seed: int, n_estimators: int = 100,
                learning_rate: float = 0.1, max_depth: int = 3, pool=None, workers: int = 1):
    """Fit like GradientBoostingClassifier(random_state=seed) on (codes, labels); the class-trees of
    each stage run on `workers` threads of the executor `pool` (the result does not depend on it).

    Returns (feature_importances_, predicted labels of the training codes, of `eval_codes`).
    """
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
    imps, relevant, raw, raw_eval = _boost(data, tied, dup, x_eval_t, y_enc.astype(np.int64), num_classes, init,
                                           seeds, n_estimators, float(learning_rate), max_depth, pool, workers)
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
        fit_predict(codes, np.arange(40) % num_classes, codes[:5], seed=0, n_estimators=2)
