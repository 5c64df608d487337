"""Weakly-supervised methods (gvae, mlvae, adagvae, adamlvae): the pair sampler against known
answers, every loss term against a brute-force recomputation, the trainer's pair hook (seeded,
resumable), the dataset checks, and one run through the command line."""

from __future__ import annotations

import csv
import itertools
import math

import numpy as np
import pytest
import torch

from disentbench import datasets, methods
from disentbench.bench.cli import main
from disentbench.bench.errors import BenchError
from disentbench.bench.training import TrainOptions, channels_last_batch, draw_batch, train
from disentbench.datasets.base import GroundTruthDataset
from disentbench.methods.weak import PairBatch
from tests.helpers import IdentityDataset, tiny_cpu_args, trained_and_resumed

WEAK = ["gvae", "mlvae", "adagvae", "adamlvae"]

pytestmark = pytest.mark.usefixtures("one_thread")


def _pairs(name: str, ds: GroundTruthDataset, n: int, seed: int = 0, **hp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n pairs drawn through the method's hook on an IdentityDataset, whose observations are the
    factor vectors themselves: (first factors, second factors, named-changed mask)."""
    m = methods.create(name, seed=0, latent_dim=max(10, ds.num_factors), **hp)
    batch = m.sample_batch(ds, 2 * n, np.random.default_rng(seed))
    x = batch.x.numpy().astype(np.int64)
    return x[:n], x[n:], batch.changed.numpy()


# --------------------------------------------------------------------------------------------
# The pair sampler: known answers
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3])
def test_exact_pairs_share_all_but_k_factors(k):
    ds = IdentityDataset((3, 4, 5, 2))
    f1, f2, changed = _pairs("adagvae", ds, 4000, k=k, pairs="exact")
    differ = f1 != f2
    assert (differ.sum(axis=1) == k).all()
    assert (changed == differ).all()
    # which factors change: uniform, k/K each
    assert np.abs(differ.mean(axis=0) - k / 4).max() < 0.04
    # a changed factor takes each of its other values equally often
    for j, size in enumerate(ds.factor_sizes):
        rows = differ[:, j]
        for old in range(size):
            new = f2[rows & (f1[:, j] == old), j]
            counts = np.bincount(new, minlength=size)
            assert counts[old] == 0
            expected = len(new) / (size - 1)
            assert np.abs(np.delete(counts, old) - expected).max() < 5 * math.sqrt(expected) + 1
    # the first images are i.i.d. uniform over the grid
    for j, size in enumerate(ds.factor_sizes):
        assert np.abs(np.bincount(f1[:, j], minlength=size) / len(f1) - 1 / size).max() < 0.03


def test_exact_random_k_is_uniform_over_1_to_k_minus_1():
    ds = IdentityDataset((3, 4, 5, 2))
    f1, f2, changed = _pairs("adamlvae", ds, 6000, k=0, pairs="exact")
    counts = (f1 != f2).sum(axis=1)
    assert set(counts) == {1, 2, 3}
    assert np.abs(np.bincount(counts, minlength=4)[1:] / len(counts) - 1 / 3).max() < 0.03
    assert (changed == (f1 != f2)).all()


def test_a_factor_with_one_value_never_changes():
    ds = IdentityDataset((3, 1, 4))
    f1, f2, _ = _pairs("gvae", ds, 2000, k=0, pairs="exact")
    assert (f1[:, 1] == 0).all() and (f2[:, 1] == 0).all()
    assert set((f1 != f2).sum(axis=1)) == {1, 2}
    f1, f2, _ = _pairs("gvae", ds, 2000, k=0)  # the reference's sampler may redraw it, to its one value
    assert (f1[:, 1] == 0).all() and (f2[:, 1] == 0).all()


def reference_changed_frequencies(sizes: tuple[int, ...], k: int) -> np.ndarray:
    """P(a pair differs in c factors), c = 0..K, under disentanglement_lib's simple_dynamics, by
    enumerating every outcome with its probability: k_obs (k, or uniform in 1..K-1 for k = -1, our
    0), a fair coin between 1 and k_obs factors, every set of that many factors (chosen without
    replacement), and every old and new value of each (both uniform over the factor's values)."""
    n_factors = len(sizes)
    k_values = [k] if k else list(range(1, n_factors))
    out = np.zeros(n_factors + 1)
    for k_obs in k_values:
        for count in (1, k_obs):
            subsets = list(itertools.combinations(range(n_factors), count))
            for subset in subsets:
                values = [range(sizes[j]) for j in subset]
                weight = 0.5 / len(k_values) / len(subsets) / math.prod(sizes[j] for j in subset) ** 2
                for old in itertools.product(*values):
                    for new in itertools.product(*values):
                        out[sum(a != b for a, b in zip(old, new))] += weight
    return out


@pytest.mark.parametrize("k", [0, 2])
def test_default_pairs_are_the_references_frequencies(k):
    """The default sampler is the reference's: the changed-factor counts of 20,000 pairs against the
    reference formula's exact probabilities (random k on (3, 4, 5, 2): 0.235 / 0.562 / 0.153 / 0.051)."""
    sizes = (3, 4, 5, 2)
    assert methods.get("gvae").defaults["pairs"] == "reference"
    want = reference_changed_frequencies(sizes, k)
    assert want.sum() == pytest.approx(1.0)
    if k == 0:
        np.testing.assert_allclose(want[:4], [0.2352, 0.5616, 0.1525, 0.0507], atol=5e-5)
    n = 20_000
    f1, f2, changed = _pairs("gvae", IdentityDataset(sizes), n, k=k, seed=3)
    got = np.bincount((f1 != f2).sum(axis=1), minlength=len(sizes) + 1) / n
    assert np.abs(got - want).max() < 4 * math.sqrt(0.25 / n)  # within 4 standard errors
    assert changed.sum(axis=1).tolist() == [1] * n  # the reference labels one factor


def test_reference_pairs_redraw_one_or_k_factors_and_name_one():
    """The reference's draw: 1 or k factors by a fair coin, new values uniform over all values, the
    label one redrawn factor. With 1,000 values per factor a redraw almost never repeats a value."""
    ds = IdentityDataset((1000,) * 5)
    f1, f2, changed = _pairs("gvae", ds, 6000, pairs="reference", k=3)
    counts = (f1 != f2).sum(axis=1)
    assert changed.sum(axis=1).tolist() == [1] * 6000
    assert (f1 != f2)[changed].mean() > 0.99  # the named factor is one of those redrawn
    frac = np.bincount(counts, minlength=6) / len(counts)
    assert abs(frac[1] - 0.5) < 0.03 and abs(frac[3] - 0.5) < 0.03 and frac[[0, 2, 4, 5]].sum() < 0.01
    # random k: k_obs uniform in 1..4, then 1 or k_obs: P(1) = 1/2 + 1/8, P(2) = P(3) = P(4) = 1/8
    f1, f2, _ = _pairs("gvae", ds, 8000, pairs="reference", k=0, seed=1)
    frac = np.bincount((f1 != f2).sum(axis=1), minlength=5) / len(f1)
    assert np.abs(frac[1:] - [0.625, 0.125, 0.125, 0.125]).max() < 0.03


def test_reference_pairs_may_repeat_a_value():
    ds = IdentityDataset((2, 2, 2))
    f1, f2, changed = _pairs("gvae", ds, 4000, pairs="reference", k=1)
    assert abs((f1 != f2).any(axis=1).mean() - 0.5) < 0.03  # the redrawn value repeats half the time


def test_pairs_are_seeded():
    ds = IdentityDataset((3, 4, 5, 2))
    a, b, c = (_pairs("adagvae", ds, 50, seed=s, k=0) for s in (7, 7, 8))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], c[0])


# --------------------------------------------------------------------------------------------
# The loss: every term recomputed by hand
# --------------------------------------------------------------------------------------------
def _brute_force(name: str, m, batch: PairBatch, seed: int, beta: float) -> dict[str, float]:
    """The weak objective from the encoder's raw outputs, in float64 with loops over pairs and latents."""
    with torch.no_grad():
        mu, logvar = (t.double().numpy() for t in m.encoder(batch.x))
    n, d = mu.shape[0] // 2, mu.shape[1]
    changed = batch.changed.numpy()
    post_mu, post_lv = mu.copy(), logvar.copy()
    n_shared = 0
    for i in range(n):
        m1, m2, v1, v2 = mu[i], mu[n + i], np.exp(logvar[i]), np.exp(logvar[n + i])
        if name.startswith("ada"):
            delta = [
                0.5 * (v1[j] / v2[j] + (m2[j] - m1[j]) ** 2 / v2[j] - 1 + math.log(v2[j] / v1[j])) for j in range(d)
            ]
            tau = (max(delta) + min(delta)) / 2
            shared = [delta[j] < tau for j in range(d)]
        else:
            shared = [not (j < changed.shape[1] and changed[i, j]) for j in range(d)]
        for j in range(d):
            if not shared[j]:
                continue
            n_shared += 1
            if name.endswith("gvae"):
                mean, var = (m1[j] + m2[j]) / 2, (v1[j] + v2[j]) / 2
            else:  # product of the two Gaussians, with the reference's doubled variance
                precision = 1 / v1[j] + 1 / v2[j]
                mean, var = (m1[j] / v1[j] + m2[j] / v2[j]) / precision, 2 / precision
            post_mu[i, j] = post_mu[n + i, j] = mean
            post_lv[i, j] = post_lv[n + i, j] = math.log(var)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed)).double().numpy()
    z = post_mu + np.exp(post_lv / 2) * eps
    with torch.no_grad():
        logits = m.decoder(torch.from_numpy(z).float()).double().numpy()
    t = batch.x.double().numpy()
    ce = np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits)))
    recon = 0.5 * (ce[:n].sum() / n + ce[n:].sum() / n)
    kl_each = [
        0.5 * sum(post_mu[r, j] ** 2 + math.exp(post_lv[r, j]) - post_lv[r, j] - 1 for j in range(d))
        for r in range(2 * n)
    ]
    kl = 0.5 * (np.mean(kl_each[:n]) + np.mean(kl_each[n:]))
    return {"recon": recon, "kl": kl, "loss": recon + beta * kl, "shared_latents": n_shared / n}


@pytest.mark.parametrize("name", WEAK)
def test_loss_equals_brute_force(name):
    ds = datasets.create("dsprites", source="procedural")
    m = methods.create(name, seed=3, beta=4.0, k=2)
    with torch.no_grad():  # a spread of posteriors, so the threshold splits the latents
        m.encoder.mean.bias.copy_(torch.linspace(-1.0, 1.0, 10))
        m.encoder.logvar.bias.copy_(torch.linspace(-1.5, 0.5, 10))
        m.encoder.mean.weight.mul_(20.0)
    batch = m.sample_batch(ds, 8, np.random.default_rng(5))
    want = _brute_force(name, m, batch, seed=11, beta=4.0)
    loss, logs = m.loss(batch, 0, torch.Generator().manual_seed(11))
    for key in ("recon", "kl", "loss", "shared_latents"):
        assert float(logs[key]) == pytest.approx(want[key], rel=1e-4), key
    assert float(loss.detach()) == pytest.approx(want["loss"], rel=1e-4)
    assert 0 < want["shared_latents"] < 10  # neither nothing nor everything aggregated


def test_labelled_methods_need_pairs_and_adaptive_ones_read_halves():
    x = torch.rand(8, 1, 64, 64)
    with pytest.raises(BenchError) as err:
        methods.create("gvae", seed=0).train_step(x, 0, torch.Generator().manual_seed(0))
    assert str(err.value) == (
        "gvae needs labelled pairs: draw its batches with sample_batch(dataset, rows, rng), not as bare images"
    )
    m = methods.create("adagvae", seed=0)
    _, from_tensor = m.loss(x, 0, torch.Generator().manual_seed(1))
    _, from_pairs = m.loss(PairBatch(x, torch.zeros(4, 5, dtype=torch.bool)), 0, torch.Generator().manual_seed(1))
    assert float(from_tensor["loss"]) == float(from_pairs["loss"])


# --------------------------------------------------------------------------------------------
# Training through the trainer's hook
# --------------------------------------------------------------------------------------------
def test_trainer_and_probes_draw_pairs_through_the_hook():
    ds = datasets.create("dsprites", source="procedural")
    weak, plain = methods.create("mlvae", seed=0), methods.create("betavae", seed=0)
    assert weak.batches_per_step == 2
    batch = draw_batch(weak, ds, 8, np.random.default_rng(0))
    assert isinstance(batch, PairBatch) and batch.x.shape == (8, 1, 64, 64) and batch.changed.shape == (4, 5)
    assert batch.changed.sum(dim=1).tolist() == [1, 1, 1, 1]
    assert isinstance(draw_batch(plain, ds, 8, np.random.default_rng(0)), torch.Tensor)
    converted = channels_last_batch(batch, True)
    assert isinstance(converted, PairBatch) and converted.x.is_contiguous(memory_format=torch.channels_last)


def test_resume_reproduces_the_pair_stream(tmp_path):
    ds = datasets.create("dsprites", source="procedural")
    options = TrainOptions(steps=4, batch_size=4, seed=0, log_every=1, checkpoint_every=2)
    full, resumed, result = trained_and_resumed(lambda: methods.create("adagvae", seed=0, k=0), ds, options, tmp_path)
    assert result.resumed_from == 2  # from the checkpoint of step 2
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert "shared_latents" in (tmp_path / "a" / "train_log.csv").read_text().splitlines()[0]


def test_a_cell_trained_with_the_old_default_sampler_is_not_continued_with_the_new_one(tmp_path):
    """`pairs` was `exact` by default before issue 26: such a checkpoint (with the key, or from before
    the key was stored) is refused under today's default in one line and continues with pairs=exact."""
    from disentbench.bench.checkpoint import CHECKPOINT, read_checkpoint

    ds = datasets.create("dsprites", source="procedural")

    def run(steps, **hp):
        m = methods.create("adagvae", seed=0, **hp)
        options = TrainOptions(steps=steps, batch_size=4, seed=0, log_every=1, checkpoint_every=1)
        return train(m, ds, options, device=torch.device("cpu"), cell_dir=tmp_path)

    run(1, pairs="exact")
    state = read_checkpoint(tmp_path / CHECKPOINT)
    assert state["hparams"]["pairs"] == "exact"
    del state["hparams"]["pairs"]  # as a checkpoint that never stored the key
    torch.save(state, tmp_path / CHECKPOINT)
    assert methods.get("adagvae").stored_hparams(state["hparams"])["pairs"] == "exact"
    with pytest.raises(BenchError) as err:
        run(2)  # today's default: the reference sampler
    assert "\n" not in str(err.value)
    assert "pairs: 'exact' in the checkpoint, 'reference' now" in str(err.value)
    assert "--set adagvae.pairs=exact" in str(err.value)
    assert run(2, pairs="exact").resumed_from == 1


def test_short_training_lowers_the_loss():
    """mlvae here; adagvae trains in the end-to-end run below (the loss terms of all four are above)."""
    ds = datasets.create("dsprites", source="procedural")
    m = methods.create("mlvae", seed=0, k=0)
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    losses = [float(m.train_step(m.sample_batch(ds, 16, rng), s, g)["loss"]) for s in range(40)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 30  # as the VAEs in test_method_training
    assert m.encode(ds.observations(ds.sample_factors(3, rng))).shape == (3, 10)


# --------------------------------------------------------------------------------------------
# Bad input: one line, before any training
# --------------------------------------------------------------------------------------------
class NoGrid(GroundTruthDataset):
    """Images with no factor grid behind them."""

    name = "nogrid"

    def observations(self, factors):
        return torch.zeros(len(factors), 1, 64, 64)


class _Incomplete(IdentityDataset):
    complete_grid = False  # a user's file with factor combinations missing


@pytest.mark.parametrize(
    "name, dataset, hp, message",
    [
        ("adagvae", NoGrid(), {}, "adagvae trains on pairs drawn through a dataset's factor grid; dataset nogrid has no factor grid"),
        ("mlvae", object(), {}, "mlvae trains on pairs drawn through a dataset's factor grid; dataset object has no factor grid"),
        ("gvae", _Incomplete(), {}, "gvae trains on pairs drawn through a dataset's factor grid; dataset identity's grid is incomplete (some factor combinations have no image), so a pair's second image may not exist"),
        ("adamlvae", IdentityDataset((4,)), {}, "adamlvae needs pairs that share a factor and differ in another; dataset identity's factor grid [4] cannot give them"),
        ("gvae", IdentityDataset((3, 1, 1, 4)), {"k": 3}, "gvae.k=3 is too large for identity: pairs must differ in k factors and share one, so k <= 2"),
        ("adagvae", IdentityDataset((3, 4)), {"k": 2}, "adagvae.k=2 is too large for identity: pairs must differ in k factors and share one, so k <= 1"),
        ("gvae", IdentityDataset((3, 4, 5)), {"latent_dim": 2}, "gvae.latent_dim=2 is below the 3 factors of identity: gvae ties latent j to factor j; use latent_dim >= 3 or adagvae"),
    ],
)  # fmt: skip
def test_datasets_that_cannot_give_pairs_are_refused(name, dataset, hp, message):
    cls = methods.get(name)
    with pytest.raises(BenchError) as err:
        cls.check_dataset(dataset, cls.validate_hparams(hp))
    assert str(err.value) == message
    cls.check_dataset(IdentityDataset((3, 4, 5)), cls.validate_hparams({"k": 2}))  # a fitting grid passes


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"k": -1}, "adagvae.k=-1 is out of range; it must be an integer >= 0"),
        ({"pairs": "video"}, "adagvae.pairs='video' is not valid; choose one of exact, reference"),
    ],
)
def test_bad_hyperparameters_are_rejected(overrides, message):
    with pytest.raises(BenchError) as err:
        methods.get("adagvae").validate_hparams(overrides)
    assert str(err.value) == message
    grid = [1, 2, 4, 6, 8, 16]  # the paper's beta values
    for name in WEAK:
        cls = methods.get(name)
        assert cls.reference_grid == {"beta": grid}
        assert [cls.validate_hparams({"beta": str(v)})["beta"] for v in grid] == grid


def test_cli_refuses_a_weak_method_on_a_dataset_without_a_grid(tiny_profile, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(datasets._REGISTRY._entries, "nogrid", lambda **kwargs: NoGrid())
    args = ["--methods", "adagvae", "--datasets", "nogrid", *tiny_cpu_args(tiny_profile, tmp_path / "r")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "adagvae trains on pairs drawn through a dataset's factor grid; dataset nogrid has no factor grid"
    )
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "r" / "cells").exists()
    args = ["--methods", "gvae", "--set", "gvae.k=5", *tiny_cpu_args(tiny_profile, tmp_path / "r")]
    assert main(args) == 2
    assert "gvae.k=5 is too large for dsprites" in capsys.readouterr().err


def test_a_weak_method_runs_end_to_end(tiny_profile, tmp_path):
    assert main(["--methods", "adagvae", *tiny_cpu_args(tiny_profile, tmp_path / "r", "--set", "adagvae.k=0")]) == 0
    with open(tmp_path / "r" / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"adagvae"} and {r["metric"] for r in rows} >= {"mig", "sap"}
    assert all(math.isfinite(float(r["value"])) for r in rows)
    assert "adagvae" in (tmp_path / "r" / "leaderboard.md").read_text()
