"""MPI3D toy, realistic and real (Gondal et al. 2019): the official .npz files.

Each file holds one array, `images` (N, 64, 64, 3) uint8, in row-major order over seven factors
with no labels stored. The final release has N = 1,036,800 (object colour 6, object shape 6,
object size 2, camera height 3, background colour 3, horizontal axis 40, vertical axis 40). The
challenge-era files had N = 460,800 (4 colours and 4 shapes, without the held-out ones), the layout
the reference library's toy and realistic loaders assume; a file of that length is read with
sizes 4, 4, 2, 3, 3, 40, 40. The pixels are scaled to [0, 1] and nothing else (the reference's
preprocessing). 12.7 GB of pixels do not fit the default memory limit, so by default a batch reads
its rows from the file (memory-mapped: the arrays are stored uncompressed).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from disentbench.datasets.base import OfficialFileDataset
from disentbench.datasets.files import RemoteFile, require_file
from disentbench.datasets.storage import (
    load_images,
    member_memmap,
    memory_limit,
    npz_members,
    read_member,
    reading_dataset_file,
)
from disentbench.errors import BenchError

FACTOR_NAMES = (
    "object_color", "object_shape", "object_size", "camera_height", "background_color",
    "horizontal_axis", "vertical_axis",
)  # fmt: skip
#: number of images -> factor sizes: the final release, and the challenge-era files without held-out factors
LAYOUTS: dict[int, tuple[int, ...]] = {
    1_036_800: (6, 6, 2, 3, 3, 40, 40),
    460_800: (4, 4, 2, 3, 3, 40, 40),
}
_BASE_URL = "https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/"
# md5 of the final release's files as recorded by the disent library (the toy one also by a second
# project); not checked against the files here, which could not be downloaded.
REMOTES = {
    name: RemoteFile(
        dataset=name, filename=f"{name}.npz", url=_BASE_URL + f"{name}.npz", algorithm="md5", digest=digest, subdir=name
    )
    for name, digest in (
        ("mpi3d_toy", "55889cb7c7dfc655d6e0277beee88868"),
        ("mpi3d_realistic", "59a6225b88b635365f70c91b3e52f70f"),
        ("mpi3d_real", "0f33f609918fb5c97996692f91129802"),
    )
}
IMAGE_SHAPE = (64, 64, 3)


class MPI3DOfficial(OfficialFileDataset):
    """One MPI3D .npz: in memory when its images fit under `memory_limit` bytes, else read per batch."""

    factor_names = FACTOR_NAMES
    observation_shape = (3, 64, 64)

    def __init__(
        self,
        path: str | os.PathLike,
        name: str = "mpi3d_toy",
        verify: bool = True,
        device: str | torch.device = "cpu",
        memory_limit: int | None = None,
        layouts: dict[int, tuple[int, ...]] | None = None,
    ):
        if name not in REMOTES:
            raise BenchError(f"unknown MPI3D variant {name!r}; choose one of {', '.join(REMOTES)}")
        self.name = name
        remote = REMOTES[name]
        super().__init__(path, remote, verify, (1,), device)
        layouts = LAYOUTS if layouts is None else layouts
        with reading_dataset_file(self.path, "MPI3D file", f"delete it and {remote.how_to_get()}"):
            self.images = self._open(remote, layouts, memory_limit)

    def _open(self, remote: RemoteFile, layouts: dict[int, tuple[int, ...]], limit: int | None):
        members = npz_members(self.path)
        if "images" not in members:
            raise BenchError(
                f"{self.path}: not an MPI3D file (arrays {sorted(members)}, need images); {remote.how_to_get()}"
            )
        images = members["images"]
        n = images.shape[0] if images.shape else 0
        if images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8 or images.fortran:
            raise BenchError(
                f"{self.path}: images has shape {images.shape} {images.dtype}, expected (N, 64, 64, 3) uint8"
            )
        if n not in layouts:
            expected = " or ".join(f"{k:,}" for k in layouts)
            raise BenchError(
                f"{self.path}: {n:,} images, expected {expected} (an MPI3D grid); the file is truncated or not MPI3D"
            )
        self.factor_sizes = tuple(layouts[n])
        if not images.compressed:
            return load_images(self.path, member_memmap(images), self.device, limit)
        if images.nbytes > memory_limit(limit):
            raise BenchError(
                f"{self.path}: images are compressed ({images.nbytes:,} bytes unpacked, over the memory limit), so they "
                f"cannot be read per batch; raise DISENTBENCH_MEMORY_LIMIT or save them uncompressed (numpy.savez)"
            )
        return load_images(self.path, read_member(images), self.device, limit)

    @property
    def in_memory(self) -> bool:
        return self.images.in_memory

    def to(self, device: str | torch.device) -> MPI3DOfficial:
        super().to(device)
        self.images.to(device)
        return self

    def observations(self, factors: np.ndarray) -> torch.Tensor:
        return self.images.gather(self.index_of(factors))

    def describe(self) -> dict:
        return {**super().describe(), "images": len(self)}


def make_mpi3d(name: str):
    """The registered factory of one MPI3D variant: its official file, or a one-line error naming it."""

    def factory(source: str = "auto", data_dir=None, verify: bool = True, device="cpu") -> MPI3DOfficial:
        path = require_file(REMOTES[name], source, data_dir)
        return MPI3DOfficial(path, name=name, verify=verify, device=device)

    factory.__qualname__ = f"make_{name}"
    return factory
