#!/usr/bin/env python
"""Entry point: `python run_benchmark.py --methods did,betavae --seeds 5` (see README.md)."""

import os
import sys

# This folder holds bench/, methods/, metrics/ and datasets/ as plain folders; leaving it on the
# import path would let them shadow other packages of the same names (Hugging Face `datasets`) in
# a plugin's imports. The installed package is `disentbench`; an uninstalled checkout still works.
# This checkout's own code runs, even where another checkout is installed: `disentbench` is imported
# from this folder (its __init__ then finds bench/, methods/, ... beside it), and the folder leaves the
# path again before anything else is imported.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if os.path.isfile(os.path.join(_HERE, "disentbench", "__init__.py")) and "disentbench" not in sys.modules:
    sys.path.insert(0, _HERE)
    try:
        import disentbench  # noqa: F401 (this checkout's package, whatever is installed)
    finally:
        sys.path.remove(_HERE)

if __name__ == "__main__":  # not on import: Dask's worker processes import this file and need no torch
    from disentbench.bench.cli import main

    sys.exit(main())
