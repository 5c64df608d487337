"""The shared decoder's `norm` option: "none" is the reference decoder unchanged, "batch" normalises
every hidden layer (the DCGAN-style generator the GAN family can choose with `g_norm`)."""

import pytest
import torch
from torch import nn

from disentbench import methods
from disentbench.methods.backbone import ConvDecoder, initialise

pytestmark = pytest.mark.usefixtures("one_thread")


def test_no_norm_is_the_reference_decoder_with_its_parameter_names():
    dec = ConvDecoder(10, 1)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in dec.modules())
    weights = [k for k in dec.state_dict() if k.endswith("weight")]
    assert weights == [
        "fc.0.weight",
        "fc.2.weight",
        "deconv.0.weight",
        "deconv.2.weight",
        "deconv.4.weight",
        "deconv.6.weight",
    ]


def test_batch_norm_standardises_every_hidden_layer_in_training():
    dec = ConvDecoder(10, 3, norm="batch").train()
    initialise(dec, "torch", torch.Generator().manual_seed(0))  # seeded weights, no global RNG
    norms = [m for m in dec.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert [m.num_features for m in norms] == [256, 1024, 64, 32, 32]
    seen = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append(out.detach())) for m in norms]
    z = torch.randn(64, 10, generator=torch.Generator().manual_seed(1)) * 5 + 3  # far from standard
    assert dec(z).shape == (64, 3, 64, 64)
    for h in hooks:
        h.remove()
    for out in seen:  # per channel over the batch (and pixels): mean 0, variance 1 (affine at its init)
        dims = (0,) if out.dim() == 2 else (0, 2, 3)
        assert torch.allclose(out.mean(dim=dims), torch.zeros(1), atol=1e-4)
        assert torch.allclose(out.var(dim=dims, unbiased=False), torch.ones(1), atol=1e-2)


def test_batch_norm_in_eval_mode_scores_each_code_on_its_own():
    dec = ConvDecoder(4, 1, norm="batch")
    initialise(dec, "torch", torch.Generator().manual_seed(6))
    dec.train()
    dec(torch.randn(32, 4, generator=torch.Generator().manual_seed(2)))  # moves the running statistics
    dec.eval()
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        together = dec(z)
        alone = torch.cat([dec(z[i : i + 1]) for i in range(8)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_unknown_norm_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="none, batch"):
        ConvDecoder(10, 1, norm="layer")


@pytest.mark.parametrize("name", ["did", "infogan", "infogancr"])
def test_gan_methods_take_g_norm_and_train_with_it(name):
    m = methods.create(name, observation_shape=(1, 64, 64), seed=0)  # batch-normalised by default
    assert m.hp["g_norm"] == "batch" and any(isinstance(x, nn.BatchNorm2d) for x in m.decoder.modules())
    plain = methods.create(name, observation_shape=(1, 64, 64), seed=0, g_norm="none")
    assert not any(isinstance(x, nn.BatchNorm2d) for x in plain.decoder.modules())
    k = m.batches_per_step
    x = torch.rand(4 * k, 1, 64, 64, generator=torch.Generator().manual_seed(4)).round()
    logs = m.train_step(x, 1, torch.Generator().manual_seed(5))
    assert all(torch.isfinite(v).all() for v in logs.values())
    bn = next(layer for layer in m.decoder.modules() if isinstance(layer, nn.BatchNorm1d))
    assert bn.num_batches_tracked > 0 and bn.running_mean.abs().sum() > 0


@pytest.mark.parametrize("name", ["did", "infogancr"])
def test_output_statistics_read_a_saturated_and_a_grey_generator(name):
    m = methods.create(name, observation_shape=(1, 64, 64), seed=0)
    last = m.decoder.deconv[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-100.0)  # every logit -100: black images, no gradient through the sigmoid
    stats = m.output_statistics(torch.Generator().manual_seed(0))
    assert stats["saturated"] == 1.0 and stats["image_mean"] < 1e-40
    with torch.no_grad():
        last.bias.fill_(0.0)  # every logit 0: grey images, the sigmoid's steepest point
    stats = m.output_statistics(torch.Generator().manual_seed(0))
    assert stats["saturated"] == 0.0 and stats["image_mean"] == pytest.approx(0.5)
    with torch.no_grad():
        last.bias.copy_(torch.tensor([15.5]))  # just beyond the threshold, the other side
    assert m.output_statistics(torch.Generator().manual_seed(0))["saturated"] == 1.0
    logs = m.log_step(1, {})
    assert {"image_mean", "saturated"} <= set(logs)
