"""Correlated training data: the named correlation settings of the HFS study (Roth et al., ICLR 2023)
and a sampler that draws factor indices from them.

A setting correlates pairs of factors. On factor values normalised to [0, 1] (class index k of a
factor with K classes is k / (K - 1); every factor of these datasets is evenly spaced, so this is
the min-max scaling of its values), a pair (c_i, c_j) at strength sigma weighs a factor combination
by exp(-(c_i - c_j)^2 / (2 sigma^2)); a combination's probability is proportional to the product of
the weights of every correlated pair. Smaller sigma: a tighter correlation. Factors in no pair stay
uniform and independent of the rest. A confounder correlates one factor with every other factor of
the dataset at the same sigma.

Names: `<family>_<kind>_<n>_<strength>`, kind single, double, triple or conf, strength 04, 02, 01 or
004 (sigma 0.4, 0.2, 0.1, 0.04). The pairs of each `<kind>_<n>` are the reference's (in our factor
names); every structure is offered at all four strengths, so the names the reference defines mean
the same here. A setting applies to every dataset with its family's factor names (dsprites settings
to color_dsprites too). "none" is the uncorrelated default. docs/correlated.md has the table.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from disentbench.datasets.base import GroundTruthDataset
from disentbench.datasets.cars3d import FACTOR_NAMES as CARS3D_FACTORS
from disentbench.datasets.dsprites import FACTOR_NAMES as DSPRITES_FACTORS
from disentbench.datasets.mpi3d import FACTOR_NAMES as MPI3D_FACTORS
from disentbench.datasets.resampled import ResampledDataset, lookup
from disentbench.datasets.shapes3d import FACTOR_NAMES as SHAPES3D_FACTORS

NONE = "none"
#: name token -> sigma
STRENGTHS = {"04": 0.4, "02": 0.2, "01": 0.1, "004": 0.04}

# structure -> correlated pairs, or the confounding factor (a str); our factor names
_DSPRITES = {
    "single_1": (("shape", "scale"),),
    "single_2": (("posX", "posY"),),
    "single_3": (("shape", "posY"),),
    "double_1": (("shape", "posX"), ("scale", "posY")),
    "double_2": (("shape", "scale"), ("posX", "posY")),
    "conf_1": "shape",
    "conf_2": "posX",
}
_SHAPES3D = {
    "single_1": (("floor_hue", "wall_hue"),),
    "single_2": (("shape", "scale"),),
    "single_3": (("shape", "wall_hue"),),
    "single_4": (("shape", "object_hue"),),
    "double_1": (("scale", "floor_hue"), ("shape", "wall_hue")),
    "double_2": (("scale", "shape"), ("floor_hue", "wall_hue")),
    "double_3": (("shape", "object_hue"), ("shape", "scale")),
    "triple_1": (("scale", "orientation"), ("shape", "wall_hue"), ("object_hue", "floor_hue")),
    "triple_2": (("object_hue", "orientation"), ("shape", "scale"), ("floor_hue", "wall_hue")),
    "conf_1": "shape",
    "conf_2": "wall_hue",
}
_MPI3D = {
    "single_1": (("camera_height", "background_color"),),
    "single_2": (("object_color", "object_size"),),
    "single_3": (("horizontal_axis", "vertical_axis"),),
    "double_1": (("object_color", "object_shape"), ("horizontal_axis", "vertical_axis")),
    "double_2": (("object_color", "horizontal_axis"), ("object_shape", "vertical_axis")),
    "triple_1": (
        ("object_color", "background_color"), ("camera_height", "horizontal_axis"), ("object_shape", "vertical_axis"),
    ),
    "triple_2": (
        ("object_color", "object_shape"), ("horizontal_axis", "vertical_axis"), ("background_color", "camera_height"),
    ),
    "conf_1": "object_shape",
    "conf_2": "horizontal_axis",
}  # fmt: skip
_CARS3D = {
    "single_1": (("elevation", "azimuth"),),
    "single_2": (("elevation", "object_type"),),
    "single_3": (("azimuth", "object_type"),),
    "conf_1": "elevation",
    "conf_2": "azimuth",
    "conf_3": "object_type",
}
#: family -> (its factor names, its structures)
FAMILIES: dict[str, tuple[tuple[str, ...], dict]] = {
    "dsprites": (DSPRITES_FACTORS, _DSPRITES),
    "shapes3d": (SHAPES3D_FACTORS, _SHAPES3D),
    "mpi3d": (MPI3D_FACTORS, _MPI3D),
    "cars3d": (CARS3D_FACTORS, _CARS3D),
}


@dataclass(frozen=True)
class CorrelationSetting:
    """A named setting: its family (the datasets it applies to) and its pairs (factor, factor, sigma)."""

    name: str
    family: str
    pairs: tuple[tuple[str, str, float], ...]

    @property
    def factor_names(self) -> tuple[str, ...]:
        return FAMILIES[self.family][0]

    def applies_to(self, dataset: GroundTruthDataset) -> bool:
        return tuple(dataset.factor_names) == self.factor_names


def _build() -> dict[str, CorrelationSetting]:
    out = {}
    for family, (factors, structures) in FAMILIES.items():
        for structure, pairs in structures.items():
            if isinstance(pairs, str):  # a confounder: that factor with every other one
                pairs = tuple((pairs, other) for other in factors if other != pairs)
            for token, sigma in STRENGTHS.items():
                name = f"{family}_{structure}_{token}"
                out[name] = CorrelationSetting(name, family, tuple((a, b, sigma) for a, b in pairs))
    return out


SETTINGS: dict[str, CorrelationSetting] = _build()


def list_settings(dataset: GroundTruthDataset | None = None) -> list[str]:
    """Every setting name (those that apply to `dataset` when given), sorted."""
    return sorted(n for n, s in SETTINGS.items() if dataset is None or s.applies_to(dataset))


def get(name: str, dataset: GroundTruthDataset | None = None) -> CorrelationSetting:
    """The setting called `name`; one-line errors for an unknown name or one for another dataset."""
    return lookup("correlation", name, SETTINGS, dataset)


def _components(setting: CorrelationSetting, names: tuple[str, ...]) -> list[list[int]]:
    """The factor indices of each connected group of correlated factors, each sorted."""
    group = {names.index(f): {names.index(f)} for a, b, _ in setting.pairs for f in (a, b)}
    for a, b, _ in setting.pairs:
        merged = group[names.index(a)] | group[names.index(b)]
        for k in merged:
            group[k] = merged
    return sorted({tuple(sorted(g)) for g in group.values()}, key=lambda g: g[0])


@functools.lru_cache(maxsize=16)
def _tables(name: str, sizes: tuple[int, ...]) -> tuple[tuple[tuple[int, ...], np.ndarray], ...]:
    """Per group of correlated factors: its factor indices and the cumulative distribution of its
    joint (row-major over the group's classes)."""
    setting = SETTINGS[name]
    names = setting.factor_names
    out = []
    for comp in _components(setting, names):
        shape = tuple(sizes[k] for k in comp)
        values = [np.arange(s) / max(s - 1, 1) for s in shape]  # class index -> [0, 1]
        grid = np.meshgrid(*values, indexing="ij", sparse=True)
        log_w = np.zeros(shape)
        for a, b, sigma in setting.pairs:
            i, j = names.index(a), names.index(b)
            if i in comp:
                log_w = log_w - (grid[comp.index(i)] - grid[comp.index(j)]) ** 2 / (2 * sigma**2)
        cdf = np.cumsum(np.exp(log_w - log_w.max()).ravel())
        out.append((tuple(comp), cdf / cdf[-1]))
    return tuple(out)


def sample_correlated(
    dataset: GroundTruthDataset, n: int, setting: str | CorrelationSetting, rng: np.random.Generator
) -> np.ndarray:
    """n factor vectors (int64, (n, K)) from the correlated distribution of `setting`: the dataset's
    own uniform draw, then each group of correlated factors redrawn from its joint. Every draw comes
    from `rng`, so the same seed draws the same factors."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError("sample_correlated needs an explicit numpy Generator (np.random.default_rng(seed))")
    setting = get(setting if isinstance(setting, str) else setting.name, dataset)
    factors = dataset.sample_factors(int(n), rng)
    sizes = tuple(int(s) for s in dataset.factor_sizes)
    for comp, cdf in _tables(setting.name, sizes):
        flat = np.minimum(np.searchsorted(cdf, rng.random(int(n)), side="right"), len(cdf) - 1)
        factors[:, list(comp)] = np.stack(np.unravel_index(flat, [sizes[k] for k in comp]), axis=1)
    return factors


class CorrelatedDataset(ResampledDataset):
    """A dataset whose `sample_factors` draws from a correlation setting; its observations, grid and
    everything else are the wrapped dataset's own. Training gets this; metrics get the plain one."""

    describe_key = "correlation"

    def __init__(self, base: GroundTruthDataset, setting: str):
        self.setting = get(setting, base)
        super().__init__(base, base.complete_grid)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return sample_correlated(self.base, n, self.setting, rng)


def correlated(dataset: GroundTruthDataset, setting: str) -> GroundTruthDataset:
    """`dataset` itself for "none", else the dataset drawing its factors from `setting`."""
    return dataset if setting == NONE else CorrelatedDataset(dataset, setting)
