"""The GAN family's report figures: diagnostics curves from train_log.csv, samples and generator
traversals from a checkpoint, and the selection of cells they are drawn for."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.image import imread

from disentbench import datasets, methods
from disentbench.bench.report.gan import (
    KIND_TITLES,
    diagnostics_figure,
    gan_cell_figures,
    gan_pictures,
    is_gan,
    loss_columns,
    per_dimension_r2,
    traversal_inputs,
)
from disentbench.bench.training import TrainOptions, train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def gan_cell(tmp_path_factory):
    """A two-step InfoGAN-CR cell with its log (diagnostics at both steps) and checkpoint."""
    cell = tmp_path_factory.mktemp("runs") / "cells" / "dsprites-infogancr-s0"
    ds = datasets.create("dsprites", source="procedural")
    m = methods.create("infogancr", observation_shape=ds.observation_shape, seed=0, cr_start=0.5)
    m.n_diagnostic_codes, m.n_gradient_codes, m.n_diagnostic_pairs = 16, 4, 2
    threads = torch.get_num_threads()  # a module fixture runs before the one_thread fixture
    torch.set_num_threads(1)
    try:
        options = TrainOptions(steps=2, batch_size=4, seed=0, log_every=1)
        train(m, ds, options, device=torch.device("cpu"), cell_dir=cell)
    finally:
        torch.set_num_threads(threads)
    return cell


def test_cell_figures_are_drawn_at_their_fixed_sizes(gan_cell, tmp_path):
    files, notes = gan_cell_figures(gan_cell, tmp_path, "cell a", "dsprites infogancr")
    assert notes == []
    assert [f.kind for f in files] == ["gan_diagnostics", "gan_samples", "gan_traversal"] == list(KIND_TITLES)
    shapes = {f.kind: imread(f.path).shape[:2] for f in files}
    assert shapes == {"gan_diagnostics": (700, 1200), "gan_samples": (640, 600), "gan_traversal": (800, 800)}
    assert all(f.path.name.endswith("_cell-a.png") for f in files)
    assert "step 2" in files[1].title


def test_missing_parts_are_notes_not_errors(tmp_path):
    files, notes = gan_cell_figures(tmp_path / "nothing", tmp_path, "x", "x")
    assert files == [] and len(notes) == 2 and "no train_log.csv" in notes[0] and "no checkpoint.pt" in notes[1]


def test_diagnostics_figure_reads_the_log_columns(tmp_path):
    log = pd.DataFrame(
        {
            "step": [10, 20],
            "elapsed_seconds": [1.0, 2.0],
            "adv": [1.0, 2.0],
            "l_h": [-0.1, -0.5],
            "grad_g_adv": [3.0, 4.0],
            "grad_g_l_h": [0.0, 1e-3],
            "r2_enc_1": [0.1, 0.2],
            "r2_enc_0": [0.0, 0.5],
            "r2_enc_mean": [0.05, 0.35],
            "h_centroid_acc": [0.5, 0.6],
            "image_std": [0.01, 0.1],
        }
    )
    assert loss_columns(log) == ["adv", "l_h"]
    assert per_dimension_r2(log) == ["r2_enc_0", "r2_enc_1"]
    assert diagnostics_figure(log, tmp_path / "d.png", "t").path.is_file()
    vae_log = log[["step", "adv"]]  # no gradient norms: not a GAN's log
    assert diagnostics_figure(vae_log, tmp_path / "v.png", "t") is None and not (tmp_path / "v.png").exists()


def test_traversal_sweeps_one_code_per_row_and_keeps_the_rest():
    m = methods.create("infogan", seed=0)
    z, values = traversal_inputs(m, seed=3, steps=4)
    assert z.shape == (5 * 4, 10) and np.allclose(values, np.linspace(-1, 1, 4))
    base = z[0].clone()
    base[0] = z[4, 0]  # row 4 is the first of code 1: code 0 back at the base draw
    for d in range(5):
        for j in range(4):
            row = z[d * 4 + j]
            for k in range(10):
                expected = values[j] if k == d else float(base[k])
                assert float(row[k]) == pytest.approx(expected, abs=1e-6), (d, j, k)


def test_gan_pictures_draw_only_gan_cells(gan_cell, tmp_path):
    run_dir = gan_cell.parent.parent
    (gan_cell / "config.json").write_text(json.dumps({"dataset": "dsprites", "data_source": "procedural"}))
    runs = pd.DataFrame(
        [
            {"cell_id": gan_cell.name, "run_dir": str(run_dir), "dataset": "dsprites", "data_source": "procedural",
             "method": "infogancr", "hparams": "{}", "seed": 0},
            {"cell_id": "dsprites-vae-s0", "run_dir": str(run_dir), "dataset": "dsprites", "data_source": "procedural",
             "method": "vae", "hparams": "{}", "seed": 0},
        ]
    )  # fmt: skip
    files, notes = gan_pictures(runs, [], tmp_path, all_models=True)
    assert len(files) == 3 and notes == [] and all(gan_cell.name in f.path.name for f in files)
    assert is_gan("did") and is_gan("infogan") and not is_gan("vae") and not is_gan("no-such-method")
