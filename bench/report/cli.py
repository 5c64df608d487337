"""`build_report` (everything of a report from run folders) and the `report` sub-command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from disentbench.atomic import write_text
from disentbench.bench.claim import ClaimSpec
from disentbench.bench.report.claims import write_claims
from disentbench.bench.report.gan import gan_pictures
from disentbench.bench.report.html import render_report
from disentbench.bench.report.leaderboard import make_boards, write_leaderboard
from disentbench.bench.report.models import model_pictures
from disentbench.bench.report.plots import ALL_SCORE_PLOTS
from disentbench.bench.report.runs import claim_config_of, load_runs, primary_metric_of, read_run_json
from disentbench.bench.report.style import method_colours
from disentbench.errors import BenchError

REPORT_HTML = "report.html"
FIGURES = "figures"


AUTO_ALL_MODELS = 24  # up to this many models, every one gets its traversal and reconstructions


def build_report(
    run_dirs: list[Path],
    out_dir: Path,
    primary_metric: str | None = None,
    all_models: bool | None = None,
    models: bool = True,
) -> Path:
    """Write leaderboard.md/csv, claims.md, figures/*.png and report.html into out_dir; return the
    path of report.html. Only runs.csv is required; missing logs and checkpoints are noted.

    all_models: True draws every trained model, False one representative model per method and
    dataset, None (default) every model when there are at most AUTO_ALL_MODELS, else representatives."""
    run_dirs = [Path(d) for d in run_dirs]
    out_dir = Path(out_dir)
    runs = load_runs(run_dirs)
    primary = primary_metric or primary_metric_of(run_dirs)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig_dir = out_dir / FIGURES
    fig_dir.mkdir(exist_ok=True)
    for old in fig_dir.glob("*.png"):  # a rebuilt report shows only what this build drew
        old.unlink()
    write_leaderboard(runs, out_dir, primary)
    boards = make_boards(runs, primary)
    claims = write_claims(runs, out_dir, ClaimSpec.from_config(claim_config_of(run_dirs)))
    colours = method_colours(runs["method"].unique())
    figures, notes = [], []
    for plot in ALL_SCORE_PLOTS:
        files, why = plot(runs, boards, fig_dir, colours)
        figures += files
        notes += why
    if models:
        if all_models is None:
            n_models = runs["cell_id"].nunique()
            all_models = n_models <= AUTO_ALL_MODELS
            if not all_models:
                notes.append(
                    f"{n_models} trained models: pictures drawn for one representative model per method "
                    f"and dataset (report --all-models draws every one)"
                )
        files, why = model_pictures(runs, boards, fig_dir, all_models=all_models)
        figures += files
        notes += why
        files, why = gan_pictures(runs, boards, fig_dir, all_models=all_models)  # GAN-family methods only
        figures += files
        notes += why
    else:
        notes.append("pictures of models not drawn (--no-models)")
    for info in (read_run_json(d) for d in run_dirs):  # e.g. UDR's "needs at least 2 seeds"
        notes += [str(n) for n in ((info or {}).get("notes") or [])]
    page = render_report(
        runs=runs,
        run_dirs=run_dirs,
        run_infos=[read_run_json(d) for d in run_dirs],
        boards=boards,
        primary_metric=primary,
        claims=claims,
        figures=figures,
        notes=notes,
    )
    path = out_dir / REPORT_HTML
    write_text(path, page)
    return path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_benchmark.py report",
        description="Rebuild a report (leaderboard, claims, figures, report.html) from run folders.",
    )
    p.add_argument(
        "run_dirs",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="run folder(s) holding runs.csv; several are merged (later ones win on a repeated cell)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: DIR/report for one DIR, ./report-merged for several)",
    )
    p.add_argument(
        "--primary-metric", default=None, help="metric that ranks the leaderboard (default: run.json's, else dci)"
    )
    p.add_argument(
        "--all-models",
        action="store_true",
        default=None,
        help=f"draw traversals of every checkpoint (the default up to {AUTO_ALL_MODELS} models)",
    )
    p.add_argument(
        "--representative-models",
        dest="all_models",
        action="store_false",
        default=None,
        help="draw one representative model per method and dataset (the default above that)",
    )
    p.add_argument("--no-models", action="store_true", help="skip the pictures of trained models")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    out = args.out or (args.run_dirs[0] / "report" if len(args.run_dirs) == 1 else Path("report-merged"))
    try:
        path = build_report(
            args.run_dirs, out, args.primary_metric, all_models=args.all_models, models=not args.no_models
        )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
