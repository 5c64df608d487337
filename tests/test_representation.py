"""The sampled representation: one posterior draw per image, seeded, a cell of its own; the mean
stays the default and keeps its cell ids."""

import json

import numpy as np
import torch

from disentbench import methods
from disentbench.bench.cli import main
from disentbench.bench.config import load_profile
from disentbench.bench.grid import Cell, expand
from tests.helpers import tiny_cpu_args


def test_encode_sampled_is_mean_plus_scaled_noise_from_the_given_generator():
    vae = methods.create("betavae", seed=0)
    x = torch.rand(5, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    got = vae.encode_sampled(x, torch.Generator().manual_seed(3))
    mu, logvar = vae.encoder(x)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(got, (mu + torch.exp(0.5 * logvar) * eps).detach())
    assert not torch.allclose(got, vae.encode(x))
    torch.testing.assert_close(got, vae.encode_sampled(x, torch.Generator().manual_seed(3)))


def test_mean_cells_keep_their_ids_and_sampled_cells_get_their_own():
    profile = load_profile("smoke")
    mean = expand(profile, ["vae"], {"dsprites": "procedural"}, 1, 2, {}, "none")[0]
    sampled = expand(profile, ["vae"], {"dsprites": "procedural"}, 1, 2, {}, "none", representation="sampled")[0]
    assert "representation" not in mean.training_config()
    assert sampled.training_config()["representation"] == "sampled"
    assert mean.cell_id != sampled.cell_id
    legacy = {k: v for k, v in mean.__dict__.items() if k != "representation"}
    assert Cell(**legacy).cell_id == mean.cell_id  # a cell made before the option has the same id


def test_a_sampled_run_scores_other_numbers_reproducibly(tmp_path, tiny_profile, capsys):
    scores = {}
    for name, extra in [
        ("mean", []),
        ("sampled", ["--representation", "sampled"]),
        ("again", ["--representation", "sampled"]),
    ]:
        assert main(["--methods", "betavae", *tiny_cpu_args(tiny_profile, tmp_path / name, *extra)]) == 0
        (record,) = [json.loads(p.read_text()) for p in (tmp_path / name).glob("cells/*/scores.json")]
        scores[name] = record["scores"]
        if name != "mean":
            assert record["config"]["representation"] == "sampled"
    capsys.readouterr()
    assert scores["sampled"] == scores["again"]
    assert scores["sampled"] != scores["mean"]
    assert all(np.isfinite(v) for v in scores["sampled"].values())


def test_sampled_representation_needs_a_posterior(tmp_path, tiny_profile, capsys):
    code = main(
        [
            "--methods",
            "did",
            "--profile",
            str(tiny_profile),
            "--representation",
            "sampled",
            "--source",
            "procedural",
            "--device",
            "cpu",
            "--results",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "method did has no posterior to sample" in err and "--representation mean" in err


def test_profile_key_is_validated(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("extends: smoke\nrepresentation: median\n")
    assert main(["--profile", str(path), "--results", str(tmp_path / "r"), "--device", "cpu"]) == 2
    assert "representation must be mean or sampled" in capsys.readouterr().err
