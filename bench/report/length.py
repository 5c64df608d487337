"""Which results were trained for less than their method's reference length.

A score after 120 of 300,000 steps says nothing about a method, yet a leaderboard ranks it all the
same. The reports say so wherever such a cell appears: a note on each leaderboard board and in
claims.md, and one line under the console leaderboard. The reference length is the method class's
`reference_steps` (300,000 for the protocol of Locatello et al. 2019; 150,000 updates for FactorVAE);
a method that is not registered in this process has no known length and is not flagged.
"""

from __future__ import annotations

import pandas as pd

from disentbench import methods


def reference_steps(method: str) -> int | None:
    """The registered method's reference training length, or None when it is not registered here."""
    try:
        return int(methods.get(method).reference_steps)
    except Exception:  # unknown here (a plugin not loaded): nothing to compare with
        return None


def short_settings(runs: pd.DataFrame) -> list[str]:
    """'did 120 of 300,000 steps' for every (method, steps) in `runs` below its reference length."""
    out = []
    if runs.empty or not {"method", "steps"} <= set(runs.columns):
        return out
    for (method, steps), _ in runs.groupby(["method", "steps"], sort=True):
        ref = reference_steps(str(method))
        if ref is not None and int(steps) < ref:
            out.append(f"{method} {int(steps):,} of {ref:,} steps")
    return out


def short_training_note(runs: pd.DataFrame) -> str | None:
    """One sentence for the reports, or None when every cell ran its full reference length."""
    short = short_settings(runs)
    if not short:
        return None
    return (
        f"trained for less than the reference length ({'; '.join(short)}): these numbers are not "
        f"comparable with published ones, and their ranking is not evidence about the methods"
    )
