"""Score plots that need only runs.csv (plus train_log.csv for the curves).

- distribution over seeds per method (box + points), one dataset x metric (Locatello et al. style);
- the paper's figure: MIG, DCI disentanglement and SAP per dataset, methods side by side;
- hyperparameter sensitivity: metric against the swept value, per method;
- training curves: every logged loss against step;
- Spearman rank correlation between all metrics over all models (heatmap).
Every method gets the single colour `style.method_colours` gives it, in every figure. Each
function returns (figures written, notes on what was skipped and why).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from disentbench.bench.report.gan import loss_columns, read_log
from disentbench.bench.report.headline import CLAIM_METRICS, METRIC_LABELS
from disentbench.bench.report.leaderboard import SETTING, Board
from disentbench.bench.report.length import short_settings
from disentbench.bench.report.runs import higher_is_better, parse_hparams, short_hparams
from disentbench.bench.report.style import FigureFile, new_figure, save, set_suptitle, set_title, slug

MAX_LOSSES = 6
SEED_STYLES = ("-", "--", ":", "-.")
Notes = list[str]


def _board_runs(runs: pd.DataFrame, board: Board) -> pd.DataFrame:
    return board.rows(runs)


def _setting_values(part: pd.DataFrame, setting: tuple, metric: str) -> np.ndarray:
    method, hparams, steps = setting
    sel = part[
        (part["method"] == method)
        & (part["hparams"] == hparams)
        & (part["steps"] == steps)
        & (part["metric"] == metric)
    ]
    return sel["value"].dropna().to_numpy(dtype=float)


def _best(board: Board) -> list[tuple]:
    """The best setting per method, in leaderboard order."""
    return [tuple(k) for k in board.best[SETTING].drop_duplicates().itertuples(index=False)]


def _ylabel(metric: str) -> str:
    return metric + ("" if higher_is_better(metric) else " (lower is better)")


def _length_flag(part: pd.DataFrame) -> str:
    """A title suffix naming the results trained for less than their method's reference length."""
    short = short_settings(part)
    return f" [not comparable: {'; '.join(short)}]" if short else ""


def _offsets(n: int, width: float = 0.25) -> np.ndarray:
    """Deterministic horizontal spread of n points (no random jitter)."""
    return np.zeros(1) if n <= 1 else np.linspace(-width / 2, width / 2, n)


def _distribution_axes(ax, part: pd.DataFrame, settings: list[tuple], metric: str, colours: dict) -> bool:
    data = [(s, _setting_values(part, s, metric)) for s in settings]
    data = [(s, v) for s, v in data if len(v)]
    if not data:
        return False
    positions = np.arange(len(data))
    box = ax.boxplot(
        [v for _, v in data],
        positions=positions,
        widths=0.6,
        patch_artist=True,
        showfliers=False,
        medianprops={"color": "black"},
    )
    for patch, (s, values), x in zip(box["boxes"], data, positions):
        patch.set_facecolor(colours[s[0]])
        patch.set_alpha(0.35)
        ax.scatter(
            x + _offsets(len(values)), values, s=14, color=colours[s[0]], edgecolor="black", linewidth=0.4, zorder=3
        )
    ax.set_xticks(positions, [s[0] for s, _ in data], rotation=30, ha="right")
    ax.grid(axis="y", alpha=0.3)
    return True


def score_distributions(
    runs: pd.DataFrame, boards: list[Board], out: Path, colours: dict
) -> tuple[list[FigureFile], Notes]:
    figures = []
    for board in boards:
        part, settings = _board_runs(runs, board), _best(board)
        for metric in board.metrics:
            fig = new_figure("scores")
            ax = fig.add_subplot()
            if not _distribution_axes(ax, part, settings, metric, colours):
                continue
            title = f"{board.title}: {metric} over seeds (best setting per method by {board.rank_metric})"
            title += _length_flag(part)
            set_title(ax, title, fontsize=9)
            ax.set_ylabel(_ylabel(metric))
            fig.tight_layout()
            figures.append(save(fig, out / f"{slug('scores', board.dataset, board.tag, metric)}.png", "scores", title))
    return figures, []


def paper_figure(runs: pd.DataFrame, boards: list[Board], out: Path, colours: dict) -> tuple[list[FigureFile], Notes]:
    figures, notes = [], []
    for board in boards:
        metrics = [m for m in CLAIM_METRICS if m in board.metrics]
        if not metrics:
            notes.append(f"{board.title}: none of MIG, DCI, SAP measured; no paper figure")
            continue
        part, settings = _board_runs(runs, board), _best(board)
        fig = new_figure("paper")
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for ax, metric in zip(axes, metrics):
            data = [(s, _setting_values(part, s, metric)) for s in settings]
            data = [(s, v) for s, v in data if len(v)]
            x = np.arange(len(data))
            means = [v.mean() for _, v in data]
            stds = [v.std(ddof=1) if len(v) > 1 else 0.0 for _, v in data]
            ax.bar(x, means, yerr=stds, capsize=3, color=[colours[s[0]] for s, _ in data], alpha=0.8)
            for xi, (_, v) in zip(x, data):
                ax.scatter(xi + _offsets(len(v), 0.3), v, s=10, color="black", zorder=3)
            ax.set_xticks(x, [s[0] for s, _ in data], rotation=30, ha="right")
            set_title(ax, METRIC_LABELS.get(metric, metric))
            ax.grid(axis="y", alpha=0.3)
        title = f"{board.title}: the DiD paper's metrics (bars: mean ± std over seeds, dots: seeds)"
        title += _length_flag(part)
        set_suptitle(fig, title, fontsize=10)
        fig.tight_layout()
        figures.append(save(fig, out / f"{slug('paper', board.dataset, board.tag)}.png", "paper", title))
    return figures, notes


def _swept_keys(settings: pd.DataFrame) -> list[str]:
    """Hyperparameters that take more than one value among a method's settings."""
    values: dict[str, set] = {}
    for text in settings["hparams"]:
        for k, v in parse_hparams(text).items():
            values.setdefault(k, set()).add(repr(v))
    return sorted(k for k, vs in values.items() if len(vs) > 1)


def _as_float(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def sensitivity(runs: pd.DataFrame, boards: list[Board], out: Path, colours: dict) -> tuple[list[FigureFile], Notes]:
    figures = []
    for board in boards:
        part = _board_runs(runs, board)
        metrics = list(dict.fromkeys([board.rank_metric, *[m for m in CLAIM_METRICS if m in board.metrics]]))[:4]
        metrics = [m for m in metrics if m is not None]
        for method in sorted(part["method"].unique()):
            rows = part[part["method"] == method]
            for key in _swept_keys(rows[["hparams"]].drop_duplicates()):
                fig = new_figure("sensitivity")
                axes = fig.subplots(1, len(metrics), squeeze=False)[0]
                for ax, metric in zip(axes, metrics):
                    _sensitivity_axes(ax, rows[rows["metric"] == metric], key, colours[method])
                    set_title(ax, metric, fontsize=9)
                    ax.set_xlabel(key)
                title = f"{board.title}: {method}, metrics against {key} (line: mean over seeds)"
                title += _length_flag(rows)
                set_suptitle(fig, title, fontsize=10)
                fig.tight_layout()
                name = slug("sensitivity", board.dataset, board.tag, method, key)
                figures.append(save(fig, out / f"{name}.png", "sensitivity", title))
    return figures, []


def _sensitivity_axes(ax, rows: pd.DataFrame, key: str, colour: str) -> None:
    """One line per combination of the other hyperparameters (and steps)."""
    hp = [parse_hparams(h) for h in rows["hparams"]]
    many_steps = rows["steps"].nunique() > 1
    frame = rows.assign(
        _x=[h.get(key) for h in hp],
        _rest=[
            short_hparams(json.dumps({k: v for k, v in h.items() if k != key}, sort_keys=True))
            + (f", steps={s}" if many_steps else "")
            for h, s in zip(hp, rows["steps"])
        ],
    )
    xs = [_as_float(v) for v in frame["_x"]]
    numeric = all(x is not None for x in xs)
    if not numeric:  # categorical values: evenly spaced positions
        cats = sorted({str(v) for v in frame["_x"]})
        frame["_x"] = [cats.index(str(v)) for v in frame["_x"]]
        ax.set_xticks(range(len(cats)), cats)
    else:
        frame["_x"] = xs
        pos = np.array(xs, dtype=float)
        if len(pos) and (pos > 0).all() and pos.max() / pos.min() >= 10:
            ax.set_xscale("log")
    lines = list(frame.groupby("_rest", sort=True))
    for i, (rest, group) in enumerate(lines):
        stats = group.groupby("_x")["value"].agg(["mean", "std"]).sort_index()
        ax.errorbar(
            stats.index,
            stats["mean"],
            yerr=stats["std"].fillna(0),
            color=colour,
            linestyle=SEED_STYLES[i % len(SEED_STYLES)],
            marker="o",
            capsize=2,
            label=rest,
        )
        ax.scatter(group["_x"], group["value"], s=8, color=colour, alpha=0.5)
    if len(lines) > 1:
        ax.legend(fontsize=6)
    ax.grid(alpha=0.3)


def _read_log(run_dir: str, cell_id: str) -> pd.DataFrame | None:
    return read_log(Path(run_dir) / "cells" / cell_id)


def training_curves(
    runs: pd.DataFrame, boards: list[Board], out: Path, colours: dict
) -> tuple[list[FigureFile], Notes]:
    figures, notes = [], []
    for board in boards:
        part = _board_runs(runs, board)
        for setting in _best(board):
            method, hparams, steps = setting
            cells = part[(part["method"] == method) & (part["hparams"] == hparams) & (part["steps"] == steps)]
            cells = cells[["cell_id", "run_dir", "seed"]].drop_duplicates("cell_id").sort_values("seed")
            logs = [(seed, _read_log(rd, cid)) for cid, rd, seed in cells.itertuples(index=False)]
            logs = [(seed, log) for seed, log in logs if log is not None]
            if not logs:
                notes.append(
                    f"{board.title}: no train_log.csv for {method} ({short_hparams(hparams, method)}); "
                    f"no training curves"
                )
                continue
            # the loss terms only: a GAN's diagnostics (gradient norms, R^2, accuracies) have their own figure
            losses = sorted({c for _, log in logs for c in loss_columns(log)}, key=lambda c: (c != "loss", c))
            if len(losses) > MAX_LOSSES:
                notes.append(
                    f"{board.title}: {method} logs {len(losses)} losses; curves show the first "
                    f"{MAX_LOSSES}: {', '.join(losses[:MAX_LOSSES])}"
                )
                losses = losses[:MAX_LOSSES]
            if not losses:
                continue
            fig = new_figure("curves")
            cols = min(3, len(losses))
            rows_n = int(np.ceil(len(losses) / cols))
            axes = fig.subplots(rows_n, cols, squeeze=False).ravel()
            for ax, loss in zip(axes, losses):
                for i, (seed, log) in enumerate(logs):
                    if loss in log.columns:  # one colour per method; seeds told apart by line style
                        ax.plot(
                            log["step"],
                            pd.to_numeric(log[loss], errors="coerce"),
                            color=colours[method],
                            linestyle=SEED_STYLES[i % len(SEED_STYLES)],
                            linewidth=1,
                            alpha=0.85,
                            label=f"seed {seed}",
                        )
                set_title(ax, loss, fontsize=9)
                ax.set_xlabel("step")
                ax.grid(alpha=0.3)
            for ax in axes[len(losses) :]:
                ax.set_visible(False)
            if len(logs) <= 6:
                axes[0].legend(fontsize=7)
            title = (
                f"{board.title}: training curves of {method} ({short_hparams(hparams, method)}), {len(logs)} seed(s)"
            )
            set_suptitle(fig, title, fontsize=10)
            fig.tight_layout()
            name = slug("curves", board.dataset, board.tag, method)
            figures.append(save(fig, out / f"{name}.png", "curves", title))
    return figures, notes


def rank_correlation(
    runs: pd.DataFrame, boards: list[Board], out: Path, colours: dict
) -> tuple[list[FigureFile], Notes]:
    figures, notes = [], []
    for board in boards:
        part = _board_runs(runs, board).dropna(subset=["value"])
        table = part.pivot_table(index="cell_id", columns="metric", values="value", aggfunc="mean")
        table = table[[m for m in board.metrics if m in table.columns]]
        if table.shape[0] < 3 or table.shape[1] < 2:
            notes.append(
                f"{board.title}: rank correlation needs >= 3 models and >= 2 metrics "
                f"(have {table.shape[0]} and {table.shape[1]})"
            )
            continue
        corr = table.corr(method="spearman", min_periods=3)
        fig = new_figure("rank_corr")
        ax = fig.add_subplot()
        image = ax.imshow(np.ma.masked_invalid(corr.to_numpy()), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_facecolor("#cccccc")
        labels = list(corr.columns)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        if len(labels) <= 12:
            for i in range(len(labels)):
                for j in range(len(labels)):
                    v = corr.iat[i, j]
                    ax.text(
                        j,
                        i,
                        "—" if pd.isna(v) else f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if not pd.isna(v) and abs(v) > 0.6 else "black",
                    )
        fig.colorbar(image, ax=ax, shrink=0.8)
        title = f"{board.title}: Spearman rank correlation of metrics over {table.shape[0]} models"
        title += _length_flag(part)
        set_title(ax, title, fontsize=9)
        fig.tight_layout()
        figures.append(save(fig, out / f"{slug('rankcorr', board.dataset, board.tag)}.png", "rank_corr", title))
    return figures, notes


LEARNING_METRICS = ("mig", "dci", "sap", "factor_vae", "beta_vae")


def _read_curves(part: pd.DataFrame) -> pd.DataFrame:
    """The curve points (step, metric, value) of the board's cells, from each cell's curve.csv."""
    from disentbench.bench.curve import read_curve

    frames = []
    cells = part[["cell_id", "run_dir", "method", "hparams", "seed"]].drop_duplicates("cell_id")
    for cell_id, run_dir, method, hparams, seed in cells.itertuples(index=False):
        points = read_curve(Path(run_dir) / "cells" / cell_id)
        if len(points):
            frames.append(points.assign(cell_id=cell_id, method=method, hparams=hparams, seed=seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _published_rows(board: Board, method: str, hparams: str) -> pd.DataFrame:
    """Published rows of `method` on the board's dataset, at our setting when the paper names one."""
    from disentbench.bench.report.published import load_published, parse_setting, setting_matches

    table = load_published()
    rows = table[(table["dataset"] == board.dataset) & (table["method"] == method)]
    keep = [(w := parse_setting(s)) is None or setting_matches(hparams, w) for s in rows["setting"]]
    return rows[keep]


def _published_lines(board: Board, metric: str, method: str, hparams: str) -> list[tuple[float, str]]:
    """Published values that stand on the curve of our `metric` key: like with like, the key that
    computes their variant (`our_metric`) on the codes they scored (the board's representation)."""
    from disentbench.bench.report.published import codes_wanted

    rows = _published_rows(board, method, hparams)
    out = []
    for rec in rows[rows["our_metric"] == metric].itertuples(index=False):
        if codes_wanted(rec.codes) in (None, board.representation):
            out.append((float(rec.value), f"{rec.source}, {rec.table}"))
    return out


def _curve_metrics(board: Board, points: pd.DataFrame) -> list[str]:
    """The curves to draw: the headline metrics, then any metric variant a published row of the
    board's dataset is computed by (`mig_infogancr`...), each only where the cells' curves hold it."""
    from disentbench.bench.report.published import load_published

    table = load_published()
    variants = sorted(set(table[table["dataset"] == board.dataset]["our_metric"]) - set(LEARNING_METRICS) - {""})
    held = set(points["metric"])
    return [m for m in (*LEARNING_METRICS, *variants) if m in held]


def _lines_not_drawn(board: Board, points: pd.DataFrame, shown: list[str]) -> list[str]:
    """One note per published row of a drawn method and metric that no drawn curve can stand beside
    (another variant or other codes), saying what would."""
    from disentbench.bench.report.published import codes_wanted

    notes = []
    for (method, hparams), _part in points.groupby(["method", "hparams"]):
        rows = _published_rows(board, method, hparams)
        for rec in rows[rows["metric"].isin(shown)].itertuples(index=False):
            codes = codes_wanted(rec.codes)
            if rec.our_metric in shown and codes in (None, board.representation):
                continue
            if rec.our_metric:
                on = f" on {codes} codes" if codes else ""
                why = f"its variant is `{rec.our_metric}`{on}, which these curves do not hold"
            else:
                why = f"no metric of ours computes its variant ({rec.unmatched})"
            notes.append(
                f"{board.title}: published {method} {rec.metric} {float(rec.value):.2f} ({rec.source}, {rec.table}) "
                f"is not drawn: {why}"
            )
    return sorted(set(notes))


def learning_curves(
    runs: pd.DataFrame, boards: list[Board], out: Path, colours: dict
) -> tuple[list[FigureFile], Notes]:
    """Each headline metric against training step, one line per cell (colour: method, style: seed),
    with the published values of the same method and setting as dashed horizontal lines."""
    figures, notes = [], []
    for board in boards:
        points = _read_curves(_board_runs(runs, board))
        if points.empty:
            continue
        shown = _curve_metrics(board, points)
        if not shown:
            notes.append(f"{board.title}: the learning curves hold none of {', '.join(LEARNING_METRICS)}")
            continue
        fig = new_figure("learning")
        axes = fig.subplots(1, len(shown), squeeze=False).ravel()
        for ax, metric in zip(axes, shown):
            rows = points[points["metric"] == metric]
            lines = set()
            for (_cell, method, hparams, seed), cell in rows.groupby(["cell_id", "method", "hparams", "seed"]):
                cell = cell.sort_values("step")
                style = SEED_STYLES[int(seed) % len(SEED_STYLES)]
                label = f"{method} ({short_hparams(hparams, method)}) s{seed}"
                ax.plot(cell["step"], cell["value"], style, marker="o", ms=3, color=colours[method], label=label)
                for value, _source in _published_lines(board, metric, method, hparams):
                    if (method, value) not in lines:
                        lines.add((method, value))
                        ax.axhline(value, color=colours[method], linestyle="--", linewidth=0.8, alpha=0.7)
            ax.set_xscale("log")
            set_title(ax, METRIC_LABELS.get(metric, metric), fontsize=9)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        notes += _lines_not_drawn(board, points, shown)
        title = f"{board.title}: metrics against training step (dashed: published, same variant and codes)"
        set_suptitle(fig, title, fontsize=10)
        fig.tight_layout()
        figures.append(save(fig, out / f"{slug('learning', board.dataset, board.tag)}.png", "learning", title))
    return figures, notes


ALL_SCORE_PLOTS = (paper_figure, score_distributions, sensitivity, rank_correlation, learning_curves, training_curves)
