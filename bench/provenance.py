"""Where a number came from: library versions, git commit, device, time."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


#: the commit a run pinned when it started (pin_git_commit); worker processes inherit it
COMMIT_ENV = "DISENTBENCH_GIT_COMMIT"


def git_commit() -> str:
    """The commit this process's rows record: the one its run pinned when it started, else HEAD of
    the checkout the code runs from (read once per process)."""
    return os.environ.get(COMMIT_ENV) or read_git_commit()


def pin_git_commit() -> str:
    """Read the commit now, when a run starts, and keep it for this process and the workers it
    starts: a commit made in the checkout while a long run trains (its code already loaded) must
    not relabel the rows it writes hours later."""
    read_git_commit.cache_clear()
    os.environ[COMMIT_ENV] = commit = read_git_commit()
    return commit


@lru_cache(maxsize=1)
def read_git_commit() -> str:
    """HEAD of the checkout the code runs from, with "-dirty" for uncommitted changes; "unknown"
    outside a git checkout (e.g. an installed wheel)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions(metric_params: dict | None = None) -> dict[str, str]:
    """Library versions, and the boosted trees' split criterion that DCI's parameters in
    `metric_params` ({metric: parameters}, a profile's `metrics`) ask for."""
    import numba
    import numpy
    import sklearn
    import torch

    from disentbench.metrics.gbt import tree_criteria

    return {
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "sklearn_version": sklearn.__version__,
        "numba_version": numba.__version__,  # DCI's exact tree builder (metrics/gbt.py)
        "python_version": platform.python_version(),
        # the split criterion of the boosted trees behind DCI, DCI-ES, the downstream tasks and
        # fairness, per DCI backend (scikit-learn changed it in 1.9): docs/metrics.md, DCI's trees
        "dci_tree_criterion": tree_criteria(**_criterion(metric_params)),
    }


def _criterion(metric_params: dict | None) -> dict[str, str]:
    dci = (metric_params or {}).get("dci") or {}
    return {"criterion": dci["criterion"]} if "criterion" in dci else {}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
