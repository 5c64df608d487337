"""color_dsprites, noisy_dsprites, scream_dsprites: known answers from the same generator's draws, on
the official-format loader and on the procedural stand-in; The Scream from a synthetic image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from disentbench import datasets
from disentbench.bench.errors import BenchError
from disentbench.datasets.__main__ import main
from disentbench.datasets.dsprites import DSpritesOfficial, DSpritesProcedural
from disentbench.datasets.dsprites_variants import ColorDSprites, NoisyDSprites, ScreamDSprites, load_scream

SIZES = (3, 2, 4, 3, 3)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("DISENTBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def official(tmp_path) -> DSpritesOfficial:
    """A reduced dSprites grid in the official format, with random binary images."""
    n = int(np.prod(SIZES))
    grid = np.stack(np.unravel_index(np.arange(n), SIZES), axis=1)
    classes = np.concatenate([np.zeros((n, 1), np.int64), grid], axis=1)
    imgs = np.random.default_rng(0).integers(0, 2, size=(n, 64, 64), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", imgs=imgs, latents_classes=classes, latents_values=classes.astype(float))
    return DSpritesOfficial(tmp_path / "d.npz", verify=False, factor_sizes=SIZES)


def painting(path, width=300, height=200) -> np.ndarray:
    """A synthetic 'painting' (smooth gradients, so JPEG keeps it close) written to path."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=95)
    return rgb


def test_color_is_the_sprite_times_one_colour_per_image(official):
    f = official.sample_factors(16, np.random.default_rng(1))
    mask = official.observations(f).numpy()
    ds = ColorDSprites(official)
    got = ds.observations(f, rng=np.random.default_rng(2)).numpy()
    colour = np.random.default_rng(2).uniform(0.5, 1.0, size=(16, 3, 1, 1)).astype(np.float32)
    np.testing.assert_array_equal(got, mask * colour)
    assert got.shape == (16, 3, 64, 64) and ds.observation_shape == (3, 64, 64)
    assert ds.describe()["data_source"] == "official" and ds.describe()["dataset"] == "color_dsprites"


def test_noise_fills_the_background_and_the_sprite_stays_white(official):
    f = official.sample_factors(8, np.random.default_rng(3))
    mask = official.observations(f).numpy()
    got = NoisyDSprites(official).observations(f, rng=np.random.default_rng(4)).numpy()
    noise = np.random.default_rng(4).uniform(0.0, 1.0, size=(8, 3, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(got, np.minimum(mask + noise, 1.0))
    assert (got[np.broadcast_to(mask, got.shape) == 1] == 1).all()


def test_scream_patch_inverted_under_the_sprite(official, tmp_path):
    painting(tmp_path / "scream.jpg", 700, 548)  # shrinks to exactly the reference's 350x274 box
    scream = load_scream(tmp_path / "scream.jpg")
    assert scream.shape == (274, 350, 3) and 0 <= scream.min() and scream.max() <= 1
    ds = ScreamDSprites(official, tmp_path / "scream.jpg", verify=False)
    f = official.sample_factors(6, np.random.default_rng(5))
    mask = official.observations(f).numpy()[:, 0]
    got = ds.observations(f, rng=np.random.default_rng(6)).numpy()
    rng = np.random.default_rng(6)
    top, left = rng.integers(0, 274 - 64, 6), rng.integers(0, 350 - 64, 6)
    shade = rng.uniform(0.0, 1.0, size=(6, 1, 1, 3))
    for i in range(6):
        background = (scream[top[i] : top[i] + 64, left[i] : left[i] + 64] + shade[i]) / 2
        expected = np.where(mask[i][..., None] == 1, 1 - background, background).transpose(2, 0, 1)
        np.testing.assert_allclose(got[i], expected, atol=1e-6)


def test_without_a_generator_the_draws_follow_the_request(official):
    ds = NoisyDSprites(official)
    f = official.sample_factors(4, np.random.default_rng(7))
    a, b = ds.observations(f).numpy(), ds.observations(f).numpy()
    np.testing.assert_array_equal(a, b)  # the same request: the same images, in any process
    other = ds.observations(np.concatenate([f, f])).numpy()
    assert not np.array_equal(other[:4], a)  # another request: fresh draws
    assert not np.array_equal(ds.observations(f, rng=np.random.default_rng(0)).numpy(), a)
    with pytest.raises(TypeError):
        ds.observations(f, rng=0)
    assert not np.array_equal(NoisyDSprites(official, seed=1).observations(f).numpy(), a)


def test_registered_variants_on_the_procedural_stand_in(isolated):
    for name in ("color_dsprites", "noisy_dsprites"):
        ds = datasets.create(name, source="procedural")
        assert ds.source == "procedural" and isinstance(ds.base, DSpritesProcedural)
        x = ds.observations(ds.sample_factors(4, np.random.default_rng(8)))
        assert x.shape == (4, 3, 64, 64) and 0 <= float(x.min()) and float(x.max()) <= 1


def test_scream_missing_is_one_line_naming_the_file_and_how_to_get_it(isolated):
    with pytest.raises(BenchError, match="scream.jpg not found") as err:
        datasets.create("scream_dsprites", source="procedural", data_dir=isolated / "nowhere")
    text = str(err.value)
    assert "\n" not in text and "download scream" in text and "The_Scream.jpg" in text


def test_scream_found_in_the_reference_layout_with_its_checksum_recorded(isolated):
    (isolated / "scream").mkdir()
    painting(isolated / "scream" / "scream.jpg")
    ds = datasets.create("scream_dsprites", source="procedural", data_dir=isolated)
    assert ds.describe()["scream_checksum"].startswith("sha256:")
    assert (isolated / "scream" / "scream.jpg.sha256-recorded").is_file()
    painting(isolated / "scream" / "scream.jpg", 320, 200)  # replaced: another checksum
    with pytest.raises(BenchError, match="recorded on its first use"):
        datasets.create("scream_dsprites", source="procedural", data_dir=isolated)


@pytest.mark.parametrize("content", [b"not an image at all", "small"])
def test_bad_scream_image_is_one_line(tmp_path, content):
    path = tmp_path / "scream.jpg"
    if content == "small":
        painting(path, 60, 60)
    else:
        path.write_bytes(content)
    with pytest.raises(BenchError) as err:
        load_scream(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_download_scream_records_its_checksum_and_the_dataset_uses_it(isolated, monkeypatch):
    import io
    import urllib.request

    painting(isolated / "source.jpg")
    payload = (isolated / "source.jpg").read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(payload))
    assert main(["download", "scream", "--data-dir", str(isolated / "d")]) == 0
    stamp = (isolated / "d" / "scream.jpg.sha256-recorded").read_text().split()[0]
    ds = datasets.create("scream_dsprites", source="procedural", data_dir=isolated / "d")
    assert ds.describe()["scream_checksum"] == f"sha256:{stamp}"
