"""Shared pieces of the reference metrics: histogram discretiser, discrete MI and entropy.

Vectorised (one contingency table per pair via bincount) but numerically the same as
disentanglement_lib's loops over sklearn.metrics.mutual_info_score.
"""
from __future__ import annotations

import numpy as np


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Per column: `num_bins` equal-width bins between min and max (numpy.histogram edges), then
    numpy.digitize against all edges but the last. Values 1..num_bins. Input (N, D) -> (N, D) int."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram(codes[:, d], num_bins)[1]
        out[:, d] = np.digitize(codes[:, d], edges[:-1])
    return out


def _relabel(column: np.ndarray) -> tuple[np.ndarray, int]:
    uniques, inverse = np.unique(column, return_inverse=True)
    return inverse.reshape(-1), len(uniques)


def mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """MI in nats between two discrete label arrays (sklearn.metrics.mutual_info_score's value)."""
    a, na = _relabel(np.asarray(a))
    b, nb = _relabel(np.asarray(b))
    n = a.shape[0]
    joint = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb).astype(np.float64)
    nz = joint > 0
    pa = joint.sum(axis=1, keepdims=True)
    pb = joint.sum(axis=0, keepdims=True)
    nij = joint[nz]
    outer = (pa @ pb)[nz]
    mi = np.sum(nij / n * (np.log(nij) - np.log(n) - np.log(outer) + 2 * np.log(n)))
    return float(max(mi, 0.0))


def discrete_mutual_info(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """MI matrix (D, K) between discrete code columns and factor columns."""
    codes, factors = np.asarray(codes), np.asarray(factors)
    return np.array([[mutual_info(codes[:, d], factors[:, k]) for k in range(factors.shape[1])]
                     for d in range(codes.shape[1])])


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Entropy in nats of each column (= its MI with itself)."""
    factors = np.asarray(factors)
    out = np.empty(factors.shape[1])
    for k in range(factors.shape[1]):
        _, counts = np.unique(factors[:, k], return_counts=True)
        p = counts / counts.sum()
        out[k] = float(-(p * np.log(p)).sum())
    return out


def check_arrays(codes: np.ndarray, factors: np.ndarray, what: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Validate (N, D) float codes and (N, K) integer factors with the same N."""
    from bench.errors import BenchError

    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2:
        raise BenchError(f"{what} codes and factors must be 2-D (N, D) and (N, K); got {codes.shape} and {factors.shape}")
    if codes.shape[0] != factors.shape[0]:
        raise BenchError(f"{what} codes have {codes.shape[0]} rows but factors have {factors.shape[0]}")
    if codes.shape[0] < 2:
        raise BenchError(f"{what} set needs at least 2 points")
    if not np.issubdtype(factors.dtype, np.integer):
        if not np.all(np.equal(np.mod(factors, 1), 0)):
            raise BenchError(f"{what} factors must be integer class indices")
        factors = factors.astype(np.int64)
    if not np.isfinite(codes).all():
        raise BenchError(f"{what} codes contain NaN or infinite values")
    return codes, factors
