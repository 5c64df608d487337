"""Encoders for `score` tests, of the images of the `pixelcode` dataset (tests/plugins/pixelcode.py).

Given as `--encoder tests/plugins/score_encoders.py:NAME` or `tests.plugins.score_encoders:NAME`;
`truth` reads the factors back from the pixels (MIG and DCI near 1), `noise` ignores the image (near
0), the others are bad on purpose. No registration here: the same file can be imported twice.
"""

import torch

SIZES = (4, 5, 6)  # pixelcode's factor sizes


def truth(x):
    """The factors, read back from the pixels."""
    return x[:, 0, 0, : len(SIZES)] * (torch.tensor(SIZES, dtype=x.dtype, device=x.device) - 1)


_NOISE = torch.Generator().manual_seed(0)


def noise(x):
    """Codes independent of the image."""
    return torch.randn(len(x), len(SIZES), generator=_NOISE).to(x.device)


def numpy_truth(x):
    """`truth` as a numpy array (accepted like a tensor)."""
    return truth(x).cpu().numpy()


def raises(x):
    raise ValueError("this encoder is broken")


def three_d(x):
    return x[:, 0, :2, :3]


def wrong_batch(x):
    return truth(x)[:1]


def non_finite(x):
    codes = truth(x)
    codes[0, 0] = float("nan")
    return codes


NOT_CALLABLE = 3
