"""The leaderboard: per dataset, every (method, hyperparameter setting) x metric as mean ± std over
seeds, the best value of each column marked, rows ranked by the primary metric, plus a "best
setting per method" view.

Layout: each registered metric has one headline key (its name: mig, dci, sap, beta_vae...); those
make the main table, the claim metrics (MIG, DCI, SAP) first. A metric's other keys (train
accuracies, completeness, informativeness, counts of active latents) are secondary: they go in a
second table, and carry `kind` = "secondary" in the CSV, so the main table stays readable.

Conventions (stated in the markdown too): std is the sample std over seeds (ddof=1); with one seed
it is undefined, written "—" in the markdown and left empty (NaN) in the CSV. A best value is
marked on every row that reaches it (ties are all marked). Ranks are "min" ranks (ties share).
A setting is (method, hparams, steps); runs of different lengths are never pooled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from disentbench.atomic import atomic_path, write_text
from disentbench.bench.report.length import short_training_note
from disentbench.bench.report.published import published_tables, write_published
from disentbench.bench.report.published import render_markdown as published_markdown
from disentbench.bench.report.runs import (
    base_key,
    claim_metrics,
    has_direction,
    higher_is_better,
    is_variant_key,
    mixed_precision_note,
    normalise,
    ordered_metrics,
    registered_metrics,
    short_hparams,
    split_metrics,
    variant_metrics,
)

#: one board per dataset, data source and correlation setting training drew from ("none": uncorrelated)
BOARD = ["dataset", "data_source", "correlation"]
#: ... and per held-out setting ("none": trained on every combination) and per representation the
#: metrics scored ("mean" unless a run or a derived cell scored sampled codes): the boards' full key
BOARD_AXES = [*BOARD, "holdout", "representation"]
SETTING = ["method", "hparams", "steps"]
CSV_NAME = "leaderboard.csv"
MD_NAME = "leaderboard.md"
DASH = "—"


@dataclass
class Board:
    """One dataset (and data source): its two views in long form (one row per setting x metric).

    `metrics` is every key in display order: `headline` then `secondary`."""

    dataset: str
    data_source: str
    rank_metric: str | None
    metrics: list[str]
    settings: pd.DataFrame
    best: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    headline: list[str] = field(default_factory=list)
    secondary: list[str] = field(default_factory=list)
    #: the variant metrics' statistics (`sap_continuous`, `dci_lasso`...; columns of `setting_stats`):
    #: kept apart from the tables and the ranking, read only by the published table
    variants: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: every metric's statistics per setting and codes scored (`representation`: "mean", "sampled"),
    #: read only by the published table, which pairs a source's number with ours on the same codes
    codes: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the correlation setting the board's models trained on (scored on uncorrelated data)
    correlation: str = "none"
    #: the held-out setting whose combinations the board's models never saw (plain keys score the
    #: seen combinations, `heldout_` keys the held-out ones)
    holdout: str = "none"
    #: what the board's metrics scored: the encoder mean, or one posterior draw per image ("sampled":
    #: a run with --representation sampled, or cells derived by `rescore --representation sampled`);
    #: two representations of one model are two boards, never pooled as if they were seeds
    representation: str = "mean"

    @property
    def title(self) -> str:
        return board_title(self.dataset, self.data_source, self.correlation, self.holdout, self.representation)

    @property
    def tag(self) -> str:
        """What tells the board's figure files apart: the data source, and each axis when set."""
        axes = [a for a in (self.correlation, self.holdout) if a != "none"]
        axes += [f"{self.representation}-codes"] if self.representation != "mean" else []
        return "-".join([self.data_source, *axes])

    def rows(self, runs: pd.DataFrame) -> pd.DataFrame:
        """The rows of `runs` (normalised) that belong to this board."""
        keep = (runs["dataset"] == self.dataset) & (runs["data_source"] == self.data_source)
        keep &= (runs["correlation"] == self.correlation) & (runs["holdout"] == self.holdout)
        return runs[keep & (runs["representation"] == self.representation)]


def board_title(dataset: str, source: str, correlation: str, holdout: str, representation: str = "mean") -> str:
    """A board's (and its claim's) title: the dataset, its data source and each axis that is set."""
    notes = correlation_note(correlation) + holdout_note(holdout)
    notes += "" if representation == "mean" else f", scored on {representation} codes"
    return f"{dataset} (data: {source}{notes})"


def correlation_note(correlation: str) -> str:
    """The words beside the data source in a title: ", trained on correlated factors: NAME" ("" for none)."""
    return "" if correlation == "none" else f", trained on correlated factors: {correlation}"


def holdout_note(holdout: str) -> str:
    """The words beside the data source in a title: ", combinations held out: NAME" ("" for none)."""
    return "" if holdout == "none" else f", combinations held out: {holdout}"


def score_set_notes(holdout: str, measured) -> list[str]:
    """What a reader of a board with extra score sets needs (bench/scoring.py): which columns score
    what, and every metric measured in the plain set but not in an extra one, with the reason."""
    from disentbench.bench.scoring import CORRELATED, HELDOUT, unrestricted_reason

    have = set(measured)
    notes = []
    sets = []
    if holdout != "none":
        notes.append(
            f"trained without the combinations of `{holdout}`: plain columns score the seen combinations, "
            f"`{HELDOUT}` columns the held-out ones (docs/heldout.md)"
        )
        sets.append((HELDOUT, "the held-out combinations"))
    if any(k.startswith(CORRELATED) for k in have):
        notes.append(
            f"plain columns score uncorrelated factors, `{CORRELATED}` columns the correlated training "
            "distribution (docs/correlated.md)"
        )
        sets.append((CORRELATED, "the correlated distribution"))
    for prefix, where in sets:
        for key in sorted(have):
            why = unrestricted_reason(key) if base_key(key) == key and prefix + key not in have else None
            if why:
                notes.append(f"`{key}` is not scored on {where}: {why}")
    return notes


def setting_stats(runs: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """mean, std (ddof=1, NaN for one seed) and n over seeds of every setting x metric (kept apart
    by the columns `by` too)."""
    cols = BOARD_AXES + SETTING + [c for c in by if c not in BOARD_AXES] + ["metric"]
    valid = runs.dropna(subset=["value"])
    if valid.empty:
        return pd.DataFrame(columns=cols + ["mean", "std", "n"])
    grouped = valid.groupby(cols, sort=True)["value"]
    stats = grouped.agg(mean="mean", std=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan, n="count")
    return stats.reset_index()


def _rank_keys(stats: pd.DataFrame, rank_metric: str | None) -> pd.DataFrame:
    """One row per setting with its score on the rank metric (NaN when missing) and its rank."""
    keys = stats[SETTING].drop_duplicates().reset_index(drop=True)
    if rank_metric is None:
        keys["score"] = np.nan
    else:
        score = stats[stats["metric"] == rank_metric].set_index(SETTING)["mean"]
        keys["score"] = [score.get(tuple(k), np.nan) for k in keys[SETTING].itertuples(index=False)]
    ascending = rank_metric is not None and not higher_is_better(rank_metric)
    keys["rank"] = keys["score"].rank(method="min", ascending=ascending)
    order_score = keys["score"] if ascending else -keys["score"]
    keys = keys.assign(_o=order_score).sort_values(["_o", "method", "hparams", "steps"], na_position="last")
    return keys.drop(columns="_o").reset_index(drop=True)


def _mark_best(view: pd.DataFrame) -> pd.DataFrame:
    """`best` = the row reaches the column's best mean (max, or min for lower-is-better metrics)."""
    view = view.copy()
    view["higher_is_better"] = [higher_is_better(m) if has_direction(m) else pd.NA for m in view["metric"]]
    extremes = view.groupby("metric")["mean"].agg(["max", "min"])
    target = [extremes.at[m, "max" if higher_is_better(m) else "min"] for m in view["metric"]]
    directed = np.asarray([has_direction(m) for m in view["metric"]], dtype=bool)  # bool also when empty
    view["best"] = (view["mean"].to_numpy() == np.asarray(target, dtype=float)) & directed
    return view


def _with_rank(stats: pd.DataFrame, keys: pd.DataFrame, metrics: list[str], headline: list[str]) -> pd.DataFrame:
    """The view in long form: settings in rank order, each setting's metrics in display order
    (headline first), with its rank, best marks and `kind` (headline or secondary)."""
    order = keys.reset_index().rename(columns={"index": "_pos"})[SETTING + ["rank", "_pos"]]
    out = stats.merge(order, on=SETTING, how="inner")
    out["_col"] = out["metric"].map({m: i for i, m in enumerate(metrics)})
    out = out.sort_values(["_pos", "_col", "metric"]).drop(columns=["_pos", "_col"])
    out["kind"] = np.where(out["metric"].isin(headline), "headline", "secondary")
    return _mark_best(out.reset_index(drop=True))


def best_settings(stats: pd.DataFrame, rank_metric: str | None) -> pd.DataFrame:
    """Per method, the setting that is best on the rank metric (ties: first by hparams order)."""
    keys = _rank_keys(stats, rank_metric)
    return keys.drop_duplicates(subset="method", keep="first")[SETTING].reset_index(drop=True)


def make_boards(runs: pd.DataFrame, primary_metric: str) -> list[Board]:
    runs = normalise(runs)
    stats = setting_stats(runs)
    by_codes = setting_stats(runs, by=("representation",))
    registered = registered_metrics()
    variant = frozenset(variant_metrics())
    boards = []
    for (dataset, source, correlation, holdout, representation), part in stats.groupby(BOARD_AXES, sort=True):
        part = part.reset_index(drop=True)
        is_var = part["metric"].map(lambda m: is_variant_key(m, variant)).astype(bool)
        variants, part = part[is_var].reset_index(drop=True), part[~is_var].reset_index(drop=True)
        measured = ordered_metrics(part["metric"].unique(), primary_metric)
        notes = []
        rank_metric: str | None = primary_metric
        if primary_metric not in measured:
            rank_metric = measured[0] if measured else None  # the same fallback as claims.md
            notes.append(
                f"primary metric `{primary_metric}` was not measured on this dataset; ranked by `{rank_metric}` instead"
            )
        notes += score_set_notes(str(holdout), part["metric"].unique())
        headline, secondary = split_metrics(measured, rank_metric, registered)
        metrics = headline + secondary
        keys = _rank_keys(part, rank_metric)
        settings = _with_rank(part, keys, metrics, headline)
        chosen = best_settings(part, rank_metric)
        best_part = part.merge(chosen, on=SETTING, how="inner")
        best = _with_rank(best_part, _rank_keys(best_part, rank_metric), metrics, headline)
        board = Board(
            str(dataset), str(source), rank_metric, metrics, settings, best, notes, headline, secondary, variants
        )
        board.correlation, board.holdout, board.representation = str(correlation), str(holdout), str(representation)
        board.codes = board.rows(by_codes)
        board_runs = board.rows(runs)
        board.notes += [n for n in (short_training_note(board_runs), mixed_precision_note(board_runs)) if n]
        boards.append(board)
    return boards


def tidy_table(boards: list[Board], primary_metric: str) -> pd.DataFrame:
    """The CSV: one row per view x dataset x setting x metric; within a setting the rows follow the
    markdown's column order (headline metrics first), and `kind` says headline or secondary."""
    cols = [
        "dataset",
        "data_source",
        "correlation",
        "holdout",
        "representation",
        "view",
        "method",
        "hparams",
        "steps",
        "metric",
        "kind",
        "mean",
        "std",
        "n",
        "rank",
        "best",
        "higher_is_better",
        "rank_metric",
        "primary_metric",
    ]
    frames = []
    for board in boards:
        for view, frame in (("setting", board.settings), ("best_per_method", board.best)):
            frames.append(
                frame.assign(
                    view=view,
                    correlation=board.correlation,
                    holdout=board.holdout,
                    representation=board.representation,
                    rank_metric=board.rank_metric or "",
                    primary_metric=primary_metric,
                )
            )
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, ignore_index=True)
    out["rank"] = out["rank"].astype("Int64")
    return out[cols]


# --- rendering ---------------------------------------------------------------------------------
def fmt_number(x: float) -> str:
    if x is None or not np.isfinite(x):
        return DASH
    return f"{x:.3f}" if abs(x) < 1000 else f"{x:.4g}"


def fmt_cell(mean: float, std: float, n: int) -> str:
    return f"{fmt_number(mean)} ± {fmt_number(std)} (n={int(n)})"


def wide_rows(view: pd.DataFrame, metrics: list[str]) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and rows of a view as (text, is_best) cells; used by the markdown and the HTML."""
    show_steps = view["steps"].nunique() > 1
    header = ["rank", "method", "hparams"] + (["steps"] if show_steps else [])
    header += [m + ("" if higher_is_better(m) else " (↓)") + ("" if has_direction(m) else " (count)") for m in metrics]
    rows = []
    for key, group in view.groupby(SETTING, sort=False):
        method, hparams, steps = key
        by_metric = group.set_index("metric")
        rank = group["rank"].iloc[0]
        row = [
            (DASH if pd.isna(rank) else str(int(rank)), False),
            (method, False),
            (short_hparams(hparams, method), False),
        ]
        if show_steps:
            row.append((str(steps), False))
        for m in metrics:
            if m in by_metric.index:
                r = by_metric.loc[m]
                row.append((fmt_cell(r["mean"], r["std"], r["n"]), bool(r["best"])))
            else:
                row.append((DASH, False))
        rows.append(row)
    return header, rows


def _md_table(header: list[str], rows: list[list[tuple[str, bool]]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"**{text}**" if best else text for text, best in row]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


HEADLINE_TITLE = "Headline metrics"
SECONDARY_TITLE = "Secondary keys and diagnostics"
SECONDARY_NOTE = "Every setting, in the order of the headline table."
NO_SECONDARY = "None: every measured key is a headline metric."


def best_title(board: Board, quote: str = "`") -> str:
    return f"Best setting per method (chosen by {quote}{board.rank_metric}{quote}): headline metrics"


def layout_text() -> str:
    """How the columns are laid out, in plain words (shared by leaderboard.md and report.html)."""
    claims = ", ".join(claim_metrics())
    return (
        f"The headline table has one column per metric (its main score), the claim metrics "
        f"({claims}) first, then the ranking metric when it is not one of them, then the others; each metric's other keys "
        f"(train accuracies, completeness, informativeness, counts of active latents) are in the "
        f'"{SECONDARY_TITLE}" table.'
    )


def render_markdown(boards: list[Board], primary_metric: str) -> str:
    out = [
        "# Leaderboard",
        "",
        f"Cells are mean ± std over seeds (n = number of seeds); std is the sample std (ddof=1), "
        f'"{DASH}" with a single seed. **Bold** marks the best value of each column (every row '
        f"that reaches it); metrics marked (↓) are better when lower; (count) columns are diagnostics and never marked. Rows are ranked by the "
        f"primary metric `{primary_metric}`; each hyperparameter setting is its own row. " + layout_text(),
        "",
    ]
    if not boards:
        out += ["No results: runs.csv holds no scored cell.", ""]
    for board in boards:
        out += [f"## {board.title}", ""]
        out += [f"_Note: {note}._" for note in board.notes] + ([""] if board.notes else [])
        out += [f"### {HEADLINE_TITLE}", "", _md_table(*wide_rows(board.settings, board.headline)), ""]
        out += [f"### {best_title(board)}", "", _md_table(*wide_rows(board.best, board.headline)), ""]
        out += [f"### {SECONDARY_TITLE}", ""]
        if board.secondary:
            out += [SECONDARY_NOTE, "", _md_table(*wide_rows(board.settings, board.secondary)), ""]
        else:
            out += [NO_SECONDARY, ""]
    return "\n".join(out)


def console_summary(runs: pd.DataFrame, primary_metric: str) -> str:
    """The best setting per method and dataset on the headline metrics only (one column per
    metric), short enough for a terminal; leaderboard.md has the secondary keys too."""
    out = []
    for board in make_boards(runs, primary_metric):
        out += [
            f"{board.title}: best setting per method, ranked by {board.rank_metric}",
            "",
            _md_table(*wide_rows(board.best, board.headline)),
            "",
        ]
    out += [f"Note: {n}." for n in (short_training_note(runs), mixed_precision_note(runs)) if n]
    return "\n".join(out)


def write_leaderboard(runs: pd.DataFrame, out_dir: Path, primary_metric: str) -> str:
    """Write leaderboard.csv (tidy), leaderboard.md and the published-beside-ours table into out_dir;
    return the markdown."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    boards = make_boards(runs, primary_metric)
    with atomic_path(out_dir / CSV_NAME) as tmp:
        tidy_table(boards, primary_metric).to_csv(tmp, index=False)
    published = published_tables(boards)
    write_published(published, out_dir)
    text = "\n".join([render_markdown(boards, primary_metric), *published_markdown(published)])
    write_text(out_dir / MD_NAME, text + "\n")
    return text
