#!/usr/bin/env python
"""Entry point: `python run_benchmark.py --methods did,betavae --seeds 5` (see README.md)."""
import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
