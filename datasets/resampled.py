"""A dataset that draws its factor combinations its own way and is the wrapped dataset in every other
respect: the training view of a correlation setting (datasets/correlation.py) or of a held-out
setting (datasets/holdout.py). The metrics get the plain dataset (or another view), never this one
by accident: the wrapper is made where a cell's training data is chosen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol, TypeVar

from disentbench.datasets.base import GroundTruthDataset
from disentbench.errors import BenchError


class NamedSetting(Protocol):
    name: str
    family: str

    def applies_to(self, dataset: GroundTruthDataset) -> bool: ...


S = TypeVar("S", bound=NamedSetting)


def lookup(kind: str, name: str, settings: Mapping[str, S], dataset: GroundTruthDataset | None = None) -> S:
    """The setting called `name` among `settings` (a correlation or a holdout setting: `kind`), one
    line for an unknown name (listing the settings of the family its prefix names, else all) and one
    for a setting of another family than `dataset`'s (listing the ones it takes)."""
    setting = settings.get(name)
    if setting is None:
        families = dict.fromkeys(s.family for s in settings.values())  # in the order the settings were built
        family = next((f for f in families if name.startswith(f"{f}_")), None)
        valid = sorted(n for n, s in settings.items() if family is None or s.family == family)
        where = f"{family} settings" if family else "settings"
        raise BenchError(f"unknown {kind} setting {name!r}; {where}: {', '.join(valid)} (or none)")
    if dataset is not None and not setting.applies_to(dataset):
        mine = sorted(n for n, s in settings.items() if s.applies_to(dataset))
        raise BenchError(
            f"{kind} setting {name!r} is for {setting.family}, not dataset {dataset.name}; "
            + (f"{dataset.name} takes: {', '.join(mine)} (or none)" if mine else f"{dataset.name} takes only none")
        )
    return setting


class ResampledDataset(GroundTruthDataset):
    """Subclasses set `setting` (with a `name`) and override `sample_factors`; observations, sizes,
    names, device moves and every other attribute are the wrapped dataset's own."""

    #: the key `describe()` adds, naming the setting (a cell's config records it)
    describe_key: ClassVar[str] = "resampled"

    def __init__(self, base: GroundTruthDataset, complete_grid: bool):
        self.base = base
        super().__init__(base.device)
        self.name = base.name
        self.factor_names = base.factor_names
        self.factor_sizes = base.factor_sizes
        self.observation_shape = base.observation_shape
        self.source = base.source
        self.complete_grid = complete_grid
        self.image_per_factors = base.image_per_factors  # the base draws the images

    def observations(self, factors, *args, **kwargs):
        return self.base.observations(factors, *args, **kwargs)

    def to(self, device) -> ResampledDataset:
        super().to(device)
        self.base.to(device)
        return self

    def describe(self) -> dict:
        return {**self.base.describe(), self.describe_key: self.setting.name}

    def __getattr__(self, attr: str):
        if attr == "base":  # not set yet (unpickling): no recursion
            raise AttributeError(attr)
        return getattr(self.base, attr)
