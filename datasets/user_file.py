"""Your own ground-truth data: an .npz or .h5 of images and factor labels (`--datasets file:PATH`).

The file holds `images` (N, 64, 64), (N, 64, 64, C) or (N, C, 64, 64) with C = 1 or 3, uint8
0..255, bool or float in [0, 1]; `factors` (N, K): integer classes 0..size-1, or floats; and
optionally `factor_names` (K strings) and `factor_sizes` (K integers). Sizes not given are
inferred (largest class + 1). A float column with at most `bins` distinct values is categorical
(classes: its sorted values); with more it is continuous and discretised into `bins` equal-width
bins between its minimum and maximum, numpy.histogram's edges, as the reference discretises for
MIG (`factor_sizes` of a float column sets its bin count; default 20). Every check runs when the
file is opened, before any training; nothing is unpickled.

The rows need not form a full grid. When they form one (every combination exactly once) the
dataset behaves like the official ones. Otherwise `sample_factors` draws rows uniformly (the
factors follow the file's joint distribution) and `observations` answers a combination that no
row holds by the rules of `partial.RowIndex` (docs/datasets.md says what this changes in the
metrics). Draws come from the `rng` passed to `observations`, else from a generator seeded by the
dataset's seed and the requested factors.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from disentbench.choices import SOURCES, or_list
from disentbench.datasets.base import GroundTruthDataset, observation_generator
from disentbench.datasets.files import RemoteFile, search_dirs, verify_file
from disentbench.datasets.partial import RowIndex, combination_weights
from disentbench.datasets.storage import (
    load_images,
    member_memmap,
    memory_limit,
    npz_members,
    read_member,
    reading_dataset_file,
)
from disentbench.errors import BenchError

SPEC_PREFIX = "file:"  # what the user writes: --datasets file:PATH
NAME_PREFIX = "file-"  # the dataset's name in results: file-<file stem>
DEFAULT_BINS = 20  # the reference's MIG discretisation
#: name -> {"path": ..., "bins": ...} of registered files, for worker processes started later
ENV = "DISENTBENCH_FILE_DATASETS"
SUFFIXES = (".npz", ".h5", ".hdf5")
IMAGE_SIZE = 64


@dataclass(frozen=True)
class _OwnFile(RemoteFile):
    """A user's file for the checksum machinery: recorded on first use, and no official copy."""

    def how_to_get(self) -> str:
        return "write the file again (there is no official copy of your own data)"


# --------------------------------------------------------------------------------------------
# Reading and checking the arrays
# --------------------------------------------------------------------------------------------
class _Images:
    """A view of the stored images as (N, 64, 64, C) channels-last, for any stored layout."""

    def __init__(self, array, layout: str):
        self.array, self.layout = array, layout
        n = int(array.shape[0])
        c = 1 if layout == "nhw" else int(array.shape[3] if layout == "nhwc" else array.shape[1])
        self.shape = (n, IMAGE_SIZE, IMAGE_SIZE, c)
        self.dtype = np.dtype(np.uint8) if array.dtype == bool else np.dtype(array.dtype)

    def __getitem__(self, rows) -> np.ndarray:
        block = np.asarray(self.array[rows])
        if self.layout == "nhw":
            block = block[..., None]
        elif self.layout == "nchw":
            block = block.transpose(0, 2, 3, 1)
        return block.astype(np.uint8) if block.dtype == bool else block


def image_layout(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> str:
    """'nhw', 'nhwc' or 'nchw', or a one-line error saying what the images should be."""
    good = "images must be (N, 64, 64), (N, 64, 64, C) or (N, C, 64, 64) with C = 1 or 3"
    if dtype.kind not in "buf" or (dtype.kind == "u" and dtype != np.uint8):
        raise BenchError(f"{path}: images are {dtype}; store uint8 0..255, bool, or float in [0, 1]")
    if len(shape) == 3 and shape[1:] == (IMAGE_SIZE, IMAGE_SIZE):
        return "nhw"
    if len(shape) == 4 and shape[1:3] == (IMAGE_SIZE, IMAGE_SIZE) and shape[3] in (1, 3):
        return "nhwc"
    if len(shape) == 4 and shape[2:] == (IMAGE_SIZE, IMAGE_SIZE) and shape[1] in (1, 3):
        return "nchw"
    raise BenchError(f"{path}: images have shape {tuple(shape)}; {good} (resize other sizes to 64x64 first)")


def _strings(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).reshape(-1)]


def open_npz(path: Path, limit: int | None):
    """(images array, factors, {factor_names, factor_sizes}) of an .npz; object arrays are refused."""
    members = npz_members(path)
    missing = {"images", "factors"} - set(members)
    if missing:
        raise BenchError(
            f"{path}: no {' or '.join(sorted(missing))} array (it has {', '.join(sorted(members)) or 'none'})"
        )
    for key in ("images", "factors", "factor_names", "factor_sizes"):
        if key in members and members[key].dtype.hasobject:
            raise BenchError(f"{path}: {key} holds Python objects; store plain arrays (nothing is unpickled)")
    images = members["images"]
    if images.compressed and images.nbytes > memory_limit(limit):
        raise BenchError(
            f"{path}: images are compressed ({images.nbytes:,} bytes unpacked, over the memory limit), so they cannot "
            f"be read per batch; save them with numpy.savez (not savez_compressed) or as .h5, or raise "
            f"DISENTBENCH_MEMORY_LIMIT"
        )
    array = read_member(images) if images.compressed else member_memmap(images)
    extra = {k: read_member(members[k]) for k in ("factor_names", "factor_sizes") if k in members}
    return array, read_member(members["factors"]), extra


def _open_h5_file(path: Path):
    import h5py

    return h5py.File(path, "r")


def read_h5(path: Path, h5):
    """(images dataset, factors, {factor_names, factor_sizes}) of an open .h5 (h5py never unpickles)."""
    missing = {"images", "factors"} - set(h5.keys())
    if missing:
        raise BenchError(f"{path}: no {' or '.join(sorted(missing))} dataset (it has {', '.join(sorted(h5.keys()))})")
    extra = {k: h5[k][()] for k in ("factor_names", "factor_sizes") if k in h5}
    return h5["images"], h5["factors"][()], extra


def _close(h5) -> None:
    if h5 is not None:
        try:
            h5.close()
        except Exception:  # already closed, or never opened properly
            pass


@dataclass(frozen=True)
class Factor:
    """One factor column: its name, class count, and how the classes were made from the stored labels."""

    name: str
    size: int
    kind: str  # "integer", "categorical" (float values, sorted) or "binned" (continuous, equal-width bins)
    values: tuple[float, ...] = ()  # categorical: the value of each class
    edges: tuple[float, ...] = ()  # binned: the bin edges (size + 1)

    def describe(self) -> dict:
        out: dict = {"kind": self.kind, "size": self.size}
        if self.values:
            out["values"] = list(self.values)
        if self.edges:
            out["bins"] = self.size
            out["range"] = [self.edges[0], self.edges[-1]]
        return out


def factor_classes(
    path: Path, labels: np.ndarray, names: list[str] | None, sizes: list[int] | None, bins: int
) -> tuple[np.ndarray, list[Factor]]:
    """Integer classes (N, K) and the factors, from the stored labels, or a one-line error."""
    from disentbench.metrics.utils import histogram_discretize

    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or labels.shape[1] < 1:
        raise BenchError(f"{path}: factors has shape {labels.shape}, expected (N, K): one column per factor")
    k = labels.shape[1]
    if labels.dtype.kind not in "biuf":
        raise BenchError(f"{path}: factors are {labels.dtype}; store integer classes or float values")
    names = names if names is not None else [f"factor_{j}" for j in range(k)]
    if len(names) != k or len(set(names)) != k or not all(names):
        raise BenchError(f"{path}: factor_names {names} must be {k} distinct non-empty names, one per factors column")
    if sizes is not None and len(sizes) != k:
        raise BenchError(f"{path}: factor_sizes has {len(sizes)} entries for {k} factors columns")
    classes = np.empty(labels.shape, dtype=np.int64)
    factors = []
    for j, name in enumerate(names):
        col = labels[:, j]
        if col.dtype.kind == "f":
            if not np.isfinite(col).all():
                row = int(np.flatnonzero(~np.isfinite(col))[0])
                raise BenchError(f"{path}: factor {name} is {col[row]} in row {row}; labels must be finite")
            n_bins = bins if sizes is None else sizes[j]
            if n_bins < 2:
                raise BenchError(f"{path}: factor_sizes gives {name} (float values) {n_bins} bins; use 2 or more")
            values, inverse = np.unique(col, return_inverse=True)
            if len(values) <= n_bins:
                classes[:, j] = inverse.reshape(-1)
                factors.append(Factor(name, len(values), "categorical", values=tuple(float(v) for v in values)))
            else:
                classes[:, j] = histogram_discretize(col[:, None], n_bins)[:, 0] - 1
                edges = np.histogram_bin_edges(col.astype(np.float64), n_bins)
                factors.append(Factor(name, n_bins, "binned", edges=tuple(float(e) for e in edges)))
        else:
            col = col.astype(np.int64)
            if col.min() < 0:
                row = int(np.argmin(col))
                raise BenchError(f"{path}: factor {name} is {col[row]} in row {row}; integer classes start at 0")
            size = int(col.max()) + 1 if sizes is None else int(sizes[j])
            if col.max() >= size:
                row = int(np.argmax(col))
                raise BenchError(
                    f"{path}: factor_sizes gives {name} {size} classes, but row {row} has class {col[row]}; "
                    f"the sizes and the labels disagree"
                )
            classes[:, j] = col
            factors.append(Factor(name, size, "integer"))
        if factors[-1].size < 2:
            raise BenchError(f"{path}: factor {name} takes one value in every row; drop it (a constant is no factor)")
    return classes, factors


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------
class UserFileDataset(GroundTruthDataset):
    """A user's .npz or .h5 (see the module doc); `source` is "file"."""

    source = "file"

    def __init__(
        self,
        path: str | os.PathLike,
        name: str | None = None,
        verify: bool = True,
        device: str | torch.device = "cpu",
        bins: int = DEFAULT_BINS,
        memory_limit: int | None = None,
        seed: int = 0,
    ):
        super().__init__(device)
        self.path = Path(path)
        self.name = name or dataset_name(self.path)
        self.verified, self.seed, self.bins = bool(verify), int(seed), int(bins)
        if self.path.suffix.lower() not in SUFFIXES:
            raise BenchError(
                f"{self.path}: give an .npz or .h5 file of images and factors (got {self.path.suffix or 'no suffix'})"
            )
        if not self.path.is_file():
            raise BenchError(f"{self.path}: no such file")
        self.checksum = None
        if verify:
            own = _OwnFile(self.name, self.path.name, "", "sha256", None)
            self.checksum = f"sha256:{verify_file(self.path, own)}"
        h5 = None  # the h5 file once open; the cleanup reads it when it runs, so it closes what was opened
        with reading_dataset_file(self.path, "file", cleanup=lambda: _close(h5)):
            if self.path.suffix.lower() == ".npz":
                array, labels, extra = open_npz(self.path, memory_limit)
            else:
                h5 = _open_h5_file(self.path)
                array, labels, extra = read_h5(self.path, h5)
            self._setup(array, labels, extra, memory_limit)
        if h5 is not None and self.images.in_memory:
            _close(h5)
            h5 = None
        self._h5 = h5  # kept open while the images are read from it per batch

    def _setup(self, array, labels: np.ndarray, extra: dict, limit: int | None) -> None:
        layout = image_layout(self.path, tuple(array.shape), np.dtype(array.dtype))
        view = _Images(array, layout)
        n = view.shape[0]
        if n < 2:
            raise BenchError(f"{self.path}: {n} image(s); a dataset needs at least 2")
        labels = np.asarray(labels)
        if labels.shape[:1] != (n,):
            raise BenchError(
                f"{self.path}: {n} images but factors has shape {labels.shape}: one row of labels per image"
            )
        names = _strings(extra["factor_names"]) if "factor_names" in extra else None
        sizes = None
        if "factor_sizes" in extra:
            raw = np.asarray(extra["factor_sizes"]).reshape(-1)
            if raw.dtype.kind not in "iu" or (raw < 1).any():
                raise BenchError(f"{self.path}: factor_sizes {raw.tolist()} must be positive integers")
            sizes = [int(s) for s in raw]
        self.classes, self.factors = factor_classes(self.path, labels, names, sizes, self.bins)
        self.factor_names = tuple(f.name for f in self.factors)
        self.factor_sizes = tuple(f.size for f in self.factors)
        self.observation_shape = (view.shape[3], IMAGE_SIZE, IMAGE_SIZE)
        try:
            keys = self.classes @ combination_weights(self.factor_sizes)
        except BenchError as exc:
            raise BenchError(f"{self.path}: {exc}") from None
        self.distinct = int(len(np.unique(keys)))
        self.complete_grid = self.distinct == n == int(np.prod(self.factor_sizes))
        if self.complete_grid:
            self._row_of = np.empty(n, dtype=np.int64)
            self._row_of[keys] = np.arange(n)
            self._index = None
        else:
            self._index = RowIndex(self.classes, self.factor_sizes)
        check = _check_float(self.path) if view.dtype.kind == "f" else None
        self.images = load_images(self.path, view, self.device, limit, check=check)

    # --- factors and rows ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.classes)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Full grid: every factor uniform and independent (like the official datasets). Otherwise
        the factors of rows drawn uniformly: the file's own joint distribution."""
        if self.complete_grid:
            return super().sample_factors(n, rng)
        if not isinstance(rng, np.random.Generator):
            raise TypeError("sample_factors needs an explicit numpy Generator (np.random.default_rng(seed))")
        return self.classes[rng.integers(0, len(self.classes), size=int(n))]

    def index_of(self, factors: np.ndarray) -> np.ndarray:
        """The row holding each factor vector (the first such row); a missing combination is an error."""
        f = self._check_factors(factors)
        if self.complete_grid:
            return self._row_of[f @ combination_weights(self.factor_sizes)]
        lo, hi = self._index.full.ranges(f @ self._index.weights)
        if (hi == lo).any():
            raise BenchError(f"{self.name}: no row holds factors {f[np.argmax(hi == lo)].tolist()}")
        return self._index.full.order[lo]

    def factors_of(self, index: np.ndarray | int) -> np.ndarray:
        """The factor classes of rows of the file."""
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        if (idx < 0).any() or (idx >= len(self)).any():
            raise BenchError(f"{self.name}: index out of range [0, {len(self)})")
        return self.classes[idx]

    def rows_for(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """The rows whose images answer a request (`partial.RowIndex` rules when rows are missing)."""
        f = self._check_factors(factors)
        if self.complete_grid:
            return self._row_of[f @ combination_weights(self.factor_sizes)]
        if rng is None:
            rng = observation_generator(self.seed, f)
        elif not isinstance(rng, np.random.Generator):
            raise TypeError("observations needs an explicit numpy Generator (np.random.default_rng(seed)) or None")
        return self._index.rows_for(f, rng)

    def observations(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        return self.images.gather(self.rows_for(factors, rng))

    def to(self, device: str | torch.device) -> UserFileDataset:
        super().to(device)
        self.images.to(device)
        return self

    def describe(self) -> dict:
        out = {
            **super().describe(),
            "data_file": str(self.path),
            "verified": self.verified,
            "factor_names": list(self.factor_names),
            "factor_sizes": list(self.factor_sizes),
            "factors": {f.name: f.describe() for f in self.factors},
            "rows": len(self),
            "combinations": self.distinct,
            "complete_grid": self.complete_grid,
            "nuisance_seed": self.seed,
        }
        if self.checksum:
            out["data_checksum"] = self.checksum
        return out


def _check_float(path: Path):
    """The pixel check of float images: every value in [0, 1] (NaN fails)."""

    def check(chunk: np.ndarray, start: int) -> None:
        bad = ~((chunk >= 0) & (chunk <= 1))
        if bad.any():
            row = start + int(np.argwhere(bad)[0][0])
            raise BenchError(f"{path}: float images must lie in [0, 1]; image {row} does not")

    return check


# --------------------------------------------------------------------------------------------
# Names: file:PATH on the command line, file-<stem> in results
# --------------------------------------------------------------------------------------------
_FILES: dict[str, dict] = {}


def dataset_name(path: Path) -> str:
    """file-<stem>, with characters that do not belong in a folder name replaced by '-'."""
    return NAME_PREFIX + (re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path).stem).strip("-.") or "data")


def register(spec: str | os.PathLike, name: str | None = None, bins: int = DEFAULT_BINS) -> tuple[str, dict]:
    """Remember a user's file under a dataset name (default file-<stem>), in this process and, through
    $DISENTBENCH_FILE_DATASETS, in the worker processes it starts. Returns (name, entry)."""
    text = str(spec)
    path = Path(text[len(SPEC_PREFIX) :] if text.startswith(SPEC_PREFIX) else text).expanduser()
    if not path.is_file():
        raise BenchError(f"{SPEC_PREFIX}{path}: no such file; give an .npz or .h5 of images and factors")
    if path.suffix.lower() not in SUFFIXES:
        raise BenchError(f"{SPEC_PREFIX}{path}: give an .npz or .h5 file (got {path.suffix or 'no suffix'})")
    name = name or dataset_name(path)
    entry = {"path": str(path.resolve()), "bins": int(bins)}
    known = _FILES.get(name) or _from_env().get(name)
    if known is not None and known != entry:
        raise BenchError(
            f"{SPEC_PREFIX}{path}: the name {name} already stands for {known['path']}; rename one of the files"
        )
    _FILES[name] = entry
    os.environ[ENV] = json.dumps({**_from_env(), name: entry})
    _remember(name, entry)
    return name, entry


def _known_path() -> Path:
    from disentbench.datasets.files import cache_dir

    return cache_dir() / "user_datasets.json"


def _remember(name: str, entry: dict) -> None:
    """Note the name in the cache folder too, so a later command on this machine (`report`, or
    `--datasets file-<stem>`) finds the file; the latest registration of a name wins there."""
    from disentbench.atomic import write_json

    try:
        write_json(_known_path(), {**_from_cache(), name: entry})
    except OSError:
        pass  # no writable cache: later commands need file:PATH again


def _from_cache() -> dict[str, dict]:
    try:
        data = json.loads(_known_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _from_env() -> dict[str, dict]:
    try:
        data = json.loads(os.environ.get(ENV, "") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def lookup(name: str, data_dir=None) -> dict | None:
    """A file-<stem> name's entry: registered here, inherited from the process that started this one,
    noted by an earlier command in the cache folder, or `<stem>.npz`/`.h5`/`.hdf5` in the data folders."""
    entry = _FILES.get(name) or _from_env().get(name) or _from_cache().get(name)
    if entry is not None and Path(entry.get("path", "")).is_file():
        return entry
    stem = name[len(NAME_PREFIX) :]
    for d in search_dirs(data_dir):
        for suffix in SUFFIXES:
            if (d / (stem + suffix)).is_file():
                return {"path": str(d / (stem + suffix)), "bins": DEFAULT_BINS}
    return None


def factory(name: str):
    """The registered factory of a file-<stem> dataset (the same signature as every dataset's)."""

    def make(source: str = "auto", data_dir=None, verify: bool = True, device="cpu") -> UserFileDataset:
        if source not in (*SOURCES, "file"):
            raise BenchError(f"unknown source {source!r}; choose {or_list(SOURCES)}")
        entry = lookup(name, data_dir)
        if entry is None:
            raise BenchError(f"{name}: no file known under this name; pass --datasets {SPEC_PREFIX}PATH")
        return UserFileDataset(entry["path"], name=name, verify=verify, device=device, bins=entry["bins"])

    make.__qualname__ = f"user_file.{name}"
    return make
