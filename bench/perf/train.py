"""`python -m disentbench.bench.perf train`: our trainer against a minimal PyTorch loop, per method, same device.

Per (dataset, method), interleaved and repeated (median reported, so a shared machine's noise
hits both sides alike):
- ours: `bench.training.train` (no cell_dir, one logging step at the end) at the batch size;
- minimal: the plainest loop of the same networks and losses:
  `x = ds.observations(ds.sample_factors(rows, rng)); method.train_step(x, step, gen)`, with the
  same precision / compile / channels_last applied by hand and no loss bookkeeping at all. It draws
  its batch the simplest way too (one sampling and one render per step), so ours / minimal is
  the trainer's overhead (or its gain, where it prefetches on CUDA);
- batch share: time of that batch production alone / minimal step time;
- peak memory: torch.cuda.max_memory_allocated per method on CUDA; on CPU the process's peak RSS
  so far (ru_maxrss, monotone over the run: an upper bound for each method);
- concurrency: K separate processes (spawned, started together behind a barrier) each training
  one model with our trainer on the same device; aggregate steps/s for each K;
- projection: the paper grid (5 methods x 2 datasets x 5 seeds x 300,000 steps by default) at the
  mean measured per-model time, sequentially and at the best measured concurrency speed-up.
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import time
import warnings

import numpy as np
import torch

from disentbench.bench.choices import COMPILE_MODES, PRECISIONS, SOURCES, or_list
from disentbench.bench.errors import BenchError


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build(method_name: str, dataset_name: str, source: str, device: torch.device):
    from disentbench import datasets, methods
    from disentbench.bench.training import RunSeeds

    ds = datasets.create(dataset_name, source=source, device=device)
    m = methods.create(method_name, observation_shape=ds.observation_shape, seed=RunSeeds.from_seed(0).init)
    return ds, m.to(device)


def _time_ours(method, ds, steps: int, batch: int, device, opts: dict) -> float:
    from disentbench.bench.training import SpeedOptions, TrainOptions, train

    _sync(device)
    t0 = time.perf_counter()
    train(
        method,
        ds,
        TrainOptions(steps=steps, batch_size=batch, seed=1, log_every=10**9),
        device=device,
        speed=SpeedOptions(**opts),
    )
    _sync(device)
    return time.perf_counter() - t0


def _time_minimal(method, ds, steps: int, batch: int, device, opts: dict) -> float:
    """The hand-written loop; compile/channels_last/autocast applied exactly as a user would."""
    from disentbench.bench.training import (
        autocast_context,
        compile_mode,
        compile_networks,
        compile_options,
        draw_batch,
        set_channels_last,
        uncompile_networks,
    )

    rows = method.batches_per_step * batch
    rng = np.random.default_rng(1)
    gen = torch.Generator(device=device)
    gen.manual_seed(1)
    ctx = autocast_context(device, opts.get("precision", "fp32"))
    cl = opts.get("channels_last", False)
    nets = []
    if cl:
        set_channels_last(method, True)
    if compile_mode(opts.get("compile")):
        nets = compile_networks(method, **compile_options(opts.get("compile")))
    try:
        _sync(device)
        t0 = time.perf_counter()
        for step in range(1, steps + 1):
            x = draw_batch(method, ds, rows, rng)  # pairs for the weakly supervised methods
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with ctx:
                try:
                    method.train_step(x, step, gen)
                except Exception:  # compile failed: same fallback as the trainer (warned there)
                    if not nets:
                        raise
                    uncompile_networks(nets)
                    nets = []
                    method.train_step(x, step, gen)
        _sync(device)
        return time.perf_counter() - t0
    finally:
        uncompile_networks(nets)
        if cl:
            set_channels_last(method, False)


def _time_batches(ds, rows: int, steps: int, device) -> float:
    rng = np.random.default_rng(2)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        ds.observations(ds.sample_factors(rows, rng))
    _sync(device)
    return time.perf_counter() - t0


def _peak_mb(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process_peak_rss_so_far"


def measure_method(method_name: str, dataset_name: str, args, device: torch.device, opts: dict) -> dict:
    ds, method = _build(method_name, dataset_name, args.source, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rows = method.batches_per_step * args.batch
    _time_ours(method, ds, max(args.warmup, 1), args.batch, device, opts)
    _time_minimal(method, ds, max(args.warmup, 1), args.batch, device, opts)
    _time_batches(ds, rows, 1, device)
    ours, minimal, batches = [], [], []
    for _ in range(args.repeats):
        ours.append(_time_ours(method, ds, args.steps, args.batch, device, opts) / args.steps)
        minimal.append(_time_minimal(method, ds, args.steps, args.batch, device, opts) / args.steps)
        batches.append(_time_batches(ds, rows, args.steps, device) / args.steps)
    t_ours, t_min, t_batch = (statistics.median(v) for v in (ours, minimal, batches))
    peak, kind = _peak_mb(device)
    return {
        "ours_steps_s": 1 / t_ours,
        "ours_img_s": rows / t_ours,
        "minimal_steps_s": 1 / t_min,
        "minimal_img_s": rows / t_min,
        "ratio": statistics.median(m / o for m, o in zip(minimal, ours)),  # paired per repeat: robust to drift
        "batch_share": t_batch / t_min,
        "batch_ms": 1e3 * t_batch,
        "step_ms_ours": 1e3 * t_ours,
        "step_ms_minimal": 1e3 * t_min,
        "ours_runs_steps_s": [1 / t for t in ours],
        "minimal_runs_steps_s": [1 / t for t in minimal],
        "peak_mem_mb": peak,
        "peak_mem_kind": kind,
        "data_source": ds.source,
        "rows_per_step": rows,
    }


class _NullDataset:
    """Hands out one fixed batch: isolates what the trainer itself costs per step."""

    observation_shape = (1, 64, 64)

    def __init__(self, x: torch.Tensor):
        self.x = x

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros((n, 5), dtype=np.int64)

    def observations(self, factors: np.ndarray) -> torch.Tensor:
        return self.x


class _NullMethod:
    """Returns fixed loss tensors without computing anything."""

    registered_name = "null"
    batches_per_step = 1

    def __init__(self, device: torch.device):
        self.losses = {k: torch.zeros((), device=device) for k in ("loss", "recon", "kl")}

    def train_step(self, x: torch.Tensor, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return self.losses


def trainer_overhead_us(device: torch.device, steps: int = 2000, repeats: int = 5) -> float:
    """Microseconds per step that `train` adds over a bare loop making the same calls (median)."""
    from disentbench.bench.training import TrainOptions, train

    ds, m = _NullDataset(torch.zeros((1, 1, 64, 64), device=device)), _NullMethod(device)
    gen = torch.Generator(device=device)
    diffs = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        train(m, ds, TrainOptions(steps=steps, batch_size=1, seed=0, log_every=10**9), device=device)
        _sync(device)
        t1 = time.perf_counter()
        rng = np.random.default_rng(0)
        for step in range(1, steps + 1):
            m.train_step(ds.observations(ds.sample_factors(1, rng)), step, gen)
        _sync(device)
        diffs.append((t1 - t0) - (time.perf_counter() - t1))
    return 1e6 * statistics.median(diffs) / steps


def _worker(spec: dict, barrier, queue) -> None:
    """One of K concurrent models: warm up, wait for the others, train `steps` steps, report."""
    try:
        torch.set_num_threads(spec["threads"])
        device = torch.device(spec["device"])
        ds, method = _build(spec["method"], spec["dataset"], spec["source"], device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _time_ours(method, ds, spec["warmup"], spec["batch"], device, spec["opts"])
            barrier.wait()
            _time_ours(method, ds, spec["steps"], spec["batch"], device, spec["opts"])
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        queue.put(("ok", peak))  # (ru_maxrss of a spawned child includes its parent's at fork: not reported)
    except BaseException as exc:  # noqa: BLE001  (reported to the parent, which decides)
        try:
            barrier.abort()
        finally:
            queue.put(("error", f"{type(exc).__name__}: {exc}"))


def measure_concurrency(k: int, args, device: torch.device, opts: dict) -> dict:
    """Aggregate steps/s of k processes, each training one model with our trainer."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(k + 1), ctx.Queue()
    threads = max(1, torch.get_num_threads() // k) if device.type == "cpu" else torch.get_num_threads()
    spec = {
        "method": args.concurrency_method,
        "dataset": args.datasets[0],
        "source": args.source,
        "device": str(device),
        "warmup": args.warmup,
        "steps": args.steps,
        "batch": args.batch,
        "opts": opts,
        "threads": threads,
    }
    procs = [ctx.Process(target=_worker, args=(spec, barrier, queue), daemon=True) for _ in range(k)]
    for p in procs:
        p.start()
    try:
        barrier.wait(timeout=args.concurrency_timeout)
        t0 = time.perf_counter()
        results = [queue.get(timeout=args.concurrency_timeout) for _ in range(k)]
        wall = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001
        results, wall = [("error", f"{type(exc).__name__}: {exc}")], float("nan")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    errors = [r[1] for r in results if r[0] != "ok"]
    if errors:
        return {"k": k, "error": errors[0]}
    return {
        "k": k,
        "aggregate_steps_s": k * args.steps / wall,
        "per_model_steps_s": args.steps / wall,
        "threads_per_model": threads,
        "peak_mem_mb_per_model": max(r[1] for r in results) if device.type == "cuda" else None,
    }


def project_grid(per_model: dict[str, float], args, speedup: float) -> dict:
    """Hours for the paper grid at the mean measured per-model time (and at the concurrency speed-up)."""
    seconds = [args.grid_steps / rate for rate in per_model.values()]
    mean_model_s = statistics.fmean(seconds)
    total = args.grid_models * mean_model_s
    return {
        "models": args.grid_models,
        "steps_per_model": args.grid_steps,
        "mean_model_hours": mean_model_s / 3600,
        "sequential_hours": total / 3600,
        "concurrency_speedup": speedup,
        "concurrent_hours": total / speedup / 3600,
        "from": sorted(per_model),
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m disentbench.bench.perf train", description=__doc__.splitlines()[0])
    p.add_argument(
        "--methods",
        default="paper",
        help="comma list, or 'paper' (betavae,annealedvae,betatcvae,factorvae,did) or 'all' registered methods",
    )
    p.add_argument("--datasets", default="dsprites,shapes3d")
    p.add_argument(
        "--source", default="auto", choices=SOURCES, help=f"{or_list(SOURCES)} (auto: the official file if present)"
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=20, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--precision", default="fp32", choices=PRECISIONS)
    p.add_argument(
        "--compile",
        nargs="?",
        const="default",
        default=False,
        choices=COMPILE_MODES,
        metavar="MODE",
        help="torch.compile (MODE: " + ", ".join(COMPILE_MODES) + "; reduce-overhead = CUDA graphs)",
    )
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--prefetch-steps", type=int, default=None, help="trainer prefetch (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--concurrency",
        default=None,
        help="K values, e.g. 1,2,4,8 (default: 1,2,4,8 on CUDA, none on CPU); 0 or '' skips",
    )
    p.add_argument("--concurrency-method", default="betavae")
    p.add_argument("--concurrency-timeout", type=float, default=600)
    p.add_argument(
        "--plain-steps",
        type=int,
        default=0,
        help="instead of the comparison: one trainer run of "
        "this many steps per method (steps/s), then the grid projection",
    )
    p.add_argument(
        "--options-ab",
        action="store_true",
        help="instead: interleaved A/B rounds of the trainer "
        "with each speed option (default, channels_last, compile, bf16, 1 thread) per method",
    )
    p.add_argument("--grid-models", type=int, default=50, help="5 methods x 2 datasets x 5 seeds")
    p.add_argument("--grid-steps", type=int, default=300_000)
    args = p.parse_args(argv)
    from disentbench import methods

    if args.methods == "paper":
        args.methods = "betavae,annealedvae,betatcvae,factorvae,did"
    args.methods = methods.list_methods() if args.methods == "all" else [m for m in args.methods.split(",") if m]
    args.datasets = [d for d in args.datasets.split(",") if d]
    for name in args.methods:
        methods.get(name)  # one-line BenchError on an unknown name
    if min(args.steps, args.repeats, args.batch) < 1 or args.warmup < 0:
        raise BenchError("--steps, --repeats and --batch must be >= 1, --warmup >= 0")
    if args.concurrency is None:
        args.concurrency = "1,2,4,8" if args.device.startswith("cuda") else ""
    args.concurrency = [int(k) for k in str(args.concurrency).split(",") if k.strip() and int(k) > 0]
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse(argv)
    except BenchError as exc:
        print(f"error: {exc}")
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    opts = {"precision": args.precision, "compile": args.compile, "channels_last": args.channels_last}
    if args.prefetch_steps is not None:
        opts["prefetch_steps"] = args.prefetch_steps
    figures: dict = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "loadavg_start": list(os.getloadavg()),
        "batch": args.batch,
        "steps": args.steps,
        "repeats": args.repeats,
        **opts,
        "methods": {},
        "concurrency": {},
    }
    print(
        f"# bench.perf train on {figures['device']} ({figures['device_name']}), torch {torch.__version__}, "
        f"{figures['threads']} threads, load {figures['loadavg_start'][0]:.2f}, options {opts}"
    )
    if args.plain_steps > 0:
        return _plain(args, device, opts, figures)
    if args.options_ab:
        return _options_ab(args, device, figures)
    print(
        f"{'dataset/method':24s} {'ours st/s':>10s} {'min st/s':>10s} {'ratio':>6s} {'ours img/s':>11s} "
        f"{'batch%':>7s} {'peak MB':>9s}"
    )
    for dataset_name in args.datasets:
        for method_name in args.methods:
            key = f"{dataset_name}/{method_name}"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                row = measure_method(method_name, dataset_name, args, device, opts)
            fallbacks = [str(w.message) for w in caught if "torch.compile failed" in str(w.message)]
            if fallbacks:
                row["compile_fallback"] = fallbacks[0]
            figures["methods"][key] = row
            print(
                f"{key:24s} {row['ours_steps_s']:10.2f} {row['minimal_steps_s']:10.2f} {row['ratio']:6.3f} "
                f"{row['ours_img_s']:11.1f} {100 * row['batch_share']:6.1f}% {row['peak_mem_mb']:9.1f}"
                + ("  (compile fell back)" if fallbacks else "")
            )
    figures["trainer_overhead_us_per_step"] = trainer_overhead_us(device)
    print(
        f"trainer overhead over a bare loop (null method and data): "
        f"{figures['trainer_overhead_us_per_step']:.1f} us/step"
    )
    base = None
    for k in args.concurrency:
        res = measure_concurrency(k, args, device, opts)
        figures["concurrency"][str(k)] = res
        if "error" in res:
            print(f"concurrency K={k}: failed ({res['error']})")
            continue
        base = res["aggregate_steps_s"] if k == 1 else base
        print(
            f"concurrency K={k} ({args.concurrency_method}, processes): aggregate {res['aggregate_steps_s']:.2f} "
            f"steps/s, {res['per_model_steps_s']:.2f} per model"
        )
    figures["concurrency_mode"] = "processes" if args.concurrency else "none"
    speedup = 1.0
    if base:
        ok = [r["aggregate_steps_s"] for r in figures["concurrency"].values() if "error" not in r]
        speedup = max(ok) / base
        figures["best_concurrency_k"] = max(
            (r for r in figures["concurrency"].values() if "error" not in r), key=lambda r: r["aggregate_steps_s"]
        )["k"]
    per_model = {k: r["ours_steps_s"] for k, r in figures["methods"].items()}
    figures["paper_grid"] = project_grid(per_model, args, speedup)
    figures["loadavg_end"] = list(os.getloadavg())
    g = figures["paper_grid"]
    print(
        f"paper grid ({g['models']} models x {g['steps_per_model']} steps): {g['sequential_hours']:.1f} h "
        f"sequential, {g['concurrent_hours']:.1f} h at x{speedup:.2f} concurrency  (load {figures['loadavg_end'][0]:.2f})"
    )
    print(json.dumps(_round(figures)))
    return 0


def _plain(args, device: torch.device, opts: dict, figures: dict) -> int:
    """One uninterrupted trainer run of --plain-steps per method (the GPU check's long runs)."""
    figures["plain_steps"] = args.plain_steps
    for dataset_name in args.datasets:
        for method_name in args.methods:
            ds, method = _build(method_name, dataset_name, args.source, device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            _time_ours(method, ds, max(args.warmup, 1), args.batch, device, opts)
            seconds = _time_ours(method, ds, args.plain_steps, args.batch, device, opts)
            peak, kind = _peak_mb(device)
            rate = args.plain_steps / seconds
            figures["methods"][f"{dataset_name}/{method_name}"] = {
                "ours_steps_s": rate,
                "ours_img_s": rate * method.batches_per_step * args.batch,
                "seconds": seconds,
                "peak_mem_mb": peak,
                "peak_mem_kind": kind,
            }
            print(
                f"{dataset_name}/{method_name:18s} {args.plain_steps} steps in {seconds:8.2f} s: "
                f"{rate:8.2f} steps/s, peak {peak:.0f} MB"
            )
    figures["paper_grid"] = project_grid({k: r["ours_steps_s"] for k, r in figures["methods"].items()}, args, 1.0)
    figures["loadavg_end"] = list(os.getloadavg())
    print(f"paper grid ({args.grid_models} models, sequential): {figures['paper_grid']['sequential_hours']:.2f} h")
    print(json.dumps(_round(figures)))
    return 0


AB_VARIANTS = {
    "default": {},
    "channels_last": {"channels_last": True},
    "compile": {"compile": True},
    "bf16": {"precision": "bf16"},
    "threads_1": {"threads": 1},
}


def _options_ab(args, device: torch.device, figures: dict) -> int:
    """Each speed option against the default in interleaved rounds, the order rotated every round
    (so load drifts on a shared machine hit all alike); reports median steps/s per variant and the
    median of the per-round (paired) ratios to the default, the more robust figure."""
    figures["ab"] = {}
    base_threads = torch.get_num_threads()
    names = list(AB_VARIANTS)
    for dataset_name in args.datasets:
        for method_name in args.methods:
            ds, method = _build(method_name, dataset_name, args.source, device)
            times: dict[str, list[float]] = {v: [] for v in AB_VARIANTS}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for rnd in range(args.repeats + 1):  # round 0 warms up (and compiles)
                    for i in range(len(names)):
                        name = names[(i + rnd) % len(names)]
                        variant = AB_VARIANTS[name]
                        opts = {k: v for k, v in variant.items() if k != "threads"}
                        torch.set_num_threads(variant.get("threads", base_threads))
                        seconds = _time_ours(method, ds, args.steps, args.batch, device, opts)
                        torch.set_num_threads(base_threads)
                        if rnd:
                            times[name].append(seconds / args.steps)
            fell_back = any("torch.compile failed" in str(w.message) for w in caught)
            rates = {name: 1 / statistics.median(t) for name, t in times.items()}
            row = {
                name: {
                    "steps_s": r,
                    "vs_default": statistics.median(d / t for d, t in zip(times["default"], times[name])),
                }
                for name, r in rates.items()
            }
            row["compile"]["fell_back"] = fell_back
            figures["ab"][f"{dataset_name}/{method_name}"] = row
            print(
                f"{dataset_name}/{method_name}: "
                + ", ".join(f"{name} {r['steps_s']:.2f} st/s (x{r['vs_default']:.3f})" for name, r in row.items())
            )
    figures["loadavg_end"] = list(os.getloadavg())
    print(json.dumps(_round(figures)))
    return 0


def _round(obj):
    if isinstance(obj, float):
        return round(obj, 4) if abs(obj) < 100 else round(obj, 1)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj
