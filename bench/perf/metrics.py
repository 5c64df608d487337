"""Time every registered metric at the reference sizes: `python -m disentbench.bench.perf metrics`.

The representation is fixed and synthetic, so only the metrics are timed: every point of
dSprites' factor grid (3, 6, 40, 32, 32) gets 10 latents from one seeded generator, drawn once:
latents 0-4 are the factors mapped monotonically to [0, 1] plus Gaussian noise (std 0.05, so
the finer factors overlap between neighbouring classes, as in a trained model), latents 5-9 are
pure noise. The "observation" of a factor vector is its flat grid index and the "encoder" looks
the latents up in that table: both are cheap, and their time (data_seconds) is measured and
subtracted from each metric's time anyway.

BetaVAE and FactorVAE choose factors and need a dataset: by default they run on the same
table. With `--images`, they run on procedural dSprites images instead, encoded by a fixed
random linear projection (4096 pixels -> 10 latents, seeded); rendering is ~1 ms per image on
one CPU core and these two scores need 1.9M and 1.0M images at the reference sizes, so
`--image-scale` shrinks their sizes in that mode. Metric time excludes rendering and encoding.

`--check-dci` also scores DCI with scikit-learn's own GradientBoostingClassifier (backend
"sklearn", a few minutes) on the same codes and says whether every DCI number is identical.

Metrics that fit the same classifiers on the same codes share them, as in `metrics.evaluate_many`
(one codes cache for the run): DCI-ES fits DCI's boosted classifiers again (DCI itself does not keep
them), and the downstream task's largest size and the fairness score reuse DCI-ES's, so their times
exclude that fit. The run-level `udr` is never timed here. The total is printed with and without the
approximate `dci_hist`, and each metric's CPU seconds next to its wall time (a machine busy with other
work inflates wall time, not CPU time).

Machines of the same name differ: on 2026-12-02 this suite took 141.9 s on one 2-core host and
57.7 s on another. So the run first times a fixed single-threaded reference workload (`host`:
scikit-learn's own boosting and logistic regression on seeded synthetic data, best of 3), the
two kinds of work that dominate the suite; figures from two hosts compare through it.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from disentbench import metrics
from disentbench.datasets.base import GroundTruthDataset

DSPRITES_SIZES = (3, 6, 40, 32, 32)
NUM_LATENTS = 10


class _Clock:
    """Accumulates the seconds spent rendering and encoding (excluded from metric time)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


class FactorTable(GroundTruthDataset):
    """dSprites' factor grid whose observation is the flat grid index (1 float per example)."""

    name = "dsprites_factor_table"
    factor_sizes = DSPRITES_SIZES
    factor_names = ("shape", "scale", "orientation", "posX", "posY")

    def observations(self, factors: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.index_of(factors).astype(np.float64)).view(-1, 1)


def representation_table(seed: int) -> np.ndarray:
    """(grid size, 10) float64 latents for every grid point; see the module docstring."""
    rng = np.random.default_rng(seed)
    sizes = np.asarray(DSPRITES_SIZES)
    grid = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), DSPRITES_SIZES), axis=1)
    table = np.empty((grid.shape[0], NUM_LATENTS))
    table[:, :5] = grid / (sizes - 1) + 0.05 * rng.standard_normal((grid.shape[0], 5))
    table[:, 5:] = rng.standard_normal((grid.shape[0], NUM_LATENTS - 5))
    return table


def table_encoder(table: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
    t = torch.from_numpy(table)
    return lambda obs: t.index_select(0, obs.view(-1).long())


def projection_encoder(seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    weights = torch.randn(64 * 64, NUM_LATENTS, generator=gen) / 64.0
    return lambda obs: obs.reshape(obs.shape[0], -1) @ weights


def host_reference(repeats: int = 3) -> dict[str, float]:
    """Seconds (best of `repeats`) of a fixed single-threaded workload: GradientBoostingClassifier
    (20 stages, 5 classes, 2,000 x 10) and LogisticRegression (lbfgs, 19 classes, 6,000 x 10)."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    x = rng.standard_normal((6000, 10))
    y = np.digitize(x[:, 0] + 0.3 * rng.standard_normal(6000), np.linspace(-2, 2, 19))
    best = {"gbt_seconds": float("inf"), "lr_seconds": float("inf")}
    with threadpool_limits(limits=1):
        for _ in range(repeats):
            begin = time.perf_counter()
            GradientBoostingClassifier(n_estimators=20, random_state=0).fit(x[:2000], y[:2000] % 5)
            best["gbt_seconds"] = min(best["gbt_seconds"], time.perf_counter() - begin)
            begin = time.perf_counter()
            LogisticRegression(C=1e4, max_iter=100).fit(x, y)
            best["lr_seconds"] = min(best["lr_seconds"], time.perf_counter() - begin)
    return {k: round(v, 3) for k, v in best.items()}


def _run_level(name: str) -> bool:
    return bool(getattr(metrics.REGISTRY.get(name), "run_level", False))


def _headline(name: str, scores: dict) -> float:
    return float(scores.get(name, float("nan")))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m disentbench.bench.perf metrics", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--metrics",
        default=",".join(n for n in metrics.list_metrics() if not _run_level(n)),
        help="comma-separated metric names (default: every registered metric but the run-level udr)",
    )
    parser.add_argument("--n-jobs", type=int, default=-1, help="workers for metrics that take n_jobs (-1: all CPUs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every sample size (1 = reference sizes)")
    parser.add_argument("--images", action="store_true", help="BetaVAE/FactorVAE on procedural dSprites images")
    parser.add_argument(
        "--check-dci",
        action="store_true",
        help="also score DCI with scikit-learn itself (backend=sklearn, minutes) and compare",
    )
    parser.add_argument("--image-scale", type=float, default=0.02, help="sizes of the image runs (with --images)")
    parser.add_argument("--host-repeats", type=int, default=3, help="repeats of the host reference workload (0: skip)")
    return parser


def _metric_names(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The --metrics list; an unknown or run-level name is a parser error."""
    names = [n.strip() for n in args.metrics.split(",") if n.strip()]
    unknown = [n for n in names if n not in metrics.list_metrics()]
    if unknown:
        parser.error(f"unknown metric {unknown[0]!r}; registered: {', '.join(metrics.list_metrics())}")
    run_level = [n for n in names if _run_level(n)]
    if run_level:
        parser.error(f"{run_level[0]} is scored from several trained models at once (run level), not timed here")
    return names


def _overrides(cls: type, scale: float, n_jobs: int) -> dict:
    """The metric's sample sizes multiplied by `scale` (at least 2 points, 1 per class), and n_jobs."""
    overrides = {"num_train": max(2, round(cls.num_train * scale))}
    if cls.num_test:
        overrides["num_test"] = max(2, round(cls.num_test * scale))
    if "n_jobs" in cls.params:
        overrides["n_jobs"] = n_jobs
    if "num_variance_estimate" in cls.params:
        overrides["num_variance_estimate"] = max(2, round(cls.params["num_variance_estimate"] * scale))
    if "points_per_class" in cls.params:
        overrides["points_per_class"] = max(1, round(cls.params["points_per_class"] * scale))
    return overrides


def _time_metric(name: str, overrides: dict, ds, enc, seed: int, cache: dict, clock: _Clock) -> tuple[dict, dict]:
    """Score one metric; its row (seconds without data and encoding, data seconds, CPU seconds,
    headline score, sizes), printed, and its scores."""
    metric = metrics.create(name, **overrides)
    data_before, begin, cpu_begin = clock.seconds, time.perf_counter(), time.process_time()
    scores = metric.evaluate(ds, enc, np.random.default_rng(seed), codes_cache=cache)
    wall = time.perf_counter() - begin
    cpu = time.process_time() - cpu_begin
    data = clock.seconds - data_before
    row = {
        "seconds": round(wall - data, 3),
        "data_seconds": round(data, 3),
        "cpu_seconds": round(cpu, 3),  # every thread of this process, data included: a busy machine inflates wall time
        "score": _headline(name, scores),
        "sizes": overrides,
    }
    print(
        f"{name:14s} {wall - data:8.2f} s   (data+encode {data:6.2f} s, cpu {cpu:7.2f} s)   "
        f"{name} = {row['score']:.4f}",
        flush=True,
    )
    return row, scores


def _check_dci(overrides: dict, ds, enc, seed: int, cache: dict, scores: dict) -> dict:
    """DCI again with scikit-learn's own classifier: its seconds, and whether the scores are identical."""
    reference = metrics.create("dci", **overrides, backend="sklearn")
    begin = time.perf_counter()
    ref_scores = reference.evaluate(ds, enc, np.random.default_rng(seed), codes_cache=cache)
    check = {
        "sklearn_seconds": round(time.perf_counter() - begin, 3),
        "identical": all(ref_scores[k] == scores[k] for k in scores if k.startswith("dci")),
    }
    print(
        f"{'':14s} scikit-learn's own GradientBoostingClassifier on the same codes: "
        f"{check['sklearn_seconds']:.2f} s, identical scores: {check['identical']}",
        flush=True,
    )
    return check


def _warm_up(host_repeats: int) -> tuple[dict | None, float]:
    """The host reference workload (printed; None when skipped) and the seconds numba took to
    compile or load the boosting kernels."""
    from disentbench.metrics import boosted

    host = host_reference(host_repeats) if host_repeats > 0 else None
    if host:
        print(
            f"{'host':14s} reference workload, one thread: boosting {host['gbt_seconds']:.3f} s, "
            f"logistic regression {host['lr_seconds']:.3f} s",
            flush=True,
        )
    compile_start = time.perf_counter()
    boosted.warm_up()  # numba compiles the boosting kernels once per installation (then loads them from its cache)
    return host, time.perf_counter() - compile_start


def _cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    names = _metric_names(parser, args)
    host, jit_seconds = _warm_up(args.host_repeats)
    check: dict | None = None
    clock = _Clock()
    start = time.perf_counter()
    table = representation_table(args.seed)
    table_ds = FactorTable()
    table_ds.observations = clock.wrap(table_ds.observations)  # type: ignore[method-assign]
    table_encode = clock.wrap(table_encoder(table))
    setup_seconds = time.perf_counter() - start
    image_ds = image_encode = None
    if args.images:
        from disentbench import datasets

        image_ds = datasets.create("dsprites", source="procedural")
        image_ds.observations = clock.wrap(image_ds.observations)  # type: ignore[method-assign]
        image_encode = clock.wrap(projection_encoder(args.seed))

    cache: dict = {}  # codes drawn once are shared, as metrics.evaluate_many does
    image_cache: dict = {}  # one cache per dataset: codes of the table are not codes of the images
    rows: dict[str, dict] = {}
    for name in names:
        cls = metrics.REGISTRY.get(name)
        on_images = getattr(cls, "needs_dataset", False) and args.images
        overrides = _overrides(cls, args.image_scale if on_images else args.scale, args.n_jobs)
        ds, enc = (image_ds, image_encode) if on_images else (table_ds, table_encode)
        rows[name], scores = _time_metric(
            name, overrides, ds, enc, args.seed, image_cache if ds is image_ds else cache, clock
        )
        if name == "dci" and args.check_dci:
            check = _check_dci(overrides, ds, enc, args.seed, cache, scores)
    total = sum(r["seconds"] for r in rows.values())
    # the suite's budget leaves out the approximate dci_hist (the run-level udr is never timed here)
    suite = sum(r["seconds"] for name, r in rows.items() if name != "dci_hist")
    print(
        f"{'total':14s} {total:8.2f} s   (without dci_hist: {suite:.2f} s; before it: {jit_seconds:.2f} s "
        f"compiling or loading the numba kernels)",
        flush=True,
    )
    print(
        json.dumps(
            {
                "bench": "metrics",
                "total_seconds": round(total, 3),
                "total_seconds_without_dci_hist": round(suite, 3),
                "setup_seconds": round(setup_seconds, 3),
                "jit_seconds": round(jit_seconds, 3),
                "cpus": _cpus(),
                "host_reference": host,
                "n_jobs": args.n_jobs,
                "scale": args.scale,
                "images": args.images,
                "metrics": rows,
                "dci_vs_sklearn": check,
                "versions": metrics.versions(),
            }
        )
    )
    return 0
