"""Does bf16 train the same models as fp32? The evidence that decides whether bf16 may be a default.

    python -m disentbench.bench.evidence.precision run --out results/precision      # resumable
    python -m disentbench.bench.evidence.precision compare --out results/precision

`run` trains each method (default beta-VAE beta 4 and FactorVAE gamma 10) with `--seeds` seeds
(default 3) for `--steps` steps (default 10,000) twice on the same data, once in fp32 and once in
bf16 + channels_last (the fast path), through the suite's own runner (`<out>/fp32`, `<out>/bf16`;
rerun the same command and finished cells are skipped, the running one resumes), method by method
so the first comparison is complete early. Every cell is scored at the reference metric sizes.

`compare` sets the two metric distributions side by side and applies a rule fixed before any
result (`decide`): for each method and metric with at least 2 seeds in both arms, the difference of
the means is within seed noise when |mean_bf16 - mean_fp32| <= 2 * SE + FLOOR, SE being the
standard error of the difference (sqrt(sd_fp32^2 / n_fp32 + sd_bf16^2 / n_bf16)); the precisions
agree when at least AGREE_SHARE of the comparisons are within noise and none is beyond
3 * SE + FLOOR. It writes `comparison.csv` and `decision.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

METRICS = ("mig", "dci", "sap", "factor_vae", "beta_vae", "modularity")
FLOOR = 0.01
AGREE_SHARE = 0.9
ARMS = {"fp32": [], "bf16": ["--precision", "bf16", "--channels-last"]}
DEFAULT_SETS = ["betavae.beta=4", "factorvae.gamma=10"]
PROFILE = """\
description: "bf16 against fp32: same data, same seeds, reference metric sizes."
datasets: [dsprites]
seeds: 3
batch_size: 64
steps: 10000
log_every: 500
checkpoint_every: 2000
init: reference
primary_metric: dci
metrics:
  mig: {num_train: 10000}
  sap: {num_train: 10000, num_test: 5000}
  modularity: {num_train: 10000, num_test: 5000}
  dci: {num_train: 10000, num_test: 5000}
  beta_vae: {num_train: 10000, num_test: 5000}
  factor_vae: {num_train: 10000, num_test: 5000, num_variance_estimate: 10000}
"""


def compare_arms(fp32: pd.DataFrame, bf16: pd.DataFrame, metrics=METRICS) -> pd.DataFrame:
    """One row per method x metric: each arm's mean, sd and n over seeds, the difference, its SE and
    whether it is within noise (the rule in the module docstring)."""
    rows = []
    for method in sorted(set(fp32["method"]) & set(bf16["method"])):
        for metric in metrics:
            a = fp32[(fp32["method"] == method) & (fp32["metric"] == metric)]["value"].dropna().to_numpy(float)
            b = bf16[(bf16["method"] == method) & (bf16["metric"] == metric)]["value"].dropna().to_numpy(float)
            if len(a) < 2 or len(b) < 2:
                continue
            se = float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
            diff = float(b.mean() - a.mean())
            rows.append(
                {
                    "method": method,
                    "metric": metric,
                    "fp32_mean": a.mean(),
                    "fp32_sd": a.std(ddof=1),
                    "fp32_n": len(a),
                    "bf16_mean": b.mean(),
                    "bf16_sd": b.std(ddof=1),
                    "bf16_n": len(b),
                    "difference": diff,
                    "se": se,
                    "within_noise": abs(diff) <= 2 * se + FLOOR,
                    "beyond_3se": abs(diff) > 3 * se + FLOOR,
                }
            )
    return pd.DataFrame(rows)


def decide(table: pd.DataFrame) -> dict[str, Any]:
    """{"agree": bool | None, "reason": str}; None when there is nothing to compare yet."""
    if table.empty:
        return {"agree": None, "reason": "no method has >= 2 seeds in both arms yet"}
    share = float(table["within_noise"].mean())
    far = table[table["beyond_3se"]]
    agree = share >= AGREE_SHARE and far.empty
    reason = f"{int(table['within_noise'].sum())} of {len(table)} comparisons within 2 SE + {FLOOR}"
    if not far.empty:
        reason += "; beyond 3 SE: " + ", ".join(f"{r.method} {r.metric}" for r in far.itertuples())
    return {"agree": bool(agree), "reason": reason, "comparisons": len(table)}


def arm_rows(path: Path) -> pd.DataFrame:
    """Tidy rows of every finished cell in one arm's results folder. Read from each cell's
    scores.json, not runs.csv: `run` trains one method per runner call, and each call's runs.csv
    holds only the cells of that call, so the last method's table would hide the first's."""
    from disentbench.bench.runner import rows_of

    records = [json.loads(f.read_text()) for f in sorted(path.glob("cells/*/scores.json"))]
    rows = [row for rec in records for row in rows_of(rec, "precision")]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["method", "metric", "value"])


def run(out: Path, methods: list[str], seeds: int, steps: int, device: str, threads: int) -> int:
    from disentbench.bench.cli import main

    out.mkdir(parents=True, exist_ok=True)
    profile = out / "precision.yaml"
    profile.write_text(PROFILE)
    status = 0
    for method in methods:
        sets = [a for s in DEFAULT_SETS if s.startswith(method + ".") for a in ("--set", s)]
        for arm, flags in ARMS.items():
            argv = ["--profile", str(profile), "--methods", method, "--seeds", str(seeds), "--steps", str(steps)]
            argv += ["--results", str(out / arm), "--device", device, "--threads", str(threads), "--no-report"]
            code = main(argv + sets + flags)
            if code >= 128:  # stopped by a signal (128 + its number): stop here; a rerun resumes
                return code
            status = max(status, code)
        compare(out)
    return status


def compare(out: Path) -> dict[str, Any]:
    table = compare_arms(arm_rows(out / "fp32"), arm_rows(out / "bf16"))
    decision = decide(table)
    if not table.empty:
        table.to_csv(out / "comparison.csv", index=False)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    (out / "decision.json").write_text(json.dumps(decision, indent=2) + "\n")
    print(json.dumps(decision))
    return decision


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m disentbench.bench.evidence.precision", description=__doc__.splitlines()[0]
    )
    p.add_argument("command", choices=["run", "compare"])
    p.add_argument("--out", type=Path, default=Path("results/precision"))
    p.add_argument("--methods", default="betavae,factorvae")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "compare":
        compare(args.out)
        return 0
    return run(
        args.out,
        [m.strip() for m in args.methods.split(",") if m.strip()],
        args.seeds,
        args.steps,
        args.device,
        args.threads,
    )


if __name__ == "__main__":
    sys.exit(main())
