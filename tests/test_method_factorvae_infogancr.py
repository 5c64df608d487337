"""`factorvae_infogancr`: FactorVAE on the networks of InfoGAN-CR's code, and the `dcgan` init scheme.
Known answers from the authors' layer list (independent of our code): shapes, kernel sizes, widths,
where the activations are, the parameter count by hand, and the initialiser's moments."""

from __future__ import annotations

import torch
from torch import nn

from disentbench import methods
from disentbench.methods.backbone import initialise


def _model(init: str = "reference", seed: int = 0):
    return methods.create("factorvae_infogancr", observation_shape=(1, 64, 64), seed=seed, init=init, gamma=10.0)


def _hand_count(latent: int = 10) -> dict[str, int]:
    conv = lambda c_in, c_out: c_in * c_out * 16 + c_out  # noqa: E731  (4x4 kernels, with bias)
    lin = lambda n_in, n_out: n_in * n_out + n_out  # noqa: E731
    encoder = conv(1, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64) + lin(1024, 128) + 2 * lin(128, latent)
    decoder = lin(latent, 128) + lin(128, 1024) + conv(64, 64) + conv(64, 32) + conv(32, 32) + conv(32, 1)
    disc = lin(latent, 1000) + 4 * lin(1000, 1000) + lin(1000, 2)
    return {"encoder": encoder, "decoder": decoder, "discriminator": disc}


def test_networks_are_the_authors_layer_list():
    m = _model()
    for part, expected in _hand_count().items():
        assert sum(p.numel() for p in getattr(m, part).parameters()) == expected, part
    convs = [x for x in m.encoder.trunk if isinstance(x, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(4, 4)] * 4 and [c.stride for c in convs] == [(2, 2)] * 4
    assert isinstance(m.encoder.trunk[-1], nn.Linear)  # the 128-unit layer has no activation
    hidden = [x for x in m.discriminator.net if isinstance(x, nn.Linear)]
    assert len(hidden) == 6 and hidden[-1].out_features == 2  # 5 hidden layers and the logits
    mu, logvar = m.encoder(torch.zeros(3, 1, 64, 64))
    assert mu.shape == logvar.shape == (3, 10) and m.decoder(mu).shape == (3, 1, 64, 64)
    # the shared backbone is untouched: factorvae keeps its own networks
    plain = methods.create("factorvae", observation_shape=(1, 64, 64), seed=0)
    assert sum(p.numel() for p in plain.encoder.parameters()) != _hand_count()["encoder"]


def test_dcgan_init_draws_n_0_002_truncated_for_convolutions_and_zero_biases():
    m = _model(init="dcgan")
    conv = torch.cat([x.weight.flatten() for x in m.modules() if isinstance(x, nn.Conv2d)])
    other = torch.cat([x.weight.flatten() for x in m.modules() if isinstance(x, (nn.Linear, nn.ConvTranspose2d))])
    assert conv.abs().max() <= 0.04 + 1e-7  # cut at two standard deviations
    # a normal cut at +-2 sigma has std 0.8796 sigma; the others are plain N(0, 0.02)
    assert abs(conv.std().item() - 0.8796 * 0.02) < 0.0005 and abs(conv.mean().item()) < 0.0005
    assert abs(other.std().item() - 0.02) < 0.0002 and other.abs().max() > 0.04
    biases = [x.bias for x in m.modules() if isinstance(x, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    assert all(torch.count_nonzero(b) == 0 for b in biases)
    again = _model(init="dcgan")
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), again.state_dict().values()))
    # the init draws from the given generator only
    layer = nn.Linear(50, 50)
    initialise(layer, "dcgan", torch.Generator().manual_seed(1))
    first = layer.weight.clone()
    torch.manual_seed(123)
    initialise(layer, "dcgan", torch.Generator().manual_seed(1))
    assert torch.equal(first, layer.weight)


def test_trains_as_factorvae_does(tmp_path):
    m = _model(init="dcgan")
    x = torch.rand(8, 1, 64, 64).round()
    before = [p.detach().clone() for p in m.parameters()]
    logs = m.train_step(x, 1, torch.Generator().manual_seed(0))
    assert {"tc", "disc_loss"} <= set(logs) and all(torch.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, m.parameters()))
    assert methods.get("factorvae_infogancr").training_only_modules == ("discriminator",)


def test_the_architecture_ab_profile_pairs_both_arms_on_the_same_seeds(tmp_path):
    from disentbench.bench.cli import build_parser, plan
    from tests.conftest import REPO

    profile = REPO / "bench" / "evidence" / "architecture_ab.yaml"
    args = ["--profile", str(profile), "--set", "factorvae.gamma=10", "--set", "factorvae_infogancr.gamma=10"]
    cells = plan(build_parser().parse_args([*args, "--results", str(tmp_path / "r"), "--device", "cpu"])).cells
    arms = {(c.method, c.seed, c.hparams["gamma"], c.steps, c.init) for c in cells}
    assert arms == {(m, s, 10.0, 10_000, "reference") for m in ("factorvae", "factorvae_infogancr") for s in (0, 1, 2)}


def test_the_second_pass_changes_only_the_initialisation(tmp_path):
    from disentbench.bench.cli import build_parser, plan
    from tests.conftest import REPO

    def cells(name: str) -> set[tuple]:
        args = ["--profile", str(REPO / "bench" / "evidence" / name), "--set", "factorvae.gamma=10"]
        args += ["--set", "factorvae_infogancr.gamma=10", "--results", str(tmp_path / name), "--device", "cpu"]
        found = plan(build_parser().parse_args(args)).cells
        return {(c.method, c.seed, c.hparams["gamma"], c.steps, c.init) for c in found}

    first, second = cells("architecture_ab.yaml"), cells("architecture_ab_dcgan.yaml")
    assert {c[4] for c in second} == {"dcgan"} and {c[4] for c in first} == {"reference"}
    assert {c[:4] for c in second} == {c[:4] for c in first} and len(second) == 6
