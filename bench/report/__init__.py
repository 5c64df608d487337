"""Reports from run folders: leaderboard (md + tidy csv), claims.md (the DiD paper's claim tested),
PNG figures and one self-contained report.html. Needs only runs.csv; checkpoints and training logs
add pictures of models and training curves when present.

    from disentbench.bench.report import build_report
    build_report([Path("results/quick")], Path("results/quick/report"))
"""

from disentbench.bench.report.cli import build_report, main
from disentbench.bench.report.leaderboard import console_summary, write_leaderboard
from disentbench.bench.report.runs import load_runs

__all__ = ["build_report", "console_summary", "load_runs", "main", "write_leaderboard"]
