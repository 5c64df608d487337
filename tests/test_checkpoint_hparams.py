"""Checkpoints against changed defaults: a checkpoint from before a hyperparameter existed rebuilds
with the value it was trained with (`checkpoint_defaults`), and a cell is never continued with other
hyperparameters than its checkpoint's (a one-line error that says how to continue it)."""

import pytest
import torch
from torch import nn

from disentbench import datasets, methods
from disentbench.bench.checkpoint import CHECKPOINT, load_method, read_checkpoint
from disentbench.bench.errors import BenchError
from disentbench.bench.training import TrainOptions, train

pytestmark = pytest.mark.usefixtures("one_thread")


def _train(tmp_path, steps=2, **hp):
    ds = datasets.create("dsprites", source="procedural")
    m = methods.create("infogan", observation_shape=ds.observation_shape, seed=0, **hp)
    options = TrainOptions(steps=steps, batch_size=8, seed=0, log_every=1, checkpoint_every=1)
    train(m, ds, options, device=torch.device("cpu"), cell_dir=tmp_path)
    return m


def test_a_checkpoint_from_before_g_norm_rebuilds_its_unnormalised_generator(tmp_path):
    trained = _train(tmp_path, g_norm="none")
    state = read_checkpoint(tmp_path / CHECKPOINT)
    del state["hparams"]["g_norm"]  # as written before the option existed
    torch.save(state, tmp_path / CHECKPOINT)
    rebuilt, _ = load_method(tmp_path / CHECKPOINT)
    assert rebuilt.hp["g_norm"] == "none"
    assert not any(isinstance(x, nn.BatchNorm1d) for x in rebuilt.decoder.modules())
    for a, b in zip(trained.decoder.state_dict().values(), rebuilt.decoder.state_dict().values()):
        assert torch.equal(a, b)
    assert methods.get("infogan").stored_hparams({"g_norm": "batch"})["g_norm"] == "batch"  # stored wins


def test_continuing_a_cell_with_other_hyperparameters_is_refused_in_one_line(tmp_path):
    _train(tmp_path, steps=1, g_norm="none")
    with pytest.raises(BenchError) as info:
        _train(tmp_path, steps=2)  # today's default: g_norm batch
    text = str(info.value)
    assert "\n" not in text
    assert "g_norm: 'none' in the checkpoint, 'batch' now" in text and "--set infogan.g_norm=none" in text
    resumed = _train(tmp_path, steps=2, g_norm="none")  # as the message says: it continues
    assert resumed.hp["g_norm"] == "none"
    assert read_checkpoint(tmp_path / CHECKPOINT)["step"] == 2
