"""What the loaders of Cars3D and SmallNORB share: the reference's resizing to 64x64 and the identity
of a set of source files (their checksums, recorded on first use, and the preprocessed cache key)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from disentbench.datasets.files import RemoteFile, verify_file

#: bump when the preprocessing changes, so cached preprocessed images are rebuilt
PREPROCESS_VERSION = 1
SIZE = 64


def resize_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (64, 64, 3) uint8 with Pillow's Lanczos filter. The reference calls
    `thumbnail((64, 64), ANTIALIAS)` on square images, which for a 2x reduction is this resize."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(image), "RGB").resize((SIZE, SIZE), _lanczos()))


def resize_gray_integer(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 -> (64, 64) uint8 as the reference resizes SmallNORB: it hands Pillow the pixels
    as int8, which Pillow reads back as 0..255 into a 32-bit integer image and resamples (Lanczos)
    without clipping; the few values that overshoot [0, 255] at sharp edges are clipped here."""
    from PIL import Image

    out = np.asarray(Image.fromarray(image.astype(np.int32)).resize((SIZE, SIZE), _lanczos()))
    return np.clip(out, 0, 255).astype(np.uint8)


def _lanczos():
    from PIL import Image

    return getattr(Image, "Resampling", Image).LANCZOS  # Pillow >= 9.1 names it Image.Resampling.LANCZOS


def source_identity(files: list[tuple[Path, RemoteFile]], verify: bool) -> tuple[str | None, str]:
    """(checksum, cache key) of a set of source files. With `verify`, every file is checked (a
    published checksum) or compared with the one recorded on its first use, and the checksum is a
    sha256 over their names and digests; without, only names, sizes and mtimes key the cache."""
    from PIL import __version__ as pillow

    lines, ids = [], [f"v{PREPROCESS_VERSION}", f"pillow{pillow}"]
    for path, remote in files:
        if verify:
            digest = verify_file(path, remote)
            lines.append(f"{path.name} {remote.algorithm}:{digest}")
            ids.append(lines[-1])
        else:
            stat = path.stat()
            ids.append(f"{path.name} {stat.st_size} {stat.st_mtime_ns}")
    checksum = "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest() if verify else None
    return checksum, hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
