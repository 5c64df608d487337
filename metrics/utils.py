"""Shared pieces of the reference metrics: histogram discretiser, discrete MI and entropy.

Contingency tables come from one bincount per pair; the MI arithmetic follows
sklearn.metrics.mutual_info_score term by term, so the numbers are the reference's (checked in
tests/test_metric_mig.py against sklearn and a brute-force count).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from disentbench.errors import BenchError


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Per column: `num_bins` equal-width bins between min and max (numpy.histogram edges), then
    numpy.digitize against all edges but the last. Values 1..num_bins. Input (N, D) -> (N, D) int."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, d], num_bins)
        out[:, d] = np.digitize(codes[:, d], edges[:-1])
    return out


def _relabel(column: np.ndarray) -> tuple[np.ndarray, int]:
    uniques, inverse = np.unique(np.asarray(column).reshape(-1), return_inverse=True)
    return inverse.reshape(-1), len(uniques)


def _mi_from_labels(a: np.ndarray, na: int, b: np.ndarray, nb: int) -> float:
    """MI of two relabelled (0..n-1) arrays, with sklearn's arithmetic."""
    if na == 1 or nb == 1:
        return 0.0
    joint = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb)
    nzx, nzy = np.nonzero(joint)
    nz_val = joint[nzx, nzy].astype(np.float64)
    total = float(a.shape[0])
    pi, pj = joint.sum(axis=1), joint.sum(axis=0)
    log_contingency_nm = np.log(nz_val)
    contingency_nm = nz_val / total
    outer = pi.take(nzx).astype(np.int64) * pj.take(nzy).astype(np.int64)
    log_outer = -np.log(outer) + np.log(pi.sum()) + np.log(pj.sum())
    mi = contingency_nm * (log_contingency_nm - np.log(total)) + contingency_nm * log_outer
    mi = np.where(np.abs(mi) < np.finfo(mi.dtype).eps, 0.0, mi)
    return float(np.clip(mi.sum(), 0.0, None))


def mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """MI in nats between two discrete label arrays (sklearn.metrics.mutual_info_score's value)."""
    return _mi_from_labels(*_relabel(a), *_relabel(b))


def discrete_mutual_info(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """MI matrix (D, K) between discrete code columns and factor columns (each column relabelled once)."""
    codes, factors = np.asarray(codes), np.asarray(factors)
    cols = [_relabel(codes[:, d]) for d in range(codes.shape[1])]
    facs = [_relabel(factors[:, k]) for k in range(factors.shape[1])]
    return np.array([[_mi_from_labels(*c, *f) for f in facs] for c in cols]).reshape(len(cols), len(facs))


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Entropy in nats of each column (= its MI with itself, as the reference computes it)."""
    factors = np.asarray(factors)
    out = np.empty(factors.shape[1])
    for k in range(factors.shape[1]):
        labels, n = _relabel(factors[:, k])
        out[k] = _mi_from_labels(labels, n, labels, n)
    return out


def check_arrays(
    codes: np.ndarray, factors: np.ndarray, what: str = "train", continuous_factors: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Validate (N, D) float codes and (N, K) integer factors (finite floats when
    `continuous_factors`) with the same N."""
    if codes is None or factors is None:
        raise BenchError(f"{what} codes and factors are missing: pass both arrays")
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2:
        raise BenchError(
            f"{what} codes and factors must be 2-D (N, D) and (N, K); got {codes.shape} and {factors.shape}"
        )
    if codes.shape[0] != factors.shape[0]:
        raise BenchError(f"{what} codes have {codes.shape[0]} rows but factors have {factors.shape[0]}")
    if codes.shape[0] < 2:
        raise BenchError(f"{what} set needs at least 2 points")
    if codes.shape[1] < 1 or factors.shape[1] < 1:
        raise BenchError(f"{what} codes and factors need at least one column each")
    if continuous_factors:
        factors = np.asarray(factors, dtype=np.float64)
        if not np.isfinite(factors).all():
            raise BenchError(f"{what} factors contain NaN or infinite values")
    elif not np.issubdtype(factors.dtype, np.integer):
        if not np.issubdtype(factors.dtype, np.number) or not np.all(np.equal(np.mod(factors, 1), 0)):
            raise BenchError(f"{what} factors must be integer class indices")
        factors = factors.astype(np.int64)
    if not np.isfinite(codes).all():
        raise BenchError(f"{what} codes contain NaN or infinite values")
    return codes, factors


def check_pair(train_codes, train_factors, test_codes, test_factors, name: str, continuous_factors: bool = False):
    """Validate a train and a test set with the same number of latents and factors."""
    if test_codes is None or test_factors is None:
        raise BenchError(f"{name} needs a test set: pass test_codes and test_factors (or num_test > 0)")
    train_codes, train_factors = check_arrays(train_codes, train_factors, "train", continuous_factors)
    test_codes, test_factors = check_arrays(test_codes, test_factors, "test", continuous_factors)
    if test_codes.shape[1] != train_codes.shape[1] or test_factors.shape[1] != train_factors.shape[1]:
        raise BenchError(f"{name}: train and test sets must have the same number of latents and factors")
    return train_codes, train_factors, test_codes, test_factors


def resolve_jobs(n_jobs: int | None, tasks: int) -> int:
    """Worker count: None or -1 means every CPU this process may use, never more than the tasks."""
    if n_jobs is None or n_jobs < 0:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cpus = os.cpu_count() or 1
        n_jobs = cpus
    return max(1, min(int(n_jobs), tasks))


def one_blas_thread():
    """Pin BLAS to one thread for the enclosed fits (a context manager), as every metric does around
    its scikit-learn estimators: their products are tiny, so one BLAS thread is fastest, and factors
    fitted in parallel threads must not each start a full BLAS pool (2 BLAS threads per fit on 2
    cores ran ~30x slower on a busy machine)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


@contextmanager
def quiet_estimators() -> Iterator[None]:
    """Silence convergence warnings of the reference estimators (their defaults are the contract)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
