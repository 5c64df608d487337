"""FactorVAE score (Kim & Mnih 2018), as disentanglement_lib computes it.

Global variances from 10,000 random observations; latents with std >= 0.05 are active. A vote:
pick factor k, draw 64 factor vectors, give them all the first one's value of k, and vote
(argmin over active latents of variance / global variance, k). The majority-vote classifier of
the training votes is scored on the evaluation votes. `factor_vae_num_active_dims` is the real
count of active latents (the reference reports the mask length there).
"""

from __future__ import annotations

import numpy as np

from disentbench.errors import BenchError
from disentbench.metrics.base import Encode, Metric
from disentbench.metrics.intervention import cycled_group_codes, encode_batches
from disentbench.metrics.registry import register


def draw_votes_factors(
    dataset, num_votes: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    labels = np.empty(num_votes, dtype=np.int64)
    batches = []
    for i in range(num_votes):
        k = int(rng.integers(dataset.num_factors))
        factors = dataset.sample_factors(batch_size, rng)
        factors[:, k] = factors[0, k]
        labels[i] = k
        batches.append(factors)
    return labels, batches


def vote_table(labels: np.ndarray, argmins: np.ndarray, num_factors: int, num_latents: int) -> np.ndarray:
    votes = np.zeros((num_factors, num_latents), dtype=np.int64)
    np.add.at(votes, (labels, argmins), 1)
    return votes


def majority_accuracy(train_votes: np.ndarray, eval_votes: np.ndarray) -> tuple[float, float]:
    """Each latent is classified as its majority training factor (ties: lowest index)."""
    classifier = np.argmax(train_votes, axis=0)
    cols = np.arange(train_votes.shape[1])
    return (
        float(train_votes[classifier, cols].sum() / train_votes.sum()),
        float(eval_votes[classifier, cols].sum() / eval_votes.sum()),
    )


@register("factor_vae")
class FactorVAEScore(Metric):
    num_train = 10_000
    num_test = 5_000
    batch_size = 64
    needs_dataset = True
    params = {"num_variance_estimate": 10_000, "prune_threshold": 0.05}

    def _argmins(self, dataset, encode, batches, global_var, active, codes_cache=None) -> np.ndarray:
        """The vote of each batch. With prune_threshold 0 a constant latent stays active and its ratio
        is 0/0 = NaN, which argmin picks first (numpy returns the first NaN): the reference's vote,
        kept for equal numbers, without its RuntimeWarning."""
        with np.errstate(divide="ignore", invalid="ignore"):
            out = [
                np.argmin(np.var(codes, axis=0, ddof=1)[active] / global_var[active])
                for codes in encode_batches(dataset, encode, batches, codes_cache=codes_cache)
            ]
        return np.asarray(out, dtype=np.int64)

    def evaluate(
        self, dataset, encode: Encode, rng: np.random.Generator, codes_cache: dict | None = None
    ) -> dict[str, float]:
        if self.num_test < 1 or self.batch_size < 2:
            raise BenchError("factor_vae needs num_test >= 1 and batch_size >= 2")
        num_var = int(self.kwargs["num_variance_estimate"])
        if num_var < 2:
            raise BenchError("factor_vae: num_variance_estimate must be >= 2")
        factors = dataset.sample_factors(num_var, rng)
        chunks = [factors[i : i + self.batch_size] for i in range(0, num_var, self.batch_size)]
        codes = np.concatenate(list(encode_batches(dataset, encode, chunks, codes_cache=codes_cache)))
        global_var = np.var(codes, axis=0, ddof=1)
        active = np.sqrt(global_var) >= float(self.kwargs["prune_threshold"])
        num_active = int(active.sum())
        if num_active == 0:
            return {"factor_vae": 0.0, "factor_vae_train_accuracy": 0.0, "factor_vae_num_active_dims": 0}
        k = dataset.num_factors
        train_y, train_batches = draw_votes_factors(dataset, self.num_train, self.batch_size, rng)
        eval_y, eval_batches = draw_votes_factors(dataset, self.num_test, self.batch_size, rng)
        train_votes = vote_table(
            train_y, self._argmins(dataset, encode, train_batches, global_var, active, codes_cache), k, num_active
        )
        eval_votes = vote_table(
            eval_y, self._argmins(dataset, encode, eval_batches, global_var, active, codes_cache), k, num_active
        )
        train_acc, eval_acc = majority_accuracy(train_votes, eval_votes)
        return {
            "factor_vae": eval_acc,
            "factor_vae_train_accuracy": train_acc,
            "factor_vae_num_active_dims": num_active,
        }


@register("factor_vae_infogancr")
class FactorVAEInfoGANCR(Metric):
    """InfoGAN-CR's `FactorVAEMetric` (fjxmlzn/InfoGAN-CR, `gan/metric.py` and `load_data.py`), a
    variant for the published table. 500 votes (`num_train`) of 100 images (`batch_size`): vote i
    fixes factor i mod K to one value (intervention.draw_cycled_groups). Scale: the std (ddof 0) of
    the codes of a tenth of the dataset's images, drawn without replacement (`num_std_images`, None:
    len(dataset) // 10, 73,728 on dSprites); no latent is pruned. The vote of a group is the argmin
    of the std (ddof 0) of its codes divided by that scale (a constant latent gives 0/0 = NaN, which
    argmin picks first, as numpy does there). Each latent is classified as its majority factor and the
    score is the accuracy on the same votes (no held-out votes). `factor_vae_infogancr_revised` is
    the source's "revised" form: only the K largest per-latent majorities count."""

    num_train = 500
    num_test = 0
    batch_size = 100
    needs_dataset = True
    variant_of = "factor_vae"
    params = {"num_std_images": None}

    def evaluate(
        self, dataset, encode: Encode, rng: np.random.Generator, codes_cache: dict | None = None
    ) -> dict[str, float]:
        if self.batch_size < 2:
            raise BenchError("factor_vae_infogancr needs batch_size >= 2 images per vote")
        wanted = self.kwargs["num_std_images"]
        num_std = len(dataset) // 10 if wanted is None else int(wanted)
        if not 2 <= num_std <= len(dataset):
            raise BenchError(
                f"factor_vae_infogancr: num_std_images must be in [2, {len(dataset)}] (images drawn "
                f"without replacement), got {num_std}"
            )
        labels, groups = cycled_group_codes(dataset, encode, self.num_train, self.batch_size, rng, codes_cache)
        index = rng.choice(len(dataset), size=num_std, replace=False)
        chunks = [dataset.factors_of(index[i : i + 1024]) for i in range(0, num_std, 1024)]
        scale = np.std(np.concatenate(list(encode_batches(dataset, encode, chunks, codes_cache=codes_cache))), axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            argmins = np.argmin(np.std(groups / scale, axis=1), axis=1)
        classes = np.unique(labels)
        table = np.zeros((groups.shape[2], len(classes)), dtype=np.int64)
        np.add.at(table, (argmins, np.searchsorted(classes, labels)), 1)
        majorities = table.max(axis=1)
        return {
            "factor_vae_infogancr": float(majorities.sum() / len(labels)),
            "factor_vae_infogancr_revised": float(np.sort(majorities)[::-1][: len(classes)].sum() / len(labels)),
        }
