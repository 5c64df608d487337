"""What the GAN family (DiD, InfoGAN, InfoGAN-CR) shares: the training horizon its schedules refer
to, diagnostics at logging steps, a divergence test, and spectral normalisation.

A GAN's losses alone do not say whether it learns: the generator's objective rises while its critic
improves, and a regulariser can be present yet send the generator nothing. So every GAN method
reports, at each logging step of the trainer (`log_step`), on a held set of codes drawn from a fixed
seed (the same codes at every step, and no effect on training): the norm of the gradient each term
of the generator's objective sends to the generator, the encoder's fit on generated data (R^2 of
the recovered codes per dimension) and, where there is one, how well the pair classifier tells
which dimension a pair of images differs in (or shares).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from disentbench.errors import TrainingDiverged
from disentbench.methods.backbone import DECODER_NORMS, TRUNK_FEATURES, EncoderTrunk
from disentbench.methods.base import Method
from disentbench.methods.constraints import Interval, Options

#: the held codes of the diagnostics come from this seed, so every logging step scores the same codes
DIAGNOSTICS_SEED = 20_250_214
#: a pixel whose logit is beyond +-this is saturated: sigmoid' < 3.1e-7 there, so almost no gradient
#: reaches G through it (a generator of all-black images sits at logits near -100)
SATURATED_LOGIT = 15.0


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------
def r_squared(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per column: 1 - sum (pred - target)^2 / sum (target - mean target)^2 (1 is a perfect fit,
    0 what predicting the mean gives, negative worse)."""
    resid = (pred - target).pow(2).sum(dim=0)
    total = (target - target.mean(dim=0)).pow(2).sum(dim=0)
    return 1 - resid / total.clamp(min=1e-12)


def nearest_centroid_accuracy(
    fit: torch.Tensor, fit_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor, n_classes: int
) -> float:
    """Accuracy of assigning each test vector to the class whose mean fit vector has the highest cosine
    similarity (a linear probe with no training: it reads only how the vectors cluster)."""
    centroids = torch.stack([fit[fit_labels == k].mean(dim=0) for k in range(n_classes)])
    scores = F.normalize(test, dim=1) @ F.normalize(centroids, dim=1).T
    return float((scores.argmax(dim=1) == test_labels).float().mean())


def gradient_norm(loss: torch.Tensor, params: list[nn.Parameter]) -> float:
    """||d loss / d params||_2 over all params; 0 when the loss does not depend on them."""
    if not loss.requires_grad or not params:
        return 0.0
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return math.sqrt(sum(float(g.pow(2).sum()) for g in grads if g is not None))


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------
class SpectralNorm(nn.Module):
    """A conv or linear layer whose weight is divided by its largest singular value (Miyato et al.
    2018), estimated by one power iteration per forward in training mode (none in eval mode).

    The layer keeps its own weight, so `backbone.initialise` re-initialises it like any other layer;
    `reset` then restarts the power iteration from fixed unit vectors (no random draw) and runs it
    `iterations` times, so that sigma is right from the first forward (GANMethod does this after
    initialising, and a method re-initialising a network must call it again)."""

    def __init__(self, layer: nn.Conv2d | nn.Linear):
        super().__init__()
        self.layer = layer
        rows = layer.weight.shape[0]
        cols = layer.weight[0].numel()
        self.register_buffer("u", torch.full((rows,), rows**-0.5))
        self.register_buffer("v", torch.full((cols,), cols**-0.5))

    @torch.no_grad()
    def reset(self, iterations: int = 15) -> None:
        self.u.fill_(self.u.numel() ** -0.5)
        self.v.fill_(self.v.numel() ** -0.5)
        mat = self.layer.weight.flatten(1)
        for _ in range(iterations):
            self.v.copy_(F.normalize(mat.T @ self.u, dim=0, eps=1e-12))
            self.u.copy_(F.normalize(mat @ self.v, dim=0, eps=1e-12))

    def sigma(self) -> torch.Tensor:
        mat = self.layer.weight.flatten(1)
        if self.training:
            with torch.no_grad():
                v = F.normalize(mat.T @ self.u, dim=0, eps=1e-12)
                u = F.normalize(mat @ v, dim=0, eps=1e-12)
                self.u.copy_(u)
                self.v.copy_(v)
        # clones: a later forward updates the buffers in place while this graph may still need them
        return self.u.clone() @ mat @ self.v.clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.layer.weight / self.sigma()
        if isinstance(self.layer, nn.Conv2d):
            layer = self.layer
            return F.conv2d(x, weight, layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups)
        return F.linear(x, weight, self.layer.bias)


def reset_spectral_norms(module: nn.Module) -> None:
    """Restart the power iteration of every SpectralNorm inside module (after (re-)initialising it)."""
    for m in module.modules():
        if isinstance(m, SpectralNorm):
            m.reset()


def spectral_normalise(module: nn.Module) -> nn.Module:
    """Wrap every Conv2d and Linear inside module in SpectralNorm (in place); returns module."""
    for name, child in module.named_children():
        if isinstance(child, (nn.Conv2d, nn.Linear)):
            setattr(module, name, SpectralNorm(child))
        else:
            spectral_normalise(child)
    return module


class Head(nn.Module):
    """The shared encoder trunk with its own linear head (DiD's critic and encoders, the CR classifier)."""

    def __init__(self, in_channels: int, out_features: int):
        super().__init__()
        self.trunk = EncoderTrunk(in_channels)
        self.head = nn.Linear(TRUNK_FEATURES, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


# --------------------------------------------------------------------------------------------
# The family's base class
# --------------------------------------------------------------------------------------------
class GANMethod(Method):
    """Base of the GAN family: a generator of images from codes, schedules over a training horizon,
    diagnostics at logging steps and a test for an exploding critic.

    The trainer calls `plan_training(steps)` before the first step and `log_step(step, means)` at every
    logging step; both are optional hooks, so a bare loop over `train_step` also works (schedules then
    refer to `reference_steps`).
    """

    hparams = {"horizon": 0, "diverge_at": 1000.0, "g_norm": "batch"}
    #: checkpoints from before `g_norm` existed hold an unnormalised generator
    checkpoint_defaults = {"g_norm": "none"}
    constraints = {
        # the generator's hidden layers: batch-normalised, as DCGAN-style generators are ("batch",
        # the default), or as the shared VAE decoder ("none"; it collapsed to black images:
        # docs/gan.md, "Why the generator is batch-normalised")
        "g_norm": Options(*DECODER_NORMS),
        # the step count that fractional schedules refer to; 0: the training length the trainer plans
        "horizon": Interval(0, None, integer=True),
        # a logged critic value beyond +-diverge_at (its mean over a logging window) fails the cell
        "diverge_at": Interval(0, None, closed="neither"),
    }
    traversal = ("prior", (-1.0, 1.0))
    #: logged keys whose magnitude tells an exploding critic or discriminator
    diverge_keys: ClassVar[tuple[str, ...]] = ()
    #: held codes for R^2 and for the gradient norms
    n_diagnostic_codes: ClassVar[int] = 128
    n_gradient_codes: ClassVar[int] = 32
    #: held pairs per dimension for the pair classifier's accuracy (half fit, half scored)
    n_diagnostic_pairs: ClassVar[int] = 8

    planned_steps: int | None = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        reset_spectral_norms(self)  # after `initialise`: sigma matches the initial weights

    # --- what a subclass provides ------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator, device) -> torch.Tensor:
        """Generator inputs from the prior: the codes (first `latent_dim` columns), then any noise."""
        raise NotImplementedError

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for generator inputs z (with gradients)."""
        raise NotImplementedError

    def diagnostics(self, generator: torch.Generator) -> dict[str, float]:
        """The method's figures on held codes drawn from generator (called in eval mode)."""
        raise NotImplementedError

    # --- schedules ---------------------------------------------------------------------------
    def plan_training(self, steps: int) -> None:
        """The trainer's step budget (fractional schedules refer to it unless `horizon` is set)."""
        self.planned_steps = int(steps)

    @property
    def horizon_steps(self) -> int:
        return int(self.hp["horizon"]) or self.planned_steps or int(self.reference_steps)

    def schedule_step(self, fraction: float) -> int:
        """The first step count (steps already taken) at which a schedule set at `fraction` acts."""
        return int(round(fraction * self.horizon_steps))

    # --- logging steps -----------------------------------------------------------------------
    def check_divergence(self, step: int, means: dict[str, float]) -> None:
        """Raise TrainingDiverged when a critic value's window mean is beyond +-diverge_at."""
        limit = float(self.hp["diverge_at"])
        for key in self.diverge_keys:
            value = means.get(key)
            if value is not None and math.isfinite(value) and abs(value) > limit:
                exc = TrainingDiverged(step, key, value)
                exc.args = (
                    f"the critic exploded: {key} = {value:.4g} (mean over the logging window) at step {step}, "
                    f"beyond +-{limit:g} ({self.registered_name}.diverge_at)",
                )
                raise exc

    def log_step(self, step: int, means: dict[str, float]) -> dict[str, float]:
        """At a logging step: the divergence test on the logged means, then the diagnostics on the
        held codes (eval mode, fixed seed, gradients taken but never applied)."""
        self.check_divergence(step, means)
        device = next(self.parameters()).device
        generator = torch.Generator(device=device).manual_seed(DIAGNOSTICS_SEED)
        was_training = self.training
        self.eval()
        try:
            with torch.enable_grad():
                out = {k: float(v) for k, v in self.diagnostics(generator).items()}
            generator.manual_seed(DIAGNOSTICS_SEED)
            return {**out, **self.output_statistics(generator)}
        finally:
            self.train(was_training)
            self.zero_grad(set_to_none=True)

    @torch.no_grad()
    def output_statistics(self, generator: torch.Generator) -> dict[str, float]:
        """On the held codes: `image_mean`, the mean generated pixel (the real data's mean is the
        target: dSprites' is ~0.04), and `saturated`, the share of G's output logits beyond
        +-SATURATED_LOGIT, where the sigmoid passes almost no gradient (a generator that drifted
        there cannot come back). Empty for a method whose G has no `decoder` of logits."""
        decoder = getattr(self, "decoder", None)
        if decoder is None:
            return {}
        device = next(self.parameters()).device
        logits = decoder(self.sample_inputs(self.n_diagnostic_codes, generator, device))
        return {
            "image_mean": float(torch.sigmoid(logits).mean()),
            "saturated": float((logits.abs() > SATURATED_LOGIT).float().mean()),
        }

    # --- images ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n generated images from prior inputs (for sample grids)."""
        self.eval()
        device = next(self.parameters()).device
        return self.generate(self.sample_inputs(n, generator, device))
