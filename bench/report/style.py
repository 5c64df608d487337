"""Shared look of every figure: one fixed colour per method, fixed figure sizes, file naming.

Figures are built on `matplotlib.figure.Figure` directly (Agg rendering, no pyplot), so building
a report never changes the caller's matplotlib backend or global state. Sizes are fixed per kind so
the PNGs have predictable pixel sizes (width x height = figsize x DPI). Titles are set through
`set_title` and `set_suptitle`, which wrap a long title so that every line fits the width it is
drawn over (measured from the widest glyph of the title at its font size), never cut off at the
figure's edges.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path

DPI = 100

#: inches per kind of figure; pixels = inches x DPI
FIGSIZE: dict[str, tuple[float, float]] = {
    "scores": (7.0, 4.0),  # distribution over seeds per method, one dataset x metric
    "paper": (12.0, 4.0),  # MIG, DCI, SAP side by side, one dataset
    "sensitivity": (12.0, 3.5),  # metric against a swept hyperparameter, one dataset x method
    "curves": (12.0, 6.0),  # every logged loss against step, one dataset x method
    "learning": (12.0, 4.0),  # metrics against training step (score_steps), one dataset, methods together
    "rank_corr": (7.0, 6.0),  # Spearman correlation between metrics, one dataset
    "traversal": (8.0, 8.0),  # latent traversals of one trained model
    "recon": (8.0, 2.6),  # inputs and reconstructions of one trained model
}

#: fixed colours of the known methods (the same in every figure and every report)
FIXED_COLOURS: dict[str, str] = {
    "vae": "#7f7f7f",
    "betavae": "#1f77b4",
    "factorvae": "#ff7f0e",
    "betatcvae": "#2ca02c",
    "annealedvae": "#9467bd",
    "dipvae1": "#8c564b",
    "dipvae2": "#e377c2",
    "did": "#d62728",
}
#: other methods take these in order of their sorted names
CYCLE = (
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
)


def method_colours(methods) -> dict[str, str]:
    """Colour of every method: the fixed one when known, else the next in CYCLE by sorted name."""
    out = {m: FIXED_COLOURS[m] for m in methods if m in FIXED_COLOURS}
    unknown = sorted(set(methods) - set(out))
    out.update({m: CYCLE[i % len(CYCLE)] for i, m in enumerate(unknown)})
    return out


@dataclass
class FigureFile:
    """A written PNG with what the HTML report shows about it."""

    path: Path
    kind: str
    title: str


def new_figure(kind: str) -> Figure:
    return Figure(figsize=FIGSIZE[kind], dpi=DPI)


def save(fig: Figure, path: Path, kind: str, title: str) -> FigureFile:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")  # no bbox_inches="tight": keep the fixed pixel size
    return FigureFile(path, kind, title)


#: fraction of the available width a title line may take (a margin on each side)
TITLE_MARGIN = 0.96


@lru_cache(maxsize=4096)
def glyph_width_px(char: str, fontsize: float) -> float:
    """Advance width in pixels of one character drawn at `fontsize` points (the default font)."""
    width, _, _ = text_to_path.get_text_width_height_descent(char, FontProperties(size=fontsize), ismath=False)
    return width * DPI / 72.0


def max_glyph_px(text: str, fontsize: float) -> float:
    """The widest character of `text` at `fontsize`: an upper bound of any of its characters' width."""
    return max((glyph_width_px(c, float(fontsize)) for c in set(text) if not c.isspace()), default=1.0)


def wrap_title(text: str, width_px: float, fontsize: float) -> str:
    """`text` with every line (its own line breaks kept) wrapped so that line length x the widest
    glyph fits `width_px`: no line can be wider than the room it is drawn in."""
    room = max(8, int(width_px * TITLE_MARGIN // max_glyph_px(text, fontsize)))
    return "\n".join(
        "\n".join(textwrap.wrap(line, room, break_long_words=True, break_on_hyphens=False)) or line
        for line in text.split("\n")
    )


def _fontsize(value: float | str | None, default: float) -> float:
    return float(FontProperties(size=value if value is not None else default).get_size_in_points())


def set_suptitle(fig: Figure, text: str, fontsize: float | str | None = None):
    """`fig.suptitle(text)` wrapped to the figure's width."""
    size = _fontsize(fontsize, 12.0)  # matplotlib's figure.titlesize default ("large")
    return fig.suptitle(wrap_title(text, fig.get_figwidth() * DPI, size), fontsize=size)


def set_title(ax, text: str, fontsize: float | str | None = None):
    """`ax.set_title(text)` wrapped to the width of the axes' grid column(s) (the figure's for one axes)."""
    size = _fontsize(fontsize, 12.0)  # matplotlib's axes.titlesize default ("large")
    width = ax.figure.get_figwidth() * DPI
    spec = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
    if spec is not None:
        width *= len(spec.colspan) / spec.get_gridspec().ncols
    return ax.set_title(wrap_title(text, width, size), fontsize=size)


def slug(*parts: object) -> str:
    """A safe file name from parts: lowercase letters, digits, '-', '_' and '.'."""
    text = "_".join(str(p) for p in parts)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower() or "figure"
