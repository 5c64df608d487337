#!/usr/bin/env python
"""Entry point: `python run_benchmark.py --methods did,betavae --seeds 5` (see README.md)."""

import os
import sys

# This folder holds bench/, methods/, metrics/ and datasets/ as plain folders; leaving it on the
# import path would let them shadow other packages of the same names (Hugging Face `datasets`) in
# a plugin's imports. The installed package is `disentbench`; an uninstalled checkout still works.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
try:
    from disentbench.bench.cli import main
except ModuleNotFoundError as exc:
    if exc.name != "disentbench":
        raise
    sys.path.append(_HERE)
    from disentbench.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
