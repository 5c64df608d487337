"""A dataset that draws its factor combinations its own way and is the wrapped dataset in every other
respect: the training view of a correlation setting (datasets/correlation.py) or of a held-out
setting (datasets/holdout.py). The metrics get the plain dataset (or another view), never this one
by accident: the wrapper is made where a cell's training data is chosen."""

from __future__ import annotations

from typing import ClassVar

from disentbench.datasets.base import GroundTruthDataset


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
