"""A dataset whose images carry their factors in pixels, for `score` tests.

Loaded with `--plugin tests/plugins/pixelcode.py` (it registers the dataset `pixelcode`). Image
(1, 64, 64): pixel (0, k) of the first row is factor k / (size_k - 1), every other pixel 0, so an
encoder can read the factors back exactly (tests/plugins/score_encoders.py).
"""

import numpy as np
import torch

from disentbench import datasets
from disentbench.datasets.base import GroundTruthDataset

SIZES = (4, 5, 6)


class PixelCode(GroundTruthDataset):
    name = "pixelcode"
    factor_names = ("a", "b", "c")
    factor_sizes = SIZES
    observation_shape = (1, 64, 64)

    def observations(self, factors: np.ndarray) -> torch.Tensor:
        f = self._check_factors(factors)
        images = torch.zeros(len(f), *self.observation_shape)
        images[:, 0, 0, : len(SIZES)] = torch.from_numpy(f / (np.asarray(SIZES) - 1)).float()
        return images.to(self.device)


@datasets.register("pixelcode")
def make_pixelcode(source="auto", data_dir=None, verify=True, device="cpu"):
    return PixelCode(device)
