"""SmallNORB (LeCun, Huang & Bottou 2004): the six official binary-matrix files, resized to 64x64.

Each split (training: instances 4, 6, 7, 8, 9; testing: 0, 1, 2, 3, 5) has three files in the
NORB binary-matrix format (little-endian int32 magic, int32 ndim, max(3, ndim) int32 dims, data):
`-dat` (24300, 2, 96, 96) uint8 stereo pairs, `-cat` (24300,) int32 category, `-info` (24300, 4)
int32 instance, elevation, azimuth (0, 2, ..., 34) and lighting. Read as distributed (.mat.gz,
sha256-checked against the checksums TensorFlow Datasets records) or gunzipped (.mat, as the
reference's download script leaves them; checksum recorded on first use).

As in the reference: both splits together (48,600 images, every combination of category 5,
instance 10, elevation 9, azimuth 18, lighting 6 once), the left image of each pair, resized to
64x64 (Lanczos), azimuth halved to 0..17. The factors are category, elevation, azimuth and
lighting; the instance is not a factor but drawn uniformly for every observation.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from disentbench.choices import SOURCES, or_list
from disentbench.datasets.base import GroundTruthDataset, observation_generator
from disentbench.datasets.files import RemoteFile, find_file, not_found
from disentbench.datasets.preprocess import resize_gray_integer, source_identity
from disentbench.datasets.storage import preprocessed_images
from disentbench.errors import BenchError

FACTOR_NAMES = ("category", "elevation", "azimuth", "lighting")
#: every stored factor, instance included: category, instance, elevation, azimuth / 2, lighting
FULL_SIZES = (5, 10, 9, 18, 6)
SPLITS = ("5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing")
KINDS = ("dat", "cat", "info")
URL = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
# sha256 and size of the distributed .mat.gz files, as TensorFlow Datasets records them
GZ_CHECKSUMS = {
    "training-dat": ("5ffd6272a07d32695ee1082a26a41a93a37aab8c28da047f8c34ed348d214873", 131_896_188),
    "training-cat": ("2784e542c1922060691090952b6cd6278879a216c90f81476f0f00256d42cdaa", 348),
    "training-info": ("de7eb932ebe7a4ee16217fead60660d0eb3d23632c2f4d1c51f88c501c17bf32", 71_052),
    "testing-dat": ("cf7104eed3e51174d2f65b66d1e5878b9da233b886f161b0d88f4510ba2c7474", 130_799_817),
    "testing-cat": ("ecaf6d5bb8c3bc5eab9cf0258f6d2198dd474e016e374836fc097f2e5ff509ff", 347),
    "testing-info": ("16adf314226327ee006d1a44db8cfef52773c06c829951d5653a9f6f310248a2", 10_428),
}
MAGIC = {0x1E3D4C55: np.dtype(np.uint8), 0x1E3D4C54: np.dtype("<i4")}  # the two kinds the files use
IMAGE_SIZE = 96


def file_name(split: str, kind: str) -> str:
    return f"smallnorb-{split}-{kind}.mat"


def remote(split: str, kind: str, gz: bool) -> RemoteFile:
    """The .mat.gz as distributed (published checksum), or the gunzipped .mat (recorded on first use)."""
    name = file_name(split, kind)
    tag = f"{split.rsplit('-', 1)[1]}-{kind}"
    digest, size = GZ_CHECKSUMS[tag] if gz else (None, None)
    return RemoteFile(
        "smallnorb", name + (".gz" if gz else ""), URL + name + ".gz", "sha256", digest, size, "small_norb"
    )


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def read_header(f, path: Path, kind: str) -> tuple[np.dtype, tuple[int, ...]]:
    """The element type and dims of a NORB binary matrix; the stream is left at the data."""
    head = f.read(8)
    if len(head) != 8:
        raise BenchError(f"{path}: truncated before its header ends")
    magic, ndim = (int(v) for v in np.frombuffer(head, "<i4"))
    if magic not in MAGIC or not 1 <= ndim <= 8:
        raise BenchError(f"{path}: not a NORB binary matrix (magic {magic:#x}, ndim {ndim}); {kind} file expected")
    raw = f.read(4 * max(3, ndim))
    if len(raw) != 4 * max(3, ndim):
        raise BenchError(f"{path}: truncated before its header ends")
    return MAGIC[magic], tuple(int(d) for d in np.frombuffer(raw, "<i4")[:ndim])


def _unreadable(path: Path, exc: Exception) -> BenchError:
    return BenchError(
        f"{path}: unreadable ({type(exc).__name__}: {exc}); delete it and run "
        f"`python -m disentbench.datasets download smallnorb`"
    )


def read_labels(path: Path, kind: str) -> np.ndarray:
    """The whole -cat (n,) or -info (n, 4) matrix, checked: int32, the expected shape, not truncated."""
    try:
        return _read_labels(path, kind)
    except (OSError, EOFError, zlib.error) as exc:  # a damaged .gz among them
        raise _unreadable(path, exc) from None


def _read_labels(path: Path, kind: str) -> np.ndarray:
    with _open(path) as f:
        dtype, dims = read_header(f, path, kind)
        width = 4 if kind == "info" else None
        good = dtype == np.dtype("<i4") and (dims[1:] == (4,) if width else len(dims) == 1)
        if not good:
            expect = "(n, 4)" if width else "(n,)"
            raise BenchError(f"{path}: {kind} matrix is {dims} {dtype}, expected {expect} int32")
        data = f.read()
    count = int(np.prod(dims))
    if len(data) != 4 * count:
        raise BenchError(f"{path}: {len(data)} data bytes, expected {4 * count} for {dims}: truncated or padded")
    return np.frombuffer(data, "<i4").reshape(dims).astype(np.int64)


class SmallNORBOfficial(GroundTruthDataset):
    """Category, elevation, azimuth, lighting; the instance drawn per observation (see the module doc)."""

    name = "smallnorb"
    factor_names = FACTOR_NAMES
    observation_shape = (1, 64, 64)
    source = "official"

    def __init__(
        self,
        paths: dict[tuple[str, str], Path],
        verify: bool = True,
        device: str | torch.device = "cpu",
        full_sizes: tuple[int, ...] = FULL_SIZES,
        memory_limit: int | None = None,
        seed: int = 0,
    ):
        super().__init__(device)
        self.paths, self.verified, self.seed = paths, bool(verify), int(seed)
        self.full_sizes = tuple(int(s) for s in full_sizes)
        self.factor_sizes = (self.full_sizes[0], *self.full_sizes[2:])
        self.num_instances = self.full_sizes[1]
        files = [(p, remote(split, kind, p.name.endswith(".gz"))) for (split, kind), p in sorted(paths.items())]
        self.checksum, key = source_identity(files, verify)  # a changed file is named before its content
        self._grid_rows = self._read_labels()  # per split: the grid index of each of its rows
        shape = (int(np.prod(self.full_sizes)), 64, 64, 1)
        self.images = preprocessed_images("smallnorb", key, shape, self._fill, self.device, memory_limit)

    def _read_labels(self) -> dict[str, np.ndarray]:
        rows: dict[str, np.ndarray] = {}
        seen = []
        for split in SPLITS:
            cat = read_labels(self.paths[(split, "cat")], "cat")
            info = read_labels(self.paths[(split, "info")], "info")
            if len(cat) != len(info):
                raise BenchError(f"{self.paths[(split, 'info')]}: {len(info)} rows, but its -cat file has {len(cat)}")
            azimuth = info[:, 2]
            if (azimuth % 2).any():
                raise BenchError(
                    f"{self.paths[(split, 'info')]}: odd azimuth {int(azimuth[azimuth % 2 == 1][0])}; expected 0, 2, ..., 34"
                )
            full = np.column_stack([cat, info[:, 0], info[:, 1], azimuth // 2, info[:, 3]])
            bad = (full < 0) | (full >= np.asarray(self.full_sizes))
            if bad.any():
                row, col = (int(v[0]) for v in np.nonzero(bad))
                names = ("category", "instance", "elevation", "azimuth / 2", "lighting")
                path = self.paths[(split, "cat" if col == 0 else "info")]
                raise BenchError(
                    f"{path}: row {row} has {names[col]} {full[row, col]}, outside 0..{self.full_sizes[col] - 1}"
                )
            rows[split] = np.ravel_multi_index(tuple(full.T), self.full_sizes)
            seen.append(rows[split])
        every = np.concatenate(seen)
        if len(every) != int(np.prod(self.full_sizes)) or len(np.unique(every)) != len(every):
            raise BenchError(
                f"{self.paths[(SPLITS[0], 'info')]} and {self.paths[(SPLITS[1], 'info')].name}: the two splits hold {len(every)} rows, "
                f"{len(np.unique(every))} distinct factor combinations, expected each of the "
                f"{int(np.prod(self.full_sizes))} once ({'x'.join(map(str, self.full_sizes))})"
            )
        return rows

    def _fill(self, out: np.ndarray) -> None:
        """Each split's left images, resized, at the grid index of their factors."""
        for split in SPLITS:
            path = self.paths[(split, "dat")]
            try:
                self._fill_split(out, path, self._grid_rows[split])
            except (OSError, EOFError, zlib.error) as exc:  # a damaged .gz among them
                raise _unreadable(path, exc) from None

    def _fill_split(self, out: np.ndarray, path: Path, grid_rows: np.ndarray, chunk_rows: int = 1024) -> None:
        """One split's -dat file, streamed in chunks (a .gz is never unpacked whole)."""
        pixels = IMAGE_SIZE * IMAGE_SIZE
        with _open(path) as f:
            dtype, dims = read_header(f, path, "dat")
            if dtype != np.uint8 or dims != (len(grid_rows), 2, IMAGE_SIZE, IMAGE_SIZE):
                raise BenchError(f"{path}: dat matrix is {dims} {dtype}, expected ({len(grid_rows)}, 2, 96, 96) uint8")
            for start in range(0, len(grid_rows), chunk_rows):
                rows = min(chunk_rows, len(grid_rows) - start)
                buf = f.read(rows * 2 * pixels)
                if len(buf) != rows * 2 * pixels:
                    raise BenchError(
                        f"{path}: truncated (the image data ends at row {start + len(buf) // (2 * pixels)})"
                    )
                pairs = np.frombuffer(buf, np.uint8).reshape(rows, 2, IMAGE_SIZE, IMAGE_SIZE)
                for i in range(rows):
                    out[grid_rows[start + i], :, :, 0] = resize_gray_integer(pairs[i, 0])
            if f.read(1):
                raise BenchError(f"{path}: data continues after {dims}: not the expected file")

    def to(self, device: str | torch.device) -> SmallNORBOfficial:
        super().to(device)
        self.images.to(device)
        return self

    def observations(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        """Images for (category, elevation, azimuth, lighting), each of an instance drawn from `rng`
        (default: the generator seeded by the dataset's seed and the factors)."""
        f = self._check_factors(factors)
        if rng is None:
            rng = observation_generator(self.seed, f)
        elif not isinstance(rng, np.random.Generator):
            raise TypeError("observations needs an explicit numpy Generator (np.random.default_rng(seed)) or None")
        instance = rng.integers(0, self.num_instances, size=len(f))
        full = np.column_stack([f[:, 0], instance, f[:, 1:]])
        return self.images.gather(np.ravel_multi_index(tuple(full.T), self.full_sizes))

    def describe(self) -> dict:
        out = {
            **super().describe(),
            "data_file": str(self.paths[(SPLITS[0], "dat")].parent),
            "verified": self.verified,
            "nuisance_seed": self.seed,
        }
        if self.checksum:
            out["data_checksum"] = self.checksum
        return out


def find_files(data_dir=None) -> dict[tuple[str, str], Path]:
    """Each of the six files, gunzipped (.mat) preferred to distributed (.mat.gz); a one-line error
    names the first one missing."""
    paths = {}
    for split in SPLITS:
        for kind in KINDS:
            plain = remote(split, kind, gz=False)
            path = find_file(plain.filename, data_dir, plain.subdir)
            if path is None:
                gz = remote(split, kind, gz=True)
                path = find_file(gz.filename, data_dir, gz.subdir)
                if path is None:
                    raise not_found(gz, data_dir)
            paths[(split, kind)] = path
    return paths


def make_smallnorb(source: str = "auto", data_dir=None, verify: bool = True, device="cpu") -> SmallNORBOfficial:
    if source not in SOURCES:
        raise BenchError(f"unknown source {source!r}; choose {or_list(SOURCES)}")
    if source == "procedural":
        raise BenchError(
            "smallnorb has no procedural stand-in: it needs the six official files "
            "(run `python -m disentbench.datasets download smallnorb`); drop --source procedural for it"
        )
    return SmallNORBOfficial(find_files(data_dir), verify=verify, device=device, full_sizes=FULL_SIZES)
