"""Cars3D on a small `cars/` folder written here in the official format (one MATLAB file per car with
`im` (128, 128, 3, 24, 4) uint8, and list.txt): the reference's layout and resizing, the
preprocessed cache, per-batch reading, bad files, and `download cars3d` unpacking an archive."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from disentbench import datasets
from disentbench.bench.errors import BenchError
from disentbench.datasets import cars3d
from disentbench.datasets.__main__ import main
from disentbench.datasets.cars3d import Cars3DOfficial

MODELS = ("car_002_mesh", "car_001_mesh")  # list.txt's order, not the sorted one


def renders(seed: int) -> np.ndarray:
    """(128, 128, 3, 24, 4) uint8: smooth per-view gradients, different for every view."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:128, 0:128] / 127.0
    out = np.empty((128, 128, 3, 24, 4), dtype=np.uint8)
    for a in range(24):
        for e in range(4):
            w = rng.uniform(0, 1, size=(3, 3))
            view = 255 * (w[:, 0] * x[..., None] + w[:, 1] * y[..., None]) / 2 + w[:, 2] * 40
            out[:, :, :, a, e] = view.astype(np.uint8)
    return out


def write_cars(folder, with_list: bool = True) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    ims = {name: renders(i) for i, name in enumerate(MODELS)}
    for name, im in ims.items():
        savemat(folder / f"{name}.mat", {"im": im, "mask": np.ones((128, 128, 24, 4), np.uint8)})
    if with_list:
        (folder / "list.txt").write_text("\n".join(MODELS) + "\n")
    return ims


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("DISENTBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def expected(im: np.ndarray, azimuth: int, elevation: int) -> np.ndarray:
    """The reference's preprocessing, written independently: Lanczos to 64x64, then / 255."""
    pic = Image.fromarray(im[:, :, :, azimuth, elevation]).resize((64, 64), Image.Resampling.LANCZOS)
    return np.asarray(pic).transpose(2, 0, 1).astype(np.float32) / 255


@pytest.mark.parametrize("limit", [None, 0])
def test_every_factor_vector_gives_its_resized_render(isolated, limit):
    ims = write_cars(isolated / "cars")
    ds = Cars3DOfficial(isolated / "cars", verify=False, num_objects=2, memory_limit=limit)
    assert ds.factor_sizes == (4, 24, 2) and ds.images.in_memory is (limit is None)
    query = np.array([[0, 0, 0], [3, 23, 1], [1, 5, 0], [2, 17, 1], [3, 0, 0]])
    got = ds.observations(query).numpy()
    for row, (elevation, azimuth, obj) in zip(got, query):
        np.testing.assert_array_equal(row, expected(ims[MODELS[obj]], azimuth, elevation))
    # the check can fail: another elevation, or the other car, is another picture
    assert not np.array_equal(got[2], expected(ims[MODELS[0]], 5, 2))
    assert not np.array_equal(got[2], expected(ims[MODELS[1]], 5, 1))


def test_sorted_names_without_list_and_the_cache_is_reused(isolated, monkeypatch):
    ims = write_cars(isolated / "cars", with_list=False)
    first = Cars3DOfficial(isolated / "cars", num_objects=2)
    np.testing.assert_array_equal(first.observations([[0, 0, 0]]).numpy()[0], expected(ims["car_001_mesh"], 0, 0))
    assert first.describe()["data_checksum"].startswith("sha256:")

    def no_decoding(path):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cars3d, "load_model", no_decoding)
    again = Cars3DOfficial(isolated / "cars", num_objects=2)  # from the preprocessed cache
    np.testing.assert_array_equal(again.observations([[2, 7, 1]]).numpy(), first.observations([[2, 7, 1]]).numpy())


def test_registered_factory_and_missing_folder(isolated, monkeypatch):
    with pytest.raises(BenchError, match="folder cars/ of .mat files not found") as err:
        datasets.create("cars3d", data_dir=isolated)
    assert "download cars3d" in str(err.value) and "\n" not in str(err.value)
    write_cars(isolated / "cars")
    with pytest.raises(BenchError, match="2 car models .* expected 183"):
        datasets.create("cars3d", data_dir=isolated, verify=False)
    monkeypatch.setattr(cars3d, "NUM_OBJECTS", 2)
    assert datasets.create("cars3d", data_dir=isolated, verify=False).factor_sizes == (4, 24, 2)
    with pytest.raises(BenchError, match="no procedural stand-in"):
        datasets.create("cars3d", source="procedural", data_dir=isolated)


@pytest.mark.parametrize("damage", ["shape", "garbage", "no_im", "list"])
def test_bad_model_files_are_one_line(isolated, damage):
    folder = isolated / "cars"
    write_cars(folder)
    bad = folder / f"{MODELS[1]}.mat"
    if damage == "shape":
        savemat(bad, {"im": np.zeros((64, 64, 3, 24, 4), np.uint8)})
    elif damage == "garbage":
        bad.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 50)
    elif damage == "no_im":
        savemat(bad, {"mask": np.zeros((2, 2), np.uint8)})
    else:
        (folder / "list.txt").write_text("car_009_mesh\ncar_001_mesh\n")
        bad = folder / "list.txt"
    with pytest.raises(BenchError) as err:
        Cars3DOfficial(folder, verify=False, num_objects=2)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    assert not any((isolated / "cache").rglob("*.npy"))  # no half-made cache left behind


def test_download_unpacks_only_the_cars_folder(isolated, monkeypatch):
    import urllib.request

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (
            ("data/cars/car_001_mesh.mat", b"one"),
            ("data/cars/list.txt", b"car_001_mesh\n"),
            ("data/sprites/x.mat", b"other"),
            ("data/cars/../../evil.mat", b"evil"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    payload = buf.getvalue()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(payload))
    assert main(["download", "cars3d", "--data-dir", str(isolated / "d")]) == 0
    assert sorted(p.name for p in (isolated / "d").rglob("*") if p.is_file()) == ["car_001_mesh.mat", "list.txt"]
    assert (isolated / "d" / "cars" / "car_001_mesh.mat").read_bytes() == b"one"
