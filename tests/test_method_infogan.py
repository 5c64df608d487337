"""InfoGAN and InfoGAN-CR: every loss term against a loop-based computation, the pairs, the progressive
schedule, spectral normalisation, the family's diagnostics helpers and the trainer's hooks."""

import csv
import math

import numpy as np
import pytest
import torch
from torch import nn

from disentbench import datasets, methods
from disentbench.bench.errors import BenchError
from disentbench.bench.training import TrainingDiverged, TrainOptions, train
from disentbench.methods.gan import SpectralNorm, gradient_norm, nearest_centroid_accuracy, r_squared
from disentbench.methods.infogan import info_nll

pytestmark = pytest.mark.usefixtures("one_thread")


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def _nll_loops(q: np.ndarray, c: np.ndarray) -> float:
    total = 0.0
    for b in range(len(q)):
        total += sum(0.5 * (q[b, k] - c[b, k]) ** 2 + 0.5 * math.log(2 * math.pi) for k in range(q.shape[1]))
    return total / len(q)


def _ce_loops(logits: np.ndarray, labels: np.ndarray) -> float:
    losses = []
    for row, label in zip(logits, labels):
        denom = sum(math.exp(v) for v in row)
        losses.append(-math.log(math.exp(row[label]) / denom))
    return sum(losses) / len(losses)


def _small(m):
    m.n_diagnostic_codes, m.n_gradient_codes, m.n_diagnostic_pairs = 24, 4, 3
    return m


def test_info_nll_is_the_unit_gaussian_negative_log_likelihood():
    g = torch.Generator().manual_seed(0)
    q, c = torch.randn((6, 5), generator=g, dtype=torch.float64), torch.rand((6, 5), generator=g, dtype=torch.float64)
    assert float(info_nll(q, c)) == pytest.approx(_nll_loops(q.numpy(), c.numpy()), rel=1e-12)


def test_discriminator_losses_match_loops():
    m = methods.create("infogan", seed=0).double()
    m.eval()  # no power-iteration update: the separate forwards below see the same weights
    g = torch.Generator().manual_seed(1)
    real = torch.rand((3, 1, 64, 64), generator=g, dtype=torch.float64)
    z = m.sample_inputs(3, g, "cpu").double()
    out = m.discriminator_losses(real, z)
    with torch.no_grad():
        l_real, _ = m.discriminate(real)
        l_fake, q_fake = m.discriminate(m.generate(z))
    adv = -np.mean([math.log(_sigmoid(v)) for v in l_real.tolist()]) - np.mean(
        [math.log(1 - _sigmoid(v)) for v in l_fake.tolist()]
    )
    info = _nll_loops(q_fake.numpy(), z[:, :5].numpy())
    assert float(out["d_adv"].detach()) == pytest.approx(adv, rel=1e-9)
    assert float(out["d_info"].detach()) == pytest.approx(info, rel=1e-9)
    assert float(out["d_loss"].detach()) == pytest.approx(adv + 0.05 * info, rel=1e-9)
    assert float(out["d_logit_real"].detach()) == pytest.approx(float(l_real.mean()))


@pytest.mark.parametrize("taken, weight", [(10, 0.0), (90, 3.0)])
def test_generator_losses_match_loops(taken, weight):
    m = methods.create("infogancr", seed=0, cr_weight=3.0, cr_start=0.5, horizon=100, info_weight=0.2).double()
    m.eval()
    g = torch.Generator().manual_seed(2)
    z = m.sample_inputs(4, g, "cpu").double()
    z1, z2, labels = m.sample_pairs(4, g, "cpu")
    out = {k: v.detach() for k, v in m.generator_losses(z, (z1.double(), z2.double(), labels), taken).items()}
    with torch.no_grad():
        logits, q = m.discriminate(m.generate(z))
        pair_logits = m.classify_pairs(m.generate(z1.double()), m.generate(z2.double()))
    adv = -np.mean([math.log(_sigmoid(v)) for v in logits.tolist()])
    info = _nll_loops(q.numpy(), z[:, :5].numpy())
    cr = _ce_loops(pair_logits.numpy(), labels.numpy())
    assert float(out["adv"]) == pytest.approx(adv, rel=1e-9)
    assert float(out["info"]) == pytest.approx(info, rel=1e-9)
    assert float(out["cr"]) == pytest.approx(cr, rel=1e-9)
    assert float(out["loss"]) == pytest.approx(adv + 0.2 * info + weight * cr, rel=1e-9)


def test_pairs_share_their_code_and_noise_and_nothing_else():
    m = methods.create("infogancr", seed=0, latent_dim=4, noise_dim=3)
    z1, z2, labels = m.sample_pairs(300, torch.Generator().manual_seed(0), "cpu")
    assert z1.shape == z2.shape == (300, 7) and z1.abs().max() <= 1 and z2.abs().max() <= 1
    for b in range(300):
        for k in range(7):
            same = bool(z1[b, k] == z2[b, k])
            assert same == (k >= 4 or k == int(labels[b])), (b, k)
    assert set(labels.tolist()) == {0, 1, 2, 3}


def test_progressive_schedule_switches_once_and_reinitialises_the_classifier():
    m = methods.create("infogancr", seed=0, cr_start=0.5, g_steps=2)
    m.plan_training(6)  # switch after 3 steps taken: at the trainer's step 4
    g = torch.Generator().manual_seed(0)
    weights, cr_steps = [], []
    cr_param = next(m.cr_classifier.parameters())
    for step in range(1, 7):
        logs = m.train_step(torch.rand((4, 1, 64, 64), generator=g), step, g)
        weights.append(float(logs["cr_weight"]))
        cr_steps.append(int(m.optimizers["cr"].state[cr_param]["step"]))
    assert weights == [0, 0, 0, 2, 2, 2]
    assert cr_steps == [1, 2, 3, 1, 2, 3]  # the optimiser restarted at the switch
    d_param, g_param = next(m.d_trunk.parameters()), next(m.decoder.parameters())
    assert int(m.optimizers["discriminator"].state[d_param]["step"]) == 6
    assert int(m.optimizers["generator"].state[g_param]["step"]) == 12  # two G updates per iteration


def test_spectral_norm_divides_by_the_largest_singular_value():
    conv = nn.Conv2d(3, 5, 3)
    torch.nn.init.normal_(conv.weight, generator=torch.Generator().manual_seed(0))
    sn = SpectralNorm(conv)
    for _ in range(200):
        sn.sigma()
    sigma = float(torch.linalg.svdvals(conv.weight.detach().flatten(1))[0])
    assert float(sn.sigma().detach()) == pytest.approx(sigma, rel=1e-4)
    sn.eval()
    u = sn.u.clone()
    x = torch.rand((2, 3, 8, 8), generator=torch.Generator().manual_seed(1))
    expected = nn.functional.conv2d(x, conv.weight / sigma, conv.bias)
    assert torch.allclose(sn(x), expected, rtol=1e-4, atol=1e-6) and torch.equal(sn.u, u)  # eval: no update


def test_r_squared_and_nearest_centroid_match_loops():
    g = torch.Generator().manual_seed(3)
    target, pred = torch.rand((20, 3), generator=g, dtype=torch.float64), torch.rand((20, 3), generator=g).double()
    got = r_squared(pred, target)
    for k in range(3):
        t, p = target[:, k].tolist(), pred[:, k].tolist()
        mean = sum(t) / len(t)
        r2 = 1 - sum((a - b) ** 2 for a, b in zip(p, t)) / sum((a - mean) ** 2 for a in t)
        assert float(got[k]) == pytest.approx(r2, rel=1e-12)
    fit, test = torch.randn((12, 4), generator=g), torch.randn((9, 4), generator=g)
    fit_y, test_y = torch.arange(12) % 3, torch.arange(9) % 3
    correct = 0
    for v, y in zip(test, test_y):
        cents = [fit[fit_y == k].mean(dim=0) for k in range(3)]
        cos = [float(v @ c / (v.norm() * c.norm())) for c in cents]
        correct += int(max(range(3), key=lambda k: cos[k]) == int(y))
    assert nearest_centroid_accuracy(fit, fit_y, test, test_y, 3) == pytest.approx(correct / 9)
    w = nn.Parameter(torch.tensor([3.0, 4.0]))
    assert gradient_norm((w * torch.tensor([1.0, 2.0])).sum() * 0 + (w**2).sum() / 2, [w]) == pytest.approx(5.0)


def test_decode_holds_the_noise_at_zero_and_encode_is_q_on_real_images():
    m = methods.create("infogan", seed=0)
    c = torch.rand((3, 5), generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m.decode(c), m.generate(torch.cat([c, torch.zeros(3, 5)], dim=1)))
        x = m.decode(c)
        assert torch.equal(m.encode(x), m.discriminate(x)[1])
    assert m.encode(x).shape == (3, 5) and m.traversal == ("prior", (-1.0, 1.0))


@pytest.mark.parametrize("name", ["infogan", "infogancr"])
def test_short_run_checkpoint_and_diagnostics(name):
    ds = datasets.create("dsprites", source="procedural")
    extra = {"horizon": 4, "cr_start": 0.5} if name == "infogancr" else {}
    m = _small(methods.create(name, seed=0, **extra))
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    for step in range(1, 5):
        logs = {k: float(v) for k, v in m.train_step(ds.observations(ds.sample_factors(8, rng)), step, g).items()}
        assert all(np.isfinite(v) for v in logs.values())
    diag = m.log_step(4, logs)
    assert {"grad_g_adv", "grad_g_info", "r2_q_mean", "image_std"} <= set(diag)
    if name == "infogancr":
        assert {"cr_loss", "cr_acc", "cr_weight"} <= set(logs) and diag["cr_weight"] == 2.0
        assert diag["grad_g_cr"] == pytest.approx(2.0 * diag["grad_g_cr_raw"]) and 0 <= diag["cr_acc_held"] <= 1
    fresh = methods.create(name, seed=1, **extra)
    fresh.load_checkpoint_state(m.checkpoint_state())
    x = ds.observations(ds.sample_factors(5, rng))
    assert torch.equal(fresh.encode(x), m.encode(x))
    with pytest.raises(TrainingDiverged, match="the critic exploded: d_logit_real = 5000"):
        m.log_step(9, {"d_logit_real": 5000.0})


def test_trainer_plans_the_schedule_and_logs_the_diagnostics(tmp_path):
    ds = datasets.create("dsprites", source="procedural")
    m = _small(methods.create("infogancr", observation_shape=ds.observation_shape, seed=0, cr_start=0.5))
    train(
        m, ds, TrainOptions(steps=4, batch_size=4, seed=0, log_every=2), device=torch.device("cpu"), cell_dir=tmp_path
    )
    assert m.horizon_steps == 4 and m.switch_step == 2
    rows = list(csv.DictReader(open(tmp_path / "train_log.csv")))
    assert [float(r["cr_weight"]) for r in rows] == [0.0, 2.0]  # steps 1-2 off, 3-4 on: window means 0 and 2
    assert all(float(r["grad_g_adv"]) > 0 and r["cr_acc_held"] != "" for r in rows)


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("infogan", {"latent_dim": 0}, "infogan.latent_dim=0 is out of range; it must be an integer >= 1"),
        ("infogan", {"noise_dim": -1}, "infogan.noise_dim=-1 is out of range; it must be an integer >= 0"),
        ("infogan", {"info_weight": -1}, "infogan.info_weight=-1 is out of range; it must be >= 0"),
        ("infogan", {"g_steps": 0}, "infogan.g_steps=0 is out of range; it must be an integer >= 1"),
        ("infogan", {"d_lr": 0}, "infogan.d_lr=0 is out of range; it must be > 0"),
        ("infogancr", {"cr_start": 1.5}, "infogancr.cr_start=1.5 is out of range; it must be in [0, 1]"),
        ("infogancr", {"cr_weight": -2}, "infogancr.cr_weight=-2 is out of range; it must be >= 0"),
        ("infogancr", {"latent_dim": 0}, "infogancr.latent_dim=0 is out of range; it must be an integer >= 1"),
    ],
)
def test_bad_hyperparameters_are_one_line_errors(name, overrides, message):
    with pytest.raises(BenchError) as err:
        methods.get(name).validate_hparams(overrides)
    assert str(err.value) == message


def test_resume_across_the_switch_equals_one_run(tmp_path):
    """Stopping before the schedule's switch and resuming gives the uninterrupted run's weights."""
    ds = datasets.create("dsprites", source="procedural")

    def run(cell, *targets):
        for steps in targets:  # a fresh object each time, as a new process would build
            m = methods.create("infogancr", observation_shape=ds.observation_shape, seed=0, cr_start=0.5, horizon=4)
            m = _small(m)
            options = TrainOptions(steps=steps, batch_size=2, seed=0, log_every=2, checkpoint_every=1)
            train(m, ds, options, device=torch.device("cpu"), cell_dir=cell)
        return m.state_dict()

    whole, pieces = run(tmp_path / "a", 4), run(tmp_path / "b", 2, 4)  # switch after 2 of the 4 planned steps
    assert all(torch.equal(whole[k], pieces[k]) for k in whole)
