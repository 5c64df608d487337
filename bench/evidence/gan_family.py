"""Does DiD learn? The GAN family side by side on dSprites, as long as the machine affords.

`python -m disentbench.bench.evidence.gan_family --out results/gan-family --steps 10000`

Trains one seed of each arm on procedural (or official) dSprites, batch 64, through the suite's own
trainer (`bench.training.train`, so checkpoints, logs and diagnostics are those of a benchmark
cell), round-robin in chunks of `--chunk` generator steps, so every arm advances together and an
interrupted run loses at most a chunk. The default arms:
- `did_literal`: DiD with the paper-literal balance (`balance=literal`, lambda_h = 1);
- `did_adaptive`, `did_warmup`: DiD with each remedy for the balance of L_H (docs/did.md), which
  `balance_decision` compares with the literal form to settle DiD's default by a fixed rule;
- `did_lh0`: DiD with lambda_h = 0 (the paper's ablation: no difference learning);
- `infogancr`: InfoGAN-CR with the authors' dSprites settings.
`--arms` picks others (`did_default`: the default balance when the run is planned; `infogan`).
Every arm's schedules refer to the planned `--steps` (their `horizon`), so a run continued later
behaves as one uninterrupted run: rerun the same command and it resumes where each arm's checkpoint
stands; `--max-hours` stops starting new chunks after that long (the command can be rerun),
`--rounds` limits this invocation's rounds.

Written in `--out`: per arm `cells/<arm>/` (train_log.csv with the losses and diagnostics,
checkpoint.pt), `pictures/<arm>_samples_s<step>.png` and `<arm>_traversal_s<step>.png` at every
chunk end, `pictures/<arm>_diagnostics.png` (redrawn at every scoring), `scores/<arm>_s<step>.json`
(MIG, DCI, SAP at the quick profile's sizes, every `--score-every` steps and at the end),
`summary.json` and `summary.md` (with DiD's balance decision, `balance_decision`); the last line
printed is the summary as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from disentbench.bench import preemption, segments
from disentbench.errors import BenchError


def _did_default_balance() -> str:
    from disentbench.methods.did import DiD

    return str(DiD.hparams["balance"])


#: name -> (method, hyperparameters besides `horizon`); `did_default` names the balance that is the
#: default when the plan is made, so a run continued after the default changed is caught (check_plan)
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "did_literal": ("did", {"balance": "literal"}),
    "did_adaptive": ("did", {"balance": "adaptive"}),
    "did_warmup": ("did", {"balance": "warmup"}),
    "did_lh0": ("did", {"lambda_h": 0.0}),
    "infogancr": ("infogancr", {}),
    "did_default": ("did", {"balance": _did_default_balance()}),
    "infogan": ("infogan", {}),
}
#: the paper-literal DiD (the default balance), each remedy, the no-difference ablation, InfoGAN-CR
DEFAULT_ARMS = "did_literal,did_adaptive,did_warmup,did_lh0,infogancr"
#: the balance comparison (docs/did.md): a remedy replaces the literal form as DiD's default only
#: if it beats it by more than these margins on most of these measures, at the step all arms share
BALANCE_ARMS = {"did_literal": "literal", "did_adaptive": "adaptive", "did_warmup": "warmup"}
BALANCE_MARGINS = {"mig": 0.02, "dci": 0.02, "sap": 0.02, "r2_enc_mean": 0.05, "h_centroid_acc": 0.04}
PLAN = "plan.json"
TINY_METRICS = {
    "mig": {"num_train": 200},
    "sap": {"num_train": 200, "num_test": 100},
    "dci": {"num_train": 100, "num_test": 50},
}
#: diagnostics shown in the summary (whichever the arm logs)
SUMMARY_DIAGNOSTICS = (
    "r2_enc_mean",
    "r2_q_mean",
    "h_centroid_acc",
    "cr_acc_held",
    "grad_g_adv",
    "grad_g_l_h",
    "grad_g_l_h_raw",
    "grad_g_cr",
    "grad_g_info",
    "grad_g_l_enc",
    "image_std",
)


def parse_arms(text: str) -> list[str]:
    names = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in names if a not in ARMS]
    if unknown or not names:
        raise BenchError(f"unknown arm(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(ARMS)}")
    return names


def metric_sizes(scale: str, names: list[str]) -> dict[str, dict]:
    """The quick profile's sizes of the named metrics (or tiny ones, for tests)."""
    if scale == "tiny":
        table = TINY_METRICS
    else:
        from disentbench.bench.config import load_profile

        table = load_profile("quick")["metrics"]
    missing = [n for n in names if n not in table]
    if missing:
        raise BenchError(f"--metrics: no sizes for {', '.join(missing)}; choose from {', '.join(table)}")
    return {n: dict(table[n]) for n in names}


def check_plan(out: Path, plan: dict[str, Any]) -> None:
    """The first run writes its plan; a later run in the same folder must have the same one (the
    arms' schedules refer to the planned steps), else one line says what differs."""
    path = out / PLAN
    if not path.exists():
        path.write_text(json.dumps(plan, indent=2, sort_keys=True))
        return
    old = json.loads(path.read_text())
    for key in ("steps", "batch_size", "seed", "source"):
        if old.get(key) != plan.get(key):
            raise BenchError(
                f"{out} holds runs planned with --{key.replace('_', '-')} {old.get(key)}, not {plan.get(key)}; "
                f"rerun with the same value to continue them, or use another --out"
            )
    for name, arm in plan["arms"].items():
        before = old.get("arms", {}).get(name)
        if before is not None and before != arm:
            raise BenchError(
                f"{out} holds arm {name} planned as {before}, not {arm} (a default changed since?); "
                f"continue it under the arm that names its settings, or use another --out"
            )
    old["arms"] = {**old.get("arms", {}), **plan["arms"]}
    path.write_text(json.dumps(old, indent=2, sort_keys=True))


def last_row(cell_dir: Path) -> dict[str, float]:
    import pandas as pd

    path = cell_dir / "train_log.csv"
    if not path.is_file():
        return {}
    log = pd.read_csv(path)
    return {} if log.empty else {k: float(v) for k, v in log.iloc[-1].items()}


class Arm:
    """One trained model: its method (kept between chunks), cell folder and progress."""

    def __init__(self, name: str, args: argparse.Namespace, dataset, out: Path):
        from disentbench import methods
        from disentbench.bench.checkpoint import load_latest
        from disentbench.bench.training import RunSeeds, check_same_hparams

        self.name, self.out = name, out
        method_name, hp = ARMS[name]
        self.hparams = {**hp, "horizon": args.steps}
        self.method = methods.create(
            method_name,
            observation_shape=dataset.observation_shape,
            seed=RunSeeds.from_seed(args.seed).init,
            **self.hparams,
        ).to(args.device)
        self.cell_dir = out / "cells" / name
        state = load_latest(self.cell_dir, map_location=args.device) if self.cell_dir.exists() else None
        if state is not None:  # the trainer would load it too; scoring a finished arm needs it now
            check_same_hparams(self.method, state, self.cell_dir)  # e.g. a default changed since
            self.method.load_checkpoint_state(state["method_state"])
        self.step = int(state["step"]) if state else 0
        self.seconds = float(state.get("elapsed_seconds", 0.0)) if state else 0.0

    def describe(self) -> dict[str, Any]:
        return {"method": self.method.registered_name, "hparams": self.hparams}


def train_chunk(arm: Arm, args: argparse.Namespace, dataset) -> None:
    from disentbench.bench.training import SpeedOptions, TrainOptions, train

    # the next multiple of the chunk: an arm resumed from a stop signal's mid-chunk checkpoint keeps
    # its chunk ends, and so its scored steps, where an uninterrupted run has them
    target = min(args.steps, (arm.step // args.chunk + 1) * args.chunk)
    options = TrainOptions(
        steps=target, batch_size=args.batch, seed=args.seed, log_every=args.log_every, checkpoint_every=args.chunk
    )
    speed = SpeedOptions(channels_last=args.channels_last)
    segments.note_segment(
        arm.cell_dir, arm.step, args.device, torch_threads=args.threads, channels_last=args.channels_last
    )
    result = train(arm.method, dataset, options, device=torch.device(args.device), cell_dir=arm.cell_dir, speed=speed)
    arm.step, arm.seconds = target, result.seconds


def draw(arm: Arm, out: Path, curves: bool) -> list[str]:
    """Samples and generator traversal of this step, and (curves) the diagnostics curves so far."""
    from disentbench.bench.report.gan import (
        diagnostics_figure,
        generator_traversal_figure,
        read_log,
        samples_figure,
    )

    pictures = out / "pictures"
    label = f"{arm.name} ({arm.method.registered_name}), step {arm.step}"
    files = [
        samples_figure(arm.method, pictures / f"{arm.name}_samples_s{arm.step}.png", f"{label}: generated samples"),
        generator_traversal_figure(arm.method, pictures / f"{arm.name}_traversal_s{arm.step}.png", label),
    ]
    log = read_log(arm.cell_dir) if curves else None
    if log is not None:
        drawn = diagnostics_figure(log, pictures / f"{arm.name}_diagnostics.png", f"{arm.name}: diagnostics")
        files += [drawn] if drawn is not None else []
    return [str(f.path) for f in files]


def score(arm: Arm, args: argparse.Namespace, dataset, sizes: dict[str, dict]) -> dict[str, float]:
    """MIG / DCI / SAP (or --metrics) of the representation as it stands, written to scores/."""
    from disentbench import metrics

    t0 = time.perf_counter()
    values = metrics.evaluate_many(sizes, dataset, arm.method.encode, seed=args.seed)
    record = {k: v for k, v in values.items() if isinstance(v, (int, float))}
    record |= {"step": arm.step, "train_seconds": arm.seconds, "eval_seconds": time.perf_counter() - t0}
    path = arm.out / "scores" / f"{arm.name}_s{arm.step}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    return record


def _scored_steps(out: Path, name: str) -> set[int]:
    return {int(p.stem.rsplit("_s", 1)[1]) for p in (out / "scores").glob(f"{name}_s*.json")}


def latest_scores(out: Path, name: str) -> dict[str, Any]:
    steps = _scored_steps(out, name)
    return json.loads((out / "scores" / f"{name}_s{max(steps)}.json").read_text()) if steps else {}


def balance_decision(out: Path, last_logs: int = 3) -> dict[str, Any] | None:
    """DiD's default balance, by the rule stated in docs/did.md: at the largest step at which every
    balance arm has scores, each remedy is compared with `literal` on MIG, DCI, SAP (scores at that
    step) and on E's R^2 and H's accuracy (means of the last `last_logs` logged values up to it); a
    remedy that is better by more than BALANCE_MARGINS on most of the five measures beats it, and the
    default is the remedy with most such wins, else `literal` (no unmeasured departure from the paper).
    None while `did_literal` and one remedy have no step scored in common."""
    import pandas as pd

    arms = [n for n in BALANCE_ARMS if (out / "cells" / n).is_dir() and _scored_steps(out, n)]
    if "did_literal" not in arms or len(arms) < 2:
        return None
    common = set.intersection(*(_scored_steps(out, n) for n in arms))
    if not common:
        return None
    step = max(common)
    measures: dict[str, dict[str, float]] = {}
    for name in arms:
        scores = json.loads((out / "scores" / f"{name}_s{step}.json").read_text())
        row = {m: float(scores[m]) for m in ("mig", "dci", "sap") if m in scores}
        log_path = out / "cells" / name / "train_log.csv"
        log = pd.read_csv(log_path) if log_path.is_file() else pd.DataFrame()
        if not log.empty:
            recent = log[log["step"] <= step].tail(last_logs)
            row |= {k: float(recent[k].mean()) for k in ("r2_enc_mean", "h_centroid_acc") if k in recent}
        measures[name] = row
    base = measures["did_literal"]
    wins = {
        name: [m for m, margin in BALANCE_MARGINS.items() if m in base and m in measures[name]
               and measures[name][m] - base[m] > margin]
        for name in arms[1:]
    }  # fmt: skip
    beating = [n for n in arms[1:] if 2 * len(wins[n]) > len(BALANCE_MARGINS)]
    chosen = max(beating, key=lambda n: len(wins[n])) if beating else "did_literal"
    return {
        "step": step,
        "measures": measures,
        "margins": BALANCE_MARGINS,
        "wins_over_literal": wins,
        "chosen": BALANCE_ARMS[chosen],
    }


def summarise(out: Path, arms: list[Arm], args: argparse.Namespace, metric_names: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {"planned_steps": args.steps, "batch_size": args.batch, "source": args.source}
    rows = []
    for arm in arms:
        diag = last_row(arm.cell_dir)
        entry = {
            **arm.describe(),
            "step": arm.step,
            "train_seconds": round(arm.seconds, 1),
            "train_hosts": segments.describe(segments.read_segments(arm.cell_dir)),
            "scores": latest_scores(out, arm.name),
            "diagnostics": {k: diag[k] for k in SUMMARY_DIAGNOSTICS if k in diag},
        }
        summary[arm.name] = entry
        scores = entry["scores"]
        cells = [f"{scores[m]:.3f}" if m in scores else "-" for m in metric_names]
        shown = ", ".join(f"{k} {v:.3g}" for k, v in entry["diagnostics"].items())
        scored_at = scores.get("step", "-")
        rows.append(f"| {arm.name} | {arm.step} | {scored_at} | " + " | ".join(cells) + f" | {shown} |")
    header = "| arm | steps | scored at | " + " | ".join(metric_names) + " | diagnostics at the last logging step |"
    table = [header, "|" + "---|" * (4 + len(metric_names))] + rows
    decision = balance_decision(out)
    lines = []
    if decision is not None:
        summary["balance_decision"] = decision
        won = "; ".join(f"{n}: {', '.join(w) or 'none'}" for n, w in decision["wins_over_literal"].items())
        lines = [
            "",
            f"DiD's balance by the rule of docs/did.md, at step {decision['step']}: **{decision['chosen']}** "
            f"(measures beaten beyond the margins, against did_literal: {won})",
        ]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(
        f"# GAN family on dSprites ({args.source}), one seed, batch {args.batch}, planned {args.steps} steps\n\n"
        + "\n".join(table + lines)
        + "\n"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m disentbench.bench.evidence.gan_family", description=__doc__.splitlines()[0]
    )
    p.add_argument("--out", type=Path, default=Path("results/gan-family"))
    p.add_argument("--steps", type=int, default=10_000, help="planned generator steps per arm (the schedules' horizon)")
    p.add_argument("--chunk", type=int, default=250, help="steps per arm before the next arm's turn")
    p.add_argument("--arms", default=DEFAULT_ARMS, help=f"comma list of {', '.join(ARMS)}")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--source", choices=("procedural", "official"), default="procedural")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="NHWC weights and batches: a speed option, not part of an arm's identity (fp32 DiD x1.18 on an AVX2 CPU)",
    )
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--score-every", type=int, default=1000, help="score when a chunk ends at a multiple of this")
    p.add_argument("--metrics", default="mig,dci,sap")
    p.add_argument("--metric-scale", choices=("quick", "tiny"), default="quick")
    p.add_argument("--max-hours", type=float, default=0.0, help="start no chunk after this long (0: no limit)")
    p.add_argument("--rounds", type=int, default=0, help="round-robin rounds in this invocation (0: until done)")
    args = p.parse_args(argv)
    try:
        with preemption.handling_signals():
            return run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except preemption.Interrupted as exc:  # SIGTERM / Ctrl-C: the training arm checkpointed its step
        print(f"stopped ({exc}): each arm's checkpoint is kept; rerun the same command to resume", file=sys.stderr)
        return exc.exit_code


def run(args: argparse.Namespace) -> int:
    for name in ("steps", "chunk", "batch", "log_every", "score_every", "threads"):
        if getattr(args, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.max_hours < 0 or args.rounds < 0:
        raise BenchError("--max-hours and --rounds must be >= 0")
    names = parse_arms(args.arms)
    metric_names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    sizes = metric_sizes(args.metric_scale, metric_names)
    torch.set_num_threads(args.threads)
    from disentbench import datasets

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    dataset = datasets.create("dsprites", source=args.source, device=args.device)
    arms = [Arm(name, args, dataset, out) for name in names]
    plan = {"steps": args.steps, "batch_size": args.batch, "seed": args.seed, "source": args.source}
    check_plan(out, {**plan, "arms": {a.name: a.describe() for a in arms}})
    start, rounds = time.monotonic(), 0

    def out_of_time() -> bool:
        return bool(args.max_hours) and time.monotonic() - start > args.max_hours * 3600

    while any(a.step < args.steps for a in arms) and not out_of_time():
        if args.rounds and rounds >= args.rounds:
            break
        for arm in arms:
            if arm.step >= args.steps or out_of_time():
                continue
            if arm.step and arm.step % args.score_every == 0 and arm.step not in _scored_steps(out, arm.name):
                score(arm, args, dataset, sizes)  # a stop came between this step's checkpoint and its score
            train_chunk(arm, args, dataset)
            scoring = arm.step % args.score_every == 0 or arm.step == args.steps
            draw(arm, out, curves=scoring)
            if scoring:
                score(arm, args, dataset, sizes)
            print(f"{arm.name}: step {arm.step} of {args.steps} ({arm.seconds:.0f} s of training)", flush=True)
        rounds += 1
        summarise(out, arms, args, metric_names)
    for arm in arms:  # a finished arm without its final score (e.g. scored before a crash) gets it now
        if arm.step == args.steps and latest_scores(out, arm.name).get("step") != arm.step:
            score(arm, args, dataset, sizes)
    print(json.dumps(summarise(out, arms, args, metric_names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
