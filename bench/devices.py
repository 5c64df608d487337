"""Turn a --device string into a torch.device, or a one-line error."""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from disentbench.errors import BenchError

CHOICES = "auto, cpu, cuda, cuda:N, mps"


def resolve_device(spec: str = "auto") -> torch.device:
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if m:
        if not torch.cuda.is_available():
            raise BenchError(f"--device {spec}: CUDA is not available on this machine; use --device cpu or auto")
        index = int(m.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise BenchError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here (cuda:0..)")
        return torch.device("cuda", index)
    if spec == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise BenchError("--device mps: Apple MPS is not available on this machine; use --device cpu or auto")
        return torch.device("mps")
    raise BenchError(f"unknown device {spec!r}; choose one of {CHOICES}")


def resolve_precision(setting: str, device: torch.device | str | Sequence[torch.device | str]) -> str:
    """The precision cells train in: `setting` itself, or for "auto" bf16 where the device has fast
    bf16 units (AMX, a CUDA GPU with bf16) and fp32 elsewhere. Given the run's devices, "auto" is
    bf16 only when every one of them has such units: a run trains in one precision, and a cell
    placed on a slow-bf16 device must not pay for the others. The resolved one is what a cell's
    identity and every row record, so an auto run's cells are those of an explicit run."""
    from disentbench.bench.perf.host import fast_bf16
    from disentbench.choices import PRECISION_SETTINGS, or_list

    if setting not in PRECISION_SETTINGS:
        raise BenchError(f"unknown precision {setting!r}; choose {or_list(PRECISION_SETTINGS)}")
    if setting != "auto":
        return setting
    every = [device] if isinstance(device, (str, torch.device)) else list(device)
    return "bf16" if every and all(fast_bf16(d) for d in every) else "fp32"


def check_bf16(device: torch.device | str) -> None:
    """A one-line BenchError when `device` cannot train in bf16 (a GPU without bf16, or a backend whose
    autocast refuses it), found by running one small convolution under bf16 autocast there."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise BenchError(
            f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16 support; use --precision fp32"
        )
    try:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            x = torch.ones(1, 1, 8, 8, device=device)
            torch.nn.functional.conv2d(x, torch.ones(1, 1, 3, 3, device=device)).sum().item()
    except (RuntimeError, TypeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise BenchError(
            f"--precision bf16: {device} cannot run bf16 autocast ({first}); use --precision fp32"
        ) from None
