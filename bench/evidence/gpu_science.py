"""The science check for one GPU: beta-VAE and FactorVAE at their full paper length, trained at
the same time on one device, scored at the reference metric sizes, beside the published numbers.

`python -m disentbench.bench.evidence.gpu_science --out results/gpu-science` (on a CUDA machine)

It runs the benchmark's own command (the `paper` protocol: batch 64, Glorot initialisation,
300,000 beta-VAE steps, 150,000 FactorVAE steps) for betavae (beta 4) and factorvae (gamma 10,
the setting InfoGAN-CR's Table 1 reports) on procedural dSprites, both cells at once on the device
(`--jobs-per-device 2`). The whole check has a wall budget (`--budget`, 600 s by default): when
training has not finished by its share of it, the run is stopped with SIGTERM (each cell
checkpoints at its current step) and the latest checkpoints are scored as they are, saying how many
of the reference steps they reached. Scores are the five metrics of the published table (FactorVAE
score, DCI, SAP, MIG, BetaVAE score) at disentanglement_lib's sample sizes.

Printed: one line per method and metric, ours beside the published number; the last line is one
JSON object with everything. `--scale tiny` runs the same path in seconds on a CPU (the test).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

METHODS = {"betavae": {"beta": 4}, "factorvae": {"gamma": 10}}
SCORED = ("factor_vae", "dci", "sap", "mig", "beta_vae")
#: the reference sizes of disentanglement_lib (docs/metrics.md), as in the paper profile
REFERENCE_METRICS = {
    "mig": {"num_train": 10000},
    "sap": {"num_train": 10000, "num_test": 5000},
    "dci": {"num_train": 10000, "num_test": 5000},
    "beta_vae": {"num_train": 10000, "num_test": 5000},
    "factor_vae": {"num_train": 10000, "num_test": 5000, "num_variance_estimate": 10000},
}
TINY_METRICS = {
    "mig": {"num_train": 300},
    "sap": {"num_train": 300, "num_test": 150},
    "dci": {"num_train": 200, "num_test": 100},
    "beta_vae": {"num_train": 40, "num_test": 20},
    "factor_vae": {"num_train": 40, "num_test": 20, "num_variance_estimate": 300},
}
#: share of the budget left for scoring interrupted cells (reference sizes take about a minute)
SCORING_RESERVE = 0.2


def write_profile(out: Path, scale: str, steps: dict[str, int] | None) -> Path:
    """The run's profile: the paper protocol (or a tiny one) limited to the five published metrics."""
    import yaml

    profile: dict[str, Any] = {
        "extends": "paper" if scale == "reference" else "smoke",
        "description": f"GPU science check ({scale} scale)",
        "datasets": ["dsprites"],
        "methods": list(METHODS),
        "grid": "none",
        "seeds": 1,
        "procedural_ok": True,
        "claim": {"method": "betavae", "ablation": {}, "metrics": ["mig", "dci", "sap"]},
        "metrics": REFERENCE_METRICS if scale == "reference" else TINY_METRICS,
    }
    if steps:
        profile["method_steps"] = dict(steps)
    if scale != "reference":
        profile["checkpoint_every"] = 0
    path = out / "profile.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


def benchmark_argv(profile: Path, out: Path, device: str, extra: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "disentbench", "--profile", str(profile), "--source", "procedural"]
    argv += ["--results", str(out / "run"), "--no-report"]
    for method, hparams in METHODS.items():
        for key, value in hparams.items():
            argv += ["--set", f"{method}.{key}={value}"]
    if device.startswith("cuda"):
        argv += ["--devices", device, "--jobs-per-device", str(len(METHODS))]
    else:
        argv += ["--device", device, "--jobs", str(len(METHODS))]
    return argv + extra


def run_training(argv: list[str], budget: float, log: Path) -> tuple[int, float, bool]:
    """Run the benchmark; SIGTERM it when the budget ends. (exit code, seconds, stopped early)."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=os.environ.copy())
        try:
            code = proc.wait(timeout=budget)
            return code, time.perf_counter() - t0, False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # every cell checkpoints at its current step
            try:
                code = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            return code, time.perf_counter() - t0, True


def _cells(run: Path) -> dict[str, Path]:
    out = {}
    for config in sorted((run / "cells").glob("*/config.json")):
        method = json.loads(config.read_text())["method"]
        out[method] = config.parent
    return out


def score_cell(cell_dir: Path, metric_sizes: dict, device: str) -> dict[str, Any]:
    """A finished cell's scores.json, else its latest checkpoint scored now (as the runner would)."""
    from disentbench import datasets, metrics
    from disentbench.bench.checkpoint import build_method, load_latest

    config = json.loads((cell_dir / "config.json").read_text())
    done = cell_dir / "scores.json"
    if done.is_file():
        record = json.loads(done.read_text())
        return {
            "steps": int(config["steps"]),
            "complete": True,
            "train_seconds": record["train_seconds"],
            "eval_seconds": record["eval_seconds"],
            "scores": {k: float(v) for k, v in record["scores"].items() if k in SCORED},
        }
    state = load_latest(cell_dir, map_location=device)
    if state is None:
        return {"steps": 0, "complete": False, "error": "no checkpoint was written"}
    method = build_method(state, device).eval()
    dataset = datasets.create(config["dataset"], source=config["data_source"], device=device)
    t0 = time.perf_counter()
    scores = metrics.evaluate_many(metric_sizes, dataset, method.encode, seed=int(config["seed"]))
    return {
        "steps": int(state["step"]),
        "complete": False,
        "train_seconds": float(state.get("elapsed_seconds", 0.0)),
        "eval_seconds": time.perf_counter() - t0,
        "scores": {k: float(v) for k, v in scores.items() if k in SCORED},
    }


def published_for(method: str, setting: dict[str, Any]) -> dict[str, dict]:
    """The published dSprites numbers for this method: at the same setting when the table has it,
    else the method's rows that name no setting."""
    from disentbench.bench.report.published import load_published, parse_setting

    table = load_published()
    rows = table[(table["method"] == method) & (table["dataset"] == "dsprites")]
    same = rows[[parse_setting(s) == {k: float(v) for k, v in setting.items()} for s in rows["setting"]]]
    chosen = same if len(same) else rows[rows["setting"] == ""]
    return {
        r.metric: {
            "value": float(r.value),
            "spread": None if np.isnan(r.spread) else float(r.spread),
            "what": r.statistic,
            "source": f"{r.source}, {r.table}",
            "setting": r.setting,
        }
        for r in chosen.itertuples(index=False)
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("results/gpu-science"))
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (the tiny test)")
    p.add_argument("--budget", type=float, default=600.0, help="wall seconds for the whole check")
    p.add_argument("--scale", choices=("reference", "tiny"), default="reference")
    p.add_argument("--steps", type=str, default=None, help="method=steps,... overriding the paper lengths")
    p.add_argument("--extra", default="", help="more benchmark flags, e.g. '--compile --precision bf16'")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    steps = dict((k, int(v)) for k, v in (kv.split("=") for kv in args.steps.split(","))) if args.steps else None
    profile = write_profile(args.out, args.scale, steps)
    sizes = REFERENCE_METRICS if args.scale == "reference" else TINY_METRICS
    started = time.perf_counter()
    cmd = benchmark_argv(profile, args.out, args.device, args.extra.split())
    code, seconds, stopped = run_training(cmd, args.budget * (1 - SCORING_RESERVE), args.out / "benchmark.log")
    print(f"benchmark: exit {code} after {seconds:.0f} s{' (stopped at the budget)' if stopped else ''}")
    from disentbench.bench.report.length import reference_steps

    results: dict[str, Any] = {}
    cells = _cells(args.out / "run")
    for method, setting in METHODS.items():
        if method not in cells:
            results[method] = {"error": "no cell folder (see benchmark.log)"}
            continue
        result = score_cell(cells[method], sizes, args.device)
        result["reference_steps"] = reference_steps(method)
        result["setting"] = setting
        result["published"] = published_for(method, setting)
        results[method] = result
        ours = result.get("scores", {})
        flag = "" if result["steps"] >= result["reference_steps"] else " (short: not comparable)"
        print(f"{method} {setting}: {result['steps']:,} of {result['reference_steps']:,} steps{flag}")
        for metric in SCORED:
            pub = result["published"].get(metric)
            pub_text = f"{pub['value']:.2f} ({pub['what']}; {pub['source']})" if pub else "not published"
            mine = ours.get(metric)
            print(f"  {metric:<11} ours {'-' if mine is None else f'{mine:.3f}'}   published {pub_text}")
    summary = {
        "check": "gpu_science",
        "scale": args.scale,
        "device": args.device,
        "data": "procedural dsprites",
        "benchmark_exit": code,
        "stopped_at_budget": stopped,
        "train_wall_seconds": round(seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "methods": results,
    }
    print(json.dumps(summary, default=str))
    return 0 if all("scores" in r for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
