"""`python run_benchmark.py [options]`, `python run_benchmark.py report DIR [DIR ...]` and
`python run_benchmark.py rescore DIR`.

Every flag is validated (and every cell expanded) before any training starts; bad input is a
one-line error that names the valid choices. SIGINT (Ctrl-C) and SIGTERM (a cluster's preemption)
stop a run cleanly: running cells checkpoint their current step, locks are released, one line says
so, and the exit code is 128 + the signal (130, 143); the same command resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from disentbench import datasets, methods, metrics
from disentbench.atomic import write_json
from disentbench.bench import preemption, provenance
from disentbench.bench.claim import ClaimSpec, check_claim
from disentbench.bench.config import list_profiles, load_profile
from disentbench.bench.curve import cell_score_steps, check_score_steps, parse_score_steps, write_run_curves
from disentbench.bench.devices import CHOICES as DEVICE_CHOICES
from disentbench.bench.devices import check_bf16, resolve_device, resolve_precision
from disentbench.bench.execution import run_parallel, run_sequential
from disentbench.bench.flags import add_compile_argument
from disentbench.bench.flags import comma_list as _comma_list
from disentbench.bench.flags import one_of as _one_of
from disentbench.bench.grid import Cell, expand, parse_sets
from disentbench.bench.plugins import load_plugins
from disentbench.bench.runner import (
    SCORES,
    RunSettings,
    cell_dir,
    check_writable,
    failed_cell_ids,
    is_complete,
    write_failures,
    write_runs_csv,
)
from disentbench.choices import BACKENDS, GRIDS, PRECISION_SETTINGS, REPRESENTATIONS, SOURCES
from disentbench.errors import BenchError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise BenchError(message)


@dataclass(frozen=True)
class Plan:
    """Everything `run` needs, validated before any training: the profile, the expanded cells, what
    every cell shares, the loaded datasets, and where the cells run."""

    profile: dict[str, Any]
    cells: tuple[Cell, ...]
    settings: RunSettings
    datasets: dict[str, Any]  # name -> loaded dataset (its source and description go into run.json)
    n_parallel: int
    devices: tuple[str, ...]
    backend: str
    scheduler: str | None
    retry_failed: bool = False
    skip_figures: bool = False
    precision_setting: str = "fp32"  # what was asked for: a precision, or "auto" (resolved into the cells)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="run_benchmark.py", description="Train and score disentanglement methods on ground-truth datasets."
    )
    _add_what_to_run(p)
    _add_where_to_run(p)
    _add_how_to_train(p)
    _add_outputs(p)
    return p


def _add_what_to_run(p: argparse.ArgumentParser) -> None:
    """Which cells: methods, datasets and their source, seeds, steps, profile, hyperparameters."""
    p.add_argument(
        "--methods",
        help="comma-separated method names (default: the profile's); registered: " + ", ".join(methods.list_methods()),
    )
    p.add_argument(
        "--datasets",
        help="comma-separated dataset names or file:PATH for your own .npz/.h5 (default: the profile's); "
        "registered: " + ", ".join(datasets.list_datasets()),
    )
    p.add_argument("--seeds", type=str, help="number of seeds n: runs seeds 0..n-1 (default: the profile's)")
    p.add_argument("--profile", default="quick", help=f"{' | '.join(list_profiles())} or a YAML file path")
    p.add_argument("--steps", type=str, help="training steps per model (overrides the profile)")
    p.add_argument("--results", help="run folder (default results/<profile>)")
    p.add_argument("--device", default="auto", help=DEVICE_CHOICES)
    p.add_argument("--data-dir", help="folder holding official dataset files")
    p.add_argument(
        "--source",
        default="auto",
        choices=SOURCES,
        type=_one_of(SOURCES),
        help=" | ".join(SOURCES) + " (auto: the official file if present, else procedural)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip the checksum of official files (re-packed files)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="METHOD.PARAM=V[,V...]",
        help="set or sweep a hyperparameter, e.g. --set betavae.beta=1,4,16",
    )
    p.add_argument(
        "--grid",
        default=None,
        choices=GRIDS,
        type=_one_of(GRIDS),
        help=" | ".join(GRIDS) + " (reference: expand every method over its reference grid; "
        "default: the profile's grid key)",
    )


def _add_where_to_run(p: argparse.ArgumentParser) -> None:
    """Where and how many at once: jobs, threads, devices, the backend, plugins, retries."""
    p.add_argument("--jobs", type=str, default="1", help="cells run at once on this machine (processes)")
    p.add_argument(
        "--threads",
        type=str,
        help="torch CPU threads per cell (default: cores // parallel cells); "
        "fix it to get bitwise-identical CPU numbers across --jobs settings",
    )
    p.add_argument("--devices", help="comma-separated devices to spread cells over, e.g. cuda:0,cuda:1")
    p.add_argument("--jobs-per-device", type=str, default="1", help="cells at once on each of --devices")
    p.add_argument(
        "--backend",
        default="local",
        choices=BACKENDS,
        type=_one_of(BACKENDS, _comma_list),
        help=" | ".join(BACKENDS) + " (dask: with --scheduler ADDRESS)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (cells, steps, complete cells) and its projected wall time from a short "
        "probe; train nothing and change nothing in the results folder",
    )
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://head:8786")
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE.py",
        help="import a module that registers your own methods/metrics/datasets (repeatable)",
    )
    p.add_argument("--retry-failed", action="store_true", help="rerun only the cells listed in failures.csv")


def _add_how_to_train(p: argparse.ArgumentParser) -> None:
    """How each cell trains: the scored representation, precision, compile, layout, curve steps."""
    p.add_argument(
        "--representation",
        default=None,
        choices=REPRESENTATIONS,
        type=_one_of(REPRESENTATIONS),
        help=" | ".join(REPRESENTATIONS) + " (what the metrics score: the encoder mean, or one posterior sample "
        "per image; default: the profile's representation key, mean)",
    )
    p.add_argument(
        "--correlation",
        help="train on correlated factors: setting names such as dsprites_single_1_01 (several: one more grid "
        "axis; 'none': uncorrelated, the default; metrics always score the uncorrelated data; see "
        "docs/correlated.md; replaces the profile's correlation key)",
    )
    p.add_argument(
        "--score-correlated",
        action="store_true",
        help="also score correlated cells on their correlated training distribution (columns correlated_<metric>; "
        "sets the profile's score_correlated key)",
    )
    p.add_argument(
        "--holdout",
        help="hold factor combinations out of training: setting names such as dsprites_recomb_10 (several: one more "
        "grid axis; 'none': every combination, the default); metrics score the seen combinations and, as "
        "heldout_<metric>, the held-out ones; see docs/heldout.md; replaces the profile's holdout key",
    )
    p.add_argument(
        "--precision",
        choices=PRECISION_SETTINGS,
        type=_one_of(PRECISION_SETTINGS),
        help=" | ".join(PRECISION_SETTINGS) + " (default: the profile's, else fp32; bf16: autocast, part of a cell's "
        "identity; auto: bf16 on AMX CPUs and CUDA GPUs with bf16, else fp32; measure with "
        "`python -m disentbench.bench.perf train --options-ab`)",
    )
    add_compile_argument(p)
    p.add_argument("--channels-last", action="store_true", help="NHWC memory layout for weights and batches")
    p.add_argument(
        "--score-steps",
        help="score every cell at these steps during training, e.g. 1000,3000,10000 (a learning curve; "
        "replaces the profile's score_steps; 'none': no curve)",
    )


def _add_outputs(p: argparse.ArgumentParser) -> None:
    """What a run writes besides the tables: the report and the trackers."""
    p.add_argument("--no-report", action="store_true", help="write the tables but skip plots and report.html")
    p.add_argument(
        "--log",
        help="trackers that log every cell, e.g. tensorboard,mlflow (replaces the profile's log; 'none': no tracker)",
    )
    p.add_argument("--log-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else RUN/mlruns)")


def _positive_int(value: str | None, flag: str) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise BenchError(f"{flag} must be a positive integer, got {value!r}") from None
    if n < 1:
        raise BenchError(f"{flag} must be a positive integer, got {value!r}")
    return n


def _names(value: str | None, default: Any, registered: list[str], kind: str) -> list[str]:
    if value is None:
        names = registered if default == "all" else list(default)
    else:
        names = [v.strip() for v in value.split(",") if v.strip()]
        if not names:
            raise BenchError(f"--{kind}s is empty; registered {kind}s: {', '.join(registered)}")
    for n in names:
        if n not in registered:
            raise BenchError(f"unknown {kind} {n!r}; registered {kind}s: {', '.join(registered)}")
    return list(dict.fromkeys(names))


def _check_sources(profile: dict, source: str, loaded: dict) -> None:
    """A profile that declares `procedural_ok: false` never falls back to the stand-in silently."""
    if profile["procedural_ok"] or source != "auto":
        return
    for name, dataset in loaded.items():
        if dataset.source == "procedural":
            raise BenchError(
                f"profile {profile['name']} needs the official {name} file (procedural_ok: false) and none was "
                f"found: run `python -m disentbench.datasets download {name}` (or put the file in --data-dir), or "
                f"pass --source procedural to use the procedural stand-in on purpose (recorded as data_source)"
            )


def _setting_axis(flag: str, value: str | None, profile: dict, loaded: dict) -> dict[str, list[str]]:
    """Per dataset, the settings of one data axis its cells train on (`--correlation` or `--holdout`,
    else the profile's key of that name): "none" applies to every dataset, a named setting to the
    datasets of its family; a name unknown, or for none of the selected datasets, is a one-line error."""
    from disentbench.datasets import correlation, holdout

    module = {"correlation": correlation, "holdout": holdout}[flag]
    names = profile[flag] if value is None else [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        example = module.list_settings()[0]
        raise BenchError(f"--{flag} is empty; give setting names such as {example}, or none")
    names = list(dict.fromkeys(names))
    out: dict[str, list[str]] = {name: [] for name in loaded}
    for name in names:
        if name == module.NONE:
            for axis in out.values():
                axis.append(name)
            continue
        fits = [d for d, dataset in loaded.items() if module.get(name).applies_to(dataset)]
        if not fits:
            module.get(name, next(iter(loaded.values())))  # one line: which datasets it is for
        for d in fits:
            module.get(name, loaded[d])  # one line if its grid cannot take it
            out[d].append(name)
    for d, axis in out.items():
        if not axis:
            module.get(names[0], loaded[d])  # one line: the settings this dataset takes
    return out


def _check_representation(representation: str, method_names: list[str]) -> None:
    """The sampled representation needs a posterior to sample from (the VAE family has one)."""
    if representation == "mean":
        return
    for name in method_names:
        if not hasattr(methods.get(name), "encode_sampled"):
            raise BenchError(
                f"method {name} has no posterior to sample (no encode_sampled): representation 'sampled' "
                f"needs VAE-family methods; drop {name} from --methods or use --representation mean"
            )


def _check_method_datasets(cells: list[Cell], loaded: dict) -> None:
    """A method that needs something of its data (the weakly supervised ones draw pairs through a
    complete factor grid) says so in one line for each planned setting, before any training; it is
    asked about what the cell trains on (a held-out cell's grid has holes)."""
    from disentbench.datasets.holdout import seen_part

    keys = dict.fromkeys((c.method, c.dataset, c.hparams_json, c.holdout) for c in cells)
    for method, dataset, hparams_json, holdout in keys:
        check = getattr(methods.get(method), "check_dataset", None)
        if check is not None:
            check(seen_part(loaded[dataset], holdout), json.loads(hparams_json))


def _trackers(args: argparse.Namespace, profile: dict) -> tuple[tuple[str, ...], str | None]:
    """The trackers asked for (--log, else the profile's log) and the tracking URI (--log-uri, else
    $MLFLOW_TRACKING_URI, resolved here so that workers elsewhere use the same store); each tracker
    must be installed (one line naming its pip extra otherwise)."""
    from disentbench.bench.trackers import check_trackers, parse_trackers

    given = getattr(args, "log", None)
    names = check_trackers(parse_trackers(given if given is not None else profile.get("log")))
    uri = getattr(args, "log_uri", None)
    if uri and "mlflow" not in names:
        raise BenchError("--log-uri is the MLflow tracking URI; add --log mlflow (or drop --log-uri)")
    return tuple(names), uri or (os.environ.get("MLFLOW_TRACKING_URI") if "mlflow" in names else None) or None


def _placement(args: argparse.Namespace, jobs: int, per_device: int) -> tuple[Any, list[str], int]:
    """The first device, every device cells are spread over, and how many cells run at once
    (--jobs, or --jobs-per-device on each of --devices)."""
    device = resolve_device(args.device)
    devices = [str(device)]
    if args.devices:
        devices = [str(resolve_device(d)) for d in args.devices.split(",") if d.strip()]
        if not devices:
            raise BenchError("--devices is empty; e.g. --devices cuda:0,cuda:1")
        device = resolve_device(devices[0])
    return device, devices, len(devices) * per_device if args.devices else jobs


def _load_datasets(args: argparse.Namespace, profile: dict, names: list[str], device: Any) -> dict[str, Any]:
    """Load every dataset of the plan and check it against the profile (official files where the
    profile needs them) and against each metric (e.g. fairness needs two factors)."""
    loaded = {
        name: datasets.create(
            name, source=args.source, data_dir=args.data_dir, verify=not args.no_verify, device=device
        )
        for name in names
    }
    _check_sources(profile, args.source, loaded)
    for name, params in profile["metrics"].items():
        check = getattr(metrics.create(name, **params), "check_dataset", None)
        for dataset in loaded.values() if check is not None else ():
            check(dataset)
    return loaded


def plan(args: argparse.Namespace) -> Plan:
    """Validate everything and expand the grid; no training happens here."""
    load_plugins(args.plugin)
    profile = load_profile(args.profile)
    if getattr(args, "score_correlated", False):
        profile = {**profile, "score_correlated": True}
    if getattr(args, "score_steps", None) is not None:
        profile = {**profile, "score_steps": parse_score_steps(args.score_steps), "method_score_steps": {}}
    method_names = _names(args.methods, profile["methods"], methods.list_methods(), "method")
    log, log_uri = _trackers(args, profile)  # a tracker not installed: one line before anything else
    # file:PATH (a user's own data) is registered first and named file-<stem> from here on
    dataset_names = _names(
        datasets.register_files(args.datasets),
        profile["datasets"] if args.datasets is not None else datasets.register_files(profile["datasets"]),
        datasets.list_datasets(),
        "dataset",
    )
    seeds = _positive_int(args.seeds, "--seeds") or int(profile["seeds"])
    steps = _positive_int(args.steps, "--steps")
    jobs = _positive_int(args.jobs, "--jobs")
    per_device = _positive_int(args.jobs_per_device, "--jobs-per-device")
    threads = _positive_int(args.threads, "--threads")
    if args.backend == "dask" and not args.scheduler:
        raise BenchError("--backend dask needs --scheduler ADDRESS (or use --backend dask-local)")
    for name in profile["metrics"]:
        metrics.create(name, **profile["metrics"][name])  # unknown metric or parameter -> one line
    claim = ClaimSpec.from_config(profile.get("claim"))
    ablation = check_claim(claim)
    sets = parse_sets(args.set, method_names)
    device, devices, n_parallel = _placement(args, jobs, per_device)
    precision_setting = args.precision or profile["precision"]
    precision = resolve_precision(precision_setting, devices)
    if precision == "bf16":
        for each in devices:
            check_bf16(each)
    run_dir = Path(args.results or Path("results") / profile["name"])
    if not getattr(args, "dry_run", False):  # a dry run leaves the results folder as it is
        check_writable(run_dir)
    loaded = _load_datasets(args, profile, dataset_names, device)
    representation = args.representation or profile["representation"]
    _check_representation(representation, method_names)
    extra = {claim.method: [ablation]} if claim.run_ablation and ablation and claim.method in method_names else {}
    cells = expand(
        profile,
        method_names,
        {n: d.source for n, d in loaded.items()},
        seeds,
        steps,
        sets,
        args.grid or profile["grid"],
        {n: len(d) for n, d in loaded.items()},
        precision,
        representation,
        extra_settings=extra,
        correlations=_setting_axis("correlation", getattr(args, "correlation", None), profile, loaded),
        holdouts=_setting_axis("holdout", getattr(args, "holdout", None), profile, loaded),
    )
    _check_method_datasets(cells, loaded)
    for method, cell_steps in dict.fromkeys((c.method, c.steps) for c in cells):
        check_score_steps(cell_score_steps(profile, method), f"{method} ({cell_steps} steps)", cell_steps)
    if threads is None and n_parallel > 1:
        threads = max(1, (os.cpu_count() or 1) // n_parallel)
    settings = RunSettings(
        log=log,
        log_uri=log_uri,
        run_dir=run_dir,
        profile=profile,
        device=str(device),
        data_dir=args.data_dir,
        verify=not args.no_verify,
        torch_threads=threads,
        plugins=tuple(args.plugin),
        compile=args.compile,
        channels_last=args.channels_last,
    )
    return Plan(
        profile=profile,
        cells=tuple(cells),
        settings=settings,
        datasets=loaded,
        n_parallel=n_parallel,
        devices=tuple(devices),
        backend=args.backend,
        scheduler=args.scheduler,
        retry_failed=args.retry_failed,
        skip_figures=args.no_report,
        precision_setting=precision_setting,
    )


def _say_precision(planned: Plan, todo: list[Cell]) -> None:
    """One line for `--precision auto` (what it chose here), and one for an fp32 run on a host with
    fast bf16 units (what bf16 would gain)."""
    device = planned.settings.device
    if planned.precision_setting == "auto":
        from disentbench.bench.perf.host import bf16_capability

        chosen = ", ".join(sorted({c.precision for c in planned.cells}))
        print(f"precision auto: {chosen} on {device} (bf16 units: {bf16_capability(device)})", flush=True)
    if any(c.precision == "fp32" for c in todo):
        from disentbench.bench.perf.host import bf16_hint

        hint = bf16_hint(device)
        if hint:
            print(hint, flush=True)


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    started = time.time()
    provenance.pin_git_commit()  # the code this run loads now is what its rows name, however long it runs
    planned = plan(args)
    if args.dry_run:
        from disentbench.bench.dryrun import describe

        print(describe(planned), flush=True)
        return 0
    profile, cells, settings = planned.profile, planned.cells, planned.settings
    run_dir = settings.run_dir
    complete = {c.cell_id for c in cells if is_complete(run_dir, c)}
    done = [c for c in cells if c.cell_id in complete]
    todo = [c for c in cells if c.cell_id not in complete]
    if planned.retry_failed:
        failed = failed_cell_ids(run_dir)
        todo = [c for c in todo if c.cell_id in failed]
        print(f"--retry-failed: rerunning {len(todo)} failed cell(s)", flush=True)
    sources = ", ".join(f"{n}: {d.source}" for n, d in planned.datasets.items())
    print(
        f"disentbench: profile {profile['name']}, {len(cells)} cell(s) ({sources}), device {settings.device}, "
        f"results in {run_dir}",
        flush=True,
    )
    _say_precision(planned, todo)
    if done:
        print(f"skipping {len(done)} cell(s) already complete in {run_dir}", flush=True)
        for c in done:
            print(f"  complete: {c.cell_id}", flush=True)
    with tqdm(total=len(todo), unit="cell", file=sys.stderr, dynamic_ncols=True, disable=not todo) as bar:
        if planned.backend != "local" or (planned.n_parallel > 1 and len(todo) > 1):
            outcomes = run_parallel(
                todo, settings, planned.n_parallel, list(planned.devices), bar, planned.backend, planned.scheduler
            )
        else:  # run_cell applies settings.torch_threads itself
            outcomes = run_sequential(todo, settings, planned.datasets, bar)
    failures = [(c, o) for c, o in outcomes if o.status == "failed"]
    records = [json.loads((cell_dir(run_dir, c) / SCORES).read_text()) for c in cells if is_complete(run_dir, c)]
    run_notes = _run_level_scores(run_dir, records, profile, settings)
    runs = write_runs_csv(run_dir, records, profile["name"])
    curves_path = write_run_curves(run_dir, [c.cell_id for c in cells])
    if curves_path is not None:
        print(f"learning curves: {curves_path}", flush=True)
    failures_path = write_failures(run_dir, failures)
    write_json(
        run_dir / "run.json",
        {
            "profile": profile["name"],
            "primary_metric": profile["primary_metric"],
            "argv": sys.argv[1:],
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)),
            "finished_at": provenance.now(),
            "wall_seconds": round(time.time() - started, 1),
            "device": settings.device,
            "git_commit": provenance.git_commit(),
            "versions": provenance.versions(),
            "config": profile,
            "data_sources": {n: d.describe() for n, d in planned.datasets.items()},
            "cells": len(cells),
            "complete": len(records),
            "failed": len(failures),
            "notes": run_notes,
        },
    )
    _report(run_dir, runs, profile, planned.skip_figures)
    if failures:
        names = "; ".join(f"{c.cell_id} ({o.reason})" for c, o in failures[:5])
        more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
        print(
            f"\n{len(failures)} of {len(cells)} cell(s) failed: {names}{more}. The other cells' results are "
            f"saved; details are in {failures_path}. Fix the cause and rerun with --retry-failed to run only "
            f"those cells.",
            file=sys.stderr,
        )
        return 1
    return 0


def _run_level_scores(run_dir: Path, records: list[dict], profile: dict, settings) -> list[str]:
    """UDR over the finished cells of each setting, when the profile lists it (bench/run_level.py)."""
    if "udr" not in profile["metrics"] or not records:
        return []
    from disentbench.bench import run_level

    scores, notes = run_level.udr_of_run(
        run_dir, records, profile["metrics"]["udr"], device=settings.device, data_dir=settings.data_dir
    )
    run_level.store(run_dir, records, scores)
    for note in notes:
        print(f"note: {note}", flush=True)
    return notes


def _report(run_dir: Path, runs, profile: dict, skip_figures: bool) -> None:
    from disentbench.bench import report

    if runs.empty:
        print("no complete cells yet: nothing to tabulate")
        return
    report.write_leaderboard(runs, run_dir, profile["primary_metric"])
    print("\n" + report.console_summary(runs, profile["primary_metric"]))
    print(f"tables: {run_dir / 'runs.csv'}, {run_dir / 'leaderboard.md'}")
    if not skip_figures:
        html = report.build_report([run_dir], run_dir / "report", profile["primary_metric"])
        print(f"report: {html}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "report":
            from disentbench.bench import report

            return int(report.main(argv[1:]) or 0)
        if argv and argv[0] == "rescore":
            from disentbench.bench import rescore

            return int(rescore.main(argv[1:]) or 0)
        if argv and argv[0] == "zoo":
            from disentbench.bench import zoo

            return int(zoo.main(argv[1:]) or 0)
        if argv and argv[0] == "score":
            from disentbench.bench import score

            return int(score.main(argv[1:]) or 0)
        with preemption.handling_signals():
            return run(build_parser().parse_args(argv))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or preemption.Interrupted for SIGINT/SIGTERM
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"\n{stopped_message(signum)}", file=sys.stderr)
        return 128 + signum


def stopped_message(signum: int) -> str:
    """The one line printed when a signal stops a run."""
    what = "interrupted" if signum == signal.SIGINT else "terminated"
    return (
        f"{what} ({signal.Signals(signum).name}): finished cells and the running cells' checkpoints at their "
        f"current step are saved; rerun the same command to resume"
    )
