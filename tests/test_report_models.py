"""Pictures of trained models: traversal values (known answers) and a real tiny checkpoint drawn
through the whole report."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import torch
from matplotlib.image import imread
from PIL import Image

from disentbench.bench.report import build_report
from disentbench.bench.report.models import STEPS, draw_model, traversal_codes, traversal_images


def test_sigma_traversal_sweeps_each_latent_over_two_std_around_the_mean():
    codes = np.random.default_rng(0).normal([1.0, -2.0, 0.5], [0.1, 2.0, 1.0], size=(500, 3))
    z, values = traversal_codes(codes, ("sigma", 2.0))
    mean, std = codes.mean(axis=0), codes.std(axis=0)
    assert z.shape == (3 * STEPS, 3)
    for d in range(3):
        rows = z[d * STEPS : (d + 1) * STEPS]
        np.testing.assert_allclose(rows[:, d], np.linspace(mean[d] - 2 * std[d], mean[d] + 2 * std[d], STEPS))
        others = [k for k in range(3) if k != d]
        np.testing.assert_allclose(rows[:, others], np.tile(mean[others], (STEPS, 1)))
    np.testing.assert_allclose(values[:, 0], mean - 2 * std)


def test_prior_traversal_sweeps_the_prior_range():
    codes = np.random.default_rng(1).uniform(-1, 1, size=(200, 4))
    z, _ = traversal_codes(codes, ("prior", (-1.0, 1.0)))
    for d in range(4):
        np.testing.assert_allclose(z[d * STEPS : (d + 1) * STEPS, d], np.linspace(-1, 1, STEPS))


class _PriorToy:
    """A stand-in DiD-like model: codes are mean intensities of image quarters; decode paints them."""

    latent_dim = 4
    traversal = ("prior", (-1.0, 1.0))

    def encode(self, x):
        q = x.unfold(2, 32, 32).unfold(3, 32, 32).mean(dim=(1, 4, 5))  # (n, 2, 2)
        return q.reshape(len(x), 4) * 2 - 1

    def decode(self, z):
        img = ((z.reshape(-1, 1, 2, 2) + 1) / 2).clamp(0, 1)
        return torch.nn.functional.interpolate(img, size=(64, 64), mode="nearest")


def test_prior_traversal_images_change_only_the_swept_latent():
    x = torch.rand((32, 1, 64, 64), generator=torch.Generator().manual_seed(0))
    model = _PriorToy()
    images, values, rule = traversal_images(model, x)
    mean_code = model.encode(x).mean(dim=0).numpy()
    assert rule == ("prior", (-1.0, 1.0)) and images.shape == (4 * STEPS, 1, 64, 64)
    quarters = images[:, 0, ::32, ::32].reshape(-1, 4)  # one pixel per painted quarter
    for d in range(4):
        rows = quarters[d * STEPS : (d + 1) * STEPS]
        np.testing.assert_allclose(rows[:, d], (np.linspace(-1, 1, STEPS) + 1) / 2, atol=1e-6)
        others = [k for k in range(4) if k != d]
        np.testing.assert_allclose(rows[:, others], np.tile((mean_code[others] + 1) / 2, (STEPS, 1)), atol=1e-6)


def test_draw_model_with_a_prior_traversal(tmp_path):
    x = torch.rand((16, 1, 64, 64), generator=torch.Generator().manual_seed(0))
    files = draw_model(_PriorToy(), x, tmp_path, "toy", "toy model")
    assert [f.kind for f in files] == ["traversal", "traversal_gif", "recon"]
    for f, size in zip([files[0], files[2]], [(800, 800), (800, 260)]):
        image = imread(f.path)
        assert (image.shape[1], image.shape[0]) == size and image[..., :3].var() > 0
    assert "prior range" in files[0].title


def _images(page: str) -> list[str]:
    found: list[str] = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "img":
                found.append(dict(attrs)["alt"])

    P().feed(page)
    return found


def test_report_draws_a_real_checkpoint(tmp_path):
    run = tmp_path / "run"
    rows = []
    for seed in (0, 1):
        cell = f"dsprites-vae-s{seed}"
        cell_dir = run / "cells" / cell
        cell_dir.mkdir(parents=True)
        rows.append(
            {
                "cell_id": cell,
                "dataset": "dsprites",
                "data_source": "procedural",
                "method": "vae",
                "hparams": '{"latent_dim": 3, "lr": 0.0001}',
                "seed": seed,
                "steps": 0,
                "metric": "mig",
                "value": 0.1 * (seed + 1),
            }
        )
        if seed == 0:  # the other cell has no checkpoint: skipped with a note
            _save_vae_cell(cell_dir, seed, latent_dim=3)
    pd.DataFrame(rows).to_csv(run / "runs.csv", index=False)
    page = build_report([run], run / "report", "mig", all_models=True).read_text(encoding="utf-8")
    alts = _images(page)
    assert any(a.startswith("dsprites vae") and "traversals" in a for a in alts)
    assert any("reconstructions" in a for a in alts)
    assert "skipped: no checkpoint.pt (dsprites-vae-s1)" in page
    for name in ("traversal_dsprites-vae-s0.png", "recon_dsprites-vae-s0.png"):
        image = imread(run / "report" / "figures" / name)
        assert image[..., :3].var() > 0
    # the animated traversal: STEPS frames, each the row of the 3 latents (64 px images, 2 px white
    # separators), shown in the page right after the still grid of the same model
    gif = run / "report" / "figures" / "traversal_dsprites-vae-s0.gif"
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == STEPS and im.info.get("loop") == 0
        assert im.size == (3 * 64 + 2 * 2, 64)
        frames = []
        for k in range(im.n_frames):
            im.seek(k)
            frames.append(np.asarray(im.convert("L"), dtype=np.int16))
    assert any(np.abs(frames[0] - f).max() > 0 for f in frames[1:])  # it moves
    assert gif.stat().st_size < 100_000
    assert "data:image/gif;base64," in page and "traversal_dsprites-vae-s0.gif" in page
    assert page.index("traversal_dsprites-vae-s0.png") < page.index("traversal_dsprites-vae-s0.gif")
    assert page.index("traversal_dsprites-vae-s0.gif") < page.index("recon_dsprites-vae-s0.png")


def _save_vae_cell(cell_dir, seed: int, latent_dim: int) -> None:
    """An untrained VAE's checkpoint and config, as the runner writes them."""
    from disentbench import methods
    from disentbench.bench import checkpoint

    model = methods.create("vae", observation_shape=(1, 64, 64), seed=seed, latent_dim=latent_dim)
    checkpoint.save_checkpoint(
        cell_dir / "checkpoint.pt",
        {
            "step": 0,
            "elapsed_seconds": 0.0,
            "method_name": "vae",
            "hparams": dict(model.hp),
            "observation_shape": [1, 64, 64],
            "init": "reference",
            "init_seed": seed,
            "method_state": model.checkpoint_state(),
        },
    )
    (cell_dir / "config.json").write_text(json.dumps({"dataset": "dsprites", "data_source": "procedural"}))


def _two_checkpointed_cells(run):
    rows = []
    for seed in (0, 1):
        cell = f"dsprites-vae-s{seed}"
        cell_dir = run / "cells" / cell
        cell_dir.mkdir(parents=True)
        _save_vae_cell(cell_dir, seed, latent_dim=2)
        rows.append(
            {
                "cell_id": cell,
                "dataset": "dsprites",
                "data_source": "procedural",
                "method": "vae",
                "hparams": '{"latent_dim": 2, "lr": 0.0001}',
                "seed": seed,
                "steps": 0,
                "metric": "mig",
                "value": 0.1 * (seed + 1),
            }
        )
    pd.DataFrame(rows).to_csv(run / "runs.csv", index=False)


def test_every_model_is_drawn_by_default_up_to_the_limit(tmp_path, monkeypatch):
    from disentbench.bench.report import cli as report_cli

    run = tmp_path / "run"
    _two_checkpointed_cells(run)
    traversals = lambda out: sorted(p.name for p in (out / "figures").glob("traversal_*.png"))  # noqa: E731
    build_report([run], tmp_path / "default", "mig")
    assert traversals(tmp_path / "default") == ["traversal_dsprites-vae-s0.png", "traversal_dsprites-vae-s1.png"]
    build_report([run], tmp_path / "one", "mig", all_models=False)
    assert len(traversals(tmp_path / "one")) == 1
    monkeypatch.setattr(report_cli, "AUTO_ALL_MODELS", 1)
    page = build_report([run], tmp_path / "many", "mig").read_text(encoding="utf-8")
    assert len(traversals(tmp_path / "many")) == 1 and "one representative model per method" in page
