"""Held-out factor combinations: named settings that remove combinations from training, and
samplers that draw only the combinations training saw ("seen") or only the held-out ones.

A setting is a set of factor combinations of a dataset's grid, a deterministic function of the
setting and the grid's sizes:

- holes (`<family>_recomb_10`): a random 10% of all combinations, each one held out on its own
  (recombination to an element: every factor value was seen, never in that combination). The
  holes are drawn once from the fixed seed HOLE_SEED: one uniform number per combination in
  row-major order, the 10% smallest held out (so a larger fraction would contain a smaller one).
- regions: every combination that meets all of a few conditions on factor values normalised to
  [0, 1] (class k of a factor with K classes is k / (K - 1), as in datasets/correlation.py):
  `<family>_corner` holds out the upper corner of the factor space (every factor >= 0.5),
  `<family>_extrap_<factor>` the upper half of one factor's range (extrapolation: those values
  are never seen), and the two-factor regions of the HFS code's Montero-style constraint file
  (`dsprites_v1`, `shapes3d_v1`...: recombination to a range) keep that file's names.

The training sampler draws uniformly over the seen combinations and the held-out sampler over the
held-out ones: one index into the sorted list of the part's combinations per draw, from the
caller's generator, so draws are exact (no rejection) and the same seed draws the same factors.
A setting applies to every dataset with its family's factor names. "none" holds out nothing.
docs/heldout.md has the table.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from disentbench.datasets.base import GroundTruthDataset
from disentbench.datasets.correlation import FAMILIES as CORRELATION_FAMILIES
from disentbench.datasets.resampled import ResampledDataset, lookup
from disentbench.errors import BenchError

NONE = "none"
#: the seed of every random hole set (documented; never the cell's seed, so all seeds of a setting
#: train without the same holes)
HOLE_SEED = 0
#: the fraction of combinations `<family>_recomb_10` holds out (the reference's 10% coverage)
RECOMB_FRACTION = 0.1
#: grids larger than this are refused (the held-out set is one bool per combination)
MAX_COMBINATIONS = 50_000_000
PARTS = ("seen", "heldout")

#: (factor, operator, threshold on the normalised value)
Condition = tuple[str, str, float]
_TOL = 1e-9  # k / (K - 1) against a threshold such as 0.5: no rounding surprises at the boundary

# two-factor regions of the reference's constraint file, in our factor names; `== 1` is the factor's
# last class (dSprites: heart; 3DShapes: the fourth shape)
_MONTERO = {
    "dsprites_v1": (("shape", "==", 1.0), ("posX", ">=", 0.5)),
    "shapes3d_v1": (("shape", "==", 1.0), ("object_hue", ">=", 0.5)),
    "shapes3d_v2": (("floor_hue", "<", 0.25), ("wall_hue", ">", 0.75)),
    "shapes3d_v3": (("shape", "==", 1.0), ("wall_hue", ">", 0.75)),
    "shapes3d_v4": (("shape", "==", 1.0), ("floor_hue", "<", 0.25)),
    "shapes3d_fair_v1": (("shape", "==", 1.0), ("object_hue", ">=", 0.5)),
    "shapes3d_fair_v2": (("shape", "==", 1.0), ("floor_hue", ">=", 0.5)),
    "shapes3d_fair_v3": (("shape", "==", 1.0), ("wall_hue", ">=", 0.5)),
    "shapes3d_fair_v4": (("floor_hue", ">=", 0.5), ("wall_hue", ">=", 0.5)),
    "shapes3d_fair_v5": (("shape", "==", 1.0), ("scale", ">=", 0.5)),
    "shapes3d_fair_v6": (("shape", "==", 1.0), ("orientation", ">=", 0.5)),
    "shapes3d_fair_v7": (("object_hue", ">=", 0.5), ("wall_hue", ">=", 0.5)),
}
#: family -> its factor names (the families of the correlation settings)
FAMILIES: dict[str, tuple[str, ...]] = {family: names for family, (names, _) in CORRELATION_FAMILIES.items()}


@dataclass(frozen=True)
class HoldoutSetting:
    """A named setting: its family, and either a fraction of random holes or the conditions (all
    must hold) of a held-out region."""

    name: str
    family: str
    kind: str  # "holes" or "region"
    conditions: tuple[Condition, ...] = ()
    fraction: float = 0.0

    @property
    def factor_names(self) -> tuple[str, ...]:
        return FAMILIES[self.family]

    def applies_to(self, dataset: GroundTruthDataset) -> bool:
        return tuple(dataset.factor_names) == self.factor_names

    def describe(self) -> str:
        """What is held out, in words (for tables and docs)."""
        if self.kind == "holes":
            return f"a random {self.fraction:.0%} of combinations (seed {HOLE_SEED})"
        return " and ".join(f"{f} {op} {t:g}" for f, op, t in self.conditions)


def _build() -> dict[str, HoldoutSetting]:
    out: dict[str, HoldoutSetting] = {}
    for family, names in FAMILIES.items():
        recomb = f"{family}_recomb_{round(RECOMB_FRACTION * 100)}"
        out[recomb] = HoldoutSetting(recomb, family, "holes", fraction=RECOMB_FRACTION)
        corner = tuple((f, ">=", 0.5) for f in names)
        out[f"{family}_corner"] = HoldoutSetting(f"{family}_corner", family, "region", corner)
        for f in names:
            out[f"{family}_extrap_{f}"] = HoldoutSetting(f"{family}_extrap_{f}", family, "region", ((f, ">=", 0.5),))
    for name, conditions in _MONTERO.items():
        family = name.split("_")[0]
        out[name] = HoldoutSetting(name, family, "region", conditions)
    return out


SETTINGS: dict[str, HoldoutSetting] = _build()


def list_settings(dataset: GroundTruthDataset | None = None) -> list[str]:
    """Every setting name (those that apply to `dataset` when given), sorted."""
    return sorted(n for n, s in SETTINGS.items() if dataset is None or s.applies_to(dataset))


def get(name: str, dataset: GroundTruthDataset | None = None) -> HoldoutSetting:
    """The setting called `name`; one-line errors for an unknown name, one for another dataset, and
    a dataset whose grid cannot hold one out."""
    setting = lookup("holdout", name, SETTINGS, dataset)
    if dataset is not None:
        if not getattr(dataset, "complete_grid", True):
            raise BenchError(
                f"holdout setting {name!r} needs a complete factor grid and dataset {dataset.name} lacks some "
                f"combinations; use a dataset with every combination, or holdout none"
            )
        heldout_mask(name, tuple(int(s) for s in dataset.factor_sizes))  # one line if it holds out none or all
    return setting


def _hit(values: np.ndarray, op: str, threshold: float) -> np.ndarray:
    """Which normalised values meet `op threshold` (within _TOL of the boundary counts as on it)."""
    if op == ">=":
        return values >= threshold - _TOL
    if op == ">":
        return values > threshold + _TOL
    if op == "<=":
        return values <= threshold + _TOL
    if op == "<":
        return values < threshold - _TOL
    return np.abs(values - threshold) <= _TOL  # "=="


def _region(setting: HoldoutSetting, sizes: tuple[int, ...]) -> np.ndarray:
    """The region's membership over the grid, shape `sizes`."""
    names = setting.factor_names
    mask = np.ones(sizes, dtype=bool)
    for factor, op, threshold in setting.conditions:
        k = names.index(factor)
        hit = _hit(np.arange(sizes[k]) / max(sizes[k] - 1, 1), op, threshold)
        shape = [1] * len(sizes)
        shape[k] = sizes[k]
        mask &= hit.reshape(shape)
    return mask


def _holes(fraction: float, n: int) -> np.ndarray:
    """The mask of int(n * fraction) combinations out of n, the same for every setting of this size."""
    u = np.random.default_rng(HOLE_SEED).random(n)
    mask = np.zeros(n, dtype=bool)
    mask[np.argsort(u, kind="stable")[: int(n * fraction)]] = True
    return mask


@functools.lru_cache(maxsize=8)
def heldout_mask(name: str, sizes: tuple[int, ...]) -> np.ndarray:
    """Whether each combination (flat row-major index, as GroundTruthDataset.index_of) is held out;
    read-only. One-line errors when the grid is too large or the setting holds out none or all."""
    setting = SETTINGS[name]
    n = int(np.prod(np.asarray(sizes, dtype=np.float64)))
    if n > MAX_COMBINATIONS:
        raise BenchError(
            f"holdout setting {name!r}: a grid of {n:,} combinations is too large (at most {MAX_COMBINATIONS:,})"
        )
    mask = _holes(setting.fraction, n) if setting.kind == "holes" else _region(setting, sizes).ravel()
    held = int(mask.sum())
    if held == 0 or held == n:
        what = "no" if held == 0 else "every"
        raise BenchError(
            f"holdout setting {name!r} holds out {what} combination of the grid {list(sizes)}; "
            "it needs both seen and held-out combinations"
        )
    mask.setflags(write=False)
    return mask


@functools.lru_cache(maxsize=16)
def members(name: str, sizes: tuple[int, ...], part: str) -> np.ndarray:
    """The sorted flat indices of the part's combinations ("seen" or "heldout"); read-only."""
    mask = heldout_mask(name, sizes)
    out = np.flatnonzero(mask if part == "heldout" else ~mask)
    out.setflags(write=False)
    return out


def heldout_fraction(name: str, sizes: tuple[int, ...]) -> float:
    """The fraction of the grid's combinations the setting holds out."""
    return float(heldout_mask(name, sizes).mean())


def sample_part(
    dataset: GroundTruthDataset, n: int, setting: str | HoldoutSetting, part: str, rng: np.random.Generator
) -> np.ndarray:
    """n factor vectors (int64, (n, K)) drawn uniformly over the part's combinations, each draw one
    index from `rng` (same seed, same factors)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError("sample_part needs an explicit numpy Generator (np.random.default_rng(seed))")
    if part not in PARTS:
        raise BenchError(f"unknown part {part!r}; choose {' or '.join(PARTS)}")
    setting = get(setting if isinstance(setting, str) else setting.name, dataset)
    sizes = tuple(int(s) for s in dataset.factor_sizes)
    pool = members(setting.name, sizes, part)
    flat = pool[rng.integers(0, len(pool), size=int(n))]
    return np.stack(np.unravel_index(flat, sizes), axis=1).astype(np.int64)


class HoldoutDataset(ResampledDataset):
    """A dataset whose `sample_factors` draws only its seen (training) or only its held-out
    combinations; observations and everything else are the wrapped dataset's own. The seen part
    reports an incomplete grid: methods that build pairs through the grid refuse it."""

    describe_key = "holdout"

    def __init__(self, base: GroundTruthDataset, setting: str, part: str = "seen"):
        self.setting = get(setting, base)
        if part not in PARTS:
            raise BenchError(f"unknown part {part!r}; choose {' or '.join(PARTS)}")
        self.part = part
        super().__init__(base, complete_grid=False)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return sample_part(self.base, n, self.setting, self.part, rng)


def seen_part(dataset: GroundTruthDataset, setting: str) -> GroundTruthDataset:
    """`dataset` itself for "none", else the dataset drawing only the combinations `setting` keeps."""
    return dataset if setting == NONE else HoldoutDataset(dataset, setting, "seen")


def heldout_part(dataset: GroundTruthDataset, setting: str) -> HoldoutDataset:
    """The dataset drawing only the combinations `setting` holds out."""
    return HoldoutDataset(dataset, setting, "heldout")
