"""`python -m disentbench.bench.perf data`: images/s of the data sources next to the VAE training step they feed.

Prints procedural dSprites, procedural shapes3d (cold ray-casting and with the geometry cache
warm), official-style lookups (from in-memory arrays of the official layout), and a betavae
`train_step` at the same batch size. The last line is a JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def _rate(fn: Callable[[int], object], batch: int, seconds: float, min_reps: int = 3) -> float:
    """Images per second of fn(step) over at least `seconds` (after one warm-up call)."""
    fn(0)
    reps, start = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - start < seconds:
        fn(reps + 1)
        reps += 1
    return reps * batch / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m disentbench.bench.perf data")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is 2 cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cold-batches", type=int, default=2, help="batches ray-cast without the cache")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from disentbench import methods
    from disentbench.datasets.dsprites import DSpritesOfficial, DSpritesProcedural
    from disentbench.datasets.shapes3d import Shapes3DOfficial, Shapes3DProcedural, factor_values

    b, rng = args.batch, np.random.default_rng(0)
    figures: dict[str, float] = {"batch": b, "threads": args.threads}

    dsp = DSpritesProcedural(device=args.device)
    figures["dsprites_procedural_img_s"] = _rate(
        lambda i: dsp.observations(dsp.sample_factors(b, rng)), b, args.seconds
    )

    s3d = Shapes3DProcedural(device=args.device)
    t0 = time.perf_counter()
    s3d.layers(s3d.factors_of(np.arange(8 * 4 * 15)))  # hues 0: each of the 480 geometries once
    figures["shapes3d_cache_build_s"] = time.perf_counter() - t0
    figures["shapes3d_procedural_cached_img_s"] = _rate(
        lambda i: s3d.observations(s3d.sample_factors(b, rng)), b, args.seconds
    )
    cold = Shapes3DProcedural(device=args.device, cache=False)
    t0 = time.perf_counter()
    for _ in range(args.cold_batches):
        cold.observations(cold.sample_factors(b, rng))
    figures["shapes3d_procedural_cold_img_s"] = args.cold_batches * b / (time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:  # official layouts, reduced grids written here
        import h5py

        sizes = (10, 10, 10, 8, 4, 1)
        grid = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)
        path = Path(tmp) / "s.h5"
        with h5py.File(path, "w") as h5:
            h5.create_dataset("images", data=np.zeros((len(grid), 64, 64, 3), np.uint8), chunks=(64, 64, 64, 3))
            h5.create_dataset("labels", data=factor_values(grid))
        off = Shapes3DOfficial(path, verify=False, factor_sizes=sizes, device=args.device)
        figures["shapes3d_official_memory_img_s"] = _rate(
            lambda i: off.observations(off.sample_factors(b, rng)), b, args.seconds
        )
        off_h5 = Shapes3DOfficial(path, verify=False, factor_sizes=sizes, device=args.device, memory_limit=0)
        figures["shapes3d_official_h5_img_s"] = _rate(
            lambda i: off_h5.observations(off_h5.sample_factors(b, rng)), b, args.seconds
        )
        dsizes = (3, 6, 40, 8, 8)
        dgrid = np.stack(np.unravel_index(np.arange(int(np.prod(dsizes))), dsizes), axis=1)
        dpath = Path(tmp) / "d.npz"
        np.savez(
            dpath,
            imgs=np.zeros((len(dgrid), 64, 64), np.uint8),
            latents_classes=np.concatenate([np.zeros((len(dgrid), 1), np.int64), dgrid], 1),
            latents_values=np.zeros((len(dgrid), 6)),
        )
        doff = DSpritesOfficial(dpath, verify=False, factor_sizes=dsizes, device=args.device)
        figures["dsprites_official_img_s"] = _rate(
            lambda i: doff.observations(doff.sample_factors(b, rng)), b, args.seconds
        )

    for name, ds in (("dsprites", dsp), ("shapes3d", s3d)):
        model = methods.create("betavae", observation_shape=ds.observation_shape).to(args.device)
        x = ds.observations(ds.sample_factors(b, rng))
        gen = torch.Generator(device=args.device).manual_seed(0)
        figures[f"betavae_train_step_{name}_img_s"] = _rate(
            lambda i, model=model, x=x, gen=gen: model.train_step(x, i, gen), b, args.seconds
        )

    for key, value in figures.items():
        print(f"{key:40s} {value:12.1f}")
    print(json.dumps({k: round(float(v), 2) for k, v in figures.items()}))
    return 0
