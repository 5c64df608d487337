"""Command-line flags that several of the bench's commands take, declared once.

`run_benchmark.py` (bench/cli.py) and `python -m disentbench.bench.perf train` both take
`--compile [MODE]`; `add_compile_argument` is its one declaration, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from disentbench.choices import COMPILE_MODES, or_list


def comma_list(choices: tuple[str, ...]) -> str:
    """'one of a, b, c': how a long choice list is named in an error."""
    return "one of " + ", ".join(choices)


def one_of(choices: tuple[str, ...], listed: Callable[[tuple[str, ...]], str] = or_list):
    """An argparse `type` refusing a value outside `choices` with a message naming them (argparse's
    own wording differs between Python versions); a parser whose `error` raises BenchError makes
    it one line."""

    def check(value: str) -> str:
        if value not in choices:
            raise argparse.ArgumentTypeError(f"unknown value {value!r}; choose {listed(choices)}")
        return value

    return check


def add_compile_argument(parser: argparse.ArgumentParser) -> None:
    """`--compile` (torch.compile, mode "default") or `--compile MODE` (one of COMPILE_MODES)."""
    parser.add_argument(
        "--compile",
        nargs="?",
        const="default",
        default=False,
        choices=COMPILE_MODES,
        metavar="MODE",
        type=one_of(COMPILE_MODES, comma_list),
        help="torch.compile the networks (falls back with a warning); MODE: "
        + ", ".join(COMPILE_MODES)
        + " (reduce-overhead records CUDA graphs on a GPU)",
    )
