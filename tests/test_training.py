import warnings

import numpy as np
import pytest
import torch

from disentbench import datasets, methods
from disentbench.bench.checkpoint import CHECKPOINT, PREVIOUS, load_latest, load_method
from disentbench.bench.training import RunSeeds, TrainingDiverged, TrainOptions, train


def _fresh(seed=0):
    ds = datasets.create("dsprites", source="procedural")
    m = methods.create("betavae", observation_shape=ds.observation_shape, seed=RunSeeds.from_seed(seed).init)
    return ds, m


def _params(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


class _Stop(Exception):
    pass


def test_resume_gives_the_same_model_as_an_uninterrupted_run(tmp_path):
    ds, full = _fresh()
    train(
        full,
        ds,
        TrainOptions(steps=8, batch_size=16, seed=0, log_every=2, checkpoint_every=4),
        device=torch.device("cpu"),
        cell_dir=tmp_path / "a",
    )

    ds, part = _fresh()

    def stop_after_six(step, losses):
        if step == 6:
            raise _Stop

    (tmp_path / "b").mkdir()
    with pytest.raises(_Stop):
        train(
            part,
            ds,
            TrainOptions(steps=8, batch_size=16, seed=0, log_every=2, checkpoint_every=4),
            device=torch.device("cpu"),
            cell_dir=tmp_path / "b",
            progress=stop_after_six,
        )
    ds, resumed = _fresh()  # a new process would start from fresh weights and read the checkpoint
    result = train(
        resumed,
        ds,
        TrainOptions(steps=8, batch_size=16, seed=0, log_every=2, checkpoint_every=4),
        device=torch.device("cpu"),
        cell_dir=tmp_path / "b",
    )
    assert result.resumed_from == 4
    assert torch.equal(_params(full), _params(resumed))
    log_a = (tmp_path / "a" / "train_log.csv").read_text().splitlines()
    log_b = (tmp_path / "b" / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in log_b] == [r.split(",")[0] for r in log_a] == ["step", "2", "4", "6", "8"]
    assert [r.split(",")[2:] for r in log_a] == [r.split(",")[2:] for r in log_b]


def test_different_seeds_train_differently(tmp_path):
    ds, a = _fresh(0)
    train(a, ds, TrainOptions(steps=2, batch_size=8, seed=0), device=torch.device("cpu"))
    ds, b = _fresh(1)
    train(b, ds, TrainOptions(steps=2, batch_size=8, seed=1), device=torch.device("cpu"))
    assert not torch.equal(_params(a), _params(b))


def test_corrupt_checkpoint_falls_back_to_previous(tmp_path):
    ds, m = _fresh()
    train(
        m,
        ds,
        TrainOptions(steps=4, batch_size=8, seed=0, log_every=2, checkpoint_every=2),
        device=torch.device("cpu"),
        cell_dir=tmp_path,
    )
    assert (tmp_path / CHECKPOINT).exists() and (tmp_path / PREVIOUS).exists()
    data = (tmp_path / CHECKPOINT).read_bytes()
    (tmp_path / CHECKPOINT).write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = load_latest(tmp_path)
    assert state is not None and state["step"] == 2
    assert any("unreadable" in str(w.message) for w in caught)
    (tmp_path / PREVIOUS).write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_latest(tmp_path) is None


def test_checkpoint_rebuilds_the_trained_model(tmp_path):
    ds, m = _fresh()
    train(
        m, ds, TrainOptions(steps=3, batch_size=8, seed=0, log_every=3), device=torch.device("cpu"), cell_dir=tmp_path
    )
    rebuilt, state = load_method(tmp_path / CHECKPOINT)
    x = ds.observations(ds.sample_factors(5, np.random.default_rng(0)))
    assert state["step"] == 3 and rebuilt.hp == m.hp
    assert torch.equal(rebuilt.encode(x), m.encode(x))


def test_non_finite_loss_is_detected_at_the_logging_step():
    ds, m = _fresh()
    m.hp["beta"] = float("nan")
    with pytest.raises(TrainingDiverged) as info:
        train(m, ds, TrainOptions(steps=6, batch_size=8, seed=0, log_every=3), device=torch.device("cpu"))
    assert info.value.step == 3
