"""The DiD paper's claim made testable: on each dataset and each of MIG, DCI disentanglement and
SAP, DiD beats the mainstream methods.

Per row: DiD's best setting and each other method's best setting (the setting that is best on the
primary metric, the same rule for every method and the same one the leaderboard's "best setting per
method" view uses); DiD's rank on the metric; the margin over the best other method; a two-sided
Mann-Whitney U test between the two sets of seeds; a seeded bootstrap 95% interval of the margin.

Verdict (alpha = 0.05):
- "supported": DiD ranks strictly first and the test is significant;
- "not supported": DiD is significantly worse, or DiD does not rank strictly first although the
  seeds were enough for the test to show a win (the smallest p-value the exact test can reach with
  these seed counts is below alpha);
- "inconclusive (n=K seeds)" otherwise, K = the smaller seed count of the two.
A tie (equal means) is never a win.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from disentbench.bench.report.leaderboard import BOARD, best_settings, fmt_cell, fmt_number, setting_stats
from disentbench.bench.report.length import short_training_note
from disentbench.bench.report.runs import normalise, ordered_metrics, parse_hparams, short_hparams

DID = "did"
CLAIM_METRICS = ("mig", "dci", "sap")
METRIC_LABELS = {"mig": "MIG", "dci": "DCI disentanglement", "sap": "SAP"}
ALPHA = 0.05
N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
MD_NAME = "claims.md"
SUPPORTED, NOT_SUPPORTED = "supported", "not supported"


def inconclusive(n: int) -> str:
    return f"inconclusive (n={n} seed{'s' if n != 1 else ''})"


@dataclass
class Comparison:
    """DiD's seeds against one rival's seeds on one metric."""

    margin: float  # mean(did) - mean(other); 0 when the means tie
    p_value: float  # two-sided Mann-Whitney U
    min_p: float  # smallest p the exact test can reach with these seed counts
    ci_low: float
    ci_high: float
    n: int  # min(seed counts)
    verdict: str


def min_two_sided_p(n1: int, n2: int) -> float:
    """The most extreme two-sided exact Mann-Whitney p-value: 2 / C(n1 + n2, n1), capped at 1."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def bootstrap_margin(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n_resamples: int = N_BOOTSTRAP
) -> tuple[float, float]:
    """Percentile 95% interval of mean(a) - mean(b), each group resampled with replacement."""
    ia = rng.integers(0, len(a), size=(n_resamples, len(a)))
    ib = rng.integers(0, len(b), size=(n_resamples, len(b)))
    diffs = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(lo), float(hi)


def compare(
    did: np.ndarray, other: np.ndarray, alpha: float = ALPHA, seed: int = BOOTSTRAP_SEED, higher_better: bool = True
) -> Comparison:
    """Test "did beats other" on two samples of per-seed scores."""
    did = np.asarray(did, dtype=float)
    other = np.asarray(other, dtype=float)
    if len(did) == 0 or len(other) == 0:
        raise ValueError("compare needs at least one seed on each side")
    margin = float(did.mean() - other.mean())
    scale = max(1.0, float(np.abs(np.concatenate([did, other])).max()))
    if abs(margin) <= 1e-12 * scale:  # equal up to float summation order: a tie, never a win
        margin = 0.0
    p = float(mannwhitneyu(did, other, alternative="two-sided").pvalue)
    if not np.isfinite(p):
        p = 1.0
    min_p = min_two_sided_p(len(did), len(other))
    lo, hi = bootstrap_margin(did, other, np.random.default_rng(seed))
    n = min(len(did), len(other))
    better = margin > 0 if higher_better else margin < 0
    worse = margin < 0 if higher_better else margin > 0
    if better and p < alpha:
        verdict = SUPPORTED
    elif (worse and p < alpha) or (not better and min_p < alpha):
        verdict = NOT_SUPPORTED
    else:
        verdict = inconclusive(n)
    return Comparison(margin, p, min_p, lo, hi, n, verdict)


def _is_ablation(method: str, hparams: str) -> bool:
    value = parse_hparams(hparams).get("lambda_h")
    return method == DID and isinstance(value, (int, float)) and float(value) == 0.0


def _seeds(part: pd.DataFrame, setting: tuple, metric: str) -> np.ndarray:
    method, hparams, steps = setting
    sel = part[
        (part["method"] == method)
        & (part["hparams"] == hparams)
        & (part["steps"] == steps)
        & (part["metric"] == metric)
    ]
    return sel["value"].dropna().to_numpy(dtype=float)


def _describe(setting: tuple, values: np.ndarray) -> tuple[str, str]:
    method, hparams, _ = setting
    std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return f"{method} ({short_hparams(hparams, method)})", fmt_cell(float(values.mean()), std, len(values))


def claim_rows(runs: pd.DataFrame, primary_metric: str) -> tuple[list[dict], list[dict], list[str]]:
    """(claim rows, ablation rows, notes) over every dataset of the runs."""
    rows, ablations, notes = [], [], []
    runs = normalise(runs)
    if runs.empty:
        return rows, ablations, ["no results: no claim can be tested"]
    for (dataset, source), part in runs.groupby(BOARD, sort=True):
        title = f"{dataset} (data: {source})"
        short = short_training_note(part)
        if short:
            notes.append(f"{title}: {short}")
        present = [m for m in CLAIM_METRICS if m in set(part["metric"])]
        if not present:
            notes.append(f"{title}: none of MIG, DCI, SAP was measured; no claim tested")
            continue
        full = part[[not _is_ablation(m, h) for m, h in zip(part["method"], part["hparams"])]]
        ablated = part[[_is_ablation(m, h) for m, h in zip(part["method"], part["hparams"])]]
        if DID not in set(full["method"]):
            notes.append(f"{title}: DiD (`{DID}`) was not run on this dataset; its claim is untested here")
            continue
        stats = setting_stats(full)
        measured = ordered_metrics(stats["metric"].unique(), primary_metric)
        if DID not in set(stats["method"]):
            notes.append(f"{title}: DiD has no finite score on this dataset; its claim is untested here")
            continue
        rank_metric = primary_metric if primary_metric in measured else measured[0]
        chosen = {s[0]: tuple(s) for s in best_settings(stats, rank_metric).itertuples(index=False)}
        others = [m for m in chosen if m != DID]
        if not others:
            notes.append(f"{title}: only DiD was run; there is no other method to compare with")
        for metric in present:
            did_vals = _seeds(full, chosen[DID], metric)
            rivals = {m: _seeds(full, chosen[m], metric) for m in others}
            rivals = {m: v for m, v in rivals.items() if len(v)}
            if not len(did_vals) or not rivals:
                continue
            best_other = max(sorted(rivals), key=lambda m: rivals[m].mean())
            cmp = compare(did_vals, rivals[best_other])
            did_mean = did_vals.mean()
            higher = sum(v.mean() > did_mean and cmp.margin != 0 for v in rivals.values())
            tied = cmp.margin == 0
            rows.append(
                _row(
                    title,
                    metric,
                    chosen[DID],
                    did_vals,
                    chosen[best_other],
                    rivals[best_other],
                    cmp,
                    f"{1 + higher}{' (tied)' if tied else ''} of {1 + len(rivals)}",
                )
            )
        if not ablated.empty:
            ab_stats = setting_stats(ablated)
            ab_chosen = tuple(
                best_settings(
                    ab_stats, rank_metric if rank_metric in set(ab_stats["metric"]) else ab_stats["metric"].iloc[0]
                ).iloc[0]
            )
            for metric in present:
                full_vals, ab_vals = _seeds(full, chosen[DID], metric), _seeds(ablated, ab_chosen, metric)
                if len(full_vals) and len(ab_vals):
                    ablations.append(
                        _row(title, metric, chosen[DID], full_vals, ab_chosen, ab_vals, compare(full_vals, ab_vals), "")
                    )
    return rows, ablations, notes


def _row(title, metric, did_setting, did_vals, other_setting, other_vals, cmp: Comparison, rank) -> dict:
    did_name, did_cell = _describe(did_setting, did_vals)
    other_name, other_cell = _describe(other_setting, other_vals)
    return {
        "dataset": title,
        "metric": METRIC_LABELS.get(metric, metric),
        "DiD setting": did_name,
        "DiD score": did_cell,
        "rival": other_name,
        "rival score": other_cell,
        "DiD rank": rank,
        "margin": f"{cmp.margin:+.3f}",
        "Mann-Whitney p": f"{cmp.p_value:.3g}",
        "bootstrap 95% CI of margin": f"[{fmt_number(cmp.ci_low)}, {fmt_number(cmp.ci_high)}]",
        "verdict": cmp.verdict,
    }


def _md_table(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]).replace("|", "\\|") for h in header) + " |" for r in rows]
    return "\n".join(lines)


CLAIM_TEXT = (
    "The DiD paper's claim: DiD beats the mainstream methods (beta-VAE, FactorVAE, "
    "beta-TCVAE and the like) on MIG, DCI disentanglement and SAP, on dSprites and 3DShapes."
)


def explanation(primary_metric: str) -> str:
    """How the claim is tested, in plain words (shared by claims.md and report.html)."""
    return (
        f"Every method enters with its best setting, chosen by the primary metric `{primary_metric}` "
        f"(the same rule for every method). The rival is the other method with the highest mean on "
        f"the row's metric; the margin is DiD's mean minus the rival's. p is a two-sided Mann-Whitney "
        f"U test between the two sets of seeds; the interval is a percentile bootstrap "
        f'({N_BOOTSTRAP} resamples, seed {BOOTSTRAP_SEED}). "supported": DiD ranks strictly first '
        f'and p < {ALPHA}. "not supported": DiD is significantly worse, or it does not rank '
        f"strictly first although the seeds were enough for the test to show a win. Otherwise "
        f'"inconclusive", with the smaller seed count. A tie is never a win. With fewer than 4 '
        f"seeds per side no two-sided test at {ALPHA} can be significant."
    )


def render_claims_md(rows: list[dict], ablations: list[dict], notes: list[str], primary_metric: str) -> str:
    out = ["# Claims", "", CLAIM_TEXT, "", "How it is tested: " + explanation(primary_metric), ""]
    out += ["## DiD against the best other method", ""]
    out += [_md_table(rows), ""] if rows else ["No row could be tested.", ""]
    if ablations:
        out += [
            "## Ablation: does removing the difference learning (lambda_h = 0) hurt?",
            "",
            'Here the rival is DiD with `lambda_h=0`; "supported" means full DiD is significantly better.',
            "",
            _md_table(ablations),
            "",
        ]
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


def write_claims(
    runs: pd.DataFrame, out_dir: Path, primary_metric: str
) -> tuple[str, list[dict], list[dict], list[str]]:
    """Write claims.md; return its text and the rows (for the HTML report)."""
    rows, ablations, notes = claim_rows(runs, primary_metric)
    text = render_claims_md(rows, ablations, notes, primary_metric)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MD_NAME).write_text(text + "\n", encoding="utf-8")
    return text, rows, ablations, notes
