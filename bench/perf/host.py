"""What the host can do: its bf16 hardware, its measured matmul peak, and counted FLOPs.

- `bf16_capability(device)`: "amx" (Intel AMX tiles, amx_bf16), "avx512_bf16" (bf16 dot products in
  AVX-512, e.g. AMD Zen 4 or Intel Cooper Lake), "cuda_bf16" (a GPU with bf16 support) or "none";
  `fast_bf16(device)` is True only for "amx" and "cuda_bf16", where bf16 matmuls run at several times
  the fp32 rate (avx512_bf16 at best doubles it, and only inside the matmul kernels).
  `bf16_capability_from_flags(text)` is the parser, on the text of /proc/cpuinfo's flags.
- `matmul_peak_gflop_s(dtype, ...)`: the best of a few n x n matmuls after a warm-up, with the
  threads torch uses now: the host's practical peak for dense arithmetic of that precision
  (`matmul_peak` also returns the size used: smaller where n would take too long, e.g. bf16 on a
  CPU without bf16 units).
- `count_flops(fn)`: FLOPs that torch.utils.flop_counter.FlopCounterMode counts while fn runs. It
  counts matrix products and convolutions (forward and backward, by their shapes: 2 FLOPs per
  multiply-add), nothing else (no elementwise ops, reductions, optimiser updates); the same number
  whatever the precision or memory layout.
"""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

CAPABILITIES = ("amx", "avx512_bf16", "cuda_bf16", "none")
CPUINFO = Path("/proc/cpuinfo")


_FLAGS_LINE = re.compile(r"\s*flags\s*:(.*)", re.IGNORECASE)


def _flag_set(flags_text: str) -> set[str]:
    """Every flag named in the text: a whole /proc/cpuinfo (its `flags : ...` lines), lscpu's
    `Flags:` line, or a bare space-separated list."""
    lines = [m.group(1) for m in map(_FLAGS_LINE.match, flags_text.splitlines()) if m]
    return {flag for line in lines or [flags_text] for flag in line.split()}


def bf16_capability_from_flags(flags_text: str) -> str:
    """One of "amx", "avx512_bf16", "none" from CPU flags (the text of /proc/cpuinfo or its flags line):
    the vector units (`vector_units_from_flags`) where they have bf16 instructions."""
    units = vector_units_from_flags(flags_text)
    return units if units in ("amx", "avx512_bf16") else "none"


def vector_units_from_flags(flags_text: str) -> str:
    """The widest matrix or vector unit class the flags name: "amx", "avx512_bf16", "avx512",
    "avx2", else "" (e.g. not x86). Kernels of different classes round differently, so a model
    trained on one is close to, not equal to, the same run on another."""
    flags = _flag_set(flags_text)
    for unit, flag in (("amx", "amx_bf16"), ("avx512_bf16", "avx512_bf16"), ("avx512", "avx512f"), ("avx2", "avx2")):
        if flag in flags:
            return unit
    return ""


def host_label(device: torch.device | str = "cpu") -> str:
    """What trained: the GPU's name on CUDA, else the CPU model and its vector units, e.g.
    "AMD EPYC [avx2]" (result rows record it: bench.segments)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    units = vector_units_from_flags(cpu_flags_text()) or platform.machine()
    return f"{cpu_model()} [{units}]"


def cpu_flags_text() -> str:
    """The first `flags` line of /proc/cpuinfo ('' where there is none, e.g. not Linux)."""
    try:
        for line in CPUINFO.read_text(errors="replace").splitlines():
            if _FLAGS_LINE.match(line):
                return line
    except OSError:
        pass
    return ""


def cpu_model() -> str:
    """`model name` from /proc/cpuinfo, else what platform says."""
    try:
        for line in CPUINFO.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bf16_capability(device: torch.device | str = "cpu") -> str:
    """The host's (or GPU's) bf16 hardware: one of CAPABILITIES."""
    device = torch.device(device)
    if device.type == "cuda":
        return "cuda_bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "none"
    if device.type != "cpu":
        return "none"
    return bf16_capability_from_flags(cpu_flags_text())


def fast_bf16(device: torch.device | str = "cpu") -> bool:
    """True where bf16 is expected to beat fp32 clearly: AMX on a CPU, or a CUDA GPU with bf16."""
    return bf16_capability(device) in ("amx", "cuda_bf16")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


_PEAKS: dict[tuple, tuple[float, int]] = {}
#: the smallest product the peak is measured on when the requested one would overrun its time budget
MIN_PEAK_N = 128
#: seconds the warm-up and timed products of one precision may take, estimated from a MIN_PEAK_N
#: product before the big one runs: on a CPU without bf16 units a 2048 x 2048 bf16 product takes tens
#: of seconds (1.5 GFLOP/s against 40 in fp32, one thread of an AVX2-only EPYC), and seven of them
#: held the host line for minutes
PEAK_BUDGET_S = 10.0


def _time_matmul(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, device: torch.device) -> float:
    t0 = time.perf_counter()
    torch.matmul(a, b, out=out)
    _sync(device)
    return time.perf_counter() - t0


def _operands(n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.rand((n, n), generator=gen, device=device).to(dtype)
    b = torch.rand((n, n), generator=gen, device=device).to(dtype)
    return a, b, torch.empty((n, n), device=device, dtype=dtype)


def _affordable_n(n: int, runs: int, dtype: torch.dtype, device: torch.device, budget_s: float) -> int:
    """The largest of n, n/2, n/4, ... (at least MIN_PEAK_N) whose `runs` products are estimated, from
    a MIN_PEAK_N product and cubic scaling, to fit in budget_s seconds."""
    small = min(n, MIN_PEAK_N)
    ops = _operands(small, dtype, device)
    _time_matmul(*ops, device)  # the first call pays for kernel selection
    per_flop = _time_matmul(*ops, device) / small**3
    while n > MIN_PEAK_N and runs * per_flop * n**3 > budget_s:
        n //= 2
    return max(n, small)


def matmul_peak(
    dtype: torch.dtype = torch.float32,
    n: int = 2048,
    repeats: int = 5,
    device: torch.device | str = "cpu",
    warmup: int = 2,
    budget_s: float = PEAK_BUDGET_S,
) -> tuple[float, int]:
    """(best GFLOP/s, size used) of `repeats` timed n x n @ n x n matmuls (2 n^3 FLOPs each) after
    `warmup` untimed ones, with torch's current thread count. Where the products of size n would
    take longer than budget_s (a precision the host has no units for), a smaller size is used: see
    `_affordable_n`. Cached per (device, dtype, n, repeats, threads, budget) within the process."""
    device = torch.device(device)
    key = (str(device), dtype, n, repeats, torch.get_num_threads(), budget_s)
    if key not in _PEAKS:
        runs = max(warmup, 1) + max(repeats, 1)
        size = _affordable_n(n, runs, dtype, device, budget_s)
        ops = _operands(size, dtype, device)
        for _ in range(max(warmup, 1)):
            _time_matmul(*ops, device)
        best = min(_time_matmul(*ops, device) for _ in range(max(repeats, 1)))
        _PEAKS[key] = (2 * size**3 / best / 1e9, size)
    return _PEAKS[key]


def matmul_peak_gflop_s(dtype: torch.dtype = torch.float32, **options: Any) -> float:
    """Best GFLOP/s of `matmul_peak` (same options): the host's practical peak for dense arithmetic
    of that dtype."""
    return matmul_peak(dtype, **options)[0]


def host_figures(device: torch.device | str = "cpu", n: int = 2048, repeats: int = 5) -> dict:
    """The host line of the perf scripts: model, bf16 hardware and the measured fp32 / bf16 matmul
    peaks in GFLOP/s (`peak_gflop_s` empty where n <= 0: not measured; `matmul_n_used` the size each
    precision was measured at, smaller than n where n would overrun the time budget)."""
    device = torch.device(device)
    peaks, sizes = {}, {}
    if n > 0:
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            peaks[name], sizes[name] = matmul_peak(dtype, n, repeats, device)
    return {
        "cpu_model": cpu_model(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "bf16_capability": bf16_capability(device),
        "fast_bf16": fast_bf16(device),
        "cpu_has_amx_bf16": bf16_capability_from_flags(cpu_flags_text()) == "amx",
        "cpu_has_avx512_bf16": "avx512_bf16" in _flag_set(cpu_flags_text()),
        "matmul_n": n,
        "matmul_n_used": sizes,
        "matmul_repeats": repeats,
        "matmul_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "peak_gflop_s": peaks,
    }


class _GlobalOnly:
    """Stands in for FlopCounterMode's module tracker: every count goes to "Global". The tracker's
    module hooks break `torch.autograd.grad` on a leaf (DiD's gradient penalty), and the per-module
    breakdown is not needed here."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs counted by FlopCounterMode while fn() runs (matmuls and convolutions, forward and
    backward; see the module docstring)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    with counter:
        fn()
    return int(counter.get_total_flops())


def bf16_hint(device: torch.device | str = "cpu") -> str | None:
    """One line for an fp32 run on a host whose bf16 units are fast (AMX, or a GPU with bf16): the
    measured matmul peaks of both precisions and what to run; None elsewhere (no cost there)."""
    if not fast_bf16(device):
        return None
    fp32 = matmul_peak_gflop_s(torch.float32, n=1024, repeats=3, device=device)
    bf16 = matmul_peak_gflop_s(torch.bfloat16, n=1024, repeats=3, device=device)
    return (
        f"note: this host has fast bf16 units ({bf16_capability(device)}: matmul {bf16:.0f} GFLOP/s in bf16 "
        f"against {fp32:.0f} in fp32, x{bf16 / fp32:.1f}); this run trains in fp32. --precision auto (bf16 "
        f"here) --channels-last would train faster (measure: python -m disentbench.bench.perf train "
        f"--options-ab); bf16 trained the same models as fp32 within seed noise (docs/reference-length.md)"
    )
