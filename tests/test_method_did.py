"""DiD: gradient penalty, the difference losses, E's regression targets, the lambda_h = 0 ablation."""

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
    m = methods.create("did", seed=0, perturb=perturb)
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


@pytest.mark.parametrize("lambda_h, coupled", [(0.0, False), (1.0, True)])
def test_lambda_h_zero_removes_every_gradient_from_h_into_g(lambda_h, coupled):
    m = methods.create("did", seed=0, lambda_h=lambda_h)
    g_before, h_grads = _g_and_h_grads(m, seed=3)
    assert all(g is None for g in h_grads) != coupled  # does G's objective depend on H at all?
    with torch.no_grad():  # a different H: G's gradient must not move unless G and H are coupled
        for p in m.difference_encoder.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(5)))
    g_after, _ = _g_and_h_grads(m, seed=3)
    same = all(torch.equal(a, b) for a, b in zip(g_before, g_after))
    assert same != coupled


def test_step_consumes_n_critic_batches_and_encodes_real_images():
    m = methods.create("did", seed=0, n_critic=2)
    assert m.batches_per_step == 2 and m.traversal == ("prior", (-1.0, 1.0))
    g = torch.Generator().manual_seed(0)
    x = torch.rand((6, 1, 64, 64), generator=g)
    logs = m.train_step(x, 0, g)
    assert {"loss", "l_h", "l_enc", "critic_loss", "wasserstein", "gp"} <= set(logs)
    assert all(v.dim() == 0 and not v.requires_grad for v in logs.values())
    with pytest.raises(BenchError):
        m.train_step(x[:5], 1, g)
    assert m.encode(x).shape == (6, 10)
    out = m.decode(torch.zeros(2, 10))
    assert out.shape == (2, 1, 64, 64) and out.min() >= 0 and out.max() <= 1
