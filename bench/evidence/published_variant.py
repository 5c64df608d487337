"""A trained model scored the way a published number was measured, beside that number.

    python -m disentbench.bench.evidence.published_variant CELL_DIR [--steps 1000,10000] [--metrics a,b] [--out FILE]

The runner scores with the reference library's metrics on the encoder mean; a paper may have used
its own metric code on sampled codes (InfoGAN-CR's FactorVAE rows: `mig_infogancr`... on one draw
from q(z|x)). Comparing a model with such a number is like with like only in that variant. For a
cell folder (finished or still training), this finds the published rows of its method, dataset and
setting (bench/report/data/published.csv), and scores the cell's final checkpoint and its kept
learning-curve checkpoints (or the `--steps` named) with each row's metric variant (`our_metric`)
on each row's codes, exactly as `rescore --representation` would (same seed, same data, the
metric's reference sizes unless the cell's profile names them). Rows go to FILE (default
CELL_DIR/published_variant.csv), one per step, metric and codes; a rerun scores only what is
missing, so it resumes after a stop. Rows with no metric of ours (`unmatched`) are listed, not
scored.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from disentbench.atomic import atomic_path
from disentbench.errors import BenchError

OUT = "published_variant.csv"
COLUMNS = ["step", "metric", "codes", "value", "published", "spread", "source", "table", "eval_seconds"]


def published_rows(config: dict, published: pd.DataFrame) -> pd.DataFrame:
    """The published rows of the cell's method and dataset whose setting is the cell's (rows that
    name no setting are left out: they cannot be set beside one model)."""
    from disentbench.bench.report.published import parse_setting, setting_matches

    rows = published[(published["method"] == config["method"]) & (published["dataset"] == config["dataset"])]
    hparams = json.dumps(config["hparams"], sort_keys=True)
    keep = [bool(parse_setting(s)) and setting_matches(hparams, parse_setting(s)) for s in rows["setting"]]
    return rows[keep].reset_index(drop=True)


def checkpoints(cell_dir: Path, steps: list[int] | None) -> dict[int, Path]:
    """{step: checkpoint file}: the kept learning-curve checkpoints and the final one (when the cell
    finished), or only the named steps (each must be kept or final)."""
    from disentbench.bench.checkpoint import cell_checkpoints
    from disentbench.bench.rescore import SCORES

    try:
        found = cell_checkpoints(cell_dir, latest=(cell_dir / SCORES).is_file())
    except ValueError:
        found = {}
    if steps is None:
        return found
    missing = [s for s in steps if s not in found]
    if missing:
        kept = ", ".join(str(s) for s in sorted(found)) or "none"
        raise BenchError(f"{cell_dir}: no checkpoint kept at step(s) {missing}; kept: {kept}")
    return {s: found[s] for s in steps}


def run(
    cell_dir: Path, steps: list[int] | None, out: Path, device: str = "cpu", only: list[str] | None = None
) -> pd.DataFrame:
    """Score what `out` lacks (rows: COLUMNS); `only` keeps the published rows of those metric keys of ours."""
    from disentbench.bench.report.published import codes_wanted, load_published
    from disentbench.bench.rescore import score_checkpoint
    from disentbench.bench.runner import CONFIG

    cell_dir = Path(cell_dir)
    if not (cell_dir / CONFIG).is_file():
        raise BenchError(f"{cell_dir}: no {CONFIG}; give a cell folder (results/<run>/cells/<cell id>)")
    config = json.loads((cell_dir / CONFIG).read_text())
    rows = published_rows(config, load_published())
    if only is not None:
        rows = rows[rows["our_metric"].isin(only)].reset_index(drop=True)
    if rows.empty:
        raise BenchError(f"no published number names {config['method']} on {config['dataset']} at this cell's setting")
    done = pd.read_csv(out) if out.is_file() else pd.DataFrame(columns=COLUMNS)
    have = set(zip(done["step"].astype(int), done["metric"], done["codes"]))
    sizes = config.get("metrics") or {}
    for step, path in checkpoints(cell_dir, steps).items():
        for row in rows.itertuples():
            if not row.our_metric:
                print(f"  {row.metric} ({row.source}, {row.table}): not scored: {row.unmatched}")
                continue
            codes = codes_wanted(row.codes) or config.get("representation", "mean")
            if (step, row.our_metric, codes) in have:
                continue
            scored = {**config, "representation": codes}
            result = score_checkpoint(path, scored, {row.our_metric: sizes.get(row.our_metric, {})}, device, None, step)
            if "error" in result:
                raise BenchError(f"step {step}: {result['error']}")
            new = {
                "step": step,
                "metric": row.our_metric,
                "codes": codes,
                "value": result["scores"][row.our_metric],
                "published": row.value,
                "spread": row.spread,
                "source": row.source,
                "table": row.table,
                "eval_seconds": round(result["eval_seconds"], 1),
            }
            done = pd.concat([done, pd.DataFrame([new])], ignore_index=True)
            have.add((step, row.our_metric, codes))
            with atomic_path(out) as tmp:  # each score kept as soon as it exists
                done.to_csv(tmp, index=False)
            print(f"  step {step:,} {row.our_metric} ({codes} codes): {new['value']:.3f} (published {row.value})")
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m disentbench.bench.evidence.published_variant", description=__doc__)
    p.add_argument("cell_dir", type=Path, help="a cell folder (results/<run>/cells/<cell id>)")
    p.add_argument("--steps", default=None, help="comma-separated kept steps (default: every kept one and the final)")
    p.add_argument("--out", type=Path, default=None, help=f"CSV to write (default CELL_DIR/{OUT})")
    p.add_argument(
        "--metrics", default=None, help="comma-separated metric keys of ours to score (default: every matched row)"
    )
    p.add_argument("--device", default="cpu")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        steps = None if args.steps is None else [int(s) for s in args.steps.split(",") if s.strip()]
        only = None if args.metrics is None else [m.strip() for m in args.metrics.split(",") if m.strip()]
        run(args.cell_dir, steps, args.out or args.cell_dir / OUT, args.device, only)
    except (BenchError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
