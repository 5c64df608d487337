"""DiD: gradient penalty, the difference losses, E's regression targets, the lambda_h = 0 ablation, the
balance of L_H against the adversarial term, the diagnostics and the divergence test."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from disentbench import methods
from disentbench.bench.errors import BenchError
from disentbench.methods.did import gradient_penalty, pairwise_difference_loss, supcon_loss

pytestmark = pytest.mark.usefixtures("one_thread")


class _SquareCritic(nn.Module):
    """D(x) = sum(w * x^2): grad_x D = 2 w x, so the penalty has a closed form."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (self.w * x**2).flatten(1).sum(dim=1)


def test_gradient_penalty_matches_hand_computation():
    g = torch.Generator().manual_seed(0)
    real = torch.rand((3, 1, 2, 2), generator=g, dtype=torch.float64)
    fake = torch.rand((3, 1, 2, 2), generator=g, dtype=torch.float64)
    w0 = torch.rand((1, 2, 2), generator=g, dtype=torch.float64) + 0.5
    critic = _SquareCritic(w0.clone())
    gp = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(7))
    value = float(gp.detach())

    e = torch.rand((3, 1, 1, 1), generator=torch.Generator().manual_seed(7), dtype=torch.float64).numpy()
    x_hat = e * real.numpy() + (1 - e) * fake.numpy()
    w = w0.numpy()
    norms = np.sqrt(((2 * w * x_hat) ** 2).reshape(3, -1).sum(axis=1))
    assert value == pytest.approx(float(np.mean((norms - 1) ** 2)), rel=1e-12)

    gp.backward()  # the penalty trains the critic: d gp / d w by hand
    dgp_dw = np.mean([2 * (norms[k] - 1) * 4 * w * x_hat[k] ** 2 / norms[k] for k in range(3)], axis=0)
    np.testing.assert_allclose(critic.w.grad.numpy(), dgp_dw, rtol=1e-10)


def test_pairwise_difference_loss_is_bounded_with_the_stated_sign():
    g = torch.Generator().manual_seed(0)
    v1 = nn.functional.normalize(torch.randn((200, 64), generator=g), dim=1)
    v2 = nn.functional.normalize(torch.randn((200, 64), generator=g), dim=1)
    value = float(pairwise_difference_loss(v1, v2))
    assert -4.0 <= value <= 0.0
    assert value == pytest.approx(float((2 * (v1 * v2).sum(dim=1) - 2).mean()), abs=1e-5)
    assert float(pairwise_difference_loss(v1, -v1)) == pytest.approx(-4.0)  # the minimum: opposite differences
    assert float(pairwise_difference_loss(v1, v1)) == pytest.approx(0.0)  # the maximum: identical differences


def _supcon_loops(v: np.ndarray, labels: list[int], t: float) -> float:
    n, losses = len(v), []
    for a in range(n):
        positives = [p for p in range(n) if p != a and labels[p] == labels[a]]
        if not positives:
            continue
        denom = sum(math.exp(v[a] @ v[k] / t) for k in range(n) if k != a)
        losses.append(-sum(math.log(math.exp(v[a] @ v[p] / t) / denom) for p in positives) / len(positives))
    return sum(losses) / len(losses)


def test_supcon_matches_loops_and_is_bounded():
    g = torch.Generator().manual_seed(1)
    v = nn.functional.normalize(torch.randn((7, 4), generator=g, dtype=torch.float64), dim=1)
    labels = [0, 0, 1, 1, 1, 2, 3]  # labels 2 and 3 have no positive: skipped
    value = float(supcon_loss(v, torch.tensor(labels), 0.5))
    assert value == pytest.approx(_supcon_loops(v.numpy(), labels, 0.5), rel=1e-10)
    assert 0.0 <= value <= math.log(6) + 2 / 0.5
    clustered = nn.functional.normalize(torch.eye(4, dtype=torch.float64)[labels] + 0.01 * v, dim=1)
    assert float(supcon_loss(clustered, torch.tensor(labels), 0.1)) < value


@pytest.mark.parametrize("perturb", ["resample", "shift"])
def test_perturbed_codes_change_exactly_one_dimension(perturb):
    m = methods.create("did", seed=0, perturb=perturb, delta_min=0.4)
    c, c1, c2, i, j = m.sample_codes(500, torch.Generator().manual_seed(0), "cpu")
    assert (i != j).all() and c.abs().max() <= 1 and c1.abs().max() <= 1 and c2.abs().max() <= 1
    rows = torch.arange(500)
    for changed, dim in ((c1, i), (c2, j)):
        diff = changed != c
        assert (diff.sum(dim=1) == 1).all() and diff[rows, dim].all()  # that dimension, and only it
    if perturb == "shift":
        assert ((c1 - c)[rows, i].abs() >= 0.4 - 1e-6).all()


class _WriteCode(nn.Module):
    """A stub generator: the code, as logits, in the first pixels of the first row."""

    def __init__(self, d):
        super().__init__()
        self.d = d

    def forward(self, c):
        out = torch.zeros(c.shape[0], 1, 64, 64)
        out[:, 0, 0, : self.d] = c
        return out


class _ReadCode(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.d = d

    def forward(self, x):
        return torch.logit(x[:, 0, 0, : self.d].double()).float()


class _Zeros(_ReadCode):
    def forward(self, x):
        return torch.zeros(x.shape[0], self.d)


@pytest.mark.parametrize("perturb", ["resample", "shift"])
def test_samples_encoder_target_is_the_code_that_made_the_image(perturb):
    m = methods.create("did", seed=0, perturb=perturb, balance="literal")
    m.decoder, m.samples_encoder = _WriteCode(10), _ReadCode(10)
    losses = m.generator_losses(16, torch.Generator().manual_seed(0), "cpu")
    assert float(losses["l_enc"]) < 1e-8  # E inverts G exactly, so any misaligned target would show
    # and an encoder that always answers 0 pays the mean squared norm of the very same codes
    c, c1, c2, _, _ = m.sample_codes(16, torch.Generator().manual_seed(0), "cpu")
    m.samples_encoder = _Zeros(10)
    losses = m.generator_losses(16, torch.Generator().manual_seed(0), "cpu")
    expected = torch.cat([c, c1, c2]).pow(2).sum(dim=1).mean()
    assert float(losses["l_enc"]) == pytest.approx(float(expected), rel=1e-6)


def _g_and_h_grads(m, seed: int):
    losses = m.generator_losses(4, torch.Generator().manual_seed(seed), "cpu")
    g_params, h_params = list(m.decoder.parameters()), list(m.difference_encoder.parameters())
    g_grads = torch.autograd.grad(losses["loss"], g_params, retain_graph=True)
    h_grads = torch.autograd.grad(losses["loss"], h_params, allow_unused=True)
    return g_grads, h_grads


@pytest.mark.parametrize(
    "lambda_h, balance, coupled",
    [(0.0, "literal", False), (1.0, "literal", True), (0.0, "adaptive", False), (1.0, "adaptive", True)],
)
def test_lambda_h_zero_removes_every_gradient_from_h_into_g(lambda_h, balance, coupled):
    m = methods.create("did", seed=0, lambda_h=lambda_h, balance=balance)
    g_before, h_grads = _g_and_h_grads(m, seed=3)
    assert all(g is None for g in h_grads) != coupled  # does G's objective depend on H at all?
    with torch.no_grad():  # a different H: G's gradient must not move unless G and H are coupled
        for p in m.difference_encoder.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(5)))
    g_after, _ = _g_and_h_grads(m, seed=3)
    same = all(torch.equal(a, b) for a, b in zip(g_before, g_after))
    assert same != coupled


def _last_layer_grad_norm(m, term: str, seed: int) -> float:
    """||d term / d W|| at G's last layer by a plain backward on a fresh graph of the same codes."""
    m.zero_grad(set_to_none=True)
    m.generator_losses(8, torch.Generator().manual_seed(seed), "cpu")[term].backward()
    norm = float(m.decoder.deconv[-1].weight.grad.norm())
    m.zero_grad(set_to_none=True)
    return norm


@pytest.mark.parametrize("lambda_h, max_weight", [(1.0, 1e4), (0.3, 1e4), (1.0, 2.0)])
def test_adaptive_weight_holds_l_h_gradient_at_lambda_h_times_the_adversarial_one(lambda_h, max_weight):
    m = methods.create("did", seed=0, balance="adaptive", lambda_h=lambda_h, max_weight=max_weight)
    for p in m.decoder.parameters():  # a generator whose images vary, so L_H is not flat
        with torch.no_grad():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    adv, h = _last_layer_grad_norm(m, "adv", 4), _last_layer_grad_norm(m, "l_h", 4)
    weight = float(m.generator_losses(8, torch.Generator().manual_seed(4), "cpu")["w_h"])
    expected = lambda_h * min(adv / h, max_weight)
    assert weight == pytest.approx(expected, rel=1e-4)
    if adv / h < max_weight:  # the defining property: L_H's weighted gradient is lambda_h x the adversarial one
        assert weight * h == pytest.approx(lambda_h * adv, rel=1e-4)


def _expected_ramp(pair_diffs: list[float], vary_at: float, length: float) -> list[float]:
    """The warm-up by hand: it starts at the first step (counted from 0) whose pair difference
    reaches vary_at and rises linearly to 1 over `length` steps."""
    start, out = None, []
    for taken, diff in enumerate(pair_diffs):
        if start is None and diff >= vary_at:
            start = taken
        if start is None:
            out.append(0.0)
        elif length == 0:
            out.append(1.0)
        else:
            out.append(min(1.0, (taken - start) / length))
    return out


@pytest.mark.parametrize("warmup", [0.1, 0.0])
def test_warmup_starts_when_the_pairs_vary_and_ramps_over_its_fraction(warmup):
    m = methods.create("did", seed=0, balance="warmup", warmup=warmup, vary_at=0.01, lambda_h=2.0)
    m.plan_training(100)  # a ramp of warmup x 100 steps
    diffs = [0.001] * 5 + [0.02] + [0.0] * 3 + [0.05] * 15  # once started, it never stops
    got = [float(m._warmup_factor(torch.tensor(d), step=t + 1)) for t, d in enumerate(diffs)]
    assert got == pytest.approx(_expected_ramp(diffs, 0.01, warmup * 100))
    assert float(m.warmup_start) == 5.0
    losses = m.generator_losses(4, torch.Generator().manual_seed(0), "cpu")  # no step: read as it stands
    assert float(losses["w_h"]) == pytest.approx(2.0 * got[-1])
    fresh = methods.create("did", seed=1, balance="warmup", warmup=warmup, vary_at=0.01)
    fresh.load_checkpoint_state(m.checkpoint_state())  # the warm-up's state travels in checkpoints
    assert float(fresh.warmup_start) == 5.0 and float(fresh.warmup_factor) == pytest.approx(got[-1])


def test_warmup_before_the_images_vary_sends_g_nothing_from_h():
    # the unnormalised generator's grey start: pairs differ by ~1e-4
    m = methods.create("did", seed=0, balance="warmup", g_norm="none")
    logs = m.generator_step(4, torch.Generator().manual_seed(0), "cpu", step=1)
    assert float(logs["pair_diff"]) < m.hp["vary_at"] and float(logs["w_h"]) == 0.0
    g_before, _ = _g_and_h_grads(m, seed=3)
    with torch.no_grad():
        for p in m.difference_encoder.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(5)))
    g_after, _ = _g_and_h_grads(m, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(g_before, g_after))


class _ChangedDim(nn.Module):
    """A stub H for _WriteCode images: the absolute change of each code pixel, i.e. which dimension changed."""

    def __init__(self, d):
        super().__init__()
        self.d = d

    def forward(self, pair):
        x, x1 = pair[:, :1], pair[:, 1:]
        return (x1[:, 0, 0, : self.d] - x[:, 0, 0, : self.d]).abs() + 1e-6


class _Constant(_ChangedDim):
    def forward(self, pair):
        return torch.ones(pair.shape[0], self.d)


def _small_diagnostics(m):
    """Fewer held codes and pairs than the defaults: the same computations, test-sized."""
    m.n_diagnostic_codes, m.n_gradient_codes, m.n_diagnostic_pairs = 24, 4, 3
    return m


def test_diagnostics_read_what_they_claim():
    """R^2 is 1 for an encoder that inverts G; H's nearest-centroid accuracy is 1 for an H that sees the
    changed dimension and chance (1/d) for a constant H; the L_H gradient is weighted as G gets it."""
    m = _small_diagnostics(methods.create("did", seed=0, balance="literal", lambda_h=0.5))
    real_decoder = m.decoder
    m.decoder, m.samples_encoder, m.difference_encoder = _WriteCode(10), _ReadCode(10), _ChangedDim(10)
    out = m.diagnostics(torch.Generator().manual_seed(0))
    assert all(out[f"r2_enc_{k}"] == pytest.approx(1.0, abs=1e-5) for k in range(10))
    assert out["h_centroid_acc"] == 1.0
    m.difference_encoder = _Constant(10)
    assert m.diagnostics(torch.Generator().manual_seed(0))["h_centroid_acc"] == pytest.approx(0.1)
    m = _small_diagnostics(methods.create("did", seed=0, balance="literal", lambda_h=0.5))
    assert m.decoder is not real_decoder
    out = m.diagnostics(torch.Generator().manual_seed(0))
    assert out["grad_g_l_h"] == pytest.approx(0.5 * out["grad_g_l_h_raw"]) and out["grad_g_l_h_raw"] > 0
    assert out["grad_g_adv"] > 0 and out["grad_g_l_enc"] > 0 and out["h_weight"] == 0.5


def test_log_step_changes_nothing_and_flags_an_exploding_critic():
    from disentbench.bench.training import TrainingDiverged

    m = _small_diagnostics(methods.create("did", seed=0, n_critic=1))
    g = torch.Generator().manual_seed(0)
    m.train_step(torch.rand((4, 1, 64, 64), generator=g), 1, g)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    first = m.log_step(1, {"wasserstein": 3.0, "critic_loss": -2.0})
    assert {"grad_g_adv", "grad_g_l_h", "grad_g_l_enc", "h_centroid_acc", "r2_enc_mean", "image_std"} <= set(first)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items()) and m.training
    assert m.log_step(1, {}) == first  # the same held codes at every logging step
    with pytest.raises(TrainingDiverged) as err:
        m.log_step(7, {"wasserstein": -2500.0})
    assert err.value.step == 7 and str(err.value).startswith("the critic exploded: wasserstein = -2500 ")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"balance": "vqgan"}, "did.balance='vqgan' is not valid; choose one of literal, warmup, adaptive"),
        ({"warmup": 1.5}, "did.warmup=1.5 is out of range; it must be in [0, 1]"),
        ({"warmup": -0.1}, "did.warmup=-0.1 is out of range; it must be in [0, 1]"),
        ({"max_weight": 0}, "did.max_weight=0 is out of range; it must be > 0"),
        ({"vary_at": -1}, "did.vary_at=-1 is out of range; it must be > 0"),
        ({"horizon": -5}, "did.horizon=-5 is out of range; it must be an integer >= 0"),
        ({"diverge_at": 0}, "did.diverge_at=0 is out of range; it must be > 0"),
    ],
)
def test_bad_balance_settings_are_one_line_errors(overrides, message):
    with pytest.raises(BenchError) as err:
        methods.get("did").validate_hparams(overrides)
    assert str(err.value) == message


def test_step_consumes_n_critic_batches_and_encodes_real_images():
    m = methods.create("did", seed=0, n_critic=2)
    assert m.batches_per_step == 2 and m.traversal == ("prior", (-1.0, 1.0))
    g = torch.Generator().manual_seed(0)
    x = torch.rand((6, 1, 64, 64), generator=g)
    logs = m.train_step(x, 0, g)
    assert {"loss", "l_h", "l_enc", "w_h", "pair_diff", "critic_loss", "wasserstein", "gp"} <= set(logs)
    assert all(v.dim() == 0 and not v.requires_grad for v in logs.values())
    with pytest.raises(BenchError):
        m.train_step(x[:5], 1, g)
    assert m.encode(x).shape == (6, 10)
    out = m.decode(torch.zeros(2, 10))
    assert out.shape == (2, 1, 64, 64) and out.min() >= 0 and out.max() <= 1
