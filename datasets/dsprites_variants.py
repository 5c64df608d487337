"""The reference library's dSprites variants: color, noisy and scream dSprites.

Each is built on our dSprites (the official file or the procedural stand-in, whichever `source`
picks) and has the same five factors. What it adds is a nuisance drawn afresh for every
observation, not a factor: a colour for the sprite, a noise background, or a patch of Munch's
The Scream. The draws come from the `rng` passed to `observations`; without one, from a generator
seeded by the dataset's seed and the requested factors (`base.observation_generator`). The
distributions are the reference's; the random streams are not (numpy Generator, vectorised).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from disentbench.datasets.base import GroundTruthDataset, observation_generator
from disentbench.datasets.dsprites import FACTOR_NAMES, make_dsprites
from disentbench.datasets.files import RemoteFile, find_file, not_found, verify_file
from disentbench.errors import BenchError

SCREAM = RemoteFile(
    dataset="scream",
    filename="scream.jpg",
    url="https://upload.wikimedia.org/wikipedia/commons/f/f4/The_Scream.jpg",
    algorithm="sha256",
    digest=None,  # none published: the first use records it
    subdir="scream",
)
#: the reference shrinks the painting to fit in this box (width, height) before cropping 64x64 patches
SCREAM_BOX = (350, 274)
PATCH = 64


class DSpritesVariant(GroundTruthDataset):
    """dSprites with a per-observation nuisance; subclasses implement `_decorate(mask, rng)`."""

    factor_names = FACTOR_NAMES
    observation_shape = (3, 64, 64)

    def __init__(self, base: GroundTruthDataset, seed: int = 0):
        super().__init__(base.device)
        self.base = base
        self.factor_sizes = base.factor_sizes
        self.source = base.source
        self.seed = int(seed)

    def to(self, device: str | torch.device) -> DSpritesVariant:
        super().to(device)
        self.base.to(device)
        return self

    def observations(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        """RGB images (n, 3, 64, 64) in [0, 1]; the nuisance drawn from `rng` (see the module doc)."""
        f = self._check_factors(factors)
        if rng is None:
            rng = observation_generator(self.seed, f)
        elif not isinstance(rng, np.random.Generator):
            raise TypeError("observations needs an explicit numpy Generator (np.random.default_rng(seed)) or None")
        return self._decorate(self.base.observations(f), rng)

    def _decorate(self, mask: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        raise NotImplementedError

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)

    def describe(self) -> dict:
        return {**self.base.describe(), "dataset": self.name, "nuisance_seed": self.seed}


class ColorDSprites(DSpritesVariant):
    """The sprite in a random colour: each RGB channel U(0.5, 1) per image; black background."""

    name = "color_dsprites"

    def _decorate(self, mask: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        colour = self._tensor(rng.uniform(0.5, 1.0, size=(mask.shape[0], 3, 1, 1)))
        return mask * colour


class NoisyDSprites(DSpritesVariant):
    """A white sprite on noise: the background is U(0, 1) per pixel and channel (sprite pixels: 1)."""

    name = "noisy_dsprites"

    def _decorate(self, mask: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        noise = self._tensor(rng.uniform(0.0, 1.0, size=(mask.shape[0], 3, *mask.shape[2:])))
        return torch.clamp(mask + noise, max=1.0)


def load_scream(path: str | os.PathLike) -> np.ndarray:
    """The painting as the reference prepares it: RGB, shrunk to fit in SCREAM_BOX keeping its aspect
    (PIL's thumbnail), scaled to [0, 1]: float32 (H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail(SCREAM_BOX)
            array = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BenchError(f"{path}: not a readable image ({type(exc).__name__}: {exc}); {SCREAM.how_to_get()}") from None
    if array.shape[0] <= PATCH or array.shape[1] <= PATCH:
        raise BenchError(
            f"{path}: {array.shape[1]}x{array.shape[0]} pixels after fitting it in {SCREAM_BOX[0]}x{SCREAM_BOX[1]}; "
            f"the 64x64 patches need more than 64 in both directions ({SCREAM.how_to_get()})"
        )
    return array


class ScreamDSprites(DSpritesVariant):
    """A random 64x64 patch of The Scream, averaged with a random colour (U(0, 1) per channel) as the
    background; the sprite's pixels invert it (1 - background)."""

    name = "scream_dsprites"

    def __init__(self, base: GroundTruthDataset, scream_path: str | os.PathLike, verify: bool = True, seed: int = 0):
        super().__init__(base, seed)
        self.scream_path = str(scream_path)
        self.scream_checksum = f"{SCREAM.algorithm}:{verify_file(scream_path, SCREAM)}" if verify else None
        self._scream_cpu = torch.from_numpy(load_scream(scream_path))
        self._scream = self._scream_cpu.to(self.device)

    def to(self, device: str | torch.device) -> ScreamDSprites:
        super().to(device)
        self._scream = self._scream_cpu.to(self.device)
        return self

    def _decorate(self, mask: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        n = mask.shape[0]
        height, width = self._scream.shape[:2]
        # the reference's randint(0, H - 64): the top-left corner never takes its last possible value
        top = rng.integers(0, height - PATCH, size=n)
        left = rng.integers(0, width - PATCH, size=n)
        shade = self._tensor(rng.uniform(0.0, 1.0, size=(n, 1, 1, 3)))
        offsets = torch.arange(PATCH, device=self.device)
        rows = torch.from_numpy(top).to(self.device)[:, None] + offsets  # (n, 64)
        cols = torch.from_numpy(left).to(self.device)[:, None] + offsets
        patch = self._scream[rows[:, :, None], cols[:, None, :]]  # (n, 64, 64, 3)
        background = ((patch + shade) / 2).permute(0, 3, 1, 2)
        return torch.where(mask > 0.5, 1.0 - background, background)

    def describe(self) -> dict:
        out = {**super().describe(), "scream_file": self.scream_path}
        if self.scream_checksum:
            out["scream_checksum"] = self.scream_checksum
        return out


def make_color_dsprites(source: str = "auto", data_dir=None, verify: bool = True, device="cpu") -> ColorDSprites:
    return ColorDSprites(make_dsprites(source, data_dir, verify, device))


def make_noisy_dsprites(source: str = "auto", data_dir=None, verify: bool = True, device="cpu") -> NoisyDSprites:
    return NoisyDSprites(make_dsprites(source, data_dir, verify, device))


def make_scream_dsprites(source: str = "auto", data_dir=None, verify: bool = True, device="cpu") -> ScreamDSprites:
    """Needs The Scream whatever the dSprites source: a one-line error names the file when it is missing."""
    path = find_file(SCREAM.filename, data_dir, SCREAM.subdir)
    if path is None:
        raise not_found(SCREAM, data_dir, needed_by="scream_dsprites (The Scream)")
    return ScreamDSprites(make_dsprites(source, data_dir, verify, device), path, verify=verify)
