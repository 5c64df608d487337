"""3DShapes: the official-format h5 loader on small files written here, label lookup, errors, and
the procedural ray-caster (its fidelity against the real frames of
tests/data/shapes3d_reference_frames.npz is checked in test_shapes3d_fidelity.py)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from disentbench.bench.errors import BenchError
from disentbench.datasets import create
from disentbench.datasets.shapes3d import (
    REMOTE,
    Shapes3DOfficial,
    Shapes3DProcedural,
    factor_values,
    labels_to_classes,
    make_shapes3d,
)

SIZES = (2, 3, 2, 2, 4, 3)
N = int(np.prod(SIZES))


def grid(sizes=SIZES) -> np.ndarray:
    return np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)


def write_h5(path: Path, images=None, labels=None, seed: int = 0, drop: str | None = None) -> Path:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(N, 64, 64, 3), dtype=np.uint8) if images is None else images
    labels = factor_values(grid()) if labels is None else labels
    with h5py.File(path, "w") as h5:
        if drop != "images":
            h5.create_dataset("images", data=images, chunks=(4, *images.shape[1:]))
        if drop != "labels":
            h5.create_dataset("labels", data=labels)
    return path


@pytest.mark.parametrize("memory_limit", [None, 1000])  # in memory, then read from the file
def test_loader_returns_the_stored_image_for_every_factor_vector(tmp_path, memory_limit):
    images = np.random.default_rng(1).integers(0, 256, size=(N, 64, 64, 3), dtype=np.uint8)
    ds = Shapes3DOfficial(
        write_h5(tmp_path / "s.h5", images=images), verify=False, factor_sizes=SIZES, memory_limit=memory_limit
    )
    assert ds.in_memory == (memory_limit is None)
    query = grid()[np.random.default_rng(2).permutation(N)]
    query = np.concatenate([query, query[:5]])  # repeats and arbitrary order
    # brute force: the row whose *label values* are the query's values
    labels = factor_values(grid())
    rows = [int(np.flatnonzero(np.abs(labels - factor_values(q[None])).max(1) < 1e-9)[0]) for q in query]
    got = ds.observations(query).numpy()
    assert got.shape == (len(query), 3, 64, 64)
    np.testing.assert_array_equal((got * 255).round().astype(np.uint8), images[rows].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(ds.index_of(ds.factors_of(np.arange(N))), np.arange(N))


def test_label_lookup_tolerates_float_noise_but_not_wrong_values():
    f = grid((10, 10, 10, 8, 4, 15))[::997]
    noisy = factor_values(f) + np.random.default_rng(0).normal(0, 1e-7, size=(len(f), 6))
    np.testing.assert_array_equal(labels_to_classes(noisy), f)
    bad = factor_values(f)
    bad[3, 3] = 0.5  # the dataset README's "[0, 1]" scale is not the file's value set
    with pytest.raises(BenchError, match="scale"):
        labels_to_classes(bad)


def test_checksum_mismatch(tmp_path):
    with pytest.raises(BenchError, match="checksum"):
        Shapes3DOfficial(write_h5(tmp_path / REMOTE.filename), verify=True, factor_sizes=SIZES)


@pytest.mark.parametrize(
    "kind, message",
    [
        ("no_labels", "need images and labels"),
        ("small_images", "images has shape"),
        ("float_images", "images has shape"),
        ("shuffled", "row-major"),
        ("wrong_value", "not a 3DShapes value"),
        ("truncated", "corrupt"),
        ("garbage", "corrupt"),
    ],
)
def test_wrong_layout_or_corrupt_file_is_refused(tmp_path, kind, message):
    path = tmp_path / "s.h5"
    labels = factor_values(grid())
    if kind == "no_labels":
        write_h5(path, drop="labels")
    elif kind == "small_images":
        write_h5(path, images=np.zeros((N, 32, 32, 3), np.uint8))
    elif kind == "float_images":
        write_h5(path, images=np.zeros((N, 64, 64, 3), np.float32))
    elif kind == "shuffled":
        write_h5(path, labels=labels[::-1].copy())
    elif kind == "wrong_value":
        labels[5, 0] = 0.05
        write_h5(path, labels=labels)
    else:
        write_h5(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3] if kind == "truncated" else b"\x89HDF garbage" * 50)
    with pytest.raises(BenchError, match=message) as err:
        Shapes3DOfficial(path, verify=False, factor_sizes=SIZES, memory_limit=0)
    assert "\n" not in str(err.value)


def test_factory_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("DISENTBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert isinstance(create("shapes3d", source="auto", data_dir=tmp_path), Shapes3DProcedural)
    with pytest.raises(BenchError, match="download shapes3d"):
        make_shapes3d(source="official", data_dir=tmp_path)
    write_h5(tmp_path / REMOTE.filename)  # found, then rejected by its checksum: proves it was opened
    with pytest.raises(BenchError, match="checksum"):
        make_shapes3d(source="auto", data_dir=tmp_path)


def test_procedural_batch_is_deterministic_and_cache_free_render_agrees():
    f = Shapes3DProcedural().sample_factors(6, np.random.default_rng(3))
    cached = Shapes3DProcedural().observations(f)
    direct = Shapes3DProcedural(cache=False).observations(f)
    assert cached.shape == (6, 3, 64, 64) and 0 <= cached.min() and cached.max() <= 1
    # the cache stores float16 layers: at most one grey level apart after rounding
    assert (cached - direct).abs().max() <= 1.01 / 255


def test_one_pass_cpu_composer_equals_torch_compose_bit_for_bit():
    from disentbench.datasets._shapes3d_render import compose

    ds = Shapes3DProcedural()
    f = ds.sample_factors(40, np.random.default_rng(4))
    f[:10, :3] = np.arange(10)[:, None]  # every hue of every surface
    fast = ds.observations(f)  # the numba one-pass composer (CPU, cached)
    hues = torch.from_numpy(f[:, :3]).to(torch.float32) / 10.0
    reference = compose(ds.layers(f).to(torch.float16), hues[:, 0], hues[:, 1], hues[:, 2])
    assert torch.equal(fast, reference)
