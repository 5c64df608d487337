"""Cars3D (Reed et al. 2015): the folder `cars/` of the official archive, resized to 64x64.

The archive `nips2015-analogy-data.tar.gz` holds `data/cars/`: one MATLAB file per car model,
`car_NNN_mesh.mat`, whose array `im` is (128, 128, 3, 24, 4) uint8 (pixels, RGB, 24 azimuths, 4
elevations), and `list.txt`, the models in order. Factors in our storage order, as the reference
indexes them: elevation (4), azimuth (24), object type (183, the models in the order of list.txt,
else sorted by file name; the reference takes the directory listing's order). Every image is
resized to 64x64 with Pillow's Lanczos filter, as the reference does; the result is cached
(`storage.preprocessed_images`), so the .mat files are decoded once.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from disentbench.choices import SOURCES, or_list
from disentbench.datasets.base import OfficialFileDataset
from disentbench.datasets.files import RemoteFile, search_dirs
from disentbench.datasets.preprocess import resize_rgb, source_identity
from disentbench.datasets.storage import preprocessed_images
from disentbench.errors import BenchError

FACTOR_NAMES = ("elevation", "azimuth", "object_type")
NUM_ELEVATIONS, NUM_AZIMUTHS, NUM_OBJECTS = 4, 24, 183
MAT_SHAPE = (128, 128, 3, NUM_AZIMUTHS, NUM_ELEVATIONS)
FOLDER = "cars"
ARCHIVE = RemoteFile(
    dataset="cars3d",
    filename="nips2015-analogy-data.tar.gz",
    url="http://www.scottreed.info/files/nips2015-analogy-data.tar.gz",
    algorithm="sha256",
    digest=None,  # none published: the first use of each .mat file records one
)


def _mat_remote(name: str) -> RemoteFile:
    return RemoteFile("cars3d", name, ARCHIVE.url, "sha256", None)


def model_files(folder: Path) -> list[Path]:
    """The car models in object-type order: list.txt's order when present, else sorted names."""
    listing = folder / "list.txt"
    if listing.is_file():
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        files = [folder / (n if n.endswith(".mat") else n + ".mat") for n in names]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise BenchError(f"{listing}: lists {missing[0]} (and {len(missing) - 1} more) missing from {folder}")
        return files
    return sorted(folder.glob("*.mat"))


def load_model(path: Path) -> np.ndarray:
    """The `im` array of one car's .mat file, checked: (128, 128, 3, 24, 4) uint8."""
    from scipy.io import loadmat

    try:
        im = loadmat(path, variable_names=["im"]).get("im")
    except Exception as exc:  # scipy's parser raises many kinds on a damaged file; all mean the same here
        raise BenchError(
            f"{path}: unreadable MATLAB file ({type(exc).__name__}: {exc}); {ARCHIVE.how_to_get()}"
        ) from None
    if im is None:
        raise BenchError(f"{path}: no array 'im' in this MATLAB file; not a Cars3D model ({ARCHIVE.how_to_get()})")
    if tuple(im.shape) != MAT_SHAPE or im.dtype != np.uint8:
        raise BenchError(f"{path}: im has shape {im.shape} {im.dtype}, expected {MAT_SHAPE} uint8")
    return im


class Cars3DOfficial(OfficialFileDataset):
    """The 17,568 renders (4 x 24 x 183), 64x64 RGB."""

    name = "cars3d"
    factor_names = FACTOR_NAMES
    observation_shape = (3, 64, 64)

    def __init__(
        self,
        folder: str | os.PathLike,
        verify: bool = True,
        device: str | torch.device = "cpu",
        num_objects: int = NUM_OBJECTS,
        memory_limit: int | None = None,
    ):
        super().__init__(folder, ARCHIVE, False, (NUM_ELEVATIONS, NUM_AZIMUTHS, num_objects), device)
        self.verified = bool(verify)
        self.files = model_files(self.path)
        if len(self.files) != num_objects:
            raise BenchError(
                f"{self.path}: {len(self.files)} car models (.mat files), expected {num_objects}; the folder is "
                f"incomplete or not Cars3D's ({ARCHIVE.how_to_get()}, and unpack data/cars/)"
            )
        self.checksum, key = source_identity([(f, _mat_remote(f.name)) for f in self.files], verify)
        shape = (len(self), 64, 64, 3)
        self.images = preprocessed_images("cars3d", key, shape, self._fill, self.device, memory_limit)

    def _fill(self, out: np.ndarray) -> None:
        """Row (elevation * 24 + azimuth) * objects + object of `out` holds that resized render."""
        n = len(self.files)
        for obj, path in enumerate(self.files):
            im = load_model(path)
            for elevation in range(NUM_ELEVATIONS):
                for azimuth in range(NUM_AZIMUTHS):
                    out[(elevation * NUM_AZIMUTHS + azimuth) * n + obj] = resize_rgb(im[:, :, :, azimuth, elevation])

    def to(self, device: str | torch.device) -> Cars3DOfficial:
        super().to(device)
        self.images.to(device)
        return self

    def observations(self, factors: np.ndarray) -> torch.Tensor:
        return self.images.gather(self.index_of(factors))


def find_folder(data_dir=None) -> Path | None:
    for d in search_dirs(data_dir):
        if (d / FOLDER).is_dir() and any((d / FOLDER).glob("*.mat")):
            return d / FOLDER
    return None


def make_cars3d(source: str = "auto", data_dir=None, verify: bool = True, device="cpu") -> Cars3DOfficial:
    """The official folder, or a one-line error naming it and how to get it (no procedural stand-in)."""
    if source not in SOURCES:
        raise BenchError(f"unknown source {source!r}; choose {or_list(SOURCES)}")
    if source == "procedural":
        raise BenchError(
            f"cars3d has no procedural stand-in: it needs the official folder cars/ ({ARCHIVE.how_to_get()})"
        )
    folder = find_folder(data_dir)
    if folder is None:
        where = ", ".join(str(d) for d in search_dirs(data_dir))
        raise BenchError(
            f"cars3d: folder {FOLDER}/ of .mat files not found (looked in {where}); {ARCHIVE.how_to_get()}, "
            f"unpacking data/cars/ into one of those folders"
        )
    return Cars3DOfficial(folder, verify=verify, device=device, num_objects=NUM_OBJECTS)
