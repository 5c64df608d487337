"""MPI3D toy/realistic/real on small files written here in the official format (an .npz with one
`images` array in row-major factor order): known answers in memory and per batch, and bad files."""

from __future__ import annotations

import numpy as np
import pytest

from disentbench import datasets
from disentbench.bench.errors import BenchError
from disentbench.datasets import mpi3d
from disentbench.datasets.mpi3d import LAYOUTS, MPI3DOfficial

SIZES = (2, 3, 2, 1, 1, 2, 3)  # a reduced grid with the official factor order
N = int(np.prod(SIZES))
TINY = {N: SIZES}


def images(seed: int = 0, n: int = N) -> np.ndarray:
    imgs = np.random.default_rng(seed).integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
    assert len(np.unique(imgs.reshape(n, -1), axis=0)) == n
    return imgs


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("DISENTBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_the_official_layouts():
    assert LAYOUTS[1_036_800] == (6, 6, 2, 3, 3, 40, 40) and int(np.prod(LAYOUTS[1_036_800])) == 1_036_800
    assert LAYOUTS[460_800] == (4, 4, 2, 3, 3, 40, 40) and int(np.prod(LAYOUTS[460_800])) == 460_800


@pytest.mark.parametrize("limit", [None, 0])
@pytest.mark.parametrize("compressed", [False, True])
def test_loader_returns_the_stored_image_of_every_factor_vector(tmp_path, limit, compressed):
    imgs = images(1)
    path = tmp_path / "mpi3d_toy.npz"
    (np.savez_compressed if compressed else np.savez)(path, images=imgs)
    if compressed and limit == 0:
        with pytest.raises(BenchError, match="compressed") as err:
            MPI3DOfficial(path, verify=False, layouts=TINY, memory_limit=limit)
        assert "\n" not in str(err.value)
        return
    ds = MPI3DOfficial(path, verify=False, layouts=TINY, memory_limit=limit)
    assert ds.in_memory is (limit is None) and ds.factor_sizes == SIZES and ds.observation_shape == (3, 64, 64)
    grid = np.stack(np.unravel_index(np.arange(N), SIZES), axis=1)
    query = grid[np.random.default_rng(2).integers(0, N, 30)]
    # brute force: the row of a factor vector in the official order (last factor fastest)
    rows = [sum(int(q[j]) * int(np.prod(SIZES[j + 1 :])) for j in range(7)) for q in query]
    np.testing.assert_array_equal(ds.observations(query).numpy(), imgs[rows].transpose(0, 3, 1, 2) / np.float32(255))
    assert ds.describe()["data_source"] == "official" and ds.describe()["images"] == N


def test_registered_variants_find_their_file_and_need_it(isolated, monkeypatch):
    monkeypatch.setattr(mpi3d, "LAYOUTS", TINY)
    (isolated / "mpi3d_real").mkdir()
    np.savez(isolated / "mpi3d_real" / "mpi3d_real.npz", images=images(3))  # the reference's folder layout
    ds = datasets.create("mpi3d_real", data_dir=isolated, verify=False)
    assert ds.name == "mpi3d_real" and ds.factor_names[-1] == "vertical_axis"
    with pytest.raises(BenchError, match="mpi3d_toy.npz not found") as err:
        datasets.create("mpi3d_toy", data_dir=isolated, verify=False)
    assert "download mpi3d_toy" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(BenchError, match="no procedural stand-in"):
        datasets.create("mpi3d_real", source="procedural", data_dir=isolated)
    with pytest.raises(BenchError, match="md5 checksum mismatch") as err:
        datasets.create("mpi3d_real", data_dir=isolated, verify=True)
    assert "mpi3d_real.npz" in str(err.value)


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(images=images(4, N - 1)), f"{N - 1:,} images, expected"),
        (dict(images=np.zeros((N, 64, 64), np.uint8)), "images has shape"),
        (dict(images=np.zeros((N, 64, 64, 3), np.float32)), "images has shape"),
        (dict(pixels=images(5)), "need images"),
    ],
)
def test_mislabelled_files_are_one_line(tmp_path, arrays, message):
    path = tmp_path / "mpi3d_toy.npz"
    np.savez(path, **arrays)
    with pytest.raises(BenchError, match=message) as err:
        MPI3DOfficial(path, verify=False, layouts=TINY)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_file_is_one_line(tmp_path, cut):
    path = tmp_path / "mpi3d_toy.npz"
    np.savez(path, images=images(6))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(BenchError) as err:
        MPI3DOfficial(path, verify=False, layouts=TINY, memory_limit=0)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
