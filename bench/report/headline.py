"""The claim metrics: the metrics a paper's claim is about, which lead the leaderboard's headline table.

Its own small module because both runs.py (the display order) and claims.py (the tests) read it,
and claims.py imports runs.py: neither has to import the other for this list.
"""

from __future__ import annotations

from disentbench.bench.claim import DEFAULT_METRICS

#: the default claim metrics (the DiD paper's); they lead the leaderboard's headline table
CLAIM_METRICS = DEFAULT_METRICS
#: how figures and claims.md name them
METRIC_LABELS = {"mig": "MIG", "dci": "DCI disentanglement", "sap": "SAP"}
