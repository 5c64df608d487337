"""A user's own ground-truth file (`file:PATH`): known answers on files written here, the rules for
rows that are missing, continuous factors, and a one-line error for every kind of bad file."""

from __future__ import annotations

import zipfile

import h5py
import numpy as np
import pytest

from disentbench import datasets, metrics
from disentbench.bench.errors import BenchError
from disentbench.datasets.partial import RowIndex
from disentbench.datasets.user_file import UserFileDataset
from disentbench.metrics.utils import histogram_discretize

SIZES = (3, 2, 4)
GRID = np.stack(np.unravel_index(np.arange(int(np.prod(SIZES))), SIZES), axis=1)


def distinct_images(n: int, seed: int, shape=(64, 64, 3)) -> np.ndarray:
    imgs = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    assert len(np.unique(imgs.reshape(n, -1), axis=0)) == n
    return imgs


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("DISENTBENCH_DATA", raising=False)
    # registrations of user files stay inside the test (the environment, the module, the registry)
    monkeypatch.setenv("DISENTBENCH_FILE_DATASETS", "{}")
    monkeypatch.setattr(datasets._user_file, "_FILES", {})
    monkeypatch.setattr(datasets._REGISTRY, "_entries", dict(datasets._REGISTRY._entries))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


# --- known answers ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["npz", "h5"])
@pytest.mark.parametrize("per_batch", [False, True])
def test_full_grid_returns_the_stored_image_of_every_factor_vector(isolated, kind, per_batch):
    order = np.random.default_rng(1).permutation(len(GRID))  # rows in any order
    imgs = distinct_images(len(GRID), 2)
    path = isolated / f"mine.{kind}"
    if kind == "npz":
        np.savez(path, images=imgs, factors=GRID[order], factor_names=np.array(["shape", "size", "hue"]))
    else:
        with h5py.File(path, "w") as h5:
            h5["images"], h5["factors"] = imgs, GRID[order]
            h5["factor_names"] = np.array([b"shape", b"size", b"hue"])
    ds = UserFileDataset(path, verify=False, memory_limit=0 if per_batch else None)
    assert ds.images.in_memory is not per_batch
    assert ds.name == "file-mine" and ds.factor_names == ("shape", "size", "hue") and ds.factor_sizes == SIZES
    assert ds.complete_grid and ds.observation_shape == (3, 64, 64)
    query = GRID[np.random.default_rng(3).integers(0, len(GRID), 40)]
    rows = [int(np.flatnonzero((GRID[order] == q).all(1))[0]) for q in query]  # brute force
    got = ds.observations(query).numpy()
    np.testing.assert_array_equal(got, imgs[rows].transpose(0, 3, 1, 2).astype(np.float32) / 255)
    # a full grid samples factors exactly as the official datasets do
    np.testing.assert_array_equal(
        ds.sample_factors(50, np.random.default_rng(4)), np.random.default_rng(4).integers(0, SIZES, size=(50, 3))
    )
    d = ds.describe()
    assert d["data_source"] == "file" and d["rows"] == 24 and d["complete_grid"] and d["data_file"] == str(path)


@pytest.mark.parametrize(
    "stored, layout",
    [((24, 64, 64), "nhw"), ((24, 64, 64, 1), "nhwc"), ((24, 1, 64, 64), "nchw"), ((24, 3, 64, 64), "nchw")],
)
def test_image_layouts_and_float_pixels(isolated, stored, layout):
    base = np.random.default_rng(5).random(stored).astype(np.float32)
    np.savez(isolated / "f.npz", images=base, factors=GRID)
    ds = UserFileDataset(isolated / "f.npz", verify=False)
    if layout == "nhw":
        expected = base[:, None]
    else:
        expected = base.transpose(0, 3, 1, 2) if layout == "nhwc" else base
    np.testing.assert_array_equal(ds.observations(GRID).numpy(), expected)


# --- rows missing ------------------------------------------------------------------------------
def test_missing_rows_sample_existing_rows_and_answer_with_existing_ones(isolated):
    keep = np.random.default_rng(6).permutation(len(GRID))[:15]
    imgs = distinct_images(15, 7)
    np.savez(isolated / "p.npz", images=imgs, factors=GRID[keep])
    ds = UserFileDataset(isolated / "p.npz", verify=False)
    assert not ds.complete_grid and len(ds) == 15 and ds.describe()["combinations"] == 15
    drawn = ds.sample_factors(300, np.random.default_rng(8))
    stored = {tuple(r) for r in GRID[keep]}
    assert {tuple(r) for r in drawn} == stored  # only rows that exist, all of them in 300 draws
    # an existing combination is answered with its own row
    np.testing.assert_array_equal(
        ds.observations(GRID[keep][:5]).numpy(), imgs[:5].transpose(0, 3, 1, 2).astype(np.float32) / 255
    )
    query = np.random.default_rng(9).integers(0, SIZES, size=(100, 3))
    expected = imgs[ds.rows_for(query)].transpose(0, 3, 1, 2).astype(np.float32) / 255
    np.testing.assert_array_equal(ds.observations(query).numpy(), expected)


def test_a_fixed_factor_copied_into_a_sampled_vector_survives(isolated):
    """BetaVAE's construction on sparse data: copy factor k of one row into another; whenever the rows
    one factor away from the result all differ in factor k (found here by brute force), the answer
    keeps factor k's requested value."""
    sizes = (4, 4, 4, 4)
    rng = np.random.default_rng(10)
    classes = np.unique(rng.integers(0, 4, size=(40, 4)), axis=0)
    np.savez(
        isolated / "s.npz", images=distinct_images(len(classes), 11), factors=classes, factor_sizes=np.array(sizes)
    )
    ds = UserFileDataset(isolated / "s.npz", verify=False)
    checked = 0
    for k in range(4):
        first, second = ds.sample_factors(100, rng), ds.sample_factors(100, rng)
        second[:, k] = first[:, k]
        answer = classes[ds.rows_for(second, np.random.default_rng(k))]
        for v, got in zip(second, answer):
            diff = classes != v
            near = {int(np.flatnonzero(d)[0]) for d in diff if d.sum() == 1}
            if not diff.sum(1).min() == 0 and near == {k}:
                assert got[k] == v[k]
                checked += 1
            elif diff.sum(1).min() == 0:
                np.testing.assert_array_equal(got, v)
    assert checked > 50  # the rule was exercised, not skipped


def test_row_index_rules_on_a_designed_table():
    classes = np.array([[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [0, 0, 1, 1], [1, 0, 1, 2]])
    index = RowIndex(classes, (3, 3, 3, 3))
    rng = np.random.default_rng(0)

    def answers(v, n=60):
        return set(index.rows_for(np.array([v] * n), rng).tolist())

    assert answers([1, 1, 1, 1]) == {1}  # rule 1: the combination's own row
    # rule 2: only row 2 is one factor away, differing in factor 3: keep factor 3 = 0 (row 0 has it)
    assert answers([2, 2, 2, 0]) == {0}
    # rule 3: rows 3 and 4 are one factor away, in factors 3 and 0: one of them
    assert answers([0, 0, 1, 2]) == {3, 4}
    # rule 4: nothing one factor away; rows 0 and 3 agree in two factors, the others in fewer
    assert answers([0, 2, 0, 1]) == {0, 3}
    # several rows for one combination: drawn uniformly among them
    dup = RowIndex(np.array([[0, 0], [0, 0], [1, 1]]), (2, 2))
    assert set(dup.rows_for(np.zeros((40, 2), dtype=int), rng).tolist()) == {0, 1}


def test_draws_are_reproducible_and_follow_an_explicit_generator(isolated):
    imgs = distinct_images(10, 11)
    factors = np.random.default_rng(12).integers(0, 3, size=(10, 2))
    factors[:3] = [[0, 0], [1, 1], [2, 2]]
    np.savez(isolated / "d.npz", images=imgs, factors=factors)
    ds = UserFileDataset(isolated / "d.npz", verify=False)
    query = np.array([[0, 1], [2, 0], [1, 2]] * 10)
    a = ds.observations(query).numpy()
    np.testing.assert_array_equal(a, ds.observations(query).numpy())  # same request, same images
    b = ds.rows_for(query, np.random.default_rng(1))
    np.testing.assert_array_equal(b, ds.rows_for(query, np.random.default_rng(1)))
    with pytest.raises(TypeError):
        ds.observations(query, rng=3)


def test_metrics_that_fix_a_factor_run_on_missing_rows(isolated):
    keep = np.random.default_rng(13).permutation(len(GRID))[:14]
    np.savez(isolated / "m.npz", images=distinct_images(14, 14), factors=GRID[keep])
    ds = UserFileDataset(isolated / "m.npz", verify=False)

    def encode(x):
        return x.mean(dim=(2, 3))

    out = metrics.evaluate("beta_vae", ds, encode, num_train=20, num_test=10, batch_size=8)
    assert 0 <= out["beta_vae"] <= 1
    out = metrics.evaluate(
        "factor_vae", ds, encode, num_train=20, num_test=10, batch_size=8, num_variance_estimate=64, prune_threshold=0
    )
    assert 0 <= out["factor_vae"] <= 1


# --- continuous and float factors ------------------------------------------------------------
def test_continuous_factor_is_binned_like_mig_and_few_values_are_categories(isolated):
    rng = np.random.default_rng(15)
    n = 60
    angle = rng.uniform(-1.0, 2.0, size=n)  # continuous: 60 distinct values
    level = rng.choice([0.25, 0.5, 4.0], size=n)  # three values: categorical
    count = rng.integers(0, 5, size=n)
    np.savez(isolated / "c.npz", images=distinct_images(n, 16), factors=np.column_stack([angle, level, count]))
    ds = UserFileDataset(isolated / "c.npz", verify=False, bins=8)
    np.testing.assert_array_equal(ds.classes[:, 0], histogram_discretize(angle[:, None], 8)[:, 0] - 1)
    np.testing.assert_array_equal(ds.classes[:, 1], np.searchsorted([0.25, 0.5, 4.0], level))
    np.testing.assert_array_equal(ds.classes[:, 2], count)
    assert ds.factor_sizes == (8, 3, int(count.max()) + 1)
    factors = ds.describe()["factors"]
    assert factors["factor_0"]["kind"] == "binned" and factors["factor_0"]["bins"] == 8
    assert factors["factor_0"]["range"] == [float(angle.min()), float(angle.max())]
    assert factors["factor_1"] == {"kind": "categorical", "size": 3, "values": [0.25, 0.5, 4.0]}


# --- bad files: one line, before any training --------------------------------------------------
class _Trap:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(images=np.zeros((24, 32, 32), np.uint8)), "images have shape"),
        (dict(images=np.zeros((24, 64, 64, 2), np.uint8)), "images have shape"),
        (dict(images=np.zeros((24, 64, 64), np.int32)), "images are int32"),
        (dict(images=np.full((24, 64, 64), 1.5, np.float32)), "must lie in \\[0, 1\\]; image 0"),
        (dict(factors=GRID[:20]), "24 images but factors has shape"),
        (dict(factors=GRID - 1), "integer classes start at 0"),
        (dict(factor_sizes=np.array([3, 2, 3])), "gives factor_2 3 classes, but row .* has class 3"),
        (dict(factor_sizes=np.array([3, 2])), "factor_sizes has 2 entries for 3"),
        (dict(factor_names=np.array(["a", "a", "b"])), "3 distinct non-empty names"),
        (dict(factors=np.column_stack([GRID, np.zeros(24, int)])), "takes one value in every row"),
        (dict(factors=GRID.astype(str)), "factors are <U"),
        (dict(factors=None), "no factors array"),
    ],
)
def test_mislabelled_files_are_one_line_errors_naming_the_file(isolated, arrays, message):
    content = {"images": np.zeros((24, 64, 64), np.uint8), "factors": GRID, **arrays}
    path = isolated / "bad.npz"
    np.savez(path, **{k: v for k, v in content.items() if v is not None})
    with pytest.raises(BenchError, match=message) as err:
        UserFileDataset(path, verify=False)
    assert str(path) in one_line(err)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_truncated_or_garbage_file_is_one_line(isolated, damage):
    path = isolated / "t.npz"
    np.savez(path, images=distinct_images(24, 17), factors=GRID)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00junk" * 200)
    with pytest.raises(BenchError) as err:
        UserFileDataset(path, verify=False)
    assert str(path) in one_line(err)


def test_truncated_h5_is_one_line(isolated):
    path = isolated / "t.h5"
    with h5py.File(path, "w") as h5:
        h5["images"], h5["factors"] = distinct_images(24, 18), GRID
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(BenchError) as err:
        UserFileDataset(path, verify=False)
    assert str(path) in one_line(err)


def test_pickled_arrays_are_refused_without_unpickling(isolated):
    marker = isolated / "unpickled"
    trap = np.empty(24, dtype=object)
    trap[:] = [_Trap(str(marker))] * 24
    path = isolated / "pickle.npz"
    np.savez(path, images=np.zeros((24, 64, 64), np.uint8), factors=trap)
    with pytest.raises(BenchError, match="Python objects"):
        UserFileDataset(path, verify=False)
    assert not marker.exists()
    np.load(path, allow_pickle=True)["factors"]  # the trap works: unpickling would have made the marker
    assert marker.exists()


def test_compressed_images_over_the_memory_limit_are_refused(isolated):
    path = isolated / "z.npz"
    np.savez_compressed(path, images=distinct_images(24, 19), factors=GRID)
    assert UserFileDataset(path, verify=False).images.in_memory  # under the limit: read into memory
    with pytest.raises(BenchError, match="compressed"):
        UserFileDataset(path, verify=False, memory_limit=1000)


def test_checksum_is_recorded_on_first_use_and_a_changed_file_refused(isolated):
    path = isolated / "own.npz"
    np.savez(path, images=distinct_images(24, 20), factors=GRID)
    first = UserFileDataset(path).describe()["data_checksum"]
    assert first.startswith("sha256:") and (isolated / "own.npz.sha256-recorded").is_file()
    assert UserFileDataset(path).describe()["data_checksum"] == first
    np.savez(path, images=distinct_images(24, 21), factors=GRID)  # same name, other pixels
    with pytest.raises(BenchError, match="recorded on its first use") as err:
        UserFileDataset(path)
    assert str(path) in one_line(err)


# --- names ---------------------------------------------------------------------------------------
def test_file_spec_registers_a_name_that_other_processes_find(isolated, monkeypatch):
    path = isolated / "my data.npz"
    np.savez(path, images=distinct_images(24, 22), factors=GRID)
    ds = datasets.create(f"file:{path}", verify=False)
    assert ds.name == "file-my-data" and "file-my-data" in datasets.list_datasets()
    assert datasets.register_files(f"dsprites, file:{path}") == "dsprites,file-my-data"
    # a worker process knows the file through the environment, a later command through the cache
    monkeypatch.setattr(datasets._user_file, "_FILES", {})
    assert datasets._user_file.lookup("file-my-data")["path"] == str(path.resolve())
    monkeypatch.setenv("DISENTBENCH_FILE_DATASETS", "{}")
    assert datasets.create("file-my-data", verify=False).describe()["data_file"] == str(path.resolve())
    (isolated / "cache" / "disentbench" / "user_datasets.json").unlink()
    with pytest.raises(BenchError, match="no file known under this name"):
        datasets.create("file-my-data")
    other = isolated / "sub"
    other.mkdir()
    np.savez(other / "my data.npz", images=distinct_images(24, 23), factors=GRID)
    monkeypatch.setattr(datasets._user_file, "_FILES", {"file-my-data": {"path": str(path.resolve()), "bins": 20}})
    with pytest.raises(BenchError, match="already stands for"):
        datasets.register_file(f"file:{other / 'my data.npz'}")
    with pytest.raises(BenchError, match="no such file"):
        datasets.register_file(f"file:{isolated / 'absent.npz'}")
    with pytest.raises(BenchError, match="npz or .h5"):
        (isolated / "x.csv").write_text("1")
        datasets.register_file(f"file:{isolated / 'x.csv'}")


def test_h5_without_factors_and_zip_without_arrays(isolated):
    with h5py.File(isolated / "n.h5", "w") as h5:
        h5["images"] = np.zeros((4, 64, 64), np.uint8)
    with pytest.raises(BenchError, match="no factors dataset"):
        UserFileDataset(isolated / "n.h5", verify=False)
    with zipfile.ZipFile(isolated / "e.npz", "w") as zf:
        zf.writestr("readme.txt", "nothing")
    with pytest.raises(BenchError, match="no factors or images array"):
        UserFileDataset(isolated / "e.npz", verify=False)
