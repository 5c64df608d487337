"""Few labels: the semi-supervised VAEs of Locatello et al. (ICLR 2020), "Disentangling Factors of
Variation Using Few Labels" (reference code: disentanglement_lib, methods/semi_supervised).

A VAE-family objective on unlabelled images plus gamma_sup times a supervised term on the encoder
means of a few labelled images:

    recon(x) + regulariser(x) + w(t) * R_s(mu(x_labelled), labels)

where regulariser is the unsupervised method's own (beta-VAE, FactorVAE, beta-TCVAE, DIP-VAE-I/II)
and w(t) is gamma_sup, fixed or on a schedule. The supervised terms R_s (`sup_loss`), on the first
K latents for K factors, with labels y (class indices) and factor sizes k:

- `xent`: sum over the batch and factors of the sigmoid cross-entropy of latent j against y_j / k_j;
- `l2`: sum of (b mu_j - y_j)^2, b a learned scale (initially 1);
- `l2_sigmoid`: sum of (sigmoid(mu_j) - y_j / k_j)^2;
- `cov`: the sum of squares of the off-diagonal entries of the batch cross-covariance between all
  latents and the labels (its diagonal, latent j with factor j, is free);
- `embed`: per factor, a softmax cross-entropy over its k_j values, logit_v = -((mu_j - e_jv) sigma)^2,
  e_j a learned embedding of the values, averaged over the batch and summed over factors;
  `embed_ordered` ties the embedding to the values' order: e_jv = slope_j v + bias_j.

The labelled subset: `num_labels` factor vectors drawn i.i.d. from the training distribution by a
generator seeded from the cell's seed (so the same seed gives the same subset, whatever the method
or its other settings; 100 labels are the first 100 of 1,000), rendered once, and labelled by a
labeller that may err (`label_noise`: each label is replaced, with that probability, by a value
drawn uniformly from all of its factor's values) and then bins (`label_bins`: a factor with more
values than bins is reported as the bin its value falls in, bin = value * bins // k). The first
ceil(label_train_fraction * num_labels) train the supervised term, in a fixed cyclic order, one
batch of them with every unlabelled batch; the rest are held out. The subset is recorded in the
checkpoint (a resume restores it and checks it against a fresh draw) and in the cell folder
(`labelled.csv`, `labelled.json`).

docs/methods.md says which parts the reference states and which are ours.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from disentbench.datasets.base import GroundTruthDataset
from disentbench.errors import BenchError
from disentbench.methods.betatcvae import BetaTCVAE
from disentbench.methods.constraints import Interval, Options
from disentbench.methods.dipvae import DIPVAE1, DIPVAE2
from disentbench.methods.factorvae import FactorVAE
from disentbench.methods.registry import register
from disentbench.methods.vae import BetaVAE, bernoulli_reconstruction, gaussian_kl

#: the supervised terms (the reference's xent, l2, l2 without learned scale, cov, embed, embed with use_order)
SUPERVISED_LOSSES = ("xent", "l2", "l2_sigmoid", "cov", "embed", "embed_ordered")
#: how gamma_sup enters over training (the reference's fixed, anneal and fine_tune annealers)
SCHEDULES = ("fixed", "anneal", "fine_tune")
#: the files a cell folder gets: the labelled rows, and how they were drawn
LABELLED_CSV = "labelled.csv"
LABELLED_JSON = "labelled.json"
#: spawn keys of the streams derived from the method's seed (independent of its weights' stream)
_SUBSET_STREAM = 0x5E7
_HEAD_STREAM = 0x4EAD


def derived_seed(seed: int, stream: int) -> int:
    """An independent 32-bit seed for `stream`, derived from `seed` (numpy's SeedSequence spawn keys)."""
    return int(np.random.SeedSequence(int(seed), spawn_key=(stream,)).generate_state(1)[0])


# --------------------------------------------------------------------------------------------
# The labeller
# --------------------------------------------------------------------------------------------
def bin_labels(labels: np.ndarray, sizes: Sequence[int], bins: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Labels of a factor with more than `bins` values become the bin their value falls in,
    value * bins // size (equal-width bins over [0, size)); bins = 0 keeps every label. Returns the
    labels and the number of values each label now takes."""
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    if bins == 0:
        return labels.copy(), tuple(int(s) for s in sizes)
    coarse = sizes > bins
    binned = np.where(coarse[None, :], labels * bins // sizes[None, :], labels)
    return binned, tuple(int(s) for s in np.minimum(sizes, bins))


def noisy_labels(labels: np.ndarray, sizes: Sequence[int], p: float, rng: np.random.Generator) -> np.ndarray:
    """Each label replaced, with probability p, by a value drawn uniformly from all its factor's values
    (possibly the same one)."""
    labels = np.asarray(labels, dtype=np.int64)
    if p == 0:
        return labels.copy()
    replace = rng.random(labels.shape) < p
    drawn = rng.integers(0, np.asarray(sizes, dtype=np.int64), size=labels.shape)
    return np.where(replace, drawn, labels)


def train_count(num_labels: int, fraction: float) -> int:
    """The labelled rows that train: ceil(fraction * num_labels), at least 1 (rounded first, so that
    0.7 * 10 is 7, not 8)."""
    return max(1, math.ceil(round(num_labels * fraction, 9)))


@dataclass(frozen=True)
class LabelledSet:
    """The labelled subset of a cell: its seed, the true factors and the labels of each row (n, K),
    the values each label takes, how many rows train (the first ones) and each row's dataset index."""

    seed: int
    factors: np.ndarray
    labels: np.ndarray
    label_sizes: tuple[int, ...]
    num_train: int
    index: np.ndarray

    def same_as(self, other: LabelledSet) -> bool:
        return (
            self.seed == other.seed
            and self.label_sizes == other.label_sizes
            and self.num_train == other.num_train
            and np.array_equal(self.factors, other.factors)
            and np.array_equal(self.labels, other.labels)
        )

    def state(self) -> dict[str, Any]:
        """As a checkpoint stores it (tensors and plain values: it loads with weights_only)."""
        return {
            "seed": self.seed,
            "factors": torch.from_numpy(self.factors.copy()),
            "labels": torch.from_numpy(self.labels.copy()),
            "label_sizes": list(self.label_sizes),
            "num_train": self.num_train,
            "index": torch.from_numpy(self.index.copy()),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LabelledSet:
        return cls(
            seed=int(state["seed"]),
            factors=state["factors"].cpu().numpy().astype(np.int64),
            labels=state["labels"].cpu().numpy().astype(np.int64),
            label_sizes=tuple(int(s) for s in state["label_sizes"]),
            num_train=int(state["num_train"]),
            index=state["index"].cpu().numpy().astype(np.int64),
        )

    def files(self, dataset: GroundTruthDataset, hparams: dict[str, Any]) -> dict[str, str]:
        """The cell folder's record: one CSV row per labelled image (its split, dataset index, true
        factors and labels) and a JSON of how the subset was drawn."""
        names = list(getattr(dataset, "factor_names", ()) or ()) or [
            f"factor_{j}" for j in range(self.factors.shape[1])
        ]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["row", "split", "index", *names, *(f"label_{n}" for n in names)])
        for r in range(len(self.factors)):
            split = "train" if r < self.num_train else "validation"
            writer.writerow([r, split, int(self.index[r]), *self.factors[r].tolist(), *self.labels[r].tolist()])
        about = {
            "label_seed": self.seed,
            "dataset": getattr(dataset, "name", type(dataset).__name__),
            "factor_names": names,
            "factor_sizes": [int(s) for s in dataset.factor_sizes],
            "label_sizes": list(self.label_sizes),
            "num_labels": len(self.factors),
            "num_train": self.num_train,
            **{k: hparams[k] for k in ("label_bins", "label_noise", "label_train_fraction")},
        }
        return {LABELLED_CSV: out.getvalue(), LABELLED_JSON: json.dumps(about, indent=2, sort_keys=True) + "\n"}


def draw_labelled(
    dataset: GroundTruthDataset,
    num_labels: int,
    seed: int,
    bins: int = 0,
    noise: float = 0.0,
    train_fraction: float = 1.0,
) -> LabelledSet:
    """The labelled subset: `num_labels` factor vectors from dataset.sample_factors, then the noisy
    labeller's draws, all from one generator seeded by `seed`; then binning (no draw)."""
    rng = np.random.default_rng(seed)
    factors = dataset.sample_factors(num_labels, rng)
    sizes = tuple(int(s) for s in dataset.factor_sizes)
    labels, label_sizes = bin_labels(noisy_labels(factors, sizes, noise, rng), sizes, bins)
    return LabelledSet(
        seed=int(seed),
        factors=np.asarray(factors, dtype=np.int64),
        labels=labels,
        label_sizes=label_sizes,
        num_train=train_count(num_labels, train_fraction),
        index=np.asarray(dataset.index_of(factors), dtype=np.int64),
    )


# --------------------------------------------------------------------------------------------
# The supervised terms: codes (n, d) and labels (n, K) as float class indices
# --------------------------------------------------------------------------------------------
def xent_loss(codes: torch.Tensor, labels: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Sum of the sigmoid cross-entropies of latent j (logits) against y_j / k_j."""
    k = labels.shape[1]
    return F.binary_cross_entropy_with_logits(codes[:, :k], labels / sizes, reduction="sum")


def l2_loss(codes: torch.Tensor, labels: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Sum of (scale * mu_j - y_j)^2."""
    return (codes[:, : labels.shape[1]] * scale - labels).pow(2).sum()


def l2_sigmoid_loss(codes: torch.Tensor, labels: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Sum of (sigmoid(mu_j) - y_j / k_j)^2, per example (the reference broadcasts it over all pairs
    of examples: see docs/methods.md)."""
    return (torch.sigmoid(codes[:, : labels.shape[1]]) - labels / sizes).pow(2).sum()


def cov_loss(codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of squares of the batch cross-covariance (1/n) of all latents with the labels, with its
    diagonal (latent j with factor j, for j < min(d, K)) left out."""
    d, k = codes.shape[1], labels.shape[1]
    cov = (codes - codes.mean(dim=0)).T @ (labels - labels.mean(dim=0)) / codes.shape[0]
    return cov.masked_fill(torch.eye(d, k, dtype=torch.bool, device=cov.device), 0.0).pow(2).sum()


def embed_loss(
    codes: torch.Tensor, labels: torch.Tensor, embeddings: Sequence[torch.Tensor], sigma: torch.Tensor
) -> torch.Tensor:
    """Sum over factors j of the batch-mean cross-entropy of softmax_v(-((mu_j - e_jv) sigma_j)^2)
    against the label y_j; embeddings[j] holds e_j (one value per label value)."""
    total = codes.new_zeros(())
    for j, e in enumerate(embeddings):
        logits = -((codes[:, j : j + 1] - e.unsqueeze(0)) * sigma[j]).pow(2)
        total = total + F.cross_entropy(logits, labels[:, j].long())
    return total


def supervision_weight(gamma: float, schedule: str, threshold: int, step: int) -> float:
    """gamma_sup at trainer step `step` (1 at the first update). t = step - 1 is the updates already
    made, the reference's global step: `fixed` gamma; `anneal` gamma * min(1, t / threshold);
    `fine_tune` 0 while t <= threshold, then gamma."""
    t = max(int(step) - 1, 0)
    if schedule == "fixed":
        return float(gamma)
    if schedule == "anneal":
        return float(gamma) * min(1.0, t / threshold)
    if schedule == "fine_tune":
        return float(gamma) * min(1.0, max(0.0, float(t - threshold)))
    raise BenchError(f"unknown sup_schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


def _glorot_vector(size: int, generator: torch.Generator) -> torch.Tensor:
    """TF1's default initialiser (Glorot-uniform) for a variable of shape (size,): U(-sqrt(3/size), +)."""
    limit = math.sqrt(6.0 / (2 * size))
    return (torch.rand(size, generator=generator, dtype=torch.float32) * 2 - 1) * limit


class SupervisedHead(nn.Module):
    """The supervised term with its learned parameters (the l2 scale, the embeddings and a learned
    sigma), built once the label sizes are known; Glorot-uniform as the reference's TF variables.
    sigma = 0 means a learned sigma per factor."""

    def __init__(self, loss: str, label_sizes: Sequence[int], sigma: float, generator: torch.Generator):
        super().__init__()
        if loss not in SUPERVISED_LOSSES:
            raise BenchError(f"unknown sup_loss {loss!r}; choose one of {', '.join(SUPERVISED_LOSSES)}")
        self.loss_name, self.label_sizes = loss, tuple(int(s) for s in label_sizes)
        k = len(self.label_sizes)
        self.register_buffer("sizes", torch.tensor(self.label_sizes, dtype=torch.float32), persistent=False)
        if loss == "l2":
            self.scale = nn.Parameter(torch.ones(()))
        if loss == "embed":
            self.embeddings = nn.ParameterList([nn.Parameter(_glorot_vector(s, generator)) for s in self.label_sizes])
        if loss == "embed_ordered":
            self.slope = nn.Parameter(torch.stack([_glorot_vector(1, generator)[0] for _ in range(k)]))
            self.bias = nn.Parameter(torch.stack([_glorot_vector(1, generator)[0] for _ in range(k)]))
        self.learn_sigma = loss.startswith("embed") and sigma == 0
        if self.learn_sigma:
            self.sigma = nn.Parameter(torch.stack([_glorot_vector(1, generator)[0] for _ in range(k)]))
        self.fixed_sigma = float(sigma)

    def value_embeddings(self) -> list[torch.Tensor]:
        """e_j for every factor j."""
        if self.loss_name == "embed":
            return list(self.embeddings)
        return [
            torch.arange(s, device=self.slope.device) * self.slope[j] + self.bias[j]
            for j, s in enumerate(self.label_sizes)
        ]

    def forward(self, codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        name = self.loss_name
        if name == "xent":
            return xent_loss(codes, labels, self.sizes)
        if name == "l2":
            return l2_loss(codes, labels, self.scale)
        if name == "l2_sigmoid":
            return l2_sigmoid_loss(codes, labels, self.sizes)
        if name == "cov":
            return cov_loss(codes, labels)
        sigma = self.sigma if self.learn_sigma else codes.new_full((len(self.label_sizes),), self.fixed_sigma)
        return embed_loss(codes, labels, self.value_embeddings(), sigma)


# --------------------------------------------------------------------------------------------
# The methods
# --------------------------------------------------------------------------------------------
class LabelledBatch(NamedTuple):
    """One step's data: unlabelled images x (n, C, H, W), labelled images (m, C, H, W) and their
    labels (m, K) as float class indices."""

    x: torch.Tensor
    x_labelled: torch.Tensor
    labels: torch.Tensor


class SemiSupervised:
    """The supervised part shared by the s2 methods (not registered): put it before a VAE-family
    class, whose regulariser then sees only the unlabelled batch."""

    hparams: ClassVar[dict[str, Any]] = {
        "num_labels": 1000,
        "sup_loss": "xent",
        "gamma_sup": 4.0,
        "label_bins": 5,
        "label_noise": 0.0,
        "label_train_fraction": 0.9,
        "sup_schedule": "fixed",
        "sup_threshold": 100000,
        "embed_sigma": 1.0,
    }
    constraints: ClassVar[dict[str, Any]] = {
        "num_labels": Interval(1, None, integer=True),
        "sup_loss": Options(*SUPERVISED_LOSSES),
        "gamma_sup": Interval(0, None),
        "label_bins": Interval(0, None, integer=True),  # 0: exact labels; 1 is refused (every label equal)
        "label_noise": Interval(0, 1),
        "label_train_fraction": Interval(0, 1, closed="right"),
        "sup_schedule": Options(*SCHEDULES),
        "sup_threshold": Interval(1, None, integer=True),
        "embed_sigma": Interval(0, None),  # 0: learned, one per factor
    }
    #: the supervised head's parameters only serve training (the zoo keeps the encoder and decoder)
    training_only_modules: ClassVar[tuple[str, ...]] = ("supervised_head",)

    def __init__(
        self,
        observation_shape: tuple[int, int, int] = (1, 64, 64),
        seed: int = 0,
        init: str = "reference",
        **hparams: Any,
    ):
        super().__init__(observation_shape, seed, init, **hparams)
        self.subset_seed = derived_seed(seed, _SUBSET_STREAM)
        self.head_seed = derived_seed(seed, _HEAD_STREAM)
        self.labelled: LabelledSet | None = None
        self.supervised_head: SupervisedHead | None = None
        self._cursor = 0  # labelled rows served so far, modulo the training rows
        self._images: torch.Tensor | None = None  # the training rows rendered, and their labels
        self._labels: torch.Tensor | None = None
        self._source: int | None = None  # id() of the dataset they were rendered from

    @classmethod
    def validate_hparams(cls, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        out = super().validate_hparams(overrides)
        if out["label_bins"] == 1:
            raise BenchError(
                f"{cls.registered_name}.label_bins=1 would give every label the same value; "
                f"use 0 (exact labels) or 2 or more bins"
            )
        return out

    @classmethod
    def check_dataset(cls, dataset: Any, hparams: dict[str, Any]) -> None:
        """One line, before any training, unless the labelled subset can be drawn from `dataset`."""
        name = cls.registered_name
        ds = getattr(dataset, "name", type(dataset).__name__)
        if not isinstance(dataset, GroundTruthDataset) or not tuple(dataset.factor_sizes):
            raise BenchError(f"{name} draws its labelled images through a dataset's factor grid; dataset {ds} has none")
        n, available = int(hparams["num_labels"]), len(dataset)
        if n > available:
            raise BenchError(
                f"{name}.num_labels={n} is more than the {available} images of {ds}; use num_labels <= {available}"
            )
        k, dim, loss = len(dataset.factor_sizes), int(hparams["latent_dim"]), hparams["sup_loss"]
        if loss != "cov" and dim < k:
            raise BenchError(
                f"{name}.latent_dim={dim} is below the {k} factors of {ds}: the {loss} loss ties latent j to "
                f"factor j; use latent_dim >= {k} or sup_loss=cov"
            )

    # --- the labelled subset ---------------------------------------------------------------
    def attach_data(self, dataset: GroundTruthDataset) -> dict[str, str]:
        """Draw the labelled subset from `dataset` (or check that a restored one is what this seed
        draws), render its training rows and build the supervised head. The trainer calls it before
        the first step and writes the returned files ({name: text}) to the cell folder."""
        self.check_dataset(dataset, self.hp)
        hp = self.hp
        drawn = draw_labelled(
            dataset, hp["num_labels"], self.subset_seed, hp["label_bins"], hp["label_noise"], hp["label_train_fraction"]
        )
        if self.labelled is not None and not self.labelled.same_as(drawn):
            raise BenchError(
                f"{self.registered_name}: the labelled subset in the checkpoint is not the one its seed draws from "
                f"{dataset.name} (the dataset changed?); delete the cell folder to retrain"
            )
        self.labelled = drawn
        rows = drawn.factors[: drawn.num_train]
        self._images = dataset.observations(rows)
        self._labels = torch.as_tensor(drawn.labels[: drawn.num_train], dtype=torch.float32).to(self._images.device)
        self._source = id(dataset)
        if self.supervised_head is None:
            self._build_head(drawn.label_sizes)
        return drawn.files(dataset, hp)

    def _build_head(self, label_sizes: Sequence[int]) -> None:
        """The supervised head on the encoder's device, with its own Adam (the VAE's settings; Adam is
        per parameter, so this equals one optimiser over both) when it has parameters."""
        device = next(self.encoder.parameters()).device
        generator = torch.Generator().manual_seed(self.head_seed)
        self.supervised_head = SupervisedHead(self.hp["sup_loss"], label_sizes, self.hp["embed_sigma"], generator).to(
            device
        )
        params = list(self.supervised_head.parameters())
        if params:
            self.optimizers["supervised"] = torch.optim.Adam(params, lr=self.hp["lr"], betas=(0.9, 0.999), eps=1e-8)

    def sample_batch(self, dataset: GroundTruthDataset, rows: int, rng: np.random.Generator) -> LabelledBatch:
        """`rows` unlabelled images (i.i.d. factors from `rng`, as the plain trainer draws them) and the
        next `rows` labelled training rows in cyclic order."""
        if self.labelled is None or self._images is None or self._source != id(dataset):
            self.attach_data(dataset)
        x = dataset.observations(dataset.sample_factors(rows, rng))
        take = (self._cursor + np.arange(rows)) % self.labelled.num_train
        self._cursor = int((self._cursor + rows) % self.labelled.num_train)
        pick = torch.from_numpy(take).to(self._images.device)
        return LabelledBatch(x, self._images[pick], self._labels[pick])

    # --- training --------------------------------------------------------------------------
    def loss(
        self, batch: LabelledBatch | torch.Tensor, step: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict]:
        if not isinstance(batch, LabelledBatch) or self.supervised_head is None:
            raise BenchError(
                f"{self.registered_name} needs labelled batches: draw them with sample_batch(dataset, rows, rng), "
                f"not as bare images"
            )
        n = batch.x.shape[0]
        mu_all, logvar_all = self.encoder(torch.cat([batch.x, batch.x_labelled]))
        mu, logvar = mu_all[:n], logvar_all[:n]
        z = self.sample_posterior(mu, logvar, generator)
        recon = bernoulli_reconstruction(self.decoder(z), batch.x)
        kl = gaussian_kl(mu, logvar).mean()
        reg, extra = self.regulariser(mu, logvar, z, kl, step)
        supervised = self.supervised_head(mu_all[n:], batch.labels)
        hp = self.hp
        weight = supervision_weight(hp["gamma_sup"], hp["sup_schedule"], hp["sup_threshold"], step)
        loss = recon + reg + weight * supervised
        logs = {"loss": loss, "recon": recon, "kl": kl, "supervised": supervised, **extra}
        return loss, {k: v.detach() for k, v in logs.items()}

    def train_step(self, x: LabelledBatch, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        head_opt = self.optimizers.get("supervised")
        if head_opt is not None:
            head_opt.zero_grad(set_to_none=True)
        logs = super().train_step(x, step, generator)  # the VAE family's step (FactorVAE's discriminator too)
        if head_opt is not None:
            head_opt.step()
        return logs

    # --- checkpoints -----------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any]:
        state = super().checkpoint_state()
        state["labelled"] = None if self.labelled is None else self.labelled.state()
        state["labelled_cursor"] = self._cursor
        return state

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        """The recorded subset first (it sizes the supervised head), then weights and optimisers.
        A state without one (a zoo model's) loads the encoder and decoder only."""
        if state.get("labelled") is not None:
            restored = LabelledSet.from_state(state["labelled"])
            if self.labelled is None or not self.labelled.same_as(restored):  # else the rendered rows stay
                self._images = self._labels = self._source = None
            self.labelled = restored
            self._cursor = int(state.get("labelled_cursor", 0))
            if self.supervised_head is None:
                self._build_head(restored.label_sizes)
        super().load_checkpoint_state(state)


@register("s2betavae")
class S2BetaVAE(SemiSupervised, BetaVAE):
    """beta-VAE + the supervised term (the reference's s2_vae): recon + beta KL + gamma_sup R_s."""


@register("s2factorvae")
class S2FactorVAE(SemiSupervised, FactorVAE):
    """FactorVAE + the supervised term (s2_factor_vae): recon + KL + gamma TC + gamma_sup R_s; the
    discriminator sees the unlabelled codes only."""

    training_only_modules = ("discriminator", "supervised_head")


@register("s2betatcvae")
class S2BetaTCVAE(SemiSupervised, BetaTCVAE):
    """beta-TCVAE + the supervised term (s2_beta_tc_vae): recon + KL + (beta - 1) TC + gamma_sup R_s."""


@register("s2dipvae1")
class S2DIPVAE1(SemiSupervised, DIPVAE1):
    """DIP-VAE-I + the supervised term (s2_dip_vae, dip_type "i")."""


@register("s2dipvae2")
class S2DIPVAE2(SemiSupervised, DIPVAE2):
    """DIP-VAE-II + the supervised term (s2_dip_vae, dip_type "ii")."""
