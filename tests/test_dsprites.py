"""dSprites: the official-format loader on small files written here, the file search order, and the
procedural renderer against real frames (tests/data/dsprites_reference_frames.npz, described in
tests/data/README.md)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from disentbench.bench.errors import BenchError
from disentbench.datasets.dsprites import REMOTE, DSpritesOfficial, DSpritesProcedural, make_dsprites

SIZES = (3, 2, 4, 3, 3)  # reduced grid: shape, scale, orientation, posX, posY
N = int(np.prod(SIZES))
REFERENCE = Path(__file__).resolve().parent / "data" / "dsprites_reference_frames.npz"


def grid_classes(sizes=SIZES) -> np.ndarray:
    n = int(np.prod(sizes))
    grid = np.stack(np.unravel_index(np.arange(n), sizes), axis=1)
    return np.concatenate([np.zeros((n, 1), np.int64), grid], axis=1).astype(np.int64)


def random_images(seed: int, n: int = N) -> np.ndarray:
    imgs = np.random.default_rng(seed).integers(0, 2, size=(n, 64, 64), dtype=np.uint8)
    assert len(np.unique(imgs.reshape(n, -1), axis=0)) == n  # distinct, so a wrong index cannot pass
    return imgs


def write_npz(path: Path, imgs=None, classes=None, values=None, seed: int = 0, **extra) -> Path:
    imgs = random_images(seed) if imgs is None else imgs
    classes = grid_classes() if classes is None else classes
    values = grid_classes().astype(np.float64) if values is None else values
    arrays = {"imgs": imgs, "latents_classes": classes, "latents_values": values, **extra}
    np.savez(path, **{k: v for k, v in arrays.items() if v is not False})
    return path


# --- official-format loader ------------------------------------------------------------------
def test_loader_returns_the_stored_image_for_every_factor_vector(tmp_path):
    imgs = random_images(1)
    ds = DSpritesOfficial(write_npz(tmp_path / "d.npz", imgs=imgs), verify=False, factor_sizes=SIZES)
    factors = grid_classes()[:, 1:]
    order = np.random.default_rng(2).permutation(N)  # arbitrary order and repeats
    query = np.concatenate([factors[order], factors[order[:7]]])
    got = ds.observations(query).numpy()
    assert got.shape == (len(query), 1, 64, 64)
    # brute force: find each factor row in latents_classes, take the image stored at that row
    rows = [int(np.flatnonzero((grid_classes()[:, 1:] == q).all(1))[0]) for q in query]
    np.testing.assert_array_equal(got[:, 0], imgs[rows].astype(np.float32))
    assert ds.describe()["data_source"] == "official"


def test_index_of_and_factors_of_round_trip(tmp_path):
    ds = DSpritesOfficial(write_npz(tmp_path / "d.npz"), verify=False, factor_sizes=SIZES)
    idx = np.arange(N)
    f = ds.factors_of(idx)
    np.testing.assert_array_equal(f, grid_classes()[:, 1:])  # row i of the file has factors f[i]
    np.testing.assert_array_equal(ds.index_of(f), idx)
    with pytest.raises(BenchError):
        ds.index_of(np.array([[3, 0, 0, 0, 0]]))  # shape index out of range


def test_sample_factors_uses_the_explicit_generator(tmp_path):
    ds = DSpritesOfficial(write_npz(tmp_path / "d.npz"), verify=False, factor_sizes=SIZES)
    a = ds.sample_factors(500, np.random.default_rng(7))
    b = ds.sample_factors(500, np.random.default_rng(7))
    c = ds.sample_factors(500, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() == 0 and (a.max(0) == np.array(SIZES) - 1).all()
    with pytest.raises(TypeError):
        ds.sample_factors(3, 7)


def test_checksum_mismatch_is_a_one_line_error(tmp_path):
    path = write_npz(tmp_path / REMOTE.filename)
    with pytest.raises(BenchError, match="checksum") as err:
        DSpritesOfficial(path, verify=True, factor_sizes=SIZES)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "bad_crc"])
def test_corrupt_file_is_a_bench_error(tmp_path, damage):
    path = tmp_path / "d.npz"
    if damage == "bad_crc":
        # a well-formed zip whose imgs member is deflated, then one compressed byte is flipped
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, arr in (
                ("imgs", random_images(3)),
                ("latents_classes", grid_classes()),
                ("latents_values", grid_classes().astype(float)),
            ):
                with zf.open(name + ".npy", "w") as f:
                    np.lib.format.write_array(f, arr)
        data = bytearray(path.read_bytes())
        data[len(data) // 3] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        write_npz(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 100)
    with pytest.raises(BenchError) as err:
        DSpritesOfficial(path, verify=False, factor_sizes=SIZES)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(latents_classes=False), "missing latents_classes"),
        (dict(imgs=np.zeros((N, 32, 32), np.uint8)), "imgs has shape"),
        (dict(imgs=np.full((N, 64, 64), 255, np.uint8)), "binary"),
        (dict(latents_classes=grid_classes()[:, :5]), "latents_classes has shape"),
        (dict(latents_classes=grid_classes()[::-1].copy()), "row-major"),
        (dict(latents_classes=grid_classes().astype(np.float64)), "latents_classes has shape"),
    ],
)
def test_wrong_layout_is_refused(tmp_path, change, message):
    path = write_npz(
        tmp_path / "d.npz",
        **{
            "imgs": None,
            "classes": None,
            **{("classes" if k == "latents_classes" else k): v for k, v in change.items()},
        },
    )
    with pytest.raises(BenchError, match=message):
        DSpritesOfficial(path, verify=False, factor_sizes=SIZES)


class _Trap:
    """Unpickling this creates a marker file: proof that the loader unpickled user data."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("only_one", [True, False])
def test_pickled_object_array_is_refused_without_unpickling(tmp_path, only_one):
    marker = tmp_path / "unpickled"
    trap = np.empty(N, dtype=object)
    trap[:] = [_Trap(str(marker))] * N
    path = tmp_path / "d.npz"
    if only_one:
        np.savez(path, imgs=trap)
    else:  # every key present, the first one read is a pickle
        np.savez(path, imgs=random_images(0), latents_classes=trap, latents_values=grid_classes().astype(float))
    with pytest.raises(BenchError):
        DSpritesOfficial(path, verify=False, factor_sizes=SIZES)
    assert not marker.exists()
    # the trap works: unpickling it really creates the marker (so the assertion above can fail)
    np.load(path, allow_pickle=True)["imgs" if only_one else "latents_classes"]
    assert marker.exists()


# --- make_dsprites and the search order ------------------------------------------------------
@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("DISENTBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_auto_falls_back_to_procedural_and_official_needs_the_file(isolated):
    ds = make_dsprites(source="auto", data_dir=isolated / "nowhere")
    assert isinstance(ds, DSpritesProcedural) and ds.describe()["data_source"] == "procedural"
    assert isinstance(make_dsprites(source="procedural"), DSpritesProcedural)
    with pytest.raises(BenchError, match="download dsprites"):
        make_dsprites(source="official", data_dir=isolated / "nowhere")
    with pytest.raises(BenchError, match="source"):
        make_dsprites(source="offical")


def test_search_order_data_dir_then_env_then_cache(isolated, monkeypatch):
    from disentbench.datasets.files import find_file

    name = REMOTE.filename
    cache = isolated / "cache" / "disentbench"
    env, explicit = isolated / "env", isolated / "explicit"
    for d in (cache, env, explicit):
        d.mkdir(parents=True)
        (d / name).write_bytes(d.name.encode())
    monkeypatch.setenv("DISENTBENCH_DATA", str(env))
    assert find_file(name, explicit) == explicit / name
    assert find_file(name, None) == env / name
    monkeypatch.delenv("DISENTBENCH_DATA")
    assert find_file(name, None) == cache / name
    (cache / name).unlink()
    assert find_file(name, None) is None
    # and make_dsprites(official) goes through that search: the env file (a stub) is found and
    # rejected by its checksum, which proves it was the one opened
    monkeypatch.setenv("DISENTBENCH_DATA", str(env))
    with pytest.raises(BenchError, match=str(env)):
        make_dsprites(source="official")


# --- procedural renderer vs real frames ------------------------------------------------------
def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a & b).sum((1, 2)) / np.maximum((a | b).sum((1, 2)), 1)


def _centroid(m: np.ndarray) -> np.ndarray:
    ii, jj = np.mgrid[0:64, 0:64]
    s = m.sum((1, 2))
    return np.stack([(m * ii).sum((1, 2)) / s, (m * jj).sum((1, 2)) / s], 1)


def test_procedural_matches_real_frames():
    ref = np.load(REFERENCE)
    real = ref["imgs"].astype(bool)
    classes = ref["classes"]
    ds = DSpritesProcedural()
    out = ds.observations(classes).numpy()[:, 0] > 0.5
    iou = _iou(out, real)
    names = ("square", "ellipse", "heart")
    per_shape = {names[s]: float(iou[classes[:, 0] == s].mean()) for s in range(3)}
    print(
        "dsprites procedural IoU per shape:",
        {k: round(v, 4) for k, v in per_shape.items()},
        "min",
        round(float(iou.min()), 4),
    )
    assert all(v >= 0.98 for v in per_shape.values()), per_shape
    small = classes[:, 1] == 0
    assert iou[~small].min() >= 0.9 and iou[small].min() >= 0.85
    err = np.linalg.norm(_centroid(out) - _centroid(real), axis=1)
    assert err.max() < 0.5, err.max()
    # a wrong renderer fails these checks: shifting by one position index breaks the centroids
    shifted = classes.copy()
    shifted[:, 3] = np.where(shifted[:, 3] < 31, shifted[:, 3] + 1, shifted[:, 3] - 1)
    assert np.linalg.norm(_centroid(ds.observations(shifted).numpy()[:, 0] > 0.5) - _centroid(real), axis=1).min() > 0.5
    # orientation 39 is the same angle as 0: identical images
    flagged = classes[ref["orientation_may_be_39"]]
    as39 = flagged.copy()
    as39[:, 2] = 39
    np.testing.assert_array_equal(ds.observations(flagged).numpy(), ds.observations(as39).numpy())
