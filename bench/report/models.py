"""Pictures of trained models, rebuilt from their checkpoints: latent traversals and
reconstructions next to their inputs.

By default one representative model per dataset and method is drawn: the best setting's seed with
the median score on the ranking metric (not the best seed, to avoid cherry-picking); `all_models`
draws every checkpoint. A cell without a checkpoint (or whose dataset cannot be built) is skipped
with a note. Traversals: one row per latent, ten values; ("sigma", s) sweeps each latent over
mean ± s std of the codes of real images (others held at the mean code); ("prior", (lo, hi))
sweeps over that range (DiD's uniform prior). Each traversal is also an animated GIF
(`traversal_gif`): frame j shows every latent at its j-th value, side by side, so the animation
sweeps all latents at once, one step per frame.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from disentbench.bench.report.leaderboard import SETTING, Board
from disentbench.bench.report.runs import short_hparams
from disentbench.bench.report.style import FigureFile, new_figure, save, set_title, slug
from disentbench.errors import BenchError

STEPS = 10  # traversal values per latent
GIF_FRAME_MS = 200  # how long each traversal step is shown in the GIF
N_REAL = 256  # real images for the code statistics
N_RECON = 8  # reconstructions shown
IMAGE_SEED = 0  # the real images are the same for every model of a dataset


def representative_cells(runs: pd.DataFrame, boards: list[Board], all_models: bool = False) -> pd.DataFrame:
    """cell_id, run_dir, dataset, data_source, method, hparams, seed of the models to draw."""
    cols = ["cell_id", "run_dir", "dataset", "data_source", "method", "hparams", "seed"]
    if all_models:
        return runs[cols].drop_duplicates("cell_id").sort_values(["dataset", "method", "hparams", "seed"])
    picked = []
    for board in boards:
        part = board.rows(runs)
        for method, hparams, steps in board.best[SETTING].drop_duplicates().itertuples(index=False):
            cells = part[(part["method"] == method) & (part["hparams"] == hparams) & (part["steps"] == steps)]
            scored = cells[cells["metric"] == board.rank_metric].dropna(subset=["value"]).sort_values(["value", "seed"])
            if scored.empty:
                scored = cells.drop_duplicates("cell_id").sort_values("seed")
            picked.append(scored.iloc[(len(scored) - 1) // 2][cols])
    return pd.DataFrame(picked, columns=cols).reset_index(drop=True)


def _cell_config(cell_dir: Path, row: pd.Series) -> dict:
    path = cell_dir / "config.json"
    try:
        config = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        config = {}
    config.setdefault("dataset", row["dataset"])
    config.setdefault("data_source", row["data_source"])
    return config


def _dataset(config: dict):
    """The cell's dataset; the procedural stand-in (said in the title) when the official file is missing."""
    from disentbench import datasets

    source = config.get("data_source", "procedural")
    try:
        return datasets.create(config["dataset"], source=source), f"data: {source}"
    except BenchError:
        if source == "procedural":
            raise
        return datasets.create(
            config["dataset"], source="procedural"
        ), f"data: procedural stand-in ({source} file missing)"


def _grid(images: np.ndarray, rows: int, cols: int, pad: int = 2) -> np.ndarray:
    """(rows*cols, C, H, W) in [0, 1] -> one (H', W', C) image with white separators."""
    n, c, h, w = images.shape
    out = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad, c), dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = images[i].transpose(1, 2, 0)
    return out


def _show(ax, grid: np.ndarray) -> None:
    if grid.shape[2] == 1:
        ax.imshow(grid[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(grid, 0, 1), interpolation="nearest")


def traversal_codes(codes: np.ndarray, traversal: tuple, steps: int = STEPS) -> tuple[np.ndarray, np.ndarray]:
    """(latent_dim * steps, latent_dim) codes: row d*steps + j varies latent d to its j-th value;
    and the (latent_dim, steps) swept values."""
    mean = codes.mean(axis=0)
    kind, arg = traversal
    d = codes.shape[1]
    if kind == "sigma":
        std = codes.std(axis=0)
        values = mean[:, None] + np.linspace(-float(arg), float(arg), steps)[None, :] * std[:, None]
    elif kind == "prior":
        lo, hi = arg
        values = np.tile(np.linspace(float(lo), float(hi), steps), (d, 1))
    else:
        raise BenchError(
            f"unknown traversal kind {kind!r}; a method's `traversal` is ('sigma', s) or ('prior', (lo, hi))"
        )
    z = np.repeat(mean[None, :], d * steps, axis=0)
    for i in range(d):
        z[i * steps : (i + 1) * steps, i] = values[i]
    return z, values


def traversal_images(method, x: torch.Tensor, device: str = "cpu") -> tuple[np.ndarray, np.ndarray, tuple]:
    """Decoded traversals (latent_dim * STEPS, C, H, W), the swept values (latent_dim, STEPS) and
    the method's traversal rule, for real images x."""
    traversal = tuple(getattr(method, "traversal", ("sigma", 2.0)))
    with torch.no_grad():
        codes = method.encode(x.to(device)).float().cpu().numpy()
        z, values = traversal_codes(codes, traversal)
        images = method.decode(torch.as_tensor(z, dtype=torch.float32, device=device)).float().cpu().numpy()
    return images, values, traversal


def traversal_gif(images: np.ndarray, latents: int, path: Path, steps: int = STEPS) -> Path:
    """An animated GIF of decoded traversals (latents * steps, C, H, W) in [0, 1]: `steps` frames,
    frame j the row of every latent at its j-th value (white separators), looping forever.
    Grey images are written as 8-bit grey, colour ones with a per-frame adaptive palette."""
    from PIL import Image

    images = np.clip(images, 0, 1)
    frames = []
    for j in range(steps):
        row = _grid(images[j::steps][:latents], 1, latents)
        pixels = np.round(row * 255).astype(np.uint8)
        if pixels.shape[2] == 1:
            frames.append(Image.fromarray(pixels[:, :, 0]))
        else:
            frames.append(Image.fromarray(np.ascontiguousarray(pixels[:, :, :3])).quantize(colors=256))
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=GIF_FRAME_MS, loop=0)
    return path


def draw_model(
    method, x: np.ndarray | torch.Tensor, out: Path, name: str, label: str, device: str = "cpu"
) -> list[FigureFile]:
    """Traversal and reconstruction figures of one model on real images x (n, C, 64, 64); files are
    traversal_<name>.png, its animation traversal_<name>.gif and recon_<name>.png."""
    x = torch.as_tensor(x, dtype=torch.float32, device=device)
    images, values, traversal = traversal_images(method, x, device)
    with torch.no_grad():
        recon = method.decode(method.encode(x[:N_RECON])).float().cpu().numpy()
    d = values.shape[0]
    fig = new_figure("traversal")
    ax = fig.add_subplot()
    _show(ax, _grid(np.clip(images, 0, 1), d, STEPS))
    h = images.shape[2] + 2
    ax.set_yticks(
        [i * h + h / 2 - 1 for i in range(d)],
        [f"z{i} [{values[i, 0]:.2g}, {values[i, -1]:.2g}]" for i in range(d)],
        fontsize=7,
    )
    ax.set_xticks([])
    span = f"mean ± {traversal[1]} std of real codes" if traversal[0] == "sigma" else f"prior range {traversal[1]}"
    title_t = f"{label}\ntraversals: one row per latent, {STEPS} values over {span}"
    set_title(ax, title_t, fontsize=8)
    fig.tight_layout()
    base = slug(name)
    files = [save(fig, out / f"traversal_{base}.png", "traversal", title_t)]
    title_g = f"{label}\nanimated traversals: frame j shows latents z0..z{d - 1} (left to right) at value j of {STEPS}"
    files.append(FigureFile(traversal_gif(images, d, out / f"traversal_{base}.gif"), "traversal_gif", title_g))
    fig = new_figure("recon")
    ax = fig.add_subplot()
    n = min(N_RECON, len(recon))
    both = np.concatenate([x[:n].cpu().numpy(), np.clip(recon[:n], 0, 1)])
    _show(ax, _grid(both, 2, n))
    ax.set_yticks([33, 99], ["input", "recon"], fontsize=8)
    ax.set_xticks([])
    title_r = f"{label}\nreconstructions (bottom) of real inputs (top)"
    set_title(ax, title_r, fontsize=8)
    fig.tight_layout()
    files.append(save(fig, out / f"recon_{base}.png", "recon", title_r))
    return files


def model_pictures(
    runs: pd.DataFrame,
    boards: list[Board],
    out: Path,
    all_models: bool = False,
    device: str = "cpu",
    n_real: int = N_REAL,
) -> tuple[list[FigureFile], list[str]]:
    """Draw every selected model that has a checkpoint; note every one that is skipped."""
    figures, notes = [], []
    cells = representative_cells(runs, boards, all_models)
    missing = [
        r for _, r in cells.iterrows() if not (Path(r["run_dir"]) / "cells" / r["cell_id"] / "checkpoint.pt").is_file()
    ]
    if missing:
        names = ", ".join(str(r["cell_id"]) for r in missing[:5]) + (" ..." if len(missing) > 5 else "")
        notes.append(f"pictures of {len(missing)} model(s) skipped: no checkpoint.pt ({names})")
    todo = [r for _, r in cells.iterrows() if not any(r["cell_id"] == m["cell_id"] for m in missing)]
    if not todo:
        return figures, notes
    try:
        from disentbench.bench.checkpoint import load_method
    except ImportError as exc:
        return figures, notes + [f"pictures of models skipped: bench.checkpoint unavailable ({exc})"]
    images: dict[tuple, tuple] = {}
    for row in todo:
        cell_dir = Path(row["run_dir"]) / "cells" / row["cell_id"]
        config = _cell_config(cell_dir, row)
        key = (config["dataset"], config.get("data_source"))
        try:
            if key not in images:
                ds, data_note = _dataset(config)
                rng = np.random.default_rng(IMAGE_SEED)
                images[key] = (ds.observations(ds.sample_factors(n_real, rng)).cpu(), data_note)
            x, data_note = images[key]
            method, _ = load_method(cell_dir / "checkpoint.pt", device=device)
        except Exception as exc:  # one broken cell must not stop the report
            notes.append(
                f"pictures of {row['cell_id']} skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            )
            continue
        label = (
            f"{row['dataset']} {row['method']} ({short_hparams(row['hparams'], row['method'])}) seed {row['seed']}, "
            f"{data_note}, cell {row['cell_id']}"
        )
        figures += draw_model(method, x, out, str(row["cell_id"]), label, device)
    return figures, notes
