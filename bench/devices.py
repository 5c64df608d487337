"""Turn a --device string into a torch.device, or a one-line error."""

from __future__ import annotations

import re

import torch

from disentbench.bench.errors import BenchError

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
