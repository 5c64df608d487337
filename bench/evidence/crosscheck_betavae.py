"""Cross-check our beta-VAE against an independent implementation on the same data and steps.

`python -m disentbench.bench.evidence.crosscheck_betavae --steps 8000 --out results/crosscheck`

Trains two beta-VAEs (beta 4, batch 64, Adam 1e-4, Bernoulli likelihood, 10 latents) on our
procedural (or official) dSprites: ours, through `run_benchmark.py` with the quick profile's metric
sizes, and disent's `BetaVae` on disent's own "conv64" networks (the reference architecture as disent
writes it, with PyTorch's default initialisation), then scores both with our metrics at the same
sizes and seed and draws latent traversals of both. If the two differ beyond seed noise, one of
them trains differently. disent is only a test-time tool here: nothing of it is part of the suite.

Installing disent next to this project (it asks for torchvision and lightning; PyPI's torchvision
does not import beside the CPU torch build, and disent imports it only for datasets and models the
cross-check never uses, so the script installs a stand-in module when torchvision is missing):
    python -m venv --system-site-packages /tmp/xenv
    /tmp/xenv/bin/pip install --no-deps disent==0.8.0
    /tmp/xenv/bin/pip install -c <(echo torch==$(python -c 'import torch;print(torch.__version__.split("+")[0])')) lightning
    /tmp/xenv/bin/python -m disentbench.bench.evidence.crosscheck_betavae --which disent ...
Both parts resume from their checkpoints when rerun with the same --out.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

DISENT_CHECKPOINT = "disent_checkpoint.pt"


def _torchvision_stand_in() -> None:
    """Let `import torchvision...` succeed with inert modules (only when torchvision is missing)."""
    try:
        import torchvision  # noqa: F401

        return
    except Exception:
        pass

    class _Unavailable:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("torchvision is not installed (stand-in module)")

    def _attr(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Unavailable

    class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, fullname, path, target=None):
            if fullname == "torchvision" or fullname.startswith("torchvision."):
                return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            return None

        def create_module(self, spec):
            module = types.ModuleType(spec.name)
            module.__path__ = []
            module.__getattr__ = _attr
            module.__version__ = "0.0.0"
            return module

        def exec_module(self, module) -> None:
            pass

    sys.meta_path.insert(0, _Finder())


def _traversal_png(decode, encode, x: torch.Tensor, path: Path, title: str, span: float = 2.0) -> None:
    """Rows: latents; columns: the mean code with that latent moved over +-span std of the codes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with torch.no_grad():
        codes = encode(x)
        base = codes[0]
        std = codes.std(0)
        steps = torch.linspace(-span, span, 9)
        rows = []
        for d in range(codes.shape[1]):
            z = base.repeat(len(steps), 1)
            z[:, d] = base[d] + steps * std[d]
            rows.append(decode(z)[:, 0].clamp(0, 1).numpy())
    fig, axes = plt.subplots(len(rows), len(steps), figsize=(len(steps) * 0.8, len(rows) * 0.8))
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            axes[i, j].imshow(img, cmap="gray", vmin=0, vmax=1)
            axes[i, j].axis("off")
        axes[i, 0].set_title(f"z{i} sd {float(std[i]):.2f}", fontsize=6, loc="left")
    fig.suptitle(title, fontsize=8)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _dataset(source: str):
    from disentbench import datasets

    return datasets.create("dsprites", source=source)


def _quick_metrics() -> dict:
    from disentbench.bench.config import load_profile

    return load_profile("quick")["metrics"]


def _score(encode, dataset, seed: int) -> dict:
    from disentbench import metrics

    scores = metrics.evaluate_many(_quick_metrics(), dataset, encode, seed=seed)
    return {k: v for k, v in scores.items() if isinstance(v, (int, float))}


def run_ours(args: argparse.Namespace, out: Path) -> dict:
    """Our beta-VAE through the benchmark's own command, so it is exactly what users run."""
    results = out / "ours"
    from disentbench.bench.cli import main as benchmark

    argv = [
        "--methods",
        "betavae",
        "--datasets",
        "dsprites",
        "--seeds",
        "1",
        "--profile",
        "quick",
        "--steps",
        str(args.steps),
        "--source",
        args.source,
        "--results",
        str(results),
        "--no-report",
        "--threads",
        str(args.threads),
    ]
    if args.seed:
        raise SystemExit("--seed other than 0 is not supported for ours (the runner's seeds are 0..N-1)")
    if benchmark(argv) != 0:
        raise SystemExit("our beta-VAE run failed; see the messages above")
    scores_file = next(results.glob("cells/dsprites-betavae-*/scores.json"))
    record = json.loads(scores_file.read_text())
    from disentbench.bench.checkpoint import load_method

    method, _ = load_method(scores_file.parent / "checkpoint.pt")
    method.eval()
    dataset = _dataset(args.source)
    x = dataset.observations(dataset.sample_factors(256, np.random.default_rng(123)))
    _traversal_png(
        method.decode, method.encode, x, out / "traversal_ours.png", f"ours: betavae beta=4, {args.steps} steps"
    )
    return {k: v for k, v in record["scores"].items() if isinstance(v, (int, float))} | {
        "train_seconds": record["train_seconds"]
    }


def score_ours_checkpoint(args: argparse.Namespace, out: Path) -> dict:
    """Score our run's latest checkpoint as it stands (a run still training keeps going)."""
    from disentbench.bench.checkpoint import load_method, read_checkpoint

    path = next((out / "ours").glob("cells/dsprites-betavae-*/checkpoint.pt"))
    step = int(read_checkpoint(path)["step"])
    method, _ = load_method(path)
    method.eval()
    dataset = _dataset(args.source)
    x = dataset.observations(dataset.sample_factors(256, np.random.default_rng(123)))
    _traversal_png(method.decode, method.encode, x, out / f"traversal_ours_{step}.png", f"ours: betavae, {step} steps")
    return _score(method.encode, dataset, seed=0) | {"step": step}


def score_disent_checkpoint(args: argparse.Namespace, out: Path) -> dict:
    """Score disent's latest checkpoint as it stands."""
    framework = _disent_model(10)
    state = torch.load(out / DISENT_CHECKPOINT, weights_only=False)
    framework.load_state_dict(state["model"])
    framework.eval()
    dataset = _dataset(args.source)

    encode, decode = _codec(framework)
    x = dataset.observations(dataset.sample_factors(256, np.random.default_rng(123)))
    step = int(state["step"])
    _traversal_png(decode, encode, x, out / f"traversal_disent_{step}.png", f"disent BetaVae, {step} steps")
    return _score(encode, dataset, seed=0) | {"step": step}


def _codec(framework):
    """disent's encoder mean and decoder as plain functions of tensors, without gradients."""

    def encode(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return framework.encode(images)

    def decode(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return framework.decode(z)

    return encode, decode


def _disent_model(latent_dim: int):
    _torchvision_stand_in()
    from disent.frameworks.vae import BetaVae
    from disent.model import AutoEncoder
    from disent.model.ae import DecoderConv64, EncoderConv64

    model = AutoEncoder(
        encoder=EncoderConv64(x_shape=(1, 64, 64), z_size=latent_dim, z_multiplier=2),
        decoder=DecoderConv64(x_shape=(1, 64, 64), z_size=latent_dim),
    )
    cfg = BetaVae.cfg(
        optimizer="adam",
        optimizer_kwargs={"lr": 1e-4},
        recon_loss="bce",
        loss_reduction="mean_sum",
        latent_distribution="normal",
        kl_loss_mode="direct",
        beta=4.0,
    )
    framework = BetaVae(model=model, cfg=cfg)
    framework.log = lambda *a, **k: None  # no Lightning trainer: disent's logging calls are no-ops
    framework.log_dict = lambda *a, **k: None
    return framework


def run_disent(args: argparse.Namespace, out: Path) -> dict:
    """disent's BetaVae, trained by a plain loop over its own training_step on our batches."""
    torch.manual_seed(args.seed)  # disent draws its reparameterisation noise from torch's global generator
    framework = _disent_model(10)
    optimizer = framework.configure_optimizers()
    dataset = _dataset(args.source)
    rng = np.random.default_rng(np.random.SeedSequence(args.seed).generate_state(1)[0])
    ckpt_path = out / DISENT_CHECKPOINT
    start, seconds = 0, 0.0
    if ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        framework.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["data_rng"]
        torch.set_rng_state(state["torch_rng"])
        start, seconds = state["step"], state["seconds"]
    log = open(out / "disent_log.csv", "a")
    t0 = time.perf_counter()
    for step in range(start + 1, args.steps + 1):
        x = dataset.observations(dataset.sample_factors(64, rng))
        loss = framework.do_training_step({"x_targ": (x,)}, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            log.write(f"{step},{float(loss):.4f}\n")
            log.flush()
        if step % args.checkpoint_every == 0 or step == args.steps:
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save(
                {
                    "model": framework.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": step,
                    "data_rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "seconds": seconds + time.perf_counter() - t0,
                },
                tmp,
            )
            os.replace(tmp, ckpt_path)
    seconds += time.perf_counter() - t0
    framework.eval()

    encode, decode = _codec(framework)
    x = dataset.observations(dataset.sample_factors(256, np.random.default_rng(123)))
    _traversal_png(decode, encode, x, out / "traversal_disent.png", f"disent BetaVae beta=4, {args.steps} steps")
    return _score(encode, dataset, seed=0) | {"train_seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m disentbench.bench.evidence.crosscheck_betavae", description=__doc__.splitlines()[0]
    )
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--out", default="results/crosscheck")
    p.add_argument("--which", choices=("ours", "disent", "both"), default="both")
    p.add_argument("--source", choices=("procedural", "official"), default="procedural")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument(
        "--score-checkpoints",
        action="store_true",
        help="score the latest checkpoints in --out as they stand, without training",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figures: dict = {"steps": args.steps, "source": args.source}
    if args.score_checkpoints:
        if args.which in ("ours", "both"):
            figures["ours"] = score_ours_checkpoint(args, out)
        if args.which in ("disent", "both"):
            figures["disent"] = score_disent_checkpoint(args, out)
        name = "_".join(f"{k}{v['step']}" for k, v in figures.items() if isinstance(v, dict))
        (out / f"crosscheck_checkpoints_{name}.json").write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures))
        return 0
    if args.which in ("ours", "both"):
        figures["ours"] = run_ours(args, out)
    if args.which in ("disent", "both"):
        figures["disent"] = run_disent(args, out)
    (out / f"crosscheck_{args.which}_{args.steps}.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
