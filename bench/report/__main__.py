"""`python -m bench.report DIR [DIR ...] [--out OUT]`."""
import sys

from bench.report.cli import main

sys.exit(main())
