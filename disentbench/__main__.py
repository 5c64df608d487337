"""`python -m disentbench ...` is `run_benchmark.py ...` (and the `disentbench` console script)."""

import sys

from disentbench.bench.cli import main

sys.exit(main())
