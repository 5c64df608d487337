"""InfoGAN (Chen et al. 2016) as modified by Lin et al. (2020), and InfoGAN-CR (Lin, Thekumparampil,
Fanti & Oh, ICML 2020): the GAN-based rivals of DiD.

InfoGAN-CR's contrastive regulariser is close to DiD's idea: a classifier looks at a pair of
generated images that share one code and must tell which code they share; the generator cooperates
with it. Both methods follow the dSprites configuration of the authors' public code where it states
a value, and the suite's shared backbone otherwise; docs/gan.md lists what is stated and what is ours.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from disentbench.methods.backbone import TRUNK_FEATURES, ConvDecoder, EncoderTrunk, initialise
from disentbench.methods.constraints import Interval
from disentbench.methods.gan import (
    GANMethod,
    Head,
    gradient_norm,
    r_squared,
    reset_spectral_norms,
    spectral_normalise,
)
from disentbench.methods.registry import register

#: InfoGAN-CR's dSprites run in the authors' code: 28 epochs of 11,520 batches of 64 (737,280 images)
AUTHORS_ITERATIONS = 28 * 11_520
#: ... with the contrastive term switched on after 25 of them (iteration 288,000)
AUTHORS_CR_START = 25 / 28

LOG_2PI = math.log(2 * math.pi)

Pairs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def info_nll(q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """InfoGAN's mutual-information term as the authors write it: the negative log-likelihood of the
    codes c under a unit-variance Gaussian centred on Q's output, summed over codes, batch mean:
    mean_b sum_k [(q_bk - c_bk)^2 / 2 + log(2 pi) / 2]."""
    return (0.5 * (q - c).pow(2) + 0.5 * LOG_2PI).sum(dim=1).mean()


@register("infogan")
class InfoGAN(GANMethod):
    """InfoGAN (Chen et al. 2016) in the modified form of Lin et al. (ICML 2020), their baseline.

    Objective: with z = (c, s), codes c ~ U(-1, 1)^latent_dim and noise s ~ U(-1, 1)^noise_dim,
    D/Q: min -mean log D(x) - mean log(1 - D(G(z))) + info_weight * NLL(c | Q(G(z)));
    G: min -mean log D(G(z)) + info_weight * NLL(c | Q(G(z))), NLL of a unit-variance Gaussian
    (`info_nll`). Representation: Q(x) on real images (latent_dim numbers).

    Stated by the authors' public code for dSprites (fjxmlzn/InfoGAN-CR): 5 codes and 5 noise
    inputs, all U(-1, 1); the non-saturating GAN loss; Q sharing D's layers, with its own head of
    one 128-unit hidden layer; Q's likelihood a Gaussian of fixed std 1 on the codes only; info
    weight 0.05 for both G and D/Q; Adam with beta1 0.5, lr 1e-3 for G and 2e-3 for D/Q; spectral
    normalisation in D and Q; batch 64; per iteration one D/Q update then two G updates on the same
    inputs; 28 epochs (322,560 iterations, `reference_steps`).
    Chosen by us: G = the shared decoder, batch-normalised as the authors' is (`g_norm`), with ReLUs
    (theirs has leaky ReLUs) and a sigmoid, D = the shared encoder trunk (ReLU) with a linear logit head, Q's
    head Linear(256, q_hidden) - leaky ReLU 0.2 - Linear(q_hidden, latent_dim); the logit form of the
    losses (the authors add 1e-8 inside the logs); Adam's beta2 0.999 (TensorFlow's default); spectral
    normalisation by our own module, one power iteration per D/Q update from a fixed start vector
    (`methods.gan.SpectralNorm`); real and generated images through D in one forward; `decode(c)` and
    traversals with the noise at 0, the prior's centre; the reference grid over `info_weight` (ours).
    A step is one iteration. Divergence: a window mean of D's logit on real or generated images
    beyond +-`diverge_at` fails the cell.
    """

    hparams = {
        "latent_dim": 5,
        "noise_dim": 5,
        "lr": 1e-3,
        "d_lr": 2e-3,
        "info_weight": 0.05,
        "q_hidden": 128,
        "spectral_norm": True,
        "g_steps": 2,
    }
    constraints = {
        "latent_dim": Interval(1, None, integer=True),
        "noise_dim": Interval(0, None, integer=True),
        "d_lr": Interval(0, None, closed="neither"),
        "info_weight": Interval(0, None),
        "q_hidden": Interval(1, None, integer=True),
        "g_steps": Interval(1, None, integer=True),
    }
    reference_grid = {"info_weight": [0.01, 0.02, 0.05, 0.1, 0.2, 0.5]}
    reference_steps = AUTHORS_ITERATIONS
    diverge_keys = ("d_logit_real", "d_logit_fake")

    # --- networks ------------------------------------------------------------------------
    def build(self) -> None:
        c = self.observation_shape[0]
        self.decoder = ConvDecoder(self.input_dim, c, norm=self.hp["g_norm"])  # the generator G (logits)
        self.d_trunk = EncoderTrunk(c)
        self.d_head = nn.Linear(TRUNK_FEATURES, 1)
        self.q_head = nn.Sequential(
            nn.Linear(TRUNK_FEATURES, self.hp["q_hidden"]),
            nn.LeakyReLU(0.2),
            nn.Linear(self.hp["q_hidden"], self.latent_dim),
        )
        if self.hp["spectral_norm"]:
            for net in self.discriminator_modules():
                spectral_normalise(net)

    def discriminator_modules(self) -> list[nn.Module]:
        return [self.d_trunk, self.d_head, self.q_head]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        d_params = [p for net in self.discriminator_modules() for p in net.parameters()]
        return {
            "generator": torch.optim.Adam(self.decoder.parameters(), lr=self.hp["lr"], betas=(0.5, 0.999)),
            "discriminator": torch.optim.Adam(d_params, lr=self.hp["d_lr"], betas=(0.5, 0.999)),
        }

    # --- codes and images ----------------------------------------------------------------
    @property
    def input_dim(self) -> int:
        return self.latent_dim + int(self.hp["noise_dim"])

    def sample_inputs(self, n: int, generator: torch.Generator, device) -> torch.Tensor:
        """z = (codes, noise), every entry U(-1, 1)."""
        return torch.rand((n, self.input_dim), generator=generator, device=device) * 2 - 1

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def discriminate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logit (n,) and Q's code estimate (n, latent_dim), from the shared trunk."""
        h = self.d_trunk(x)
        return self.d_head(h).squeeze(1), self.q_head(h)

    def _discriminator_mode(self, updating: bool) -> None:
        """Every network but G in train mode or not: spectral normalisation's power iteration runs in
        each network's own update, not in G's."""
        for name, net in self.named_children():
            if name != "decoder":
                net.train(updating)

    # --- losses --------------------------------------------------------------------------
    def discriminator_losses(self, real: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """D/Q's objective on a real batch and the generated images of z (G's graph not kept)."""
        n = real.shape[0]
        with torch.no_grad():
            fake = self.generate(z)
        logits, q = self.discriminate(torch.cat([real, fake]))  # one forward for both batches
        l_real, l_fake = logits[:n], logits[n:]
        adv = F.softplus(-l_real).mean() + F.softplus(l_fake).mean()  # -log D(x) - log(1 - D(G(z)))
        info = info_nll(q[n:], z[:, : self.latent_dim])
        return {
            "d_loss": adv + self.hp["info_weight"] * info,
            "d_adv": adv,
            "d_info": info,
            "d_logit_real": l_real.mean(),
            "d_logit_fake": l_fake.mean(),
        }

    def generator_losses(
        self, z: torch.Tensor, pairs: Pairs | None = None, taken: int | None = None
    ) -> dict[str, torch.Tensor]:
        """G's objective and its parts on inputs z: the non-saturating adversarial term and the info
        term (`pairs` and `taken`, steps already taken, serve InfoGAN-CR)."""
        logits, q = self.discriminate(self.generate(z))
        adv = F.softplus(-logits).mean()  # -log D(G(z))
        info = info_nll(q, z[:, : self.latent_dim])
        return {"loss": adv + self.hp["info_weight"] * info, "adv": adv, "info": info}

    def generator_terms(self) -> dict[str, float]:
        """The weight of each term of G's objective as it stands (for the weighted gradient norms)."""
        return {"adv": 1.0, "info": float(self.hp["info_weight"])}

    # --- one iteration -------------------------------------------------------------------
    def before_discriminator(
        self, n: int, taken: int, generator: torch.Generator, device
    ) -> tuple[Pairs | None, dict[str, torch.Tensor]]:
        """What the iteration needs besides z, and its logs (InfoGAN-CR: its pairs, after its
        classifier's update)."""
        return None, {}

    def train_step(self, x: torch.Tensor, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """One iteration: (InfoGAN-CR's classifier update,) one D/Q update, then `g_steps` G updates on
        the same inputs. The trainer counts steps from 1; `taken` = step - 1 steps came before."""
        self.train()
        taken = step - 1
        n = x.shape[0]
        z = self.sample_inputs(n, generator, x.device)
        pairs, logs = self.before_discriminator(n, taken, generator, x.device)
        d_losses = self.discriminator_losses(x, z)
        opt = self.optimizers["discriminator"]
        opt.zero_grad(set_to_none=True)
        d_losses["d_loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        params = list(self.decoder.parameters())
        self._discriminator_mode(False)
        try:
            for _ in range(int(self.hp["g_steps"])):
                g_losses = self.generator_losses(z, pairs, taken)
                grads = torch.autograd.grad(g_losses["loss"], params)
                for p, g in zip(params, grads):
                    p.grad = g
                self.optimizers["generator"].step()
                self.optimizers["generator"].zero_grad(set_to_none=True)
        finally:
            self._discriminator_mode(True)
        return {**logs, **{k: v.detach() for k, v in {**d_losses, **g_losses}.items()}}

    # --- diagnostics ---------------------------------------------------------------------
    def held_pairs(self, n: int, generator: torch.Generator, device) -> Pairs | None:
        """The pairs of G's objective for held codes (InfoGAN-CR only)."""
        return None

    def diagnostics(self, generator: torch.Generator) -> dict[str, float]:
        """R^2 of Q(G(z)) against the codes per code, how much generated images vary, and the norm
        of the gradient each term of G's objective sends to G (weighted as G receives it)."""
        device = next(self.parameters()).device
        out: dict[str, float] = {}
        z = self.sample_inputs(self.n_diagnostic_codes, generator, device)
        with torch.no_grad():
            x = self.generate(z)
            r2 = r_squared(self.discriminate(x)[1], z[:, : self.latent_dim])
        out.update({f"r2_q_{k}": float(v) for k, v in enumerate(r2)})
        out["r2_q_mean"] = float(r2.mean())
        out["image_std"] = float(x.std(dim=0).mean())
        z = self.sample_inputs(self.n_gradient_codes, generator, device)
        losses = self.generator_losses(z, self.held_pairs(self.n_gradient_codes, generator, device), None)
        params = list(self.decoder.parameters())
        for term, weight in self.generator_terms().items():
            raw = gradient_norm(losses[term], params)
            out[f"grad_g_{term}"] = weight * raw
            if term == "cr":
                out["grad_g_cr_raw"] = raw
        return out

    # --- representation ------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.eval()
        return self.discriminate(x)[1]

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images of codes z (n, latent_dim), the noise inputs at 0 (the prior's centre)."""
        self.eval()
        noise = torch.zeros((z.shape[0], int(self.hp["noise_dim"])), device=z.device, dtype=z.dtype)
        return self.generate(torch.cat([z, noise], dim=1))


@register("infogancr")
class InfoGANCR(InfoGAN):
    """InfoGAN-CR (Lin, Thekumparampil, Fanti & Oh, ICML 2020): InfoGAN plus a contrastive regulariser.

    Objective: InfoGAN's, plus a classifier C on pairs (G(z1), G(z2)) stacked on channels, where z1
    and z2 share code k (drawn uniformly), share the noise inputs and draw every other code
    independently: C: min CE(C(G(z1), G(z2)), k); G adds w(t) * the same cross-entropy (G cooperates
    with C), w(t) = 0 before the switch and `cr_weight` from it on.

    Stated by the authors' public code for dSprites: the pair construction above (contrastive gap 0,
    so the other codes are plain independent draws); C trained every iteration, before D/Q, with
    Adam lr 2e-3, beta1 0.5, and spectral normalisation; the progressive schedule: w = 0 until
    iteration 288,000 of 322,560 (25 of 28 epochs), then 2, with C's weights and optimiser state
    re-initialised at the switch; G's two updates use the iteration's pairs.
    Chosen by us: C = the shared encoder trunk on 2C channels with a linear head of latent_dim logits
    (the authors': 4 convolutions with leaky ReLU and a 128-unit layer; their output layer is plain,
    so is ours); the switch as a fraction of the training horizon (`cr_start`, 25/28 of the planned
    steps or of `horizon`), so every profile keeps the authors' proportions; the re-initialisation
    drawn from the training noise generator; the reference grid over `cr_weight`. The paper's
    contrastive-gap schedule (used on other datasets) is not implemented.
    """

    hparams = {"cr_weight": 2.0, "cr_start": AUTHORS_CR_START, "cr_lr": 2e-3}
    constraints = {
        "cr_weight": Interval(0, None),
        "cr_start": Interval(0, 1),  # a fraction of the horizon: the switch cannot lie beyond training
        "cr_lr": Interval(0, None, closed="neither"),
    }
    reference_grid = {"cr_weight": [0.5, 1, 2, 3, 5, 8]}
    #: steps taken before the latest training step (what the logging-step figures refer to)
    last_taken: int = 0

    def build(self) -> None:
        super().build()
        self.cr_classifier = Head(2 * self.observation_shape[0], self.latent_dim)
        if self.hp["spectral_norm"]:
            spectral_normalise(self.cr_classifier.trunk)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = super().configure_optimizers()
        opts["cr"] = torch.optim.Adam(self.cr_classifier.parameters(), lr=self.hp["cr_lr"], betas=(0.5, 0.999))
        return opts

    # --- pairs and schedule --------------------------------------------------------------
    def sample_pairs(self, n: int, generator: torch.Generator, device, labels: torch.Tensor | None = None) -> Pairs:
        """z1, z2 sharing code labels[b] and the noise in row b, every other code drawn apart; labels
        uniform over the codes unless given."""
        if labels is None:
            labels = torch.randint(0, self.latent_dim, (n,), generator=generator, device=device)
        z1 = self.sample_inputs(n, generator, device)
        z2 = self.sample_inputs(n, generator, device)
        shared = torch.zeros_like(z1, dtype=torch.bool)
        shared[:, self.latent_dim :] = True
        shared[torch.arange(n, device=device), labels] = True
        return z1, torch.where(shared, z1, z2), labels

    def classify_pairs(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return self.cr_classifier(torch.cat([x1, x2], dim=1))

    @property
    def switch_step(self) -> int:
        """Steps taken when the contrastive term starts (and C is re-initialised)."""
        return self.schedule_step(self.hp["cr_start"])

    def cr_weight_at(self, taken: int) -> float:
        """The progressive schedule: 0 until `switch_step` steps were taken, then cr_weight."""
        return float(self.hp["cr_weight"]) if taken >= self.switch_step else 0.0

    # --- one iteration -------------------------------------------------------------------
    def before_discriminator(
        self, n: int, taken: int, generator: torch.Generator, device
    ) -> tuple[Pairs, dict[str, torch.Tensor]]:
        """C's update on this iteration's pairs (C re-initialised first at the switch)."""
        self.last_taken = taken
        if taken == self.switch_step:
            initialise(self.cr_classifier, self.init_scheme, generator)
            reset_spectral_norms(self.cr_classifier)
            self.optimizers["cr"].state.clear()
        pairs = self.sample_pairs(n, generator, device)
        with torch.no_grad():
            x1, x2 = self.generate(torch.cat(pairs[:2])).chunk(2)
        logits = self.classify_pairs(x1, x2)
        loss = F.cross_entropy(logits, pairs[2])
        opt = self.optimizers["cr"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        acc = (logits.detach().argmax(dim=1) == pairs[2]).float().mean()
        return pairs, {"cr_loss": loss.detach(), "cr_acc": acc}

    def generator_losses(
        self, z: torch.Tensor, pairs: Pairs | None = None, taken: int | None = None
    ) -> dict[str, torch.Tensor]:
        """InfoGAN's terms plus the pairs' cross-entropy under C, weighted by the schedule at `taken`
        (None: as it stands after the latest training step)."""
        out = super().generator_losses(z)
        z1, z2, labels = pairs
        x1, x2 = self.generate(torch.cat([z1, z2])).chunk(2)
        cr = F.cross_entropy(self.classify_pairs(x1, x2), labels)
        weight = self.cr_weight_at(self.last_taken if taken is None else taken)
        if weight != 0:  # before the switch G gets nothing from C
            out["loss"] = out["loss"] + weight * cr
        return {**out, "cr": cr, "cr_weight": torch.tensor(weight, device=z.device)}

    def generator_terms(self) -> dict[str, float]:
        return {**super().generator_terms(), "cr": self.cr_weight_at(self.last_taken)}

    # --- diagnostics ---------------------------------------------------------------------
    def held_pairs(self, n: int, generator: torch.Generator, device) -> Pairs:
        return self.sample_pairs(n, generator, device)

    def diagnostics(self, generator: torch.Generator) -> dict[str, float]:
        """InfoGAN's, plus C's accuracy on held pairs (n_diagnostic_pairs per shared code; chance
        1 / latent_dim) and the schedule's weight."""
        out = super().diagnostics(generator)
        device = next(self.parameters()).device
        labels = torch.arange(self.latent_dim, device=device).repeat_interleave(2 * self.n_diagnostic_pairs)
        z1, z2, _ = self.sample_pairs(len(labels), generator, device, labels)
        with torch.no_grad():
            x1, x2 = self.generate(torch.cat([z1, z2])).chunk(2)
            pred = self.classify_pairs(x1, x2).argmax(dim=1)
        out["cr_acc_held"] = float((pred == labels).float().mean())
        out["cr_weight"] = self.cr_weight_at(self.last_taken)
        return out
