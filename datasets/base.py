"""The ground-truth dataset interface every metric and the trainer rely on.

A dataset is a full factorial grid of integer factor classes stored in row-major order (last factor
fastest). Subclasses provide only `observations(factors)`; everything else follows from the sizes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from disentbench.errors import BenchError


def observation_generator(seed: int, factors: np.ndarray) -> np.random.Generator:
    """The generator of an observation's random draws (a nuisance, or which of several rows) when the
    caller passes none: seeded by the dataset's seed and the requested factors themselves. The same
    request therefore gives the same images in any process, in any order of calls and after a
    resume, and different requests give independent draws."""
    data = np.ascontiguousarray(factors, dtype=np.int64)
    digest = hashlib.blake2b(data.tobytes() + str(data.shape).encode(), digest_size=16).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest, "little")])


class GroundTruthDataset:
    """Base class: factor bookkeeping, uniform factor sampling, index <-> factors conversion."""

    name: str = "dataset"
    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    observation_shape: tuple[int, int, int] = (1, 64, 64)
    source: str = "procedural"  # "official", "procedural" or "file" (a user's own data)
    #: every factor combination has exactly one observation (False: a user's file with rows missing)
    complete_grid: bool = True
    #: observations(f)[i] depends on f[i] alone, the same at every call (no nuisance drawn per request),
    #: so a metric may keep one code per factor combination (metrics.image_codes)
    image_per_factors: bool = False

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)

    # --- factors -------------------------------------------------------------------------
    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes))

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n factor vectors, every factor uniform and independent: int64 array (n, K)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError("sample_factors needs an explicit numpy Generator (np.random.default_rng(seed))")
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return rng.integers(0, sizes, size=(int(n), len(sizes)), dtype=np.int64)

    def _check_factors(self, factors: np.ndarray | Sequence) -> np.ndarray:
        f = np.asarray(factors)
        if f.ndim == 1:
            f = f[None, :]
        if f.ndim != 2 or f.shape[1] != self.num_factors:
            raise BenchError(f"{self.name}: factors must have shape (n, {self.num_factors}), got {f.shape}")
        if not np.issubdtype(f.dtype, np.integer):
            raise BenchError(f"{self.name}: factors must be integer class indices, got dtype {f.dtype}")
        sizes = np.asarray(self.factor_sizes)
        if (f < 0).any() or (f >= sizes).any():
            raise BenchError(f"{self.name}: factor index out of range; sizes are {list(self.factor_sizes)}")
        return f.astype(np.int64, copy=False)

    def index_of(self, factors: np.ndarray) -> np.ndarray:
        """Row-major flat index of each factor vector in the official file."""
        f = self._check_factors(factors)
        return np.ravel_multi_index(tuple(f.T), self.factor_sizes).astype(np.int64)

    def factors_of(self, index: np.ndarray | int) -> np.ndarray:
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        if (idx < 0).any() or (idx >= len(self)).any():
            raise BenchError(f"{self.name}: index out of range [0, {len(self)})")
        return np.stack(np.unravel_index(idx, self.factor_sizes), axis=1).astype(np.int64)

    # --- observations --------------------------------------------------------------------
    def observations(self, factors: np.ndarray) -> torch.Tensor:
        """Images for integer factors (n, K): float32 tensor (n, C, H, W) in [0, 1] on self.device."""
        raise NotImplementedError

    def to(self, device: str | torch.device) -> GroundTruthDataset:
        self.device = torch.device(device)
        return self

    def describe(self) -> dict:
        """Provenance of the data for result rows."""
        return {"dataset": self.name, "data_source": self.source}


class OfficialFileDataset(GroundTruthDataset):
    """Base of the loaders of official files: the path, the grid (tests pass reduced sizes) and the
    checksum verification on first use, recorded in the results."""

    source = "official"

    def __init__(self, path, remote, verify: bool, factor_sizes: Sequence[int], device):
        from disentbench.datasets.files import verify_file

        super().__init__(device)
        self.path = Path(path)
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.verified = bool(verify)
        #: "<algorithm>:<digest>" of the file, when verified (checked, or recorded on first use)
        self.checksum: str | None = None
        if verify:
            self.checksum = f"{remote.algorithm}:{verify_file(self.path, remote)}"

    def describe(self) -> dict:
        out = {**super().describe(), "data_file": str(self.path), "verified": self.verified}
        if self.checksum:
            out["data_checksum"] = self.checksum
        return out
