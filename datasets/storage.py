"""Where a dataset's images live: in memory under a limit, otherwise read from the file per batch.

The official files of MPI3D (12.7 GB of pixels) and a user's own data can be larger than memory, so
every loader decides once: when the images fit under the memory limit they are copied in (in
chunks, never twice), otherwise each batch reads only its rows. Arrays inside an .npz are read
without unpickling anything; a member stored uncompressed is memory-mapped in place. Images that
need preprocessing (Cars3D and SmallNORB are resized to 64x64) are preprocessed once into a uint8
.npy in the cache and memory-mapped from there.
"""

from __future__ import annotations

import logging
import os
import struct
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from disentbench.atomic import atomic_path
from disentbench.errors import BenchError

log = logging.getLogger(__name__)

#: what reading a damaged file raises (numpy, zipfile, h5py): reported as "corrupt or truncated"
READ_ERRORS = (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, TypeError)


@contextmanager
def reading_dataset_file(
    path: str | os.PathLike, what: str, remedy: str = "", cleanup: Callable[[], None] | None = None
) -> Iterator[None]:
    """Run a loader's reads: a BenchError passes as it is, any READ_ERRORS becomes one line naming
    the file, `what` it should be, the error and the `remedy`; `cleanup` (closing a half-opened
    file) runs before either is raised."""
    try:
        yield
    except BenchError:
        if cleanup is not None:
            cleanup()
        raise
    except READ_ERRORS as exc:
        if cleanup is not None:
            cleanup()
        tail = f"; {remedy}" if remedy else ""
        raise BenchError(f"{path}: corrupt or truncated {what} ({type(exc).__name__}: {exc}){tail}") from None


#: Default cap on the bytes of images held in memory (override with DISENTBENCH_MEMORY_LIMIT, in bytes).
DEFAULT_MEMORY_LIMIT = 8 * 1024**3


def memory_limit(limit: int | None = None) -> int:
    """`limit` if given, else $DISENTBENCH_MEMORY_LIMIT, else DEFAULT_MEMORY_LIMIT (bytes)."""
    if limit is not None:
        return int(limit)
    env = os.environ.get("DISENTBENCH_MEMORY_LIMIT")
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise BenchError(f"DISENTBENCH_MEMORY_LIMIT={env!r} must be a number of bytes") from None
    return DEFAULT_MEMORY_LIMIT


# --------------------------------------------------------------------------------------------
# Arrays inside an .npz, without unpickling
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NpyMember:
    """The header of one array of an .npz: enough to validate it before reading a byte of data."""

    path: Path
    name: str  # member name without ".npy"
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    compressed: bool
    data_offset: int | None  # where the raw data starts in the file (stored members only)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def npz_members(path: str | os.PathLike) -> dict[str, NpyMember]:
    """Every array of an .npz by name, from the headers alone. Arrays of Python objects (pickles)
    are listed but never read (`member_memmap` and `read_member` refuse them)."""
    path = Path(path)
    out: dict[str, NpyMember] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as raw:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[: -len(".npy")]
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                header_len = f.tell()  # magic, version, length field and header
            offset = None
            if info.compress_type == zipfile.ZIP_STORED:
                raw.seek(info.header_offset)
                local = raw.read(30)
                if len(local) != 30 or local[:4] != b"PK\x03\x04":
                    raise BenchError(f"{path}: corrupt zip entry {info.filename}")
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                offset = info.header_offset + 30 + name_len + extra_len + header_len
            out[name] = NpyMember(
                path, name, tuple(int(s) for s in shape), dtype, bool(fortran),
                info.compress_type != zipfile.ZIP_STORED, offset,
            )  # fmt: skip
    return out


def _refuse_objects(member: NpyMember) -> None:
    if member.dtype.hasobject:
        raise BenchError(f"{member.path}: array {member.name} holds Python objects; refusing to unpickle a data file")


def member_memmap(member: NpyMember) -> np.memmap:
    """A read-only map of a stored (uncompressed) member; a truncated file is refused."""
    _refuse_objects(member)
    if member.data_offset is None:
        raise BenchError(f"{member.path}: {member.name} is compressed and cannot be read per batch")
    if os.path.getsize(member.path) < member.data_offset + member.nbytes:
        raise BenchError(f"{member.path}: {member.name} is truncated (the file ends before its data does)")
    return np.memmap(
        member.path, dtype=member.dtype, mode="r", offset=member.data_offset, shape=member.shape,
        order="F" if member.fortran else "C",
    )  # fmt: skip


def read_member(member: NpyMember, chunk_bytes: int = 1 << 26) -> np.ndarray:
    """The whole array, read in chunks (a stored member through its map, a compressed one streamed)."""
    _refuse_objects(member)
    if member.data_offset is not None:
        return np.array(member_memmap(member))
    out = np.empty(member.shape, dtype=member.dtype, order="F" if member.fortran else "C")
    flat = out.reshape(-1, order="A")
    with zipfile.ZipFile(member.path) as zf, zf.open(member.name + ".npy") as f:
        version = np.lib.format.read_magic(f)
        (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
        view = flat.view(np.uint8)
        pos = 0
        while pos < len(view):
            block = f.read(min(chunk_bytes, len(view) - pos))
            if not block:
                raise EOFError(f"{member.name} ends early")
            view[pos : pos + len(block)] = np.frombuffer(block, dtype=np.uint8)
            pos += len(block)
    return out


# --------------------------------------------------------------------------------------------
# Images: in memory or per batch
# --------------------------------------------------------------------------------------------
class ImageStore:
    """Images (N, H, W, C), uint8 (0..255) or float (0..1), served as float32 (n, C, H, W) in [0, 1].

    `in_memory`: one tensor on the device, gathered with index_select. Otherwise `reader(rows)`
    reads increasing unique rows from the file for every batch.
    """

    def __init__(
        self,
        path: Path,
        shape: tuple[int, ...],
        dtype: np.dtype,
        device: torch.device,
        data: np.ndarray | None = None,
        reader: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        self.path, self.shape, self.dtype = Path(path), tuple(shape), np.dtype(dtype)
        self.scale = 255.0 if self.dtype == np.uint8 else 1.0
        self.in_memory = data is not None
        self._reader = reader
        self._cpu = torch.from_numpy(data) if data is not None else None
        self.device = torch.device(device)
        self._data = self._cpu.to(self.device) if self._cpu is not None else None

    def to(self, device: str | torch.device) -> ImageStore:
        self.device = torch.device(device)
        if self._cpu is not None:
            self._data = self._cpu.to(self.device)
        return self

    def gather(self, rows: np.ndarray) -> torch.Tensor:
        rows = np.asarray(rows, dtype=np.int64)
        if self._data is not None:
            block = self._data.index_select(0, torch.from_numpy(rows).to(self.device))
        else:
            uniq, inverse = np.unique(rows, return_inverse=True)
            try:
                part = np.asarray(self._reader(uniq))
            except (OSError, ValueError) as exc:
                raise BenchError(f"{self.path}: cannot read images ({exc}); the file is corrupt") from None
            block = torch.from_numpy(np.ascontiguousarray(part[inverse])).to(self.device)
        x = block.permute(0, 3, 1, 2).to(torch.float32)
        return x / self.scale if self.scale != 1.0 else x


def load_images(
    path: Path,
    array,
    device: torch.device,
    limit: int | None = None,
    chunk_rows: int = 8192,
    check: Callable[[np.ndarray, int], None] | None = None,
) -> ImageStore:
    """An ImageStore over `array` (N, H, W, C): a memmap, an h5py dataset or an ndarray. Copied into
    memory in chunks when its bytes fit under the limit, else read per batch. `check(chunk, start)`,
    when given, sees every chunk once, so bad pixels are found before any training (read per
    batch, that costs one pass over the file)."""
    n, shape, dtype = int(array.shape[0]), tuple(int(s) for s in array.shape), np.dtype(array.dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes <= memory_limit(limit):
        data = np.empty(shape, dtype=dtype)
        for start in range(0, n, chunk_rows):
            data[start : start + chunk_rows] = array[start : start + chunk_rows]
            if check is not None:
                check(data[start : start + chunk_rows], start)
        log.info("%s: %d images held in memory (%.2f GB)", path, n, nbytes / 1e9)
        return ImageStore(path, shape, dtype, device, data=data)
    if check is not None:
        for start in range(0, n, chunk_rows):
            check(np.asarray(array[start : start + chunk_rows]), start)
    log.info("%s: images read per batch (%.2f GB is over the memory limit)", path, nbytes / 1e9)
    return ImageStore(path, shape, dtype, device, reader=lambda rows: array[rows])


def preprocessed_images(
    name: str,
    key: str,
    shape: tuple[int, ...],
    fill: Callable[[np.ndarray], None],
    device: torch.device,
    limit: int | None = None,
) -> ImageStore:
    """Images that cost time to make (decoding, resizing): made once by `fill(out)` into
    `<cache>/preprocessed/<name>-<key>.npy` (written atomically; `key` names the source files and
    the preprocessing), then loaded like any file. Without a writable cache they are made in
    memory, which needs them to fit under the limit."""
    from disentbench.datasets.files import cache_dir

    target = cache_dir() / "preprocessed" / f"{name}-{key}.npy"
    if not target.is_file():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            writable = os.access(target.parent, os.W_OK)
        except OSError:
            writable = False
        if not writable:
            nbytes = int(np.prod(shape, dtype=np.int64))
            if nbytes > memory_limit(limit):
                raise BenchError(
                    f"{name}: cannot write the preprocessed images to {target.parent} and they do not fit under "
                    f"the memory limit ({nbytes:,} bytes); make the cache writable or raise DISENTBENCH_MEMORY_LIMIT"
                )
            data = np.empty(shape, dtype=np.uint8)
            fill(data)
            return ImageStore(target, shape, np.uint8, device, data=data)
        try:
            with atomic_path(target) as tmp:  # a failed fill leaves nothing behind
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
                fill(out)  # turns errors reading the sources into BenchErrors naming them
                out.flush()
                del out
        except OSError as exc:
            raise BenchError(f"{name}: cannot write the preprocessed images to {target} ({exc})") from None
        log.info("%s: preprocessed images written to %s", name, target)
    try:
        array = np.load(target, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BenchError(f"{target}: unreadable preprocessed images ({exc}); delete it to rebuild it") from None
    if tuple(array.shape) != tuple(shape) or array.dtype != np.uint8:
        raise BenchError(
            f"{target}: holds {array.shape} {array.dtype}, expected {shape} uint8; delete it to rebuild it"
        )
    return load_images(target, array, device, limit)
