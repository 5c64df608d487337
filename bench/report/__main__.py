"""`python -m disentbench.bench.report DIR [DIR ...] [--out OUT]`."""

import sys

from disentbench.bench.report.cli import main

sys.exit(main())
