"""`python -m disentbench.bench.perf data`: images/s of the data sources next to the VAE training step they feed.

Prints procedural dSprites, procedural shapes3d (cold ray-casting and with the geometry cache
warm), official-style lookups (from in-memory arrays of the official layout), and a betavae
`train_step` at the same batch size. The datasets added since (the dSprites variants, MPI3D,
Cars3D, SmallNORB and a user's own file, full grid and with rows missing) are read from small files
written in their official formats in a temporary folder, in memory and per batch; each line shows
the images/s next to what a betavae training step on images of that many channels consumes. The
last line is a JSON object with every figure. `--only` measures some groups.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

GROUPS = ("dsprites", "shapes3d", "variants", "mpi3d", "cars3d", "smallnorb", "file")


def _rate(fn: Callable[[int], object], batch: int, seconds: float, min_reps: int = 3) -> float:
    """Images per second of fn(step) over at least `seconds` (after one warm-up call)."""
    fn(0)
    reps, start = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - start < seconds:
        fn(reps + 1)
        reps += 1
    return reps * batch / (time.perf_counter() - start)


@contextlib.contextmanager
def _scratch_cache(folder: Path) -> Iterator[None]:
    """Preprocessed images of the small files go to a temporary cache, not the user's."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = before


def _grid(sizes: tuple[int, ...]) -> np.ndarray:
    return np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)


def new_sources(tmp: Path, device: str, only: set[str]) -> Iterator[tuple[str, object]]:
    """(label, dataset) of the newer datasets in `only`, each on a small file in its official format."""
    from PIL import Image

    from disentbench.datasets.dsprites import DSpritesProcedural
    from disentbench.datasets.dsprites_variants import ColorDSprites, NoisyDSprites, ScreamDSprites

    rng = np.random.default_rng(0)
    if "variants" in only:
        base = DSpritesProcedural(device=device)
        yield "variants:color_dsprites_procedural", ColorDSprites(base)
        yield "variants:noisy_dsprites_procedural", NoisyDSprites(base)
        painting = rng.integers(0, 256, size=(274, 350, 3), dtype=np.uint8)
        Image.fromarray(painting).save(tmp / "scream.png")
        yield "variants:scream_dsprites_procedural", ScreamDSprites(base, tmp / "scream.png", verify=False)
    if "mpi3d" in only:
        yield from _mpi3d(tmp, device, rng)
    if "cars3d" in only:
        yield from _cars3d(tmp, device, rng)
    if "smallnorb" in only:
        yield from _smallnorb(tmp, device, rng)
    if "file" in only:
        yield from _user_files(tmp, device, rng)


def _mpi3d(tmp: Path, device: str, rng: np.random.Generator):
    from disentbench.datasets.mpi3d import MPI3DOfficial

    sizes = (6, 6, 2, 3, 3, 4, 4)
    n = int(np.prod(sizes))
    np.savez(tmp / "mpi3d_toy.npz", images=rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8))
    for label, limit in (("memory", None), ("file", 0)):
        ds = MPI3DOfficial(tmp / "mpi3d_toy.npz", verify=False, device=device, layouts={n: sizes}, memory_limit=limit)
        yield f"mpi3d:official_{label}", ds


def _cars3d(tmp: Path, device: str, rng: np.random.Generator):
    from scipy.io import savemat

    from disentbench.datasets.cars3d import Cars3DOfficial

    cars = tmp / "cars"
    cars.mkdir()
    for i in range(3):
        savemat(cars / f"car_{i:03d}_mesh.mat", {"im": rng.integers(0, 256, (128, 128, 3, 24, 4), dtype=np.uint8)})
    for label, limit in (("memory", None), ("file", 0)):
        yield (
            f"cars3d:official_{label}",
            Cars3DOfficial(cars, verify=False, device=device, num_objects=3, memory_limit=limit),
        )


def _smallnorb(tmp: Path, device: str, rng: np.random.Generator):
    from disentbench.datasets.smallnorb import SPLITS, SmallNORBOfficial, file_name

    full = (5, 2, 3, 4, 2)
    grid = _grid(full)
    for split, instance in zip(SPLITS, (1, 0)):
        rows = grid[grid[:, 1] == instance]
        head = lambda magic, shape: np.array([magic, len(shape), *shape, *[1] * (3 - len(shape))], "<i4").tobytes()  # noqa: E731
        (tmp / file_name(split, "dat")).write_bytes(
            head(0x1E3D4C55, (len(rows), 2, 96, 96)) + rng.integers(0, 256, (len(rows), 2, 96, 96), np.uint8).tobytes()
        )
        (tmp / file_name(split, "cat")).write_bytes(head(0x1E3D4C54, (len(rows),)) + rows[:, 0].astype("<i4").tobytes())
        info = np.column_stack([rows[:, 1], rows[:, 2], rows[:, 3] * 2, rows[:, 4]]).astype("<i4")
        (tmp / file_name(split, "info")).write_bytes(head(0x1E3D4C54, (len(rows), 4)) + info.tobytes())
    paths = {(s, k): tmp / file_name(s, k) for s in SPLITS for k in ("dat", "cat", "info")}
    for label, limit in (("memory", None), ("file", 0)):
        yield (
            f"smallnorb:official_{label}",
            SmallNORBOfficial(paths, verify=False, device=device, full_sizes=full, memory_limit=limit),
        )


def _user_files(tmp: Path, device: str, rng: np.random.Generator):
    from disentbench.datasets.user_file import UserFileDataset

    sizes = (8, 8, 8, 4)
    grid = _grid(sizes)
    images = rng.integers(0, 256, size=(len(grid), 64, 64, 3), dtype=np.uint8)
    np.savez(tmp / "full.npz", images=images, factors=grid)
    keep = rng.permutation(len(grid))[: len(grid) // 4]  # a quarter of the combinations
    np.savez(tmp / "sparse.npz", images=images[keep], factors=grid[keep], factor_sizes=np.array(sizes))
    for name in ("full", "sparse"):
        for label, limit in (("memory", None), ("file", 0)):
            ds = UserFileDataset(tmp / f"{name}.npz", verify=False, device=device, memory_limit=limit)
            yield f"file:{name}_{label}", ds


def fixed_factor_requests(ds, n: int, rng: np.random.Generator) -> np.ndarray:
    """BetaVAE's requests: sampled vectors with one factor copied from other sampled vectors (on a
    file with rows missing, most of them name a combination no row holds)."""
    first, second = ds.sample_factors(n, rng), ds.sample_factors(n, rng)
    k = int(rng.integers(ds.num_factors))
    second[:, k] = first[:, k]
    return second


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m disentbench.bench.perf data")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is 2 cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cold-batches", type=int, default=2, help="batches ray-cast without the cache")
    parser.add_argument("--only", default=",".join(GROUPS), help="comma-separated groups: " + ", ".join(GROUPS))
    args = parser.parse_args(argv)
    only = {g.strip() for g in args.only.split(",") if g.strip()}
    if only - set(GROUPS):
        parser.error(f"--only: unknown group(s) {sorted(only - set(GROUPS))}; choose from {', '.join(GROUPS)}")
    torch.set_num_threads(args.threads)
    from disentbench import methods

    b, rng = args.batch, np.random.default_rng(0)
    figures: dict[str, float] = {"batch": b, "threads": args.threads}
    lines: list[str] = []

    def step_rate(channels: int, x: torch.Tensor | None = None, key: str | None = None) -> float:
        """Images/s a betavae training step consumes on (b, channels, 64, 64) images."""
        key = key or f"betavae_train_step_{channels}ch_img_s"
        if key not in figures:
            model = methods.create("betavae", observation_shape=(channels, 64, 64)).to(args.device)
            if x is None:
                x = torch.rand((b, channels, 64, 64), generator=torch.Generator().manual_seed(0)).to(args.device)
            gen = torch.Generator(device=args.device).manual_seed(0)
            figures[key] = _rate(lambda i: model.train_step(x, i, gen), b, args.seconds)
        return figures[key]

    legacy = {}  # the first two groups' datasets, for their own training-step figures
    if "dsprites" in only:
        legacy["dsprites"] = _measure_dsprites(args, figures, rng)
    if "shapes3d" in only:
        legacy["shapes3d"] = _measure_shapes3d(args, figures, rng)
    for name, ds in legacy.items():
        step_rate(
            ds.observation_shape[0], ds.observations(ds.sample_factors(b, rng)), f"betavae_train_step_{name}_img_s"
        )

    if only & {"variants", "mpi3d", "cars3d", "smallnorb", "file"}:
        with tempfile.TemporaryDirectory() as tmp, _scratch_cache(Path(tmp) / "cache"):
            for label, ds in new_sources(Path(tmp), args.device, only):
                measures = [(label, lambda i, ds=ds: ds.observations(ds.sample_factors(b, rng)))]
                if label.startswith("file:sparse"):
                    fixed = lambda i, ds=ds: ds.observations(fixed_factor_requests(ds, b, rng))  # noqa: E731
                    measures.append((label.replace("sparse", "sparse_fixed_factor"), fixed))
                for name, fn in measures:
                    key = name.replace(":", "_") + "_img_s"
                    figures[key] = _rate(fn, b, args.seconds)
                    step = step_rate(ds.observation_shape[0])
                    lines.append(
                        f"{key:44s} {figures[key]:12.1f}  ({figures[key] / step:6.1f} x a training step's {step:,.0f})"
                    )

    printed = set()
    for line in lines:
        printed.add(line.split()[0])
    for key, value in figures.items():
        if key not in printed:
            print(f"{key:40s} {value:12.1f}")
    for line in lines:
        print(line)
    print(json.dumps({k: round(float(v), 2) for k, v in figures.items()}))
    return 0


def _measure_dsprites(args, figures: dict, rng: np.random.Generator):
    from disentbench.datasets.dsprites import DSpritesOfficial, DSpritesProcedural

    b = args.batch
    dsp = DSpritesProcedural(device=args.device)
    figures["dsprites_procedural_img_s"] = _rate(
        lambda i: dsp.observations(dsp.sample_factors(b, rng)), b, args.seconds
    )
    with tempfile.TemporaryDirectory() as tmp:
        dsizes = (3, 6, 40, 8, 8)
        dgrid = _grid(dsizes)
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
    return dsp


def _measure_shapes3d(args, figures: dict, rng: np.random.Generator):
    import h5py

    from disentbench.datasets.shapes3d import Shapes3DOfficial, Shapes3DProcedural, factor_values

    b = args.batch
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
        sizes = (10, 10, 10, 8, 4, 1)
        grid = _grid(sizes)
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
    return s3d
