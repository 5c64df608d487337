"""Few labels (s2betavae, s2factorvae, s2betatcvae, s2dipvae1, s2dipvae2): every supervised term and
the binning against brute-force loops, the labeller's noise by its frequency, the labelled subset
(drawn by the seed only, recorded, restored bit for bit on resume), the full objective as the
unsupervised one plus the weighted term, bad input, and one run through the command line."""

from __future__ import annotations

import csv
import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from disentbench import datasets, methods
from disentbench.bench.checkpoint import CHECKPOINT, build_method, read_checkpoint
from disentbench.bench.cli import main
from disentbench.bench.training import TrainOptions, draw_batch, train
from disentbench.datasets.base import GroundTruthDataset
from disentbench.errors import BenchError
from disentbench.methods.semisupervised import (
    LABELLED_CSV,
    LABELLED_JSON,
    SUPERVISED_LOSSES,
    LabelledBatch,
    SupervisedHead,
    bin_labels,
    draw_labelled,
    noisy_labels,
    supervision_weight,
    train_count,
)
from disentbench.methods.vae import VAE
from tests.helpers import IdentityDataset, tiny_cpu_args, trained_and_resumed

S2 = ["s2betavae", "s2factorvae", "s2betatcvae", "s2dipvae1", "s2dipvae2"]
#: the factor sizes of dSprites, 3DShapes, MPI3D and Cars3D
DATASET_SIZES = [(3, 6, 40, 32, 32), (10, 10, 10, 8, 4, 15), (6, 6, 2, 3, 3, 40, 40), (4, 24, 183)]

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------------------------
# The labeller
# --------------------------------------------------------------------------------------------
def _brute_bin(value: int, size: int, bins: int) -> int:
    """The bin whose interval [b size / bins, (b + 1) size / bins) holds the value, in exact fractions."""
    if bins == 0 or size <= bins:
        return value
    return next(b for b in range(bins) if Fraction(b * size, bins) <= value < Fraction((b + 1) * size, bins))


@pytest.mark.parametrize("bins", [0, 2, 3, 5, 6, 7, 10])
def test_binning_equals_brute_force(bins):
    for sizes in DATASET_SIZES:
        values = np.array([[v % s for s in sizes] for v in range(max(sizes))])
        got, label_sizes = bin_labels(values, sizes, bins)
        want = [[_brute_bin(int(v), s, bins) for v, s in zip(row, sizes)] for row in values]
        assert got.tolist() == want
        assert label_sizes == tuple(s if bins == 0 else min(s, bins) for s in sizes)


def test_five_bins_are_the_references_float_division():
    """The reference bins as float32(value) // (size / bins), capped at bins - 1; with 5 bins that
    equals our integer division on every factor of the four datasets (no value lies on an edge)."""
    for sizes in DATASET_SIZES:
        for size in sizes:
            values = np.arange(size)
            reference = [min(int(np.float32(v) // np.float32(size / 5)), 4) if size > 5 else v for v in values]
            assert bin_labels(values[:, None], [size], 5)[0][:, 0].tolist() == reference


def test_binning_known_answer():
    """dSprites' x position (32 values) in 5 bins of width 6.4: 7, 6, 7, 6, 6 values."""
    counts = np.bincount(bin_labels(np.arange(32)[:, None], [32], 5)[0][:, 0])
    assert counts.tolist() == [7, 6, 7, 6, 6]


def test_noise_replaces_labels_at_its_rate():
    sizes, n = (4, 10, 3), 30000
    rng = np.random.default_rng(0)
    true = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)
    assert np.array_equal(noisy_labels(true, sizes, 0.0, rng), true)
    for p in (0.1, 0.5, 1.0):
        noisy = noisy_labels(true, sizes, p, np.random.default_rng(1))
        for j, s in enumerate(sizes):
            changed = float(np.mean(noisy[:, j] != true[:, j]))
            expected = p * (1 - 1 / s)  # a replacement draws the old value with probability 1/s
            assert abs(changed - expected) < 4 * math.sqrt(expected * (1 - expected) / n) + 1e-12, (p, s)
            assert set(np.unique(noisy[:, j])) <= set(range(s))


def test_train_rows_are_the_ceiling_of_the_fraction():
    assert [train_count(n, f) for n, f in [(100, 0.9), (1000, 0.9), (10, 0.7), (1, 0.5), (7, 1.0)]] == [
        90,
        900,
        7,
        1,
        7,
    ]


# --------------------------------------------------------------------------------------------
# The supervised terms against brute-force loops
# --------------------------------------------------------------------------------------------
def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _brute_supervised(loss, codes, labels, sizes, scale=1.0, embeddings=None, sigma=None) -> float:
    n, d = codes.shape
    k = labels.shape[1]
    if loss == "xent":
        return sum(
            _softplus(codes[i, j]) - codes[i, j] * labels[i, j] / sizes[j] for i in range(n) for j in range(k)
        )  # sigmoid cross-entropy: -t log s(x) - (1 - t) log(1 - s(x)) = softplus(x) - t x
    if loss == "l2":
        return sum((scale * codes[i, j] - labels[i, j]) ** 2 for i in range(n) for j in range(k))
    if loss == "l2_sigmoid":
        return sum(
            (1 / (1 + math.exp(-codes[i, j])) - labels[i, j] / sizes[j]) ** 2 for i in range(n) for j in range(k)
        )
    if loss == "cov":
        total = 0.0
        for a in range(d):
            for j in range(k):
                if a == j:
                    continue
                ma, mj = sum(codes[:, a]) / n, sum(labels[:, j]) / n
                c = sum((codes[i, a] - ma) * (labels[i, j] - mj) for i in range(n)) / n
                total += c * c
        return total
    total = 0.0  # embed, embed_ordered
    for j in range(k):
        ce = 0.0
        for i in range(n):
            logits = [-(((codes[i, j] - e) * sigma[j]) ** 2) for e in embeddings[j]]
            top = max(logits)
            ce += -(logits[int(labels[i, j])] - top - math.log(sum(math.exp(v - top) for v in logits)))
        total += ce / n
    return total


@pytest.mark.parametrize(
    "loss, sigma", [(loss, 1.5) for loss in SUPERVISED_LOSSES] + [("embed", 0.0), ("embed_ordered", 0.0)]
)  # sigma 0: learned (it enters the embed terms only)
def test_each_supervised_term_equals_brute_force(loss, sigma):
    rng = np.random.default_rng(7)
    sizes = (3, 4, 5)
    codes = rng.normal(0, 1.5, (6, 7))
    labels = np.stack([rng.integers(0, s, 6) for s in sizes], axis=1).astype(np.float64)
    head = SupervisedHead(loss, sizes, sigma, torch.Generator().manual_seed(0)).double()
    with torch.no_grad():
        for p in head.parameters():  # away from the initial values
            p.copy_(torch.from_numpy(rng.normal(0, 1, tuple(p.shape))))
    with torch.no_grad():
        got = float(head(torch.from_numpy(codes), torch.from_numpy(labels)))
    embeddings = [e.detach().numpy() for e in head.value_embeddings()] if loss.startswith("embed") else None
    if loss == "embed_ordered":  # e_jv = slope_j v + bias_j, written out
        slope, bias = head.slope.detach().numpy(), head.bias.detach().numpy()
        assert all(np.allclose(embeddings[j], [slope[j] * v + bias[j] for v in range(s)]) for j, s in enumerate(sizes))
    sig = (head.sigma.detach().numpy() if sigma == 0 else [sigma] * 3) if embeddings else None
    scale = float(head.scale.detach()) if loss == "l2" else 1.0
    want = _brute_supervised(loss, codes, labels, sizes, scale, embeddings, sig)
    assert got == pytest.approx(want, rel=1e-10)
    assert want > 0


def test_the_heads_parameters_are_the_references_variables():
    sizes = (3, 40)
    assert not list(SupervisedHead("xent", sizes, 1.0, torch.Generator()).parameters())
    assert not list(SupervisedHead("cov", sizes, 0.0, torch.Generator()).parameters())
    assert float(SupervisedHead("l2", sizes, 1.0, torch.Generator()).scale.detach()) == 1.0
    embed = SupervisedHead("embed", sizes, 0.0, torch.Generator().manual_seed(0))
    assert [tuple(e.shape) for e in embed.embeddings] == [(3,), (40,)] and embed.sigma.shape == (2,)
    assert all(
        float(e.detach().abs().max()) <= math.sqrt(3 / len(e)) for e in embed.embeddings
    )  # Glorot for shape (k,)
    ordered = SupervisedHead("embed_ordered", sizes, 2.0, torch.Generator().manual_seed(0))
    assert {n for n, _ in ordered.named_parameters()} == {"slope", "bias"}


def test_the_weight_schedules_known_answers():
    # trainer step s is the reference's global step s - 1
    assert [supervision_weight(4.0, "fixed", 10, s) for s in (1, 50)] == [4.0, 4.0]
    assert [supervision_weight(4.0, "anneal", 10, s) for s in (1, 6, 11, 30)] == [0.0, 2.0, 4.0, 4.0]
    assert [supervision_weight(4.0, "fine_tune", 10, s) for s in (1, 11, 12, 30)] == [0.0, 0.0, 4.0, 4.0]


# --------------------------------------------------------------------------------------------
# The objective
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", S2)
def test_objective_is_the_unsupervised_one_plus_the_weighted_term(name):
    """The loss on a labelled batch = the unsupervised method's loss on the unlabelled images (its own
    code path, the same noise) + gamma_sup x the supervised term on the labelled images' means."""
    ds = datasets.create("dsprites", source="procedural")
    m = methods.create(name, seed=2, num_labels=12, gamma_sup=3.0, sup_schedule="anneal", sup_threshold=4)
    batch = m.sample_batch(ds, 6, np.random.default_rng(0))
    assert batch.x.shape == (6, 1, 64, 64) and batch.x_labelled.shape == (6, 1, 64, 64) and batch.labels.shape == (6, 5)
    with torch.no_grad():
        loss, logs = m.loss(batch, 3, torch.Generator().manual_seed(5))
        unsupervised, plain = VAE.loss(m, batch.x, 3, torch.Generator().manual_seed(5))
        term = m.supervised_head(m.encoder(batch.x_labelled)[0], batch.labels)
    assert float(logs["supervised"]) == pytest.approx(float(term), rel=1e-5)
    assert float(loss) == pytest.approx(float(unsupervised) + 3.0 * 2 / 4 * float(term), rel=1e-5)
    for key in set(plain) - {"loss"}:  # recon, kl and the method's own terms
        assert float(logs[key]) == pytest.approx(float(plain[key]), rel=1e-4, abs=1e-5), key


def test_short_training_lowers_the_loss_and_the_supervised_term():
    ds = datasets.create("dsprites", source="procedural")
    m = methods.create("s2betavae", seed=0, num_labels=20, beta=1.0)
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    logs = [{k: float(v) for k, v in m.train_step(m.sample_batch(ds, 16, rng), s, g).items()} for s in range(1, 41)]
    assert all(math.isfinite(v) for h in logs for v in h.values())
    assert np.mean([h["loss"] for h in logs[-5:]]) < np.mean([h["loss"] for h in logs[:5]]) - 30
    assert np.mean([h["supervised"] for h in logs[-5:]]) < np.mean([h["supervised"] for h in logs[:5]])
    assert m.encode(ds.observations(ds.sample_factors(3, rng))).shape == (3, 10)


@pytest.mark.parametrize("name", S2)
def test_every_s2_method_trains_through_the_hook(name):
    ds = datasets.create("dsprites", source="procedural")
    m = methods.create(name, seed=0, num_labels=10, sup_loss="embed", embed_sigma=0.0)
    batch = draw_batch(m, ds, 4, np.random.default_rng(0))
    assert isinstance(batch, LabelledBatch)
    before = [p.detach().clone() for p in m.supervised_head.parameters()]
    logs = m.train_step(batch, 1, torch.Generator().manual_seed(0))
    assert all(math.isfinite(float(v)) for v in logs.values()) and "supervised" in logs
    assert all(not torch.equal(a, b) for a, b in zip(before, m.supervised_head.parameters()))  # the head learns
    assert set(m.training_only_modules) >= {"supervised_head"}


# --------------------------------------------------------------------------------------------
# The labelled subset
# --------------------------------------------------------------------------------------------
def _subset(name="s2betavae", seed=0, ds=None, **hp):
    m = methods.create(name, seed=seed, **hp)
    m.attach_data(ds or datasets.create("dsprites", source="procedural"))
    return m.labelled


def test_the_subset_depends_on_the_seed_only():
    base = _subset(seed=3)
    assert base.factors.shape == (1000, 5) and base.num_train == 900
    same = _subset("s2factorvae", seed=3, sup_loss="cov", gamma_sup=1.0, label_noise=0.2, label_bins=0)
    assert np.array_equal(same.factors, base.factors)  # another method and labeller: the same images
    assert not np.array_equal(_subset(seed=4).factors, base.factors)
    assert np.array_equal(_subset(seed=3, num_labels=100).factors, base.factors[:100])  # nested
    again = _subset(seed=3)
    assert again.same_as(base) and np.array_equal(again.index, base.index)
    ds = datasets.create("dsprites", source="procedural")
    assert np.array_equal(ds.factors_of(base.index), base.factors)


def test_the_labels_are_the_binned_factors():
    exact = _subset(seed=1, label_bins=0, num_labels=200)
    assert np.array_equal(exact.labels, exact.factors) and exact.label_sizes == (3, 6, 40, 32, 32)
    binned = _subset(seed=1, num_labels=200)
    assert binned.label_sizes == (3, 5, 5, 5, 5)
    want = [[_brute_bin(int(v), s, 5) for v, s in zip(row, (3, 6, 40, 32, 32))] for row in binned.factors]
    assert binned.labels.tolist() == want


def test_labelled_rows_cycle_in_a_fixed_order():
    ds = IdentityDataset((3, 4, 5))
    m = methods.create("s2betavae", seed=0, num_labels=5, label_bins=0, label_train_fraction=0.6, latent_dim=3)
    rng = np.random.default_rng(0)
    got = [m.sample_batch(ds, 2, rng).x_labelled.numpy().astype(int).tolist() for _ in range(3)]
    rows = m.labelled.factors[:3].tolist()  # the 3 training rows; the other 2 are held out
    assert got == [[rows[0], rows[1]], [rows[2], rows[0]], [rows[1], rows[2]]]


def test_resume_reproduces_the_subset_and_the_model(tmp_path):
    ds = datasets.create("dsprites", source="procedural")
    hp = {"num_labels": 10, "sup_loss": "embed", "embed_sigma": 0.0}
    options = TrainOptions(steps=4, batch_size=4, seed=0, log_every=1, checkpoint_every=2)
    full, resumed, result = trained_and_resumed(
        lambda: methods.create("s2betavae", seed=0, **hp), ds, options, tmp_path
    )
    assert result.resumed_from == 2  # from the checkpoint of step 2
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert resumed.labelled.same_as(full.labelled)
    for name in (LABELLED_CSV, LABELLED_JSON):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    state = read_checkpoint(tmp_path / "a" / CHECKPOINT)
    assert torch.equal(state["method_state"]["labelled"]["factors"], torch.from_numpy(full.labelled.factors))
    assert set(state["method_state"]["optimizers"]) == {"vae", "supervised"}
    rebuilt = build_method(state)
    x = ds.observations(full.labelled.factors[:3])
    assert torch.equal(rebuilt.encode(x), full.encode(x)) and rebuilt.labelled.same_as(full.labelled)


def test_the_cell_folder_records_the_subset(tmp_path):
    ds = datasets.create("dsprites", source="procedural")
    m = methods.create("s2dipvae1", seed=5, num_labels=10, label_noise=0.5)
    train(m, ds, TrainOptions(steps=1, batch_size=2, seed=0), device=torch.device("cpu"), cell_dir=tmp_path)
    with open(tmp_path / LABELLED_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    names = list(ds.factor_names)
    assert [r["split"] for r in rows] == ["train"] * 9 + ["validation"]
    assert [[int(r[n]) for n in names] for r in rows] == m.labelled.factors.tolist()
    assert [[int(r[f"label_{n}"]) for n in names] for r in rows] == m.labelled.labels.tolist()
    assert [int(r["index"]) for r in rows] == ds.index_of(m.labelled.factors).tolist()
    about = json.loads((tmp_path / LABELLED_JSON).read_text())
    assert about["label_seed"] == m.subset_seed and about["num_train"] == 9 and about["label_noise"] == 0.5
    assert about["label_sizes"] == [3, 5, 5, 5, 5]
    drawn = draw_labelled(ds, 10, about["label_seed"], 5, 0.5, 0.9)  # the record redraws the subset
    assert drawn.same_as(m.labelled)


def test_a_checkpoint_whose_subset_the_seed_does_not_draw_is_refused():
    ds = datasets.create("dsprites", source="procedural")
    m = methods.create("s2betavae", seed=0, num_labels=10)
    m.attach_data(ds)
    state = m.checkpoint_state()
    state["labelled"]["factors"][0, 0] = (state["labelled"]["factors"][0, 0] + 1) % 3
    other = methods.create("s2betavae", seed=0, num_labels=10)
    other.load_checkpoint_state(state)
    with pytest.raises(BenchError) as err:
        other.attach_data(ds)
    assert str(err.value) == (
        "s2betavae: the labelled subset in the checkpoint is not the one its seed draws from dsprites "
        "(the dataset changed?); delete the cell folder to retrain"
    )


# --------------------------------------------------------------------------------------------
# Bad input: one line
# --------------------------------------------------------------------------------------------
class _NoGrid(GroundTruthDataset):
    name = "nogrid"

    def observations(self, factors):
        return torch.zeros(len(factors), 1, 64, 64)


@pytest.mark.parametrize(
    "name, dataset, hp, message",
    [
        ("s2betavae", _NoGrid(), {}, "s2betavae draws its labelled images through a dataset's factor grid; dataset nogrid has none"),
        ("s2factorvae", IdentityDataset((3, 4, 5)), {"num_labels": 61}, "s2factorvae.num_labels=61 is more than the 60 images of identity; use num_labels <= 60"),
        ("s2dipvae1", IdentityDataset((3, 4, 5)), {"latent_dim": 2, "num_labels": 10}, "s2dipvae1.latent_dim=2 is below the 3 factors of identity: the xent loss ties latent j to factor j; use latent_dim >= 3 or sup_loss=cov"),
    ],
)  # fmt: skip
def test_datasets_that_cannot_give_the_subset_are_refused(name, dataset, hp, message):
    cls = methods.get(name)
    with pytest.raises(BenchError) as err:
        cls.check_dataset(dataset, cls.validate_hparams(hp))
    assert str(err.value) == message
    cls.check_dataset(
        IdentityDataset((3, 4, 5)), cls.validate_hparams({"num_labels": 60, "latent_dim": 2, "sup_loss": "cov"})
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"sup_loss": "mine"}, "s2betavae.sup_loss='mine' is not valid; choose one of xent, l2, l2_sigmoid, cov, embed, embed_ordered"),
        ({"num_labels": 0}, "s2betavae.num_labels=0 is out of range; it must be an integer >= 1"),
        ({"label_bins": 1}, "s2betavae.label_bins=1 would give every label the same value; use 0 (exact labels) or 2 or more bins"),
        ({"label_noise": 1.5}, "s2betavae.label_noise=1.5 is out of range; it must be in [0, 1]"),
        ({"label_train_fraction": 0}, "s2betavae.label_train_fraction=0 is out of range; it must be in (0, 1]"),
        ({"sup_schedule": "cosine"}, "s2betavae.sup_schedule='cosine' is not valid; choose one of fixed, anneal, fine_tune"),
    ],
)  # fmt: skip
def test_bad_hyperparameters_are_rejected(overrides, message):
    with pytest.raises(BenchError) as err:
        methods.get("s2betavae").validate_hparams(overrides)
    assert str(err.value) == message


def test_bare_images_are_refused():
    with pytest.raises(BenchError) as err:
        methods.create("s2betatcvae", seed=0).train_step(torch.rand(4, 1, 64, 64), 1, torch.Generator())
    assert str(err.value) == (
        "s2betatcvae needs labelled batches: draw them with sample_batch(dataset, rows, rng), not as bare images"
    )


def test_cli_refuses_too_many_labels_before_training(tiny_profile, tmp_path, capsys):
    args = [
        "--methods",
        "s2betavae",
        "--set",
        "s2betavae.num_labels=800000",
        *tiny_cpu_args(tiny_profile, tmp_path / "r"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.endswith(
        "s2betavae.num_labels=800000 is more than the 737280 images of dsprites; use num_labels <= 737280"
    )
    assert not (tmp_path / "r" / "cells").exists()


def test_an_s2_method_runs_end_to_end_and_goes_into_the_zoo(tiny_profile, tmp_path):
    from safetensors.torch import load_file

    from disentbench.bench import zoo
    from disentbench.bench.checkpoint import load_method

    sets = ["--set", "s2factorvae.num_labels=20", "--set", "s2factorvae.sup_loss=embed"]
    assert main(["--methods", "s2factorvae", *tiny_cpu_args(tiny_profile, tmp_path / "r", *sets)]) == 0
    with open(tmp_path / "r" / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"s2factorvae"} and {r["metric"] for r in rows} >= {"mig", "sap"}
    assert all(math.isfinite(float(r["value"])) for r in rows)
    assert all(json.loads(r["hparams"])["num_labels"] == 20 for r in rows)
    assert "s2factorvae" in (tmp_path / "r" / "leaderboard.md").read_text()
    (cell,) = (tmp_path / "r" / "cells").iterdir()
    assert len((cell / LABELLED_CSV).read_text().splitlines()) == 21
    assert "supervised" in (cell / "train_log.csv").read_text().splitlines()[0]
    where = zoo.add(cell, "s2", tmp_path / "zoo")  # the encoder and decoder; not the training-only parts
    keys = set(load_file(str(where / zoo.WEIGHTS)))
    assert keys and not any(k.startswith(("discriminator.", "supervised_head.")) for k in keys)
    model, (reference, _) = zoo.load("s2", tmp_path / "zoo"), load_method(cell / CHECKPOINT)
    assert any(k.startswith("supervised_head.") for k in reference.state_dict())
    x = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    assert torch.equal(model.encode(x), reference.encode(x))
