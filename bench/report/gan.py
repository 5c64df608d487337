"""Figures of the GAN family (DiD, InfoGAN, InfoGAN-CR): what their losses alone cannot show.

From a cell's train_log.csv: every loss term, the norm of the gradient each term of the generator's
objective sends to the generator (which term drives G), the encoder's R^2 on generated data per
dimension, and the pair classifier's accuracy against chance (`diagnostics_figure`). From a
checkpoint: a grid of generated samples and a generator traversal (`samples_figure`,
`generator_traversal_figure`), both from fixed seeds so two checkpoints of a run are comparable.
`gan_pictures` draws them for the models a report shows, like `models.model_pictures`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from disentbench.bench.report.leaderboard import Board
from disentbench.bench.report.runs import short_hparams
from disentbench.bench.report.style import DPI, FigureFile, save, set_suptitle, set_title, slug

SAMPLE_SEED = 0  # the same prior draws for every checkpoint
SAMPLES = 64  # 8 x 8
TRAVERSAL_STEPS = 10
SIZES = {"gan_diagnostics": (12.0, 7.0), "gan_samples": (6.0, 6.4), "gan_traversal": (8.0, 8.0)}
#: logged columns that are diagnostics, not loss terms
DIAGNOSTIC_PREFIXES = (
    "grad_g_", "r2_", "h_centroid_acc", "cr_acc_held", "image_std", "image_mean", "saturated", "pair_diff",
    "h_weight", "w_h", "cr_weight",
)  # fmt: skip
#: how much generated images vary, drawn on a log axis beside the accuracies
VARIATION_COLUMNS = ("image_std", "pair_diff")
ACCURACY_COLUMNS = ("h_centroid_acc", "cr_acc_held", "cr_acc")
#: section titles of the HTML report for the kinds of figure drawn here
KIND_TITLES = {
    "gan_diagnostics": "GAN diagnostics: loss terms, gradients reaching the generator, encoder R^2, pair accuracy",
    "gan_samples": "GAN generated samples",
    "gan_traversal": "GAN generator traversals",
}


def is_gan(method_name: str) -> bool:
    """Whether a registered method is of the GAN family (unknown names are not)."""
    from disentbench import methods
    from disentbench.errors import BenchError
    from disentbench.methods.gan import GANMethod

    try:
        return issubclass(methods.get(method_name), GANMethod)
    except BenchError:
        return False


def _figure(kind: str) -> Figure:
    return Figure(figsize=SIZES[kind], dpi=DPI)


def _numeric(log: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(log[column], errors="coerce").to_numpy(dtype=float)


def loss_columns(log: pd.DataFrame) -> list[str]:
    """The logged loss terms: every column but the step, the clock and the diagnostics."""
    skip = {"step", "elapsed_seconds"}
    return [c for c in log.columns if c not in skip and not c.startswith(DIAGNOSTIC_PREFIXES)]


def per_dimension_r2(log: pd.DataFrame) -> list[str]:
    """r2_<name>_<k> columns (one per code dimension), in k order."""
    cols = [c for c in log.columns if c.startswith("r2_") and c.rsplit("_", 1)[-1].isdigit()]
    return sorted(cols, key=lambda c: int(c.rsplit("_", 1)[-1]))


def diagnostics_figure(log: pd.DataFrame, out: Path, title: str) -> FigureFile | None:
    """Four panels from a GAN's train_log.csv: loss terms (symlog), gradient norms reaching G (log),
    R^2 of the recovered codes per dimension, pair-classifier accuracy against chance and how much
    the generated images vary. None when the log has no diagnostics (a method outside the family)."""
    grads = [c for c in log.columns if c.startswith("grad_g_")]
    if "step" not in log.columns or not grads:
        return None
    step = _numeric(log, "step")
    fig = _figure("gan_diagnostics")
    (ax_loss, ax_grad), (ax_r2, ax_acc) = fig.subplots(2, 2)
    for c in loss_columns(log):
        ax_loss.plot(step, _numeric(log, c), label=c, linewidth=1)
    ax_loss.set_yscale("symlog", linthresh=1e-2)
    set_title(ax_loss, "loss terms (window means)", fontsize=9)
    for c in grads:
        values = _numeric(log, c)
        ax_grad.plot(step, np.where(values > 0, values, np.nan), label=c.removeprefix("grad_g_"), linewidth=1)
    ax_grad.set_yscale("log")
    set_title(ax_grad, "gradient norm each term sends to G (weighted as G gets it)", fontsize=9)
    dims = per_dimension_r2(log)
    for c in dims:
        ax_r2.plot(step, _numeric(log, c), color="0.6", linewidth=0.7)
    means = [c for c in log.columns if c.startswith("r2_") and c.endswith("_mean")]
    for c in means:
        ax_r2.plot(step, _numeric(log, c), color="k", linewidth=1.6, label=f"{c} (grey: each dimension)")
    ax_r2.axhline(0, color="0.3", linestyle=":", linewidth=0.8)
    ax_r2.set_ylim(-0.2, 1.05)
    set_title(ax_r2, "encoder's R^2 on generated data (held codes)", fontsize=9)
    accs = [c for c in ACCURACY_COLUMNS if c in log.columns]
    for c in accs:
        ax_acc.plot(step, _numeric(log, c), label=c, linewidth=1.2)
    if accs and dims:
        ax_acc.axhline(1 / len(dims), color="0.3", linestyle=":", linewidth=0.8, label=f"chance 1/{len(dims)}")
    ax_acc.set_ylim(0, 1.05)
    set_title(ax_acc, "pair classifier: which dimension (held pairs); grey: image variation", fontsize=9)
    variation = [c for c in VARIATION_COLUMNS if c in log.columns]
    if variation:
        twin = ax_acc.twinx()
        for c, style in zip(variation, ("--", ":")):
            values = _numeric(log, c)
            twin.plot(step, np.where(values > 0, values, np.nan), color="tab:gray", linestyle=style, label=c)
        twin.set_yscale("log")
        twin.tick_params(labelsize=7)
        twin.set_ylabel("variation of generated images", fontsize=7)
        twin.legend(fontsize=6, loc="lower right")
    for ax in (ax_loss, ax_grad, ax_r2, ax_acc):
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="upper left")
    set_suptitle(fig, title, fontsize=10)
    fig.subplots_adjust(left=0.06, right=0.93, bottom=0.08, top=0.9, wspace=0.28, hspace=0.35)  # fixed: fast
    return save(fig, out, "gan_diagnostics", title)


def _tile(images: np.ndarray, rows: int, cols: int, pad: int = 2) -> np.ndarray:
    """(rows*cols, C, H, W) in [0, 1] -> (H', W', C) with white separators."""
    _, c, h, w = images.shape
    grid = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad, c), dtype=np.float32)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = img.transpose(1, 2, 0)
    return grid


def _show(ax, grid: np.ndarray) -> None:
    if grid.shape[2] == 1:
        ax.imshow(grid[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(grid, 0, 1), interpolation="nearest")


def _device(method) -> torch.device:
    return next(method.parameters()).device


def samples_figure(method, out: Path, title: str, seed: int = SAMPLE_SEED) -> FigureFile:
    """An 8 x 8 grid of images generated from prior inputs drawn with `seed`."""
    generator = torch.Generator(device=_device(method)).manual_seed(seed)
    images = method.sample(SAMPLES, generator).float().clamp(0, 1).cpu().numpy()
    fig = _figure("gan_samples")
    ax = fig.add_subplot()
    _show(ax, _tile(images, 8, 8))
    ax.set_axis_off()
    set_title(ax, title, fontsize=8)
    fig.tight_layout()
    return save(fig, out, "gan_samples", title)


def traversal_inputs(method, seed: int = SAMPLE_SEED, steps: int = TRAVERSAL_STEPS) -> tuple[torch.Tensor, np.ndarray]:
    """Generator inputs (latent_dim * steps, input width): one prior draw (from `seed`) with code d
    swept over the method's prior range in rows d*steps .. (d+1)*steps - 1 (noise inputs kept); and
    the swept values."""
    generator = torch.Generator(device=_device(method)).manual_seed(seed)
    base = method.sample_inputs(1, generator, _device(method))
    lo, hi = method.traversal[1]
    values = np.linspace(float(lo), float(hi), steps)
    z = base.repeat(method.latent_dim * steps, 1)
    for d in range(method.latent_dim):
        z[d * steps : (d + 1) * steps, d] = torch.as_tensor(values, dtype=z.dtype, device=z.device)
    return z, values


def generator_traversal_figure(method, out: Path, title: str, seed: int = SAMPLE_SEED) -> FigureFile:
    """One row per code: G's images as that code sweeps its prior range, the rest of one prior draw fixed."""
    z, values = traversal_inputs(method, seed)
    method.eval()
    with torch.no_grad():
        images = method.generate(z).float().clamp(0, 1).cpu().numpy()
    d = method.latent_dim
    fig = _figure("gan_traversal")
    ax = fig.add_subplot()
    _show(ax, _tile(images, d, TRAVERSAL_STEPS))
    h = images.shape[2] + 2
    ax.set_yticks([i * h + h / 2 - 1 for i in range(d)], [f"c{i}" for i in range(d)], fontsize=7)
    ax.set_xticks([])
    full = f"{title}\ngenerator traversal: one row per code, {values[0]:g} to {values[-1]:g}, one prior draw fixed"
    set_title(ax, full, fontsize=8)
    fig.tight_layout()
    return save(fig, out, "gan_traversal", full)


def read_log(cell_dir: Path) -> pd.DataFrame | None:
    path = Path(cell_dir) / "train_log.csv"
    if not path.is_file():
        return None
    try:
        log = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None
    return log if "step" in log.columns and len(log) else None


def gan_cell_figures(cell_dir: Path, out: Path, name: str, label: str) -> tuple[list[FigureFile], list[str]]:
    """The diagnostics figure (from train_log.csv) and the samples and traversal (from checkpoint.pt)
    of one cell, as gan_<kind>_<name>.png in out; notes for what is missing."""
    cell_dir, figures, notes = Path(cell_dir), [], []
    base = slug(name)
    log = read_log(cell_dir)
    drawn = None if log is None else diagnostics_figure(log, out / f"gan_diagnostics_{base}.png", label)
    if drawn is None:
        notes.append(f"GAN diagnostics of {name} not drawn: no train_log.csv with diagnostics")
    else:
        figures.append(drawn)
    checkpoint = cell_dir / "checkpoint.pt"
    if not checkpoint.is_file():
        return figures, notes + [f"generated samples of {name} not drawn: no checkpoint.pt"]
    try:
        from disentbench.bench.checkpoint import load_method

        method, state = load_method(checkpoint)
    except Exception as exc:  # one broken cell must not stop the report
        return figures, notes + [f"generated samples of {name} skipped: {type(exc).__name__}: {str(exc)[:200]}"]
    at = f"{label}, step {state.get('step', '?')}"
    figures.append(samples_figure(method, out / f"gan_samples_{base}.png", f"{at}\ngenerated samples (fixed seed)"))
    figures.append(generator_traversal_figure(method, out / f"gan_traversal_{base}.png", at))
    return figures, notes


def gan_pictures(
    runs: pd.DataFrame, boards: list[Board], out: Path, all_models: bool = False
) -> tuple[list[FigureFile], list[str]]:
    """GAN figures of the models a report shows (the same selection as `models.model_pictures`)."""
    from disentbench.bench.report.models import representative_cells

    figures, notes = [], []
    cells = representative_cells(runs, boards, all_models)
    for row in cells.itertuples(index=False):
        if not is_gan(row.method):
            continue
        label = f"{row.dataset} {row.method} ({short_hparams(row.hparams, row.method)}) seed {row.seed}"
        files, why = gan_cell_figures(Path(row.run_dir) / "cells" / row.cell_id, out, str(row.cell_id), label)
        figures += files
        notes += why
    return figures, notes
