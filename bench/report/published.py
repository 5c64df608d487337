"""Published numbers beside ours: the literature's scores as external reference rows.

A score means little until a reader can set it next to what papers report. `data/published.csv`
holds published numbers as facts with their source (paper and table), what each number is (best
reported, mean of N runs), its spread and training length when stated. The reports show them next
to our mean for the same method (at the same setting when the paper names one and we ran it, else
our best setting per method), marked external and never ranked or marked best: the papers used
their own architectures, training lengths and data files, so a gap is a prompt to look, not a
verdict.

Like with like: a published number is paired only with ours of the same metric variant. Each row
says which code and variant produced it (`implementation`, `variant`, `codes`) and which of our
keys computes that variant (`our_metric`: `mig_infogancr`, `sap_infogancr`..., empty when the suite
cannot compute it; `unmatched` then says why). Such rows are shown with no "ours" value. A row whose
`codes` are sampled (one draw from q(z|x)) pairs only with our cells scored with `--representation
sampled` (the cell's config in runs.csv), one on deterministic codes only with cells scored on the
mean; without such cells it says how to run them. The variants (registered with `variant_of`) are
kept out of the leaderboard's own tables and ranking (`Board.variants`); this table is the only
place they appear, each under its own name.
"""

from __future__ import annotations

from importlib import resources
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd

from disentbench.atomic import atomic_path
from disentbench.bench.report.length import reference_steps
from disentbench.bench.report.runs import parse_hparams, short_hparams
from disentbench.errors import BenchError

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
#: which implementation and variant produced each number and which of our keys computes it; a file
#: without them (the old format) loads with "not stated" and pairs nothing
VARIANT_COLUMNS = ("implementation", "variant", "codes", "our_metric", "unmatched")
NOT_STATED = "not stated"
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
    frame = with_variant_columns(frame)
    frame["value"] = pd.to_numeric(frame["value"], errors="raise")
    frame["spread"] = pd.to_numeric(frame["spread"], errors="coerce")
    return frame


def with_variant_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with VARIANT_COLUMNS: rows of the disentbench zoo (bench/zoo.py: our own scores) are
    the registered metric itself; other rows that state none get "not stated" and no key of ours."""
    frame = frame.copy()
    zoo = frame["source"].astype(str).str.startswith("disentbench zoo")
    defaults = {
        "implementation": np.where(zoo, "disentbench", NOT_STATED),
        "variant": np.where(zoo, "the registered metric", NOT_STATED),
        "codes": np.where(zoo, "the run's representation", NOT_STATED),
        "our_metric": np.where(zoo, frame["metric"], ""),
        "unmatched": np.where(zoo, "", "the source states no variant"),
    }
    for col in VARIANT_COLUMNS:
        if col not in frame.columns:
            frame[col] = defaults[col]
        else:
            frame[col] = frame[col].where(frame[col].notna(), pd.Series(defaults[col], index=frame.index))
        frame[col] = frame[col].astype(str)
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
    """Our mean for the published row on our key `metric`: the same setting when named and run, else
    our best setting."""
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


NO_OURS = {"our_hparams": "", "our_steps": 0, "our_mean": np.nan, "our_std": np.nan, "our_n": 0, "matched": ""}


def _frames(board) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every setting, the best setting per method) over the board's metrics and its variants."""
    variants = getattr(board, "variants", None)
    if variants is None or len(variants) == 0:
        return board.settings, board.best
    chosen = board.best[["method", "hparams", "steps"]].drop_duplicates()
    best_variants = variants.merge(chosen, on=["method", "hparams", "steps"], how="inner")
    return (
        pd.concat([board.settings, variants], ignore_index=True),
        pd.concat([board.best, best_variants], ignore_index=True),
    )


def codes_wanted(codes: str) -> str | None:
    """The representation (disentbench/choices.py REPRESENTATIONS) our cells must have scored to stand
    beside a published row, from its `codes`: "sampled" for one draw from q(z|x), "mean" for
    deterministic codes (an encoder's mean, a GAN's Q head); None when the row states none (then any)."""
    text = str(codes).strip().lower()
    if text.startswith("sampled"):
        return "sampled"
    if text.startswith(("deterministic", "mean")):
        return "mean"
    return None


def _codes_frame(board, settings: pd.DataFrame) -> pd.DataFrame:
    """The board's statistics per codes scored; a board without them scored the mean (the default)."""
    codes = getattr(board, "codes", None)
    if codes is None or len(codes) == 0 or "representation" not in codes.columns:
        return settings.assign(representation="mean")
    return codes


def _has_codes(board, method: str, wanted: str) -> bool:
    codes = _codes_frame(board, board.settings)
    return bool(((codes["method"] == method) & (codes["representation"] == wanted)).any())


def _on_codes(board, settings: pd.DataFrame, best: pd.DataFrame, wanted: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every setting, the best setting per method) restricted to our cells that scored `wanted` codes:
    the board's best settings, with the statistics of those cells only."""
    codes = _codes_frame(board, settings)
    part = codes[codes["representation"] == wanted].drop(columns="representation").reset_index(drop=True)
    chosen = best[["method", "hparams", "steps"]].drop_duplicates()
    return part, part.merge(chosen, on=["method", "hparams", "steps"], how="inner")


def _codes_missing(method: str, wanted: str) -> str:
    if wanted == "sampled":
        return (
            f"the source scores sampled codes (one draw from q(z|x)) and no cell of {method} here did: "
            "run with --representation sampled to compare"
        )
    return (
        f"the source scores deterministic codes and every cell of {method} here scored other codes: "
        "run with --representation mean to compare"
    )


def beside_ours(
    board, published: pd.DataFrame, other_codes: frozenset[str] = frozenset()
) -> tuple[list[dict], list[str]]:
    """Rows (published + ours) for one leaderboard board, and notes on what has no row. A row on
    codes this board did not score but a sibling board did (`other_codes`: the representations of
    the boards of the same data) is left to that board."""
    rows, notes = [], []
    part = published[published["dataset"] == board.dataset]
    ran = set(board.settings["method"])
    settings, best = _frames(board)
    measured = set(settings["metric"])
    for rec in part.itertuples(index=False):
        if rec.method not in ran:
            continue
        key = rec.our_metric
        if key:
            wanted = codes_wanted(rec.codes)
            on_codes = wanted is None or _has_codes(board, rec.method, wanted)
            s, b = (settings, best) if wanted is None else _on_codes(board, settings, best, wanted)
            ours = _ours(s, b, rec.method, key, rec.setting)
            if ours is None:
                if key == rec.metric and on_codes or key not in measured and rec.metric not in measured:
                    continue  # the metric itself was not measured here: no row, as before
                if not on_codes and wanted in other_codes:
                    continue  # shown beside the board that scored those codes
                if not on_codes:
                    why = _codes_missing(rec.method, wanted)
                else:
                    where = " on sampled codes" if wanted == "sampled" else ""
                    why = (
                        f"our {key} was not measured{where}: `run_benchmark.py rescore DIR --metrics {key}` computes it"
                    )
                ours = {**NO_OURS, "unmatched": why}
            else:
                matched = ours["matched"] if wanted is None else f"{ours['matched']}, {wanted} codes"
                ours = {**ours, "matched": matched, "unmatched": ""}
        elif rec.metric not in measured:
            continue
        else:  # a variant the suite cannot compute: the row says so and shows no "ours"
            ours = {**NO_OURS, "unmatched": rec.unmatched or "the variant is not stated"}
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
                "implementation": rec.implementation,
                "variant": rec.variant,
                "codes": rec.codes,
                "our_metric": key,
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
        if r["our_metric"] and not np.isnan(r["our_mean"]):
            std = "—" if np.isnan(r["our_std"]) else f"{r['our_std']:.3f}"
            ours = f"{r['our_mean']:.3f} ± {std} (n={r['our_n']}, `{r['our_metric']}`)"
            setting = f"{r['our_hparams']} ({r['matched']})"
            steps = steps_text(r["method"], r["our_steps"])
        else:
            ours, setting, steps = f"— ({r['unmatched']})", "—", "—"
        out.append(
            {
                "method": r["method"],
                "metric": r["metric"],
                "published (external)": f"{r['published_value']:.2f}{spread}",
                "what it is": r["published_statistic"],
                "implementation / variant": f"{r['implementation']}; {r['variant']}; codes: {r['codes']}",
                "published setting": r["published_setting"] or "—",
                "ours (same variant)": ours,
                "our setting": setting,
                "our steps": steps,
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
        bundled = load_published()
        published = pd.concat([bundled, with_variant_columns(zoo)], ignore_index=True) if len(zoo) else bundled
    out = []
    for board in boards:
        siblings = [o for o in boards if (o.dataset, o.data_source, o.correlation, o.holdout) == _data_key(board)]
        rows, notes = beside_ours(
            board, published, frozenset(o.representation for o in siblings) - {board.representation}
        )
        if rows or notes:
            out.append((board.title, rows, notes))
    return out


def _data_key(board) -> tuple:
    """What a board's models were trained and scored on, its representation aside."""
    return (board.dataset, board.data_source, board.correlation, board.holdout)


def write_published(tables: list[tuple[str, list[dict], list[str]]], out_dir: Path) -> pd.DataFrame:
    """Write the tidy published-beside-ours CSV (one row per published number we can set ours beside)."""
    frame = pd.DataFrame([r for _, rows, _ in tables for r in rows])
    with atomic_path(Path(out_dir) / CSV_NAME) as tmp:
        frame.to_csv(tmp, index=False)
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
