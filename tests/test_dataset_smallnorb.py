"""SmallNORB on six small files written here in the NORB binary-matrix format (some gzipped, as
distributed): the reference's factor layout, resizing and instance draw, and bad files."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
from PIL import Image

from disentbench import datasets
from disentbench.bench.errors import BenchError
from disentbench.datasets import smallnorb
from disentbench.datasets.__main__ import main
from disentbench.datasets.smallnorb import SPLITS, SmallNORBOfficial, file_name, find_files

FULL = (2, 2, 2, 3, 2)  # category, instance, elevation, azimuth / 2, lighting (reduced)
BYTE, INT = 0x1E3D4C55, 0x1E3D4C54


def matrix(magic: int, array: np.ndarray) -> bytes:
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    head = np.array([magic, array.ndim, *dims], dtype="<i4").tobytes()
    return head + np.ascontiguousarray(array, dtype=np.uint8 if magic == BYTE else "<i4").tobytes()


def write_norb(folder, gz=("dat",), seed=0, tamper=None) -> dict[tuple, np.ndarray]:
    """Training holds instance 1, testing instance 0, each split in a shuffled order. Returns the left
    image of every full factor vector (category, instance, elevation, azimuth / 2, lighting)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    grid = np.stack(np.unravel_index(np.arange(int(np.prod(FULL))), FULL), axis=1)
    left = {}
    for split, instance in zip(SPLITS, (1, 0)):
        rows = grid[grid[:, 1] == instance]
        rows = rows[rng.permutation(len(rows))]
        pairs = rng.integers(0, 256, size=(len(rows), 2, 96, 96), dtype=np.uint8)
        info = np.column_stack([rows[:, 1], rows[:, 2], rows[:, 3] * 2, rows[:, 4]])
        files = {"dat": matrix(BYTE, pairs), "cat": matrix(INT, rows[:, 0]), "info": matrix(INT, info)}
        if tamper:
            tamper(split, files)
        for kind, data in files.items():
            name = file_name(split, kind)
            if kind in gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data, mtime=0))
            else:
                (folder / name).write_bytes(data)
        for r, pair in zip(rows, pairs):
            left[tuple(int(v) for v in r)] = pair[0]
    return left


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("DISENTBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def resized(image: np.ndarray) -> np.ndarray:
    """The reference's resize, written independently: Pillow reads int8 pixels as a 32-bit image."""
    out = np.asarray(Image.fromarray(image.view(np.int8)).resize((64, 64), Image.Resampling.LANCZOS))
    return np.clip(out, 0, 255).astype(np.float32) / 255


@pytest.mark.parametrize("limit", [None, 0])
def test_factors_and_the_drawn_instance_give_the_reference_image(isolated, limit):
    left = write_norb(isolated / "small_norb")
    ds = SmallNORBOfficial(find_files(isolated), verify=False, full_sizes=FULL, memory_limit=limit)
    assert ds.factor_names == ("category", "elevation", "azimuth", "lighting") and ds.factor_sizes == (2, 2, 3, 2)
    assert ds.images.in_memory is (limit is None)
    query = ds.sample_factors(12, np.random.default_rng(1))
    got = ds.observations(query, rng=np.random.default_rng(2)).numpy()
    instance = np.random.default_rng(2).integers(0, 2, size=12)
    for row, f, inst in zip(got, query, instance):
        key = (int(f[0]), int(inst), int(f[1]), int(f[2]), int(f[3]))
        np.testing.assert_array_equal(row[0], resized(left[key]))
    d = ds.describe()
    assert d["data_source"] == "official" and d["dataset"] == "smallnorb"


def test_registered_factory_gz_checksums_and_missing_files(isolated, monkeypatch):
    monkeypatch.setattr(smallnorb, "FULL_SIZES", FULL)
    with pytest.raises(BenchError, match="training-dat.mat.gz not found") as err:
        datasets.create("smallnorb", data_dir=isolated)
    assert "download smallnorb" in str(err.value) and "\n" not in str(err.value)
    write_norb(isolated, gz=("dat", "cat", "info"))
    assert datasets.create("smallnorb", data_dir=isolated, verify=False).factor_sizes == (2, 2, 3, 2)
    # our small .gz files are not the distributed ones: their published sha256 refuses them
    with pytest.raises(BenchError, match="sha256 checksum mismatch"):
        datasets.create("smallnorb", data_dir=isolated, verify=True)
    with pytest.raises(BenchError, match="no procedural stand-in"):
        datasets.create("smallnorb", source="procedural", data_dir=isolated)


def _truncate(split, files):
    if split == SPLITS[1]:
        files["dat"] = files["dat"][:-100]


def _odd_azimuth(split, files):
    info = np.frombuffer(files["info"][20:], "<i4").reshape(-1, 4).copy()
    info[0, 2] = 3
    files["info"] = matrix(INT, info)


def _category_out_of_range(split, files):
    cat = np.frombuffer(files["cat"][20:], "<i4").copy()
    cat[2] = 7
    files["cat"] = matrix(INT, cat)


def _duplicate(split, files):
    if split == SPLITS[1]:  # testing claims instance 1 as well: two rows for the same combination
        info = np.frombuffer(files["info"][20:], "<i4").reshape(-1, 4).copy()
        info[:, 0] = 1
        files["info"] = matrix(INT, info)


def _bad_magic(split, files):
    files["cat"] = b"\x00\x11\x22\x33" + files["cat"][4:]


def _short_info(split, files):
    info = np.frombuffer(files["info"][20:], "<i4").reshape(-1, 4)
    files["info"] = matrix(INT, info[:-1])


@pytest.mark.parametrize(
    "tamper, message",
    [
        (_truncate, "truncated"),
        (_odd_azimuth, "odd azimuth 3"),
        (_category_out_of_range, "category 7, outside 0..1"),
        (_duplicate, "distinct factor combinations"),
        (_bad_magic, "not a NORB binary matrix"),
        (_short_info, "rows, but its -cat file has"),
    ],
)
def test_bad_files_are_one_line_errors(isolated, tamper, message):
    write_norb(isolated, gz=("dat",), tamper=tamper)
    with pytest.raises(BenchError, match=message) as err:
        SmallNORBOfficial(find_files(isolated), verify=False, full_sizes=FULL)
    assert "smallnorb-5x" in str(err.value) and "\n" not in str(err.value)


def test_gunzipped_files_get_a_checksum_recorded_on_first_use(isolated):
    write_norb(isolated, gz=())
    ds = SmallNORBOfficial(find_files(isolated), verify=True, full_sizes=FULL)
    assert ds.describe()["data_checksum"].startswith("sha256:")
    info = isolated / file_name(SPLITS[0], "info")
    assert (info.parent / (info.name + ".sha256-recorded")).is_file()
    data = bytearray(info.read_bytes())
    data[-1] ^= 1
    info.write_bytes(bytes(data))
    with pytest.raises(BenchError, match="recorded on its first use"):
        SmallNORBOfficial(find_files(isolated), verify=True, full_sizes=FULL)


def test_download_refuses_a_file_that_is_not_the_published_one(isolated, monkeypatch):
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"not smallnorb"))
    assert main(["download", "smallnorb", "--data-dir", str(isolated / "d")]) == 1
    assert not any(p.is_file() for p in (isolated / "d").rglob("*"))


@pytest.mark.parametrize("kind", ["dat", "cat"])
def test_damaged_gz_is_one_line(isolated, kind):
    write_norb(isolated, gz=("dat", "cat"))
    path = isolated / (file_name(SPLITS[0], kind) + ".gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if kind == "dat" else b"\x1f\x8b" + b"\x00" * 40)
    with pytest.raises(BenchError) as err:
        SmallNORBOfficial(find_files(isolated), verify=False, full_sizes=FULL)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
