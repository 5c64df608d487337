"""Published numbers beside ours: the literature's scores as external reference rows.

A score means little until a reader can set it next to what papers report. `data/published.csv`
holds published numbers as facts with their source (paper and table), what each number is (best
reported, mean of N runs), its spread and training length when stated. The reports show them next
to our mean for the same method (at the same setting when the paper names one and we ran it, else
our best setting per method), marked external and never ranked or marked best: the papers used
their own architectures, training lengths and data files, so a gap is a prompt to look, not a
verdict.
"""

from __future__ import annotations

from importlib import resources
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd

from disentbench.bench.errors import BenchError
from disentbench.bench.report.length import reference_steps
from disentbench.bench.report.runs import parse_hparams, short_hparams

COLUMNS = (
    "method",
    "setting",
    "dataset",
    "metric",
    "value",
    "spread",
    "statistic",
    "runs",
    "steps",
    "source",
    "table",
    "caveat",
)
CSV_NAME = "published_beside_ours.csv"
CAVEAT = (
    "External numbers from papers, shown for orientation and never ranked: the papers used their own "
    "architectures, training lengths and data files, so a gap is a prompt to look, not a verdict."
)


def load_published(path: Path | None = None) -> pd.DataFrame:
    """The published-numbers table (the bundled one unless `path` is given), checked for its columns."""
    if path is None:
        text = resources.files("disentbench.bench.report").joinpath("data/published.csv").read_text("utf-8")
        frame = pd.read_csv(StringIO(text), dtype={"setting": str, "steps": str})
        where = "the bundled published.csv"
    else:
        frame = pd.read_csv(path, dtype={"setting": str, "steps": str})
        where = str(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise BenchError(f"{where}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    frame["setting"] = frame["setting"].fillna("")
    frame["value"] = pd.to_numeric(frame["value"], errors="raise")
    frame["spread"] = pd.to_numeric(frame["spread"], errors="coerce")
    return frame


def parse_setting(text: str) -> dict[str, float] | None:
    """`gamma=10` -> {"gamma": 10.0}; None when the setting is a description (e.g. "modified")."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return None
        try:
            out[key.strip()] = float(value)
        except ValueError:
            return None
    return out


def setting_matches(hparams: str, wanted: dict[str, float]) -> bool:
    hp = parse_hparams(hparams)
    for key, value in wanted.items():
        try:
            if key not in hp or float(hp[key]) != value:
                return False
        except (TypeError, ValueError):
            return False
    return True


def _ours(settings: pd.DataFrame, best: pd.DataFrame, method: str, metric: str, setting: str) -> dict | None:
    """Our mean for the published row: the same setting when named and run, else our best setting."""
    wanted = parse_setting(setting)
    rows = settings[(settings["method"] == method) & (settings["metric"] == metric)]
    how = "same setting"
    if wanted is not None:
        rows = rows[[setting_matches(h, wanted) for h in rows["hparams"]]]
    if wanted is None or rows.empty:
        rows = best[(best["method"] == method) & (best["metric"] == metric)]
        how = "our best setting" if wanted is None else "our best setting (the paper's setting was not run)"
    if rows.empty:
        return None
    r = rows.iloc[0]
    return {
        "our_hparams": short_hparams(r["hparams"], method),
        "our_steps": int(r["steps"]),
        "our_mean": float(r["mean"]),
        "our_std": float(r["std"]) if pd.notna(r["std"]) else np.nan,
        "our_n": int(r["n"]),
        "matched": how,
    }


def beside_ours(board, published: pd.DataFrame) -> tuple[list[dict], list[str]]:
    """Rows (published + ours) for one leaderboard board, and notes on what has no row."""
    rows, notes = [], []
    part = published[published["dataset"] == board.dataset]
    ran = set(board.settings["method"])
    for rec in part.itertuples(index=False):
        if rec.method not in ran:
            continue
        ours = _ours(board.settings, board.best, rec.method, rec.metric, rec.setting)
        if ours is None:
            continue
        rows.append(
            {
                "dataset": board.dataset,
                "data_source": board.data_source,
                "method": rec.method,
                "metric": rec.metric,
                "published_setting": rec.setting,
                "published_value": float(rec.value),
                "published_spread": float(rec.spread) if pd.notna(rec.spread) else np.nan,
                "published_statistic": rec.statistic,
                "published_steps": rec.steps if isinstance(rec.steps, str) else "",
                "source": f"{rec.source}, {rec.table}",
                "caveat": rec.caveat,
                **ours,
            }
        )
    absent = sorted(set(part["method"]) - ran)
    if absent:
        notes.append(f"published rows for methods not run here: {', '.join(absent)}")
    if len(part) and board.data_source != "official":
        notes.append(f"our {board.dataset} is the {board.data_source} data, the papers' the official file")
    return rows, notes


def steps_text(method: str, steps: int) -> str:
    ref = reference_steps(method)
    if ref is not None and steps < ref:
        return f"{steps:,} of {ref:,}"
    return f"{steps:,}"


def display_rows(rows: list[dict]) -> list[dict]:
    """The rows as table cells for the markdown and the HTML (one format for both)."""
    out = []
    for r in rows:
        spread = "" if np.isnan(r["published_spread"]) else f" ± {r['published_spread']:.2f}"
        std = "—" if np.isnan(r["our_std"]) else f"{r['our_std']:.3f}"
        out.append(
            {
                "method": r["method"],
                "metric": r["metric"],
                "published (external)": f"{r['published_value']:.2f}{spread}",
                "what it is": r["published_statistic"],
                "published setting": r["published_setting"] or "—",
                "ours": f"{r['our_mean']:.3f} ± {std} (n={r['our_n']})",
                "our setting": f"{r['our_hparams']} ({r['matched']})",
                "our steps": steps_text(r["method"], r["our_steps"]),
                "source": r["source"],
                "caveat": r["caveat"],
            }
        )
    return out


def published_tables(boards, published: pd.DataFrame | None = None) -> list[tuple[str, list[dict], list[str]]]:
    """(board title, rows as `beside_ours` gives them, notes) for every board with published rows;
    by default the bundled published numbers and the zoo's models (bench/zoo.py)."""
    if published is None:
        from disentbench.bench.zoo import published_rows

        zoo = published_rows()
        published = pd.concat([load_published(), zoo], ignore_index=True) if len(zoo) else load_published()
    out = []
    for board in boards:
        rows, notes = beside_ours(board, published)
        if rows or notes:
            out.append((board.title, rows, notes))
    return out


def write_published(tables: list[tuple[str, list[dict], list[str]]], out_dir: Path) -> pd.DataFrame:
    """Write the tidy published-beside-ours CSV (one row per published number we can set ours beside)."""
    frame = pd.DataFrame([r for _, rows, _ in tables for r in rows])
    frame.to_csv(Path(out_dir) / CSV_NAME, index=False)
    return frame


def render_markdown(tables: list[tuple[str, list[dict], list[str]]]) -> list[str]:
    """The leaderboard.md section (empty when no board has published rows)."""
    if not tables:
        return []
    out = ["## Published numbers beside ours (external, not ranked)", "", CAVEAT, ""]
    for title, rows, notes in tables:
        out += [f"### {title}", ""]
        if rows:
            cells = display_rows(rows)
            header = list(cells[0])
            out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            out += ["| " + " | ".join(str(r[h]).replace("|", "\\|") for h in header) + " |" for r in cells]
            out.append("")
        out += [f"_Note: {n}._" for n in notes] + ([""] if notes else [])
    return out
