"""Every fixed choice list of the benchmark, defined once.

The CLI's argparse `choices=`, the error messages, the library's checks and the perf script all
read these tuples, so a new choice is added in one place. No imports: the dataset and config
modules can use it without loading torch.
"""

from __future__ import annotations

from collections.abc import Iterable

#: training arithmetic: "bf16" autocasts on the device (part of a cell's identity)
PRECISIONS = ("fp32", "bf16")
#: what --precision and a profile's `precision` key accept: a cell's precision, or "auto" (bf16 where
#: the device has fast bf16 units, AMX on a CPU or a CUDA GPU with bf16, else fp32), resolved per run
PRECISION_SETTINGS = (*PRECISIONS, "auto")
#: where a dataset comes from: the official file if found, the official file, or the procedural stand-in
SOURCES = ("auto", "official", "procedural")
#: torch.compile modes; "reduce-overhead" records CUDA graphs of the compiled networks on CUDA
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: where cells run: local processes, a Dask scheduler, or a Dask cluster started on this machine
BACKENDS = ("local", "dask", "dask-local")
#: what the metrics score: the encoder mean (the reference's default) or one posterior sample per image
REPRESENTATIONS = ("mean", "sampled")
#: hyperparameter grids: "reference" expands each method over its declared reference grid
GRIDS = ("reference", "none")
#: prefixes of a cell's extra score sets, each before an ordinary metric key: the held-out
#: combinations of a held-out cell, the correlated training distribution of a correlated one
SCORE_SET_PREFIXES = ("heldout_", "correlated_")


def or_list(values: Iterable[str]) -> str:
    """'a, b or c': how one-line errors name the valid choices."""
    values = list(values)
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"
