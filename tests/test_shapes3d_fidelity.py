"""The procedural 3DShapes renderer against the 52 real frames of tests/data/ (see tests/data/README.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disentbench.datasets.shapes3d import Shapes3DProcedural

REFERENCE = Path(__file__).resolve().parent / "data" / "shapes3d_reference_frames.npz"
SKY = np.array([153, 226, 249])


def segment(img: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """0 sky, 1 floor (shadow included), 2 wall, 3 object: the nearest of the three label hues."""
    sky = np.abs(img.astype(int) - SKY).max(-1) <= 6
    x = img / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mx, mn = x.max(-1), x.min(-1)
    d = np.maximum(mx - mn, 1e-6)
    hue = np.where(mx == r, ((g - b) / d) % 6, np.where(mx == g, (b - r) / d + 2, (r - g) / d + 4)) / 6
    dist = [np.minimum(np.abs(hue - h / 10), 1 - np.abs(hue - h / 10)) for h in classes[:3]]
    return np.where(sky, 0, np.argmin(np.stack(dist, -1), -1) + 1)


def scores(render: np.ndarray, real: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mae = np.abs(render.astype(float) - real.astype(float)).mean(axis=(1, 2, 3))
    agree = np.array([(segment(a, c) == segment(b, c)).mean() for a, b, c in zip(render, real, classes)])
    return mae, agree


def test_procedural_matches_real_frames():
    ref = np.load(REFERENCE)
    # leave out the 6 frames where two of the floor/wall/object hues coincide (the segmentation
    # cannot tell those surfaces apart): GIF frames 27, 31, 37, 41, 43 and 48
    keep = [i for i, c in enumerate(ref["classes"]) if len(set(c[:3].tolist())) == 3]
    assert len(keep) == 46
    classes, real = ref["classes"][keep], ref["imgs"][keep]
    ds = Shapes3DProcedural()
    out = (ds.observations(classes).numpy().transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)
    mae, agree = scores(out, real, classes)
    print(
        f"shapes3d procedural: colour MAE mean {mae.mean():.2f} max {mae.max():.2f}; "
        f"segmentation agreement mean {agree.mean():.4f} min {agree.min():.4f}"
    )
    # the reference's own noise is about 1 grey level; these bounds leave room but catch geometry errors
    assert mae.mean() < 12 and mae.max() < 22
    assert agree.mean() > 0.97 and agree.min() > 0.95
    # controls: the same checks fail for a wrong camera (mirrored azimuth) and for a scene shifted 3 px
    wrong = classes.copy()
    wrong[:, 5] = 14 - wrong[:, 5]
    wrong[:, 3] = 7 - wrong[:, 3]
    bad = (ds.observations(wrong).numpy().transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)
    mae_bad, agree_bad = scores(bad, real, classes)
    assert mae_bad.mean() >= 12 or agree_bad.mean() <= 0.97
    mae_s, agree_s = scores(np.roll(out, 3, axis=2), real, classes)
    assert mae_s.mean() >= 12 or agree_s.mean() <= 0.97
