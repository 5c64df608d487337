"""Benchmark scripts that print measured figures (never timed assertions in tests).

`python -m disentbench.bench.perf SUBCOMMAND [...]`: each subcommand is a module `bench.perf.<name>` with a
`main(argv)` function. The last line each prints is one JSON object with its figures.
"""

SUBCOMMANDS = ("metrics", "data", "train")
