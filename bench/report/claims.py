"""A paper's claim made testable: on each dataset and claim metric, the challenger (the profile's
`claim.method`, DiD for the DiD paper) beats the other methods.

Two comparisons, reported side by side because they answer different questions:

(a) **Best setting per method**: each method enters with the setting that is best on the row's
    metric. The setting is chosen on the *selection seeds* (the lower half of the seeds present) and
    the test uses the other seeds, so picking the best of six settings does not inflate the score
    being tested. With fewer than two seeds no split exists: the setting is chosen and tested on the
    same seeds, and the row says so (that choice favours every method's luckiest setting, more so
    for methods with more settings). The rival is the other method with the best selection-seed
    mean; a two-sided Mann-Whitney U test and a seeded bootstrap interval compare the test seeds.
(b) **Distributions** (Locatello et al. 2019): every run of the challenger (all settings x seeds)
    against every run of each rival, one row per rival: medians, the probability that a random
    challenger run beats a random rival run (ties count half), and the Mann-Whitney test.

Verdicts (alpha = 0.05): "supported" when the challenger is ahead and the test is significant;
"not supported" when it is significantly behind, or not ahead although the runs were enough for
the test to show a win (the smallest p the exact test can reach is below alpha); otherwise
"inconclusive (n=K ...)". A tie is never a win. The ablation (the challenger with its idea switched
off, e.g. DiD with lambda_h = 0) is compared like (a), as one more rival of its own table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from disentbench.atomic import write_text
from disentbench.bench.claim import ClaimSpec
from disentbench.bench.report.headline import CLAIM_METRICS, METRIC_LABELS  # noqa: F401  (their old home)
from disentbench.bench.report.leaderboard import BOARD_AXES, board_title, fmt_cell, fmt_number
from disentbench.bench.report.length import short_training_note
from disentbench.bench.report.runs import (
    higher_is_better,
    mixed_precision_note,
    normalise,
    parse_hparams,
    short_hparams,
)

ALPHA = 0.05
N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
MD_NAME = "claims.md"
SUPPORTED, NOT_SUPPORTED = "supported", "not supported"
BEST_TITLE = "(a) Best setting per method, chosen on held-out seeds"
DIST_TITLE = "(b) Distributions over all settings and seeds (Locatello et al. 2019)"
ABLATION_TITLE = "Ablation: the challenger against itself with its idea switched off"


def inconclusive(n: int, unit: str = "seed") -> str:
    return f"inconclusive (n={n} {unit}{'s' if n != 1 else ''})"


@dataclass
class Comparison:
    """The challenger's scores against one rival's on one metric."""

    margin: float  # mean(challenger) - mean(other); 0 when the means tie
    p_value: float  # two-sided Mann-Whitney U
    min_p: float  # smallest p the exact test can reach with these counts
    ci_low: float
    ci_high: float
    n: int  # min(counts)
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


def _verdict(ahead: bool, behind: bool, p: float, min_p: float, n: int, alpha: float, unit: str) -> str:
    if ahead and p < alpha:
        return SUPPORTED
    if (behind and p < alpha) or (not ahead and min_p < alpha):
        return NOT_SUPPORTED
    return inconclusive(n, unit)


def _mwu(a: np.ndarray, b: np.ndarray) -> float:
    p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return p if np.isfinite(p) else 1.0


def compare(
    did: np.ndarray, other: np.ndarray, alpha: float = ALPHA, seed: int = BOOTSTRAP_SEED, higher_better: bool = True
) -> Comparison:
    """Test "the challenger beats other" on two samples of per-seed scores (direction: the means)."""
    did = np.asarray(did, dtype=float)
    other = np.asarray(other, dtype=float)
    if len(did) == 0 or len(other) == 0:
        raise ValueError("compare needs at least one seed on each side")
    margin = float(did.mean() - other.mean())
    scale = max(1.0, float(np.abs(np.concatenate([did, other])).max()))
    if abs(margin) <= 1e-12 * scale:  # equal up to float summation order: a tie, never a win
        margin = 0.0
    p = _mwu(did, other)
    min_p = min_two_sided_p(len(did), len(other))
    lo, hi = bootstrap_margin(did, other, np.random.default_rng(seed))
    n = min(len(did), len(other))
    ahead = margin > 0 if higher_better else margin < 0
    behind = margin < 0 if higher_better else margin > 0
    return Comparison(margin, p, min_p, lo, hi, n, _verdict(ahead, behind, p, min_p, n, alpha, "seed"))


def prob_superiority(a: np.ndarray, b: np.ndarray, higher_better: bool = True) -> float:
    """P(a random run of `a` beats a random run of `b`), ties counting half (U / (n_a n_b))."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = a[:, None] - b[None, :]
    if not higher_better:
        diff = -diff
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


@dataclass
class DistributionComparison:
    p_superiority: float
    p_value: float
    min_p: float
    n: int
    verdict: str


def compare_distributions(
    challenger: np.ndarray, rival: np.ndarray, alpha: float = ALPHA, higher_better: bool = True
) -> DistributionComparison:
    """Locatello-style: all runs against all runs; direction = the probability of superiority."""
    ps = prob_superiority(challenger, rival, higher_better)
    p = _mwu(np.asarray(challenger, float), np.asarray(rival, float))
    min_p = min_two_sided_p(len(challenger), len(rival))
    n = min(len(challenger), len(rival))
    return DistributionComparison(ps, p, min_p, n, _verdict(ps > 0.5, ps < 0.5, p, min_p, n, alpha, "run"))


# --- selecting settings on held-out seeds ------------------------------------------------------
def split_seeds(seeds) -> tuple[list[int], list[int]] | None:
    """(selection seeds, test seeds): the lower half of the distinct seeds chooses, the rest tests.
    None with fewer than two seeds (no split exists)."""
    distinct = sorted({int(s) for s in seeds})
    k = len(distinct) // 2
    if k < 1:
        return None
    return distinct[:k], distinct[k:]


def seed_range(seeds: list[int]) -> str:
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


@dataclass
class Entrant:
    """One contender of a table: a method (or the ablation) with its runs on one dataset."""

    name: str  # shown name: the method, or e.g. "did (lambda_h=0)"
    method: str  # registered name (for short_hparams)
    runs: pd.DataFrame


@dataclass
class Choice:
    setting: tuple  # (hparams, steps)
    test: np.ndarray  # the test seeds' scores at the chosen setting
    selection_mean: float


def _scores(runs: pd.DataFrame, metric: str, seeds: list[int] | None = None) -> pd.DataFrame:
    sel = runs[runs["metric"] == metric].dropna(subset=["value"])
    if seeds is not None:
        sel = sel[sel["seed"].isin(seeds)]
    return sel


def choose_setting(entrant: Entrant, metric: str, select: list[int] | None, test: list[int] | None) -> Choice | None:
    """The entrant's setting with the best selection-seed mean on `metric`, scored on the test seeds
    (both None: all seeds, the same for choosing and testing). None when it cannot be scored."""
    chosen = _scores(entrant.runs, metric, select)
    if chosen.empty:
        return None
    means = chosen.groupby(["hparams", "steps"], sort=True)["value"].mean()
    best = means.idxmax() if higher_is_better(metric) else means.idxmin()
    at = _scores(entrant.runs, metric, test)
    at = at[(at["hparams"] == best[0]) & (at["steps"] == best[1])]
    if at.empty:
        return None
    return Choice(best, at["value"].to_numpy(float), float(means[best]))


def _setting_text(entrant: Entrant, setting: tuple) -> str:
    return f"{entrant.name} ({short_hparams(setting[0], entrant.method)})"


def _score_text(values: np.ndarray) -> str:
    std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return fmt_cell(float(values.mean()), std, len(values))


def best_setting_rows(
    title: str, challenger: Entrant, rivals: list[Entrant], metric: str, held_out: bool = True
) -> tuple[list[dict], list[str]]:
    """Comparison (a) on one dataset and metric: one row, against the strongest rival."""
    everyone = [challenger, *rivals]
    seeds = pd.concat([_scores(e.runs, metric) for e in everyone])["seed"]
    split = split_seeds(seeds) if held_out else None
    select, test = split if split else (None, None)
    choices = {e.name: choose_setting(e, metric, select, test) for e in everyone}
    missing = [name for name, c in choices.items() if c is None]
    notes = []
    if missing:
        where = f" on test seeds {seed_range(test)}" if test else ""
        notes.append(f"{title}, {metric}: no score{where} for {', '.join(missing)}; left out of (a)")
    mine = choices[challenger.name]
    others = {e.name: (e, choices[e.name]) for e in rivals if choices[e.name] is not None}
    if mine is None or not others:
        return [], notes
    sign = 1 if higher_is_better(metric) else -1
    strongest = max(sorted(others), key=lambda n: sign * others[n][1].selection_mean)
    rival_entrant, rival = others[strongest]
    cmp = compare(mine.test, rival.test, higher_better=higher_is_better(metric))
    mean = mine.test.mean()
    better = sum(sign * (c.test.mean() - mean) > 0 for _, c in others.values()) if cmp.margin != 0 else 0
    if split:
        selection = f"setting chosen on seeds {seed_range(select)}, tested on seeds {seed_range(test)}"
    else:
        selection = (
            "chosen and tested on the same seeds (selection bias: each method's best setting on these seeds is "
            "optimistic, more so for methods with more settings)"
        )
    row = {
        "dataset": title,
        "metric": METRIC_LABELS.get(metric, metric),
        "challenger setting": _setting_text(challenger, mine.setting),
        "challenger score": _score_text(mine.test),
        "rival": _setting_text(rival_entrant, rival.setting),
        "rival score": _score_text(rival.test),
        "challenger rank": f"{1 + better}{' (tied)' if cmp.margin == 0 else ''} of {1 + len(others)}",
        "margin": f"{cmp.margin:+.3f}",
        "Mann-Whitney p": f"{cmp.p_value:.3g}",
        "bootstrap 95% CI of margin": f"[{fmt_number(cmp.ci_low)}, {fmt_number(cmp.ci_high)}]",
        "selection": selection,
        "verdict": cmp.verdict,
    }
    return [row], notes


def _runs_text(runs: pd.DataFrame) -> str:
    settings = runs[["hparams", "steps"]].drop_duplicates().shape[0]
    return f"{len(runs)} ({settings} setting{'s' if settings != 1 else ''} x {runs['seed'].nunique()} seeds)"


def distribution_rows(title: str, challenger: Entrant, rivals: list[Entrant], metric: str) -> list[dict]:
    """Comparison (b) on one dataset and metric: one row per rival."""
    mine = _scores(challenger.runs, metric)
    if mine.empty:
        return []
    rows = []
    for rival in rivals:
        theirs = _scores(rival.runs, metric)
        if theirs.empty:
            continue
        a, b = mine["value"].to_numpy(float), theirs["value"].to_numpy(float)
        cmp = compare_distributions(a, b, higher_better=higher_is_better(metric))
        rows.append(
            {
                "dataset": title,
                "metric": METRIC_LABELS.get(metric, metric),
                "challenger": challenger.name,
                "challenger runs": _runs_text(mine),
                "challenger median": fmt_number(float(np.median(a))),
                "rival": rival.name,
                "rival runs": _runs_text(theirs),
                "rival median": fmt_number(float(np.median(b))),
                "P(challenger run beats rival run)": f"{cmp.p_superiority:.3f}",
                "Mann-Whitney p": f"{cmp.p_value:.3g}",
                "verdict": cmp.verdict,
            }
        )
    return rows


# --- the whole claim ----------------------------------------------------------------------------
def is_ablation(spec: ClaimSpec, method: str, hparams: str) -> bool:
    """A run of the challenger with every ablation hyperparameter at its ablation value."""
    if method != spec.method or not spec.ablation:
        return False
    hp = parse_hparams(hparams)
    for key, value in spec.ablation.items():
        try:
            if key not in hp or float(hp[key]) != float(value):
                return False
        except (TypeError, ValueError):
            if hp.get(key) != value:
                return False
    return True


@dataclass
class ClaimTables:
    spec: ClaimSpec
    best: list[dict] = field(default_factory=list)
    distributions: list[dict] = field(default_factory=list)
    ablations: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def claim_rows(runs: pd.DataFrame, spec: ClaimSpec | None = None, held_out: bool = True) -> ClaimTables:
    """Every table of the claim over every dataset of the runs."""
    spec = spec or ClaimSpec()
    out = ClaimTables(spec)
    runs = normalise(runs)
    if runs.empty:
        out.notes.append("no results: no claim can be tested")
        return out
    name = spec.method
    for axes, part in runs.groupby(BOARD_AXES, sort=True):  # a board's runs: never pooled across axes
        title = board_title(*map(str, axes))
        out.notes += [f"{title}: {n}" for n in (short_training_note(part), mixed_precision_note(part)) if n]
        present = [m for m in spec.metrics if m in set(part["metric"])]
        if present and len(present) < len(spec.metrics):
            unmeasured = ", ".join(m for m in spec.metrics if m not in present)
            out.notes.append(f"{title}: claim metric(s) {unmeasured} not measured; the claim is tested on the others")
        if not present:
            out.notes.append(f"{title}: none of {', '.join(spec.metrics)} was measured; no claim tested")
            continue
        ablated = np.array([is_ablation(spec, m, h) for m, h in zip(part["method"], part["hparams"])], dtype=bool)
        full, ablation = part[~ablated], part[ablated]
        if name not in set(full["method"]):
            out.notes.append(
                f"{title}: the challenger `{name}` was not run on this dataset; its claim is untested here"
            )
            continue
        challenger = Entrant(name, name, full[full["method"] == name])
        rivals = [Entrant(m, m, full[full["method"] == m]) for m in sorted(set(full["method"]) - {name})]
        if not rivals:
            out.notes.append(f"{title}: only `{name}` was run; there is no other method to compare with")
        for metric in present:
            rows, notes = best_setting_rows(title, challenger, rivals, metric, held_out)
            out.best += rows
            out.notes += notes
            out.distributions += distribution_rows(title, challenger, rivals, metric)
            if not ablation.empty:
                ab = Entrant(f"{name} ({spec.ablation_text()})", name, ablation)
                rows, notes = best_setting_rows(title, challenger, [ab], metric, held_out)
                out.ablations += rows
                out.notes += notes
        if spec.ablation and ablation.empty:
            out.notes.append(f"{title}: the ablation `{name}` with {spec.ablation_text()} was not run")
    return out


def _md_table(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]).replace("|", "\\|") for h in header) + " |" for r in rows]
    return "\n".join(lines)


def claim_text(spec: ClaimSpec) -> str:
    metrics = ", ".join(METRIC_LABELS.get(m, m) for m in spec.metrics)
    text = f"The claim tested: `{spec.method}` beats every other method run here on {metrics}, on each dataset."
    if spec.method == "did":
        text += (
            " (The DiD paper's claim: DiD beats the mainstream methods, beta-VAE, FactorVAE, beta-TCVAE and"
            " the like, on MIG, DCI disentanglement and SAP, on dSprites and 3DShapes.)"
        )
    return text


def explanation(spec: ClaimSpec | None = None) -> str:
    """How the claim is tested, in plain words (shared by claims.md and report.html)."""
    spec = spec or ClaimSpec()
    ablation = (
        f" The ablation table compares `{spec.method}` with itself at {spec.ablation_text()} the way (a) does."
        if spec.ablation
        else ""
    )
    return (
        f"Two comparisons. (a) Every method enters with its best setting on the row's metric, chosen on "
        f"the selection seeds (the lower half of the seeds) and tested on the others, so the choice does "
        f"not inflate the tested score; with fewer than two seeds the row says the setting was chosen on "
        f"the tested seeds. The rival is the other method with the best selection-seed mean; the margin is "
        f"the challenger's mean minus the rival's; p is a two-sided Mann-Whitney U test; the interval a "
        f"percentile bootstrap ({N_BOOTSTRAP} resamples, seed {BOOTSTRAP_SEED}). (b) Every run of the "
        f"challenger (all settings and seeds) against every run of each rival, as Locatello et al. (2019) "
        f"compare methods: medians, the probability that a random challenger run beats a random rival run "
        f'(ties count half) and the Mann-Whitney test. "supported": the challenger is ahead and p < {ALPHA}. '
        f'"not supported": it is significantly behind, or not ahead although the runs were enough for the '
        f'test to show a win. Otherwise "inconclusive", with the smaller count. A tie is never a win. With '
        f"fewer than 4 test seeds per side no two-sided test at {ALPHA} can be significant.{ablation}"
    )


def render_claims_md(tables: ClaimTables) -> str:
    spec = tables.spec
    out = ["# Claims", "", claim_text(spec), "", "How it is tested: " + explanation(spec), ""]
    for title, rows in ((BEST_TITLE, tables.best), (DIST_TITLE, tables.distributions)):
        out += [f"## {title}", ""]
        out += [_md_table(rows), ""] if rows else ["No row could be tested.", ""]
    if tables.ablations:
        out += [
            f"## {ABLATION_TITLE} ({spec.ablation_text()})",
            "",
            f'Here the rival is `{spec.method}` with {spec.ablation_text()}; "supported" means the full method is '
            f"significantly better.",
            "",
            _md_table(tables.ablations),
            "",
        ]
    if tables.notes:
        out += ["## Notes", ""] + [f"- {n}" for n in tables.notes] + [""]
    return "\n".join(out)


def write_claims(runs: pd.DataFrame, out_dir: Path, spec: ClaimSpec | None = None) -> tuple[str, ClaimTables]:
    """Write claims.md; return its text and the tables (for the HTML report)."""
    tables = claim_rows(runs, spec)
    text = render_claims_md(tables)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / MD_NAME, text + "\n")
    return text, tables
