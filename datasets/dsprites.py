"""dSprites (Matthey et al. 2017): the official npz, and a procedural stand-in with the same grid.

Factors (colour dropped): shape (3), scale (6), orientation (40), posX (32), posY (32).
"""

from __future__ import annotations

import functools
import math
import os
import zipfile

import numpy as np
import torch

from disentbench.datasets.base import GroundTruthDataset, OfficialFileDataset
from disentbench.datasets.files import RemoteFile, choose_source
from disentbench.datasets.storage import reading_dataset_file
from disentbench.errors import BenchError

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
REMOTE = RemoteFile(
    dataset="dsprites",
    filename="dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
    url="https://github.com/deepmind/dsprites-dataset/raw/master/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
    algorithm="md5",
    digest="7da33b31b13a06f4b04a70402ce90c2e",
)
IMAGE_SIZE = 64
PACKED_ROW = IMAGE_SIZE * IMAGE_SIZE // 8  # 512 bytes per bit-packed image


def factor_values(factors: np.ndarray) -> dict[str, np.ndarray]:
    """Physical values of integer dSprites factors (the official latents_values, colour dropped)."""
    f = np.asarray(factors)
    return {
        "shape": f[:, 0] + 1.0,
        "scale": 0.5 + 0.1 * f[:, 1],
        "orientation": 2 * np.pi * f[:, 2] / 39.0,
        "posX": f[:, 3] / 31.0,
        "posY": f[:, 4] / 31.0,
    }


class _DSpritesBase(GroundTruthDataset):
    image_per_factors = True  # an image is a function of its row's factors alone (metrics.image_codes)
    name = "dsprites"
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    observation_shape = (1, IMAGE_SIZE, IMAGE_SIZE)


# --------------------------------------------------------------------------------------------
# Official file
# --------------------------------------------------------------------------------------------
def _open_npy_member(zf: zipfile.ZipFile, member: str):
    """Open an array inside an npz and read its header without loading it (never unpickles)."""
    f = zf.open(member)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    if dtype.hasobject:
        f.close()
        raise BenchError(f"{member} holds Python objects; refusing to unpickle a data file")
    return f, shape, fortran, dtype


class DSpritesOfficial(OfficialFileDataset, _DSpritesBase):
    """The official npz, held bit-packed in memory (about 380 MB for the full set, not 3 GB).

    The file is streamed in chunks, so loading never holds the unpacked 3 GB array. `metadata`
    (a pickle) is never read.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        verify: bool = True,
        device: str | torch.device = "cpu",
        factor_sizes: tuple[int, ...] = FACTOR_SIZES,
        chunk_rows: int = 16384,
    ):
        super().__init__(path, REMOTE, verify, factor_sizes, device)
        with reading_dataset_file(
            self.path, "dSprites file", "delete it and run `python -m disentbench.datasets download dsprites`"
        ):
            packed = self._load(chunk_rows)
        self._packed_cpu = torch.from_numpy(packed)
        self._packed = self._packed_cpu.to(self.device)

    def _load(self, chunk_rows: int) -> np.ndarray:
        n = int(np.prod(self.factor_sizes))
        with zipfile.ZipFile(self.path) as zf:
            members = set(zf.namelist())
            missing = {"imgs.npy", "latents_classes.npy", "latents_values.npy"} - members
            if missing:
                raise BenchError(
                    f"{self.path}: not a dSprites npz (missing {', '.join(sorted(missing))}); "
                    f"get the official file with `python -m disentbench.datasets download dsprites`"
                )
            f, shape, fortran, dtype = _open_npy_member(zf, "latents_classes.npy")
            with f:
                if len(shape) != 2 or shape[0] != n or shape[1] != 6 or not np.issubdtype(dtype, np.integer):
                    raise BenchError(f"{self.path}: latents_classes has shape {shape} {dtype}, expected ({n}, 6) int")
                classes = np.frombuffer(f.read(), dtype=dtype).reshape(shape, order="F" if fortran else "C")
            expected = np.stack(np.unravel_index(np.arange(n), self.factor_sizes), axis=1)
            if not np.array_equal(classes[:, 1:], expected) or (classes[:, 0] != 0).any():
                raise BenchError(
                    f"{self.path}: latents_classes are not the row-major factor grid {list(self.factor_sizes)}"
                )
            f, shape, fortran, dtype = _open_npy_member(zf, "imgs.npy")
            with f:
                if tuple(shape) != (n, IMAGE_SIZE, IMAGE_SIZE) or dtype != np.uint8 or fortran:
                    raise BenchError(f"{self.path}: imgs has shape {shape} {dtype}, expected ({n}, 64, 64) uint8")
                packed = np.empty((n, PACKED_ROW), dtype=np.uint8)
                row_bytes = IMAGE_SIZE * IMAGE_SIZE
                for start in range(0, n, chunk_rows):
                    rows = min(chunk_rows, n - start)
                    buf = f.read(rows * row_bytes)
                    if len(buf) != rows * row_bytes:
                        raise EOFError("imgs.npy ends early")
                    chunk = np.frombuffer(buf, dtype=np.uint8).reshape(rows, row_bytes)
                    if chunk.max(initial=0) > 1:
                        raise BenchError(f"{self.path}: imgs must be binary 0/1 pixels")
                    packed[start : start + rows] = np.packbits(chunk, axis=1)
        return packed

    def to(self, device):
        super().to(device)
        self._packed = self._packed_cpu.to(self.device)
        return self

    def observations(self, factors: np.ndarray) -> torch.Tensor:
        idx = torch.from_numpy(self.index_of(factors)).to(self.device)
        rows = self._packed.index_select(0, idx)  # (n, 512) uint8
        shifts = torch.arange(7, -1, -1, device=self.device, dtype=torch.uint8)
        bits = (rows.unsqueeze(-1) >> shifts) & 1  # packbits is big-endian: first pixel is the MSB
        return bits.reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE).to(torch.float32)


# --------------------------------------------------------------------------------------------
# Procedural stand-in
# --------------------------------------------------------------------------------------------
HEART_GRID_STEP = 0.02  # sprite units (pixels at scale 1) per occupancy cell
HEART_GRID_HALF = 10.5


def heart_outline(num: int = 2048) -> np.ndarray:
    """The parametric heart of the spec at scale 1, point down (screen y grows downward)."""
    t = np.linspace(0, 2 * np.pi, num, endpoint=False)
    x = 9.6 * np.sin(t) ** 3
    y = -(0.66 * (13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)) + 1.5)
    return np.stack([x, y], axis=1)


@functools.lru_cache(maxsize=1)
def heart_occupancy() -> np.ndarray:
    """A fine boolean grid of the filled heart (even-odd scanline fill), built once.

    Looking up this grid is exact to HEART_GRID_STEP / 2 and far cheaper per pixel than a
    point-in-polygon test against the outline.
    """
    poly = heart_outline()
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    centres = np.arange(-HEART_GRID_HALF + HEART_GRID_STEP / 2, HEART_GRID_HALF, HEART_GRID_STEP)
    ys = centres[:, None]
    crosses = ((y0 <= ys) & (ys < y1)) | ((y1 <= ys) & (ys < y0))
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = x0 + (ys - y0) * (x1 - x0) / (y1 - y0)
    xs = np.where(crosses, xs, np.inf)
    xs.sort(axis=1)
    counts = np.stack([np.searchsorted(row, centres) for row in xs])
    return (counts % 2) == 1  # [row (y), column (x)]


class DSpritesProcedural(_DSpritesBase):
    """Renders any batch of factor vectors on the device with the geometry measured from the
    official frames (see docs/datasets.md): a pixel is on iff its centre lies inside the
    shape. Square and ellipse are analytic; the heart is looked up in a fine occupancy grid.
    """

    source = "procedural"

    def __init__(self, device: str | torch.device = "cpu"):
        super().__init__(device)
        self._heart_by_device: dict[str, torch.Tensor] = {}

    def _heart(self) -> torch.Tensor:
        """The occupancy grid with a one-cell empty border, flattened: clamping an index into the
        border stands for "outside the grid"."""
        key = str(self.device)
        if key not in self._heart_by_device:
            padded = np.pad(heart_occupancy(), 1, constant_values=False)
            self._heart_by_device[key] = torch.from_numpy(padded).reshape(-1).to(self.device)
        return self._heart_by_device[key]

    def observations(self, factors: np.ndarray) -> torch.Tensor:
        factors = self._check_factors(factors)
        f = torch.from_numpy(factors).to(self.device)
        n = f.shape[0]
        img = torch.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.float32, device=self.device)
        # Each shape's test runs only on the images of that shape. The rows of each shape are found
        # on the host (one copy of an index array) so that a batch never waits for the device.
        by_shape = np.argsort(factors[:, 0], kind="stable")
        counts = np.bincount(factors[:, 0], minlength=3)
        rows_all = torch.from_numpy(by_shape).to(self.device)
        start = 0
        for shape, inside in enumerate((self._square, self._ellipse, self._heart_mask)):
            rows = rows_all[start : start + counts[shape]]
            start += counts[shape]
            if counts[shape]:
                u, v = self._sprite_coordinates(f.index_select(0, rows))
                img[rows] = inside(u, v).to(torch.float32)
        return img.unsqueeze(1)

    def _sprite_coordinates(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every pixel centre in each sprite's own frame (unrotated, unscaled): (n, 64, 64) each."""
        n = f.shape[0]
        scale = (0.5 + 0.1 * f[:, 1].to(torch.float32)).view(n, 1, 1)
        # Index 39 is the same angle as 0 (2*pi); fold it so both give the identical picture.
        theta = (2 * math.pi / 39.0) * (f[:, 2] % 39).to(torch.float32).view(n, 1, 1)
        cx = (16.0 + 32.0 * f[:, 3].to(torch.float32) / 31.0).view(n, 1, 1)
        cy = (16.0 + 32.0 * f[:, 4].to(torch.float32) / 31.0).view(n, 1, 1)
        centres = torch.arange(IMAGE_SIZE, device=self.device, dtype=torch.float32) + 0.5
        dx = centres.view(1, 1, -1) - cx  # columns
        dy = centres.view(1, -1, 1) - cy  # rows
        cos, sin = torch.cos(theta), torch.sin(theta)
        # Undo a counter-clockwise (on screen, y down) rotation by theta, then undo the scale.
        return (dx * cos - dy * sin) / scale, (dx * sin + dy * cos) / scale

    @staticmethod
    def _square(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (u.abs() <= 9.6) & (v.abs() <= 9.6)

    @staticmethod
    def _ellipse(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (u / 12.8) ** 2 + (v / 7.2) ** 2 <= 1.0

    def _heart_mask(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        grid = self._heart()
        side = heart_occupancy().shape[0] + 2
        iu = (torch.floor((u + HEART_GRID_HALF) / HEART_GRID_STEP).long() + 1).clamp_(0, side - 1)
        iv = (torch.floor((v + HEART_GRID_HALF) / HEART_GRID_STEP).long() + 1).clamp_(0, side - 1)
        return grid[iv * side + iu]


def make_dsprites(
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    verify: bool = True,
    device: str | torch.device = "cpu",
) -> GroundTruthDataset:
    """The official file when present (source="auto" or "official"), else the procedural stand-in."""
    return choose_source(
        REMOTE,
        source,
        data_dir,
        lambda path: DSpritesOfficial(path, verify=verify, device=device),
        lambda: DSpritesProcedural(device=device),
    )
