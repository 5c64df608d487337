"""report.html: one self-contained file (inline CSS, figures as base64 PNG data URIs, no script,
no external resource), so it can be mailed, archived, and opened offline with JavaScript off."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from disentbench.bench.report.claims import (
    ABLATION_TITLE,
    BEST_TITLE,
    DIST_TITLE,
    ClaimTables,
    claim_text,
    explanation,
)
from disentbench.bench.report.gan import KIND_TITLES as GAN_KIND_TITLES
from disentbench.bench.report.leaderboard import (
    HEADLINE_TITLE,
    NO_SECONDARY,
    SECONDARY_NOTE,
    SECONDARY_TITLE,
    Board,
    best_title,
    layout_text,
    wide_rows,
)
from disentbench.bench.report.published import CAVEAT, display_rows, published_tables
from disentbench.bench.report.style import FigureFile

KIND_TITLES = {
    "paper": "The DiD paper's figure: MIG, DCI disentanglement and SAP",
    "scores": "Distribution over seeds per method",
    "sensitivity": "Hyperparameter sensitivity",
    "rank_corr": "Rank correlation between metrics",
    "learning": "Learning curves: metrics against training step (dashed: published values)",
    "curves": "Training curves",
    "traversal": "Latent traversals (still grid, and animated: one frame per step)",
    "recon": "Reconstructions",
    **GAN_KIND_TITLES,
}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1300px;
padding:0 1em;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f2}
td.best{font-weight:bold;background:#fff6d5}
figure{display:inline-block;margin:0.5em;vertical-align:top;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:0.8em;color:#555;max-width:800px}
pre{background:#f7f7f7;padding:0.5em;overflow-x:auto;font-size:0.8em}
.note{color:#8a4b00}
.verdict-supported{color:#1a7f37;font-weight:bold}
.verdict-not{color:#b42318;font-weight:bold}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[tuple[str, str]]], css_class: str) -> str:
    """rows of (text, td class) cells."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="{c}">{_e(t)}</td>' if c else f"<td>{_e(t)}</td>" for t, c in row) + "</tr>"
        for row in rows
    )
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def leaderboard_html(boards: list[Board], primary_metric: str) -> str:
    parts = [
        f"<p>Mean ± std over seeds (n = seeds; std with ddof=1, — for one seed). Bold: best of the "
        f"column; (↓): lower is better. Ranked by <code>{_e(primary_metric)}</code>. "
        f"{_e(layout_text())}</p>"
    ]
    if not boards:
        parts.append('<p class="note">No results: runs.csv holds no scored cell.</p>')
    for board in boards:
        parts.append(f"<h3>{_e(board.title)}</h3>")
        parts += [f'<p class="note">Note: {_e(n)}.</p>' for n in board.notes]
        for caption, view, metrics, note in (
            (HEADLINE_TITLE, board.settings, board.headline, ""),
            (best_title(board, quote=""), board.best, board.headline, ""),
            (SECONDARY_TITLE, board.settings, board.secondary, SECONDARY_NOTE),
        ):
            parts.append(f"<h4>{_e(caption)}</h4>")
            if not metrics:  # only the secondary table can be empty: the ranking metric is a headline
                parts.append(f"<p>{_e(NO_SECONDARY)}</p>")
                continue
            if note:
                parts.append(f"<p>{_e(note)}</p>")
            header, rows = wide_rows(view, metrics)
            parts.append(_table(header, [[(t, "best" if b else "") for t, b in r] for r in rows], "leaderboard"))
    return "\n".join(parts)


def published_html(boards: list[Board]) -> str:
    """Published numbers beside ours: external rows, never ranked or marked best."""
    tables = published_tables(boards)
    if not tables:
        return ""
    parts = ["<h3>Published numbers beside ours (external, not ranked)</h3>", f'<p class="note">{_e(CAVEAT)}</p>']
    for title, rows, notes in tables:
        parts.append(f"<h4>{_e(title)}</h4>")
        if rows:
            cells = display_rows(rows)
            header = list(cells[0])
            parts.append(_table(header, [[(r[h], "") for h in header] for r in cells], "published"))
        parts += [f'<p class="note">Note: {_e(n)}.</p>' for n in notes]
    return "\n".join(parts)


def _verdict_class(verdict: str) -> str:
    if verdict == "supported":
        return "verdict-supported"
    return "verdict-not" if verdict == "not supported" else ""


def claims_html(tables: ClaimTables) -> str:
    spec = tables.spec
    parts = [f"<p>{_e(claim_text(spec))}</p>", f"<p>How it is tested: {_e(explanation(spec))}</p>"]
    for title, table_rows in (
        (BEST_TITLE, tables.best),
        (DIST_TITLE, tables.distributions),
        (f"{ABLATION_TITLE} ({spec.ablation_text()})", tables.ablations),
    ):
        if not table_rows:
            if table_rows is not tables.ablations:  # no ablation run: no ablation table
                parts += [f"<h3>{_e(title)}</h3>", '<p class="note">No row could be tested.</p>']
            continue
        header = list(table_rows[0])
        body = [[(r[h], _verdict_class(r[h]) if h == "verdict" else "") for h in header] for r in table_rows]
        parts += [f"<h3>{_e(title)}</h3>", _table(header, body, "claims")]
    parts += [f'<p class="note">{_e(n)}</p>' for n in tables.notes]
    return "\n".join(parts)


def _distinct(values: pd.Series) -> str:
    """The distinct recorded values of a column, comma-separated ("" when none is recorded)."""
    return ", ".join(sorted({str(v) for v in values if not pd.isna(v) and str(v) != ""}))


def provenance_html(runs: pd.DataFrame, run_dirs: list[Path], run_infos: list[dict | None]) -> str:
    fields = [
        "profile",
        "primary_metric",
        "started_at",
        "finished_at",
        "wall_seconds",
        "device",
        "git_commit",
        "versions",
        "data sources",
        "cells",
        "argv",
    ]
    header = ["field"] + [str(d) for d in run_dirs]
    columns = []
    for run_dir, info in zip(run_dirs, run_infos):
        info = dict(info or {})
        sub = runs[runs["run_dir"] == str(run_dir)]
        for col in ("device", "git_commit", "profile"):
            if col not in info and col in sub.columns:
                info[col] = _distinct(sub[col])
        if "versions" not in info:
            info["versions"] = {c: _distinct(sub[c]) for c in sub.columns if c.endswith("_version")}
        pairs = sub[["dataset", "data_source"]].drop_duplicates().itertuples(index=False)
        verified = ""
        if "data_verified" in sub.columns and _distinct(sub["data_verified"]):
            verified = f" (verified: {_distinct(sub['data_verified'])})"
        info["data sources"] = ", ".join(f"{d}: {s}" for d, s in pairs) + verified
        info["cells"] = sub["cell_id"].nunique()
        if info.get("versions") and isinstance(info["versions"], dict):
            info["versions"] = ", ".join(f"{k}={v}" for k, v in info["versions"].items())
        if isinstance(info.get("argv"), list):
            info["argv"] = " ".join(map(str, info["argv"]))
        if info.get("wall_seconds") not in (None, ""):
            try:
                info["wall_seconds"] = f"{float(info['wall_seconds']):.1f} s"
            except (TypeError, ValueError):
                pass
        columns.append(info)
    rows = [[(f, "")] + [(c.get(f, "not recorded"), "") for c in columns] for f in fields]
    parts = [_table(header, rows, "provenance")]
    for run_dir, info in zip(run_dirs, run_infos):
        if info is None:
            parts.append(
                f'<p class="note">{_e(run_dir)}: no run.json (an older run); provenance above comes from runs.csv.</p>'
            )
        elif info.get("config") is not None:
            parts.append(
                f"<details><summary>Configuration of {_e(run_dir)}</summary><pre>"
                f"{_e(json.dumps(info['config'], indent=2, sort_keys=True, default=str))}</pre></details>"
            )
    return "\n".join(parts)


#: kinds drawn inside another kind's group, right after their figure (a model's animated traversal
#: beside its still grid)
KIND_GROUPS = {"traversal": ("traversal", "traversal_gif")}
_MIME = {".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}


def _data_uri(path: Path) -> str:
    mime = _MIME.get(Path(path).suffix.lower(), "image/png")
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def figures_html(figures: list[FigureFile]) -> str:
    parts = []
    for kind, title in KIND_TITLES.items():
        group = [f for f in figures if f.kind in KIND_GROUPS.get(kind, (kind,))]
        if not group:
            continue
        parts.append(f"<h3>{_e(title)}</h3>")
        for fig in group:
            parts.append(
                f'<figure><img src="{_data_uri(fig.path)}" alt="{_e(fig.title)}">'
                f"<figcaption>{_e(fig.title)} ({_e(fig.path.name)})</figcaption></figure>"
            )
    return "\n".join(parts)


def render_report(
    *,
    runs: pd.DataFrame,
    run_dirs: list[Path],
    run_infos: list[dict | None],
    boards: list[Board],
    primary_metric: str,
    claims: tuple,
    figures: list[FigureFile],
    notes: list[str],
) -> str:
    _, claim_tables = claims
    generated = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    note_items = "".join(f"<li>{_e(n)}</li>" for n in notes) or "<li>none</li>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>disentbench report</title>
<style>{CSS}</style>
</head>
<body>
<h1>disentbench report</h1>
<p>Generated {generated} from {len(run_dirs)} run folder(s): {_e(", ".join(map(str, run_dirs)))}.
Contents: <a href="#provenance">provenance</a> · <a href="#leaderboard">leaderboard</a> ·
<a href="#claims">claims</a> · <a href="#figures">figures</a> · <a href="#notes">notes</a>.</p>
<h2 id="provenance">Provenance</h2>
{provenance_html(runs, run_dirs, run_infos)}
<h2 id="leaderboard">Leaderboard</h2>
{leaderboard_html(boards, primary_metric)}
{published_html(boards)}
<h2 id="claims">Claims</h2>
{claims_html(claim_tables)}
<h2 id="figures">Figures</h2>
{figures_html(figures)}
<h2 id="notes">Notes: what was skipped and why</h2>
<ul>{note_items}</ul>
</body>
</html>
"""
