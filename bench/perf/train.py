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
  mean measured per-model time, sequentially and at the best measured concurrency speed-up;
- host (printed first, every mode): the CPU model, its bf16 hardware (`host.bf16_capability`:
  amx / avx512_bf16 / cuda_bf16 / none) and the measured matmul peak in fp32 and bf16 (best of a
  few n x n matmuls after a warm-up, with the threads in use; `--peak-size`, 0 skips it);
- FLOPs per step: counted by torch.utils.flop_counter.FlopCounterMode around one `train_step` on a
  real batch (matmuls and convolutions, forward and backward; no elementwise work, no optimiser
  update), then achieved GFLOP/s = FLOPs / measured step seconds (ours) and its fraction of the
  peak of the precision in use (the bf16 peak under --precision bf16).
`--options-ab` instead runs interleaved, order-rotated rounds of the trainer over speed-option
combinations (default: fp32, bf16, bf16+cl, bf16+cl+compile, bf16+cl+fused_adam; `--ab-variants`
picks others, the single options included); `--profile-steps N` instead profiles N steps per method
with torch.profiler and prints the top operators by self CPU time.
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
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

from disentbench.bench.flags import add_compile_argument
from disentbench.bench.perf import host
from disentbench.choices import PRECISIONS, SOURCES, or_list
from disentbench.errors import BenchError

FLOPS_COUNTED = (
    "torch.utils.flop_counter.FlopCounterMode around one method.train_step on a real batch: "
    "matmuls and convolutions, forward and backward (2 FLOPs per multiply-add); elementwise ops and "
    "the optimiser update are not counted"
)


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


def step_flops(method, ds, batch: int, device: torch.device, precision: str = "fp32") -> int:
    """FLOPs of one `train_step` on a real batch, counted by FlopCounterMode (see FLOPS_COUNTED).
    The step really runs (one more optimiser update of the method being measured)."""
    from disentbench.bench.training import autocast_context, draw_batch

    x = draw_batch(method, ds, method.batches_per_step * batch, np.random.default_rng(3))
    gen = torch.Generator(device=device)
    gen.manual_seed(3)

    def one_step():
        with autocast_context(device, precision):
            method.train_step(x, 1, gen)

    flops = host.count_flops(one_step)
    _sync(device)
    return flops


def efficiency(flops: int | None, seconds: float, peak: float | None) -> tuple[float | None, float | None]:
    """(achieved GFLOP/s, fraction of `peak`) for `flops` in `seconds`; None where unknown."""
    if not flops or not seconds:
        return None, None
    gflop_s = flops / seconds / 1e9
    return gflop_s, (gflop_s / peak if peak else None)


@contextlib.contextmanager
def fused_optimisers(method):
    """The method's optimisers rebuilt with fused=True for the duration (those whose class takes
    `fused`, e.g. torch.optim.Adam), sharing the originals' per-parameter state tensors, so both stay
    in step; the originals are put back after. Yields the names of the rebuilt ones. Raises
    RuntimeError where torch refuses fused=True (older torch, or a device without the kernel)."""
    originals = dict(method.optimizers)
    rebuilt = {}
    for name, opt in originals.items():
        if "fused" not in opt.defaults:
            continue
        skip = ("fused", "foreach", "params")
        groups = [{"params": g["params"], **{k: v for k, v in g.items() if k not in skip}} for g in opt.param_groups]
        new = type(opt)(groups, **{k: v for k, v in opt.defaults.items() if k not in skip}, fused=True)
        new.state.update(opt.state)
        rebuilt[name] = new
    method.optimizers.update(rebuilt)
    try:
        yield sorted(rebuilt)
    finally:
        for name, new in rebuilt.items():
            originals[name].state.update(new.state)  # states first created by the fused one
        method.optimizers.update(originals)


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
    flops = step_flops(method, ds, args.batch, device, opts.get("precision", "fp32"))
    return {
        "step_flops": flops,
        "step_gflop": flops / 1e9,
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


def _parser() -> argparse.ArgumentParser:
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
    add_compile_argument(p)
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
        help="instead: interleaved, order-rotated rounds of the trainer over speed-option "
        "combinations per method (see --ab-variants), each against fp32",
    )
    p.add_argument(
        "--ab-variants",
        default=",".join(AB_COMBINATIONS),
        help="comma list for --options-ab (fp32 is always included); known: " + ", ".join(AB_VARIANTS),
    )
    p.add_argument(
        "--profile-steps",
        type=int,
        default=0,
        help="instead: torch.profiler over this many steps per method (the minimal loop, "
        "with --precision/--channels-last/--compile), top operators by self CPU time",
    )
    p.add_argument("--profile-top", type=int, default=15, help="operators listed by --profile-steps")
    p.add_argument(
        "--by-shape",
        action="store_true",
        help="with --profile-steps: the operators per input shape too, so each layer's convolutions are apart "
        "(is the thin first or last layer the cost?)",
    )
    p.add_argument(
        "--peak-size",
        type=int,
        default=2048,
        help="n of the n x n matmuls that measure the host's fp32 and bf16 peak (0 skips)",
    )
    p.add_argument("--peak-repeats", type=int, default=10, help="timed matmuls per precision (the best counts)")
    p.add_argument("--grid-models", type=int, default=50, help="5 methods x 2 datasets x 5 seeds")
    p.add_argument("--grid-steps", type=int, default=300_000)
    return p


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the arguments; method and dataset lists become lists."""
    args = _parser().parse_args(argv)
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
    variants = [v.strip() for v in args.ab_variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in AB_VARIANTS]
    if unknown:
        raise BenchError(f"unknown --ab-variants {', '.join(unknown)}; choose from {', '.join(AB_VARIANTS)}")
    args.ab_variants = ["fp32"] + [v for v in dict.fromkeys(variants) if v != "fp32"]
    return args


def _measure_methods(args: argparse.Namespace, device: torch.device, opts: dict, figures: dict) -> None:
    """The comparison: our trainer against the minimal loop for every dataset and method, one
    printed row each, into figures["methods"]."""
    figures["flops_counted"] = FLOPS_COUNTED
    peak_flops = figures["host"]["peak_gflop_s"].get(args.precision)
    print(
        f"{'dataset/method':24s} {'ours st/s':>10s} {'min st/s':>10s} {'ratio':>6s} {'ours img/s':>11s} "
        f"{'batch%':>7s} {'peak MB':>9s} {'GFLOP/st':>9s} {'GFLOP/s':>8s} {'%peak':>6s}"
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
            row["gflop_s"], row["peak_fraction"] = efficiency(row["step_flops"], 1 / row["ours_steps_s"], peak_flops)
            figures["methods"][key] = row
            print(
                f"{key:24s} {row['ours_steps_s']:10.2f} {row['minimal_steps_s']:10.2f} {row['ratio']:6.3f} "
                f"{row['ours_img_s']:11.1f} {100 * row['batch_share']:6.1f}% {row['peak_mem_mb']:9.1f} "
                f"{row['step_gflop']:9.2f} {row['gflop_s']:8.1f} {_pct(row['peak_fraction']):>6s}"
                + ("  (compile fell back)" if fallbacks else "")
            )


def _measure_concurrency(args: argparse.Namespace, device: torch.device, opts: dict, figures: dict) -> float:
    """K models at once in processes for each K of --concurrency, into figures["concurrency"];
    returns the best aggregate speed-up over K = 1 (1.0 without a K = 1 baseline)."""
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
    return speedup


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
    figures["host"] = _host(args, device)
    if args.profile_steps > 0:
        return _profile(args, device, opts, figures)
    if args.plain_steps > 0:
        return _plain(args, device, opts, figures)
    if args.options_ab:
        return _options_ab(args, device, figures)
    _measure_methods(args, device, opts, figures)
    figures["trainer_overhead_us_per_step"] = trainer_overhead_us(device)
    print(
        f"trainer overhead over a bare loop (null method and data): "
        f"{figures['trainer_overhead_us_per_step']:.1f} us/step"
    )
    speedup = _measure_concurrency(args, device, opts, figures)
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


def _pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def _shrunk(figures: dict, name: str) -> str:
    """' (at 512x512: ...)' where a precision's peak was measured on a smaller product than asked."""
    used = figures["matmul_n_used"].get(name, figures["matmul_n"])
    if used == figures["matmul_n"]:
        return ""
    return f" (at {used}x{used}: the asked size would overrun the {host.PEAK_BUDGET_S:.0f} s budget)"


def _host(args, device: torch.device) -> dict:
    """Measures and prints the host line: CPU model, bf16 hardware, fp32 / bf16 matmul peaks."""
    figures = host.host_figures(device, args.peak_size, args.peak_repeats)
    peaks = figures["peak_gflop_s"]
    measured = (
        f"matmul peak ({figures['matmul_n']}x{figures['matmul_n']}, best of {figures['matmul_repeats']}, "
        f"{figures['matmul_threads']} thread(s)): "
        + ", ".join(f"{name} {gflops:.1f} GFLOP/s{_shrunk(figures, name)}" for name, gflops in peaks.items())
        if peaks
        else "matmul peak: not measured (--peak-size 0)"
    )
    print(
        f"# host: {figures['cpu_model']}{' / ' + figures['gpu'] if figures['gpu'] else ''}; "
        f"bf16 hardware: {figures['bf16_capability']} (fast bf16: {'yes' if figures['fast_bf16'] else 'no'}; "
        f"CPU amx_bf16 {'yes' if figures['cpu_has_amx_bf16'] else 'no'}, "
        f"avx512_bf16 {'yes' if figures['cpu_has_avx512_bf16'] else 'no'}); {measured}"
    )
    return figures


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
    # the combinations that matter (the default set, in this order)
    "fp32": {},
    "bf16": {"precision": "bf16"},
    "bf16+cl": {"precision": "bf16", "channels_last": True},
    "bf16+cl+compile": {"precision": "bf16", "channels_last": True, "compile": True},
    "bf16+cl+fused_adam": {"precision": "bf16", "channels_last": True, "fused_adam": True},
    # single options against fp32, on request
    "channels_last": {"channels_last": True},
    "compile": {"compile": True},
    "fused_adam": {"fused_adam": True},
    "cl+fused_adam": {"channels_last": True, "fused_adam": True},
    "threads_1": {"threads": 1},
}
AB_COMBINATIONS = ("fp32", "bf16", "bf16+cl", "bf16+cl+compile", "bf16+cl+fused_adam")


def _time_variant(method, ds, args, device, variant: dict, base_threads: int) -> float:
    """Seconds of one trainer run of args.steps steps with a variant's options."""
    opts = {k: v for k, v in variant.items() if k not in ("threads", "fused_adam")}
    optimisers = fused_optimisers(method) if variant.get("fused_adam") else contextlib.nullcontext()
    torch.set_num_threads(variant.get("threads", base_threads))
    try:
        with optimisers:
            return _time_ours(method, ds, args.steps, args.batch, device, opts)
    finally:
        torch.set_num_threads(base_threads)


def _options_ab(args, device: torch.device, figures: dict) -> int:
    """Speed-option combinations against fp32 in interleaved rounds, the order rotated every round
    (so load drifts on a shared machine hit all alike; round 0 warms up and compiles). Per variant:
    median steps/s and ms/step, the median of the per-round (paired) ratios to fp32 (the more robust
    figure), achieved GFLOP/s from the counted FLOPs of one step and its fraction of the matmul peak
    of the variant's precision."""
    figures["ab"] = {}
    figures["ab_variants"] = list(args.ab_variants)
    figures["flops_counted"] = FLOPS_COUNTED
    peaks = figures["host"]["peak_gflop_s"]
    base_threads = torch.get_num_threads()
    names = list(args.ab_variants)
    for dataset_name in args.datasets:
        for method_name in args.methods:
            ds, method = _build(method_name, dataset_name, args.source, device)
            flops = step_flops(method, ds, args.batch, device)  # the same for every precision and layout
            times: dict[str, list[float]] = {v: [] for v in names}
            notes: dict[str, str] = {}
            for rnd in range(args.repeats + 1):
                for i in range(len(names)):
                    name = names[(i + rnd) % len(names)]
                    if name in notes and notes[name].startswith("failed"):
                        continue
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        try:
                            seconds = _time_variant(method, ds, args, device, AB_VARIANTS[name], base_threads)
                        except (RuntimeError, TypeError, ValueError) as exc:  # e.g. fused=True unsupported
                            notes[name] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                            continue
                    if any("torch.compile failed" in str(w.message) for w in caught):
                        notes[name] = "compile fell back to eager"
                    if rnd:
                        times[name].append(seconds / args.steps)
            row = {}
            for name in names:
                variant, t = AB_VARIANTS[name], times[name]
                if not t:
                    row[name] = {"error": notes.get(name, "not measured")}
                    continue
                ratio = statistics.median(d / v for d, v in zip(times["fp32"], t)) if times["fp32"] else None
                gflop_s, fraction = efficiency(flops, statistics.median(t), peaks.get(variant.get("precision", "fp32")))
                row[name] = {
                    "steps_s": 1 / statistics.median(t),
                    "ms_step": 1e3 * statistics.median(t),
                    "speedup_vs_fp32": ratio,
                    "vs_default": ratio,  # fp32 is the default options
                    "gflop_s": gflop_s,
                    "peak_fraction": fraction,
                    "step_gflop": flops / 1e9,
                    "runs_ms": [1e3 * v for v in t],
                }
                gains = _paired_gains(name, times)
                if gains:
                    row[name]["paired_gain"] = gains
                if "compile" in variant:
                    row[name]["fell_back"] = name in notes
                if name in notes:
                    row[name]["note"] = notes[name]
            key = f"{dataset_name}/{method_name}"
            figures["ab"][key] = row
            _print_ab(key, flops, row)
    figures["loadavg_end"] = list(os.getloadavg())
    print(json.dumps(_round(figures)))
    return 0


def _paired_gains(name: str, times: dict[str, list[float]]) -> dict[str, dict]:
    """For each option of variant `name` whose removal gives another measured variant: the median of
    the per-round ratios (that variant's time / this one's), i.e. what adding the option gained,
    paired round by round (e.g. bf16+cl+fused_adam against bf16+cl)."""
    options = AB_VARIANTS[name]
    out = {}
    for option in options:
        rest = {k: v for k, v in options.items() if k != option}
        for other, other_options in AB_VARIANTS.items():
            if other_options == rest and other != name and times.get(other) and times.get(name):
                ratio = statistics.median(o / t for o, t in zip(times[other], times[name]))
                out[option] = {"against": other, "ratio": ratio}
    return out


def _print_ab(key: str, flops: int, row: dict) -> None:
    print(f"{key}: {flops / 1e9:.2f} GFLOP per step (counted)")
    print(f"  {'variant':20s} {'steps/s':>8s} {'ms/step':>9s} {'vs fp32':>8s} {'GFLOP/s':>8s} {'%peak':>6s}")
    for name, r in row.items():
        if "error" in r:
            print(f"  {name:20s} {r['error']}")
            continue
        ratio = "-" if r["speedup_vs_fp32"] is None else f"x{r['speedup_vs_fp32']:.3f}"
        print(
            f"  {name:20s} {r['steps_s']:8.2f} {r['ms_step']:9.1f} {ratio:>8s} {r['gflop_s']:8.1f} "
            f"{_pct(r['peak_fraction']):>6s}"
            + "".join(f"  {o}: x{g['ratio']:.3f} vs {g['against']}" for o, g in r.get("paired_gain", {}).items())
            + (f"  ({r['note']})" if "note" in r else "")
        )


def _profile(args, device: torch.device, opts: dict, figures: dict) -> int:
    """torch.profiler over --profile-steps steps of the minimal loop per method (after a warm-up),
    the top operators by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    figures["profile"] = {}
    figures["profile_steps"] = args.profile_steps
    for dataset_name in args.datasets:
        for method_name in args.methods:
            ds, method = _build(method_name, dataset_name, args.source, device)
            _time_minimal(method, ds, max(args.warmup, 1), args.batch, device, opts)
            with profile(activities=activities, record_shapes=args.by_shape) as prof:
                seconds = _time_minimal(method, ds, args.profile_steps, args.batch, device, opts)
            events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
            total = sum(e.self_cpu_time_total for e in events) or 1.0
            top = [
                {
                    "op": e.key,
                    "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / args.profile_steps,
                    "share": e.self_cpu_time_total / total,
                    "calls_per_step": e.count / args.profile_steps,
                }
                for e in events[: args.profile_top]
            ]
            key = f"{dataset_name}/{method_name}"
            figures["profile"][key] = {"ms_step_profiled": 1e3 * seconds / args.profile_steps, "top": top}
            print(
                f"{key}: {1e3 * seconds / args.profile_steps:.1f} ms/step under the profiler, options {opts}; "
                "top operators by self CPU time (per step):"
            )
            for t in top:
                print(
                    f"  {t['op'][:48]:48s} {t['self_cpu_ms_per_step']:8.2f} ms {100 * t['share']:5.1f}% "
                    f"{t['calls_per_step']:7.1f} calls"
                )
            if args.by_shape:
                figures["profile"][key]["by_shape"] = _by_shape(prof, total, args.profile_steps, args.profile_top)
    figures["loadavg_end"] = list(os.getloadavg())
    print(json.dumps(_round(figures)))
    return 0


def _by_shape(prof, total: float, steps: int, top: int) -> list[dict]:
    """The convolution operators (forward and backward) per input shape, by self CPU time: which
    layer each one is shows in its shapes (the first layer's input has the image's channels, the
    last transposed convolution's weight has them as its output)."""
    events = [e for e in prof.key_averages(group_by_input_shape=True) if "conv" in e.key.lower()]
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    rows = [
        {
            "op": e.key,
            "shapes": str(e.input_shapes)[:120],
            "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
            "share": e.self_cpu_time_total / total,
        }
        for e in events[:top]
    ]
    print("  convolutions by input shape (self CPU time per step, share of the step):")
    for r in rows:
        print(f"    {r['op'][:36]:36s} {r['self_cpu_ms_per_step']:8.2f} ms {100 * r['share']:5.1f}%  {r['shapes']}")
    return rows


def _round(obj):
    if isinstance(obj, float):
        return round(obj, 4) if abs(obj) < 100 else round(obj, 1)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj
