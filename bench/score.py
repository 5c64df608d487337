"""`run_benchmark.py score --encoder SPEC`: score a model trained elsewhere.

The encoder is any of
- `module:function`, a Python callable importable from the installed packages or the current folder;
- `path/to/file.py:function`, a callable defined in a file;
- `model.pt` (also .pth, .ts), a TorchScript module saved with `torch.jit.save`.
It maps a float32 batch of images (N, C, H, W) in [0, 1], on the chosen device, to codes (N, D).
A function that gives an image the same code at every call may say so (`encode.deterministic =
True`): the BetaVAE and FactorVAE scores then encode each distinct image once (metrics.image_codes).
It is checked first on one small probe batch of every chosen dataset (a callable that raises,
returns something other than 2-d codes, the wrong number of codes or non-finite ones is one line that
says which, and nothing is written); then every metric scores it as the runner scores a trained
model (`metrics.evaluate_many`, the seed given). Each dataset gives one cell of the run folder, with
the runner's files: `cells/<id>/config.json` and `scores.json`, `runs.csv` (method
`external:<name>`, hparams `{"encoder": SPEC, "sha256": ...}`, data source, seed, versions, git
commit), `run.json`, the leaderboard and the report, so `report DIR1 DIR2` merges it with trained runs.

Metrics and sizes: the profile's (`--profile`, default `quick`): its metrics, or the ones `--metrics`
names, each at the profile's sample sizes when the profile lists it and at the metric's reference
defaults otherwise (as `rescore` sizes them).

Scoring the same encoder again into the same folder skips it, as the runner skips a finished cell
(`--replace` scores it again and overwrites the cell). The same encoder means the same name, spec,
file contents (sha256), dataset, data source and seed: a changed file is a new cell beside the old.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disentbench.atomic import atomic_path, write_json
from disentbench.bench import provenance
from disentbench.bench.errors import BenchError
from disentbench.datasets.files import file_digest

SCORES = "scores.json"
CONFIG = "config.json"
DEFAULT_PROFILE = "quick"
DEFAULT_RESULTS = Path("results") / "score"
METHOD_PREFIX = "external:"
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts")
PROBE_IMAGES = 8
FORMS = "module:function, path/to/file.py:function, or a TorchScript file (.pt, .pth, .ts)"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def sha256(path: Path) -> str:
    """The file's sha256 (hex), read in blocks."""
    return file_digest(path, "sha256")


@dataclass
class Encoder:
    """A loaded external encoder: the callable, its spec and where it came from."""

    spec: str
    kind: str  # "module", "file" or "torchscript"
    function: Callable[[Any], Any]
    default_name: str
    #: provenance recorded in config.json ("sha256" of the file or TorchScript file, "module_file"...)
    source: dict[str, str] = field(default_factory=dict)

    def hparams(self) -> dict[str, str]:
        """What runs.csv lists as the setting: the spec, and the sha256 of the file when it is one."""
        out = {"encoder": self.spec}
        if self.kind in ("file", "torchscript"):
            out["sha256"] = self.source["sha256"]
        return out

    @property
    def deterministic(self) -> bool:
        """The user's function is marked as giving an image the same code at every call
        (`encode.deterministic = True` in their file, or metrics.image_codes.deterministic_encoder),
        so the BetaVAE and FactorVAE scores may encode each distinct image once."""
        return bool(getattr(self.function, "deterministic", False))

    def __call__(self, images):
        return codes_of(self, images, "during the metrics run")


def _first_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _attribute(module, function: str, spec: str, where: str):
    if not function.isidentifier():
        raise BenchError(f"--encoder {spec}: {function!r} is not a function name; give {FORMS}")
    if not hasattr(module, function):
        raise BenchError(f"--encoder {spec}: {where} has no function {function!r}")
    fn = getattr(module, function)
    if not callable(fn):
        raise BenchError(f"--encoder {spec}: {where}.{function} is not callable (type {type(fn).__name__})")
    return fn


def _import_module(name: str, spec: str):
    """Import `name` from the installed packages, else from the current folder."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise BenchError(
                f"--encoder {spec}: no module named {name!r} (install it, or run from the folder that holds it)"
            ) from None
        raise BenchError(f"--encoder {spec}: importing {name} failed ({_first_line(exc)})") from None
    except Exception as exc:
        raise BenchError(f"--encoder {spec}: importing {name} failed ({_first_line(exc)})") from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _load_file(path: Path, spec: str):
    if not path.is_file():
        raise BenchError(f"--encoder {spec}: no such file {path}")
    from disentbench.bench.plugins import plugin_module_name

    plugin = sys.modules.get(plugin_module_name(path.resolve()))  # the same file given as --plugin
    if plugin is not None and Path(getattr(plugin, "__file__", "") or "").resolve() == path.resolve():
        return plugin
    name = "disentbench_encoder_" + re.sub(r"\W", "_", path.stem)
    module_spec = importlib.util.spec_from_file_location(name, path.resolve())
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise BenchError(f"--encoder {spec}: importing {path} failed ({_first_line(exc)})") from None
    return module


def load_encoder(spec: str, device) -> Encoder:
    """The encoder named by `spec` (see the module's docstring), or a one-line BenchError."""
    import torch

    spec = (spec or "").strip()
    if not spec:
        raise BenchError(f"--encoder is empty; give {FORMS}")
    if spec.lower().endswith(TORCHSCRIPT_SUFFIXES):
        path = Path(spec)
        if not path.is_file():
            raise BenchError(f"--encoder {spec}: no such file {path}")
        try:
            module = torch.jit.load(str(path), map_location=device)
        except Exception as exc:
            raise BenchError(
                f"--encoder {spec}: not a TorchScript file ({_first_line(exc)}); save one with "
                f"torch.jit.save(torch.jit.script(model), PATH), or give module:function"
            ) from None
        module.eval()
        return Encoder(spec, "torchscript", module, path.stem, {"sha256": sha256(path)})
    head, sep, function = spec.rpartition(":")
    if sep and head.lower().endswith(".py"):
        path = Path(head)
        module = _load_file(path, spec)
        fn = _attribute(module, function, spec, str(path))
        return Encoder(spec, "file", fn, f"{path.stem}.{function}", {"sha256": sha256(path)})
    if spec.lower().endswith(".py"):
        raise BenchError(f"--encoder {spec}: name the function too, e.g. {spec}:encode")
    if not sep or not head or not all(part.isidentifier() for part in head.split(".")):
        raise BenchError(f"--encoder {spec}: give {FORMS}")
    module = _import_module(head, spec)
    fn = _attribute(module, function, spec, f"module {head}")
    source = {}
    module_file = getattr(module, "__file__", None)
    if module_file and Path(module_file).is_file():
        source = {"module_file": str(Path(module_file).resolve()), "module_sha256": sha256(Path(module_file))}
    return Encoder(spec, "module", fn, f"{head.rsplit('.', 1)[-1]}.{function}", source)


def codes_of(encoder: Encoder, images, when: str):
    """The encoder's codes of `images` as a float tensor (N, D), checked: a one-line BenchError
    saying what is wrong when the callable raises or its codes are not (N, D) finite numbers."""
    import numpy as np
    import torch

    n = len(images)
    what = f"--encoder {encoder.spec}"
    batch = f"a batch of {n} images of shape {tuple(images.shape)}"
    try:
        with torch.no_grad():
            codes = encoder.function(images)
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"{what} raised {_first_line(exc)} on {batch} ({when})") from None
    if isinstance(codes, np.ndarray):
        codes = torch.from_numpy(codes)
    if not isinstance(codes, torch.Tensor):
        raise BenchError(f"{what} returned a {type(codes).__name__}, not a tensor of codes (N, D), on {batch} ({when})")
    if codes.dim() != 2:
        raise BenchError(
            f"{what} returned codes of shape {tuple(codes.shape)} on {batch} ({when}); codes must be 2-d (N, D)"
        )
    if codes.shape[0] != n:
        raise BenchError(f"{what} returned {codes.shape[0]} codes for {batch} ({when}); one code per image")
    if codes.shape[1] == 0:
        raise BenchError(f"{what} returned codes of shape {tuple(codes.shape)} on {batch} ({when}); D must be >= 1")
    if codes.is_complex() or codes.dtype == torch.bool:
        raise BenchError(f"{what} returned {codes.dtype} codes on {batch} ({when}); codes must be real numbers")
    codes = codes.detach().float()
    bad = int((~torch.isfinite(codes)).any(dim=1).sum())
    if bad:
        raise BenchError(
            f"{what} returned non-finite codes (NaN or inf) for {bad} of the {n} images of {batch} ({when})"
        )
    return codes


def probe(encoder: Encoder, dataset, seed: int, n: int = PROBE_IMAGES) -> int:
    """Run the encoder once on `n` images of `dataset` (drawn from `seed`); return the code size D."""
    import numpy as np

    images = dataset.observations(dataset.sample_factors(n, np.random.default_rng(seed)))
    return int(codes_of(encoder, images, f"the probe on {dataset.name}").shape[1])


def metric_sizes(profile: dict[str, Any], names: list[str] | None) -> dict[str, dict]:
    """{metric: parameters}: the profile's metrics, or those named, each at the profile's sizes when it
    lists the metric and at the metric's reference defaults otherwise."""
    from disentbench import metrics

    listed = {k: dict(v or {}) for k, v in (profile.get("metrics") or {}).items()}
    chosen = list(listed) if names is None else names
    for name in chosen:
        if getattr(metrics.REGISTRY.get(name), "run_level", False):
            raise BenchError(
                f"metric {name} compares several trained models of one setting; score cannot compute it for "
                f"one external encoder: drop it from --metrics"
            )
    return {name: listed.get(name, {}) for name in chosen}


def cell_id(method: str, encoder: Encoder, dataset, seed: int) -> str:
    """`<dataset>-external-<name>-s<seed>-<hash>`: the hash covers the name, spec, file contents,
    dataset, data source and seed (what makes a second score "the same encoder")."""
    identity = {
        "method": method,
        "hparams": encoder.hparams(),
        "module_sha256": encoder.source.get("module_sha256", ""),
        "dataset": dataset.name,
        "data_source": dataset.source,
        "seed": int(seed),
    }
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    slug = method.removeprefix(METHOD_PREFIX)
    return f"{dataset.name}-external-{slug}-s{seed}-{digest}"


def _merge_runs_csv(run_dir: Path, records: list[dict], profile_name: str):
    """runs.csv with the rows of `records` (their cells' old rows dropped) and every other row the
    folder's runs.csv already has (a trained run's cells, earlier scores), kept as they were."""
    import pandas as pd

    from disentbench.bench.runner import RUN_COLUMNS, RUNS, rows_of

    new = pd.DataFrame([row for rec in records for row in rows_of(rec, profile_name)], columns=RUN_COLUMNS)
    path = run_dir / RUNS
    if path.is_file():
        try:
            old = pd.read_csv(path, dtype={"cell_id": str, "hparams": str, "metric": str, "config": str})
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise BenchError(
                f"{path}: unreadable ({type(exc).__name__}); move it away or choose another --results"
            ) from None
        old = old[~old["cell_id"].isin(set(new["cell_id"]))] if "cell_id" in old.columns else old
        columns = RUN_COLUMNS + [c for c in old.columns if c not in RUN_COLUMNS]
        new = pd.concat([old.reindex(columns=columns), new.reindex(columns=columns)], ignore_index=True)
    with atomic_path(path) as tmp:
        new.to_csv(tmp, index=False)
    return new


def _check_dir(run_dir: Path) -> None:
    """The results folder can be created and written (checked before anything is written into it)."""
    probe_at = run_dir
    while not probe_at.exists() and probe_at.parent != probe_at:
        probe_at = probe_at.parent
    if not probe_at.is_dir() or not os.access(probe_at, os.W_OK | os.X_OK):
        raise BenchError(f"results folder {run_dir} is not writable; pass --results DIR")


@dataclass
class Request:
    """Everything `score` needs, validated."""

    encoder: Encoder
    method: str
    datasets: dict[str, Any]
    sizes: dict[str, dict]
    profile: dict[str, Any]
    primary: str
    run_dir: Path
    device: str
    seed: int
    replace: bool = False
    report: bool = True
    code_dims: dict[str, int] = field(default_factory=dict)


def prepare(args: argparse.Namespace) -> Request:
    """Validate every flag, load the encoder and the data, and probe the encoder on each dataset;
    nothing is written."""
    from disentbench import datasets, metrics
    from disentbench.bench.config import load_profile
    from disentbench.bench.devices import resolve_device
    from disentbench.bench.plugins import load_plugins
    from disentbench.bench.rescore import _names

    load_plugins(list(args.plugin))
    if args.seed < 0:
        raise BenchError(f"--seed must be a non-negative integer, got {args.seed}")
    profile = load_profile(args.profile)
    sizes = metric_sizes(profile, _names(args.metrics))
    for name, params in sizes.items():
        metrics.create(name, **params)  # an unknown parameter -> one line
    device = resolve_device(args.device)
    encoder = load_encoder(args.encoder, device)
    name = args.name if args.name is not None else encoder.default_name
    if not _NAME.fullmatch(name):
        raise BenchError(f"--name {name!r}: use letters, digits, '.', '_' and '-' (starting with a letter or digit)")
    requested = datasets.register_files(args.datasets) if args.datasets is not None else profile["datasets"]
    names = [n.strip() for n in requested.split(",") if n.strip()] if isinstance(requested, str) else list(requested)
    if not names:
        raise BenchError(f"--datasets is empty; registered datasets: {', '.join(datasets.list_datasets())}")
    for n in names:
        if n not in datasets.list_datasets():
            raise BenchError(f"unknown dataset {n!r}; registered datasets: {', '.join(datasets.list_datasets())}")
    loaded = {
        n: datasets.create(n, source=args.source, data_dir=args.data_dir, verify=not args.no_verify, device=device)
        for n in dict.fromkeys(names)
    }
    if not profile.get("procedural_ok", True) and args.source == "auto":
        for n, dataset in loaded.items():
            if dataset.source == "procedural":
                raise BenchError(
                    f"profile {profile['name']} needs the official {n} file (procedural_ok: false) and none was "
                    f"found: run `python -m disentbench.datasets download {n}`, or pass --source procedural"
                )
    for metric_name, params in sizes.items():  # e.g. fairness needs two factors
        check = getattr(metrics.create(metric_name, **params), "check_dataset", None)
        for dataset in loaded.values() if check is not None else ():
            check(dataset)
    code_dims = {n: probe(encoder, dataset, args.seed) for n, dataset in loaded.items()}
    run_dir = Path(args.results) if args.results else DEFAULT_RESULTS
    _check_dir(run_dir)
    primary = profile.get("primary_metric", "dci")
    if primary not in sizes:
        primary = next(iter(sizes))
    return Request(
        encoder=encoder,
        method=METHOD_PREFIX + name,
        datasets=loaded,
        sizes=sizes,
        profile=profile,
        primary=primary,
        run_dir=run_dir,
        device=str(device),
        seed=int(args.seed),
        replace=bool(args.replace),
        report=not args.no_report,
        code_dims=code_dims,
    )


def score(request: Request, log: Callable[[str], None] = print) -> tuple[list[str], list[str]]:
    """Score the encoder on every dataset of `request` and write the run folder's files; return
    (scored cell ids, skipped cell ids)."""
    import torch

    from disentbench import metrics

    run_dir = request.run_dir
    encoder = request.encoder
    done, skipped, records = [], [], []
    for name, dataset in request.datasets.items():
        cid = cell_id(request.method, encoder, dataset, request.seed)
        out = run_dir / "cells" / cid
        if (out / SCORES).is_file() and not request.replace:
            log(f"skipping {cid}: this encoder is already scored on {name} in {run_dir} (--replace scores it again)")
            skipped.append(cid)
            continue
        config = {
            "cell_id": cid,
            "method": request.method,
            "hparams": encoder.hparams(),
            "seed": request.seed,
            "steps": 0,  # not trained here
            "profile": request.profile["name"],
            "metrics": request.sizes,
            "device": request.device,
            "observation_shape": list(dataset.observation_shape),
            "code_dim": request.code_dims[name],
            "encoder": {"spec": encoder.spec, "kind": encoder.kind, **encoder.source},
            **dataset.describe(),
        }
        log(f"scoring {request.method} on {name} ({dataset.source}): {', '.join(request.sizes)}")
        t0 = time.perf_counter()
        scores = metrics.evaluate_many(request.sizes, dataset, encoder, seed=request.seed)
        record = {
            "cell_id": cid,
            "config": config,
            "scores": scores,
            "train_seconds": 0.0,
            "eval_seconds": time.perf_counter() - t0,
            "device": request.device,
            "git_commit": provenance.git_commit(),
            **provenance.versions(),
            "torch_threads": torch.get_num_threads(),
            "completed_at": provenance.now(),
            "external": True,
        }
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / CONFIG, config)
        write_json(out / SCORES, record)
        records.append(record)
        done.append(cid)
    if records:
        _write_tables(request, records, log)
    return done, skipped


def _write_tables(request: Request, records: list[dict], log: Callable[[str], None]) -> None:
    from disentbench.bench import report as reports
    from disentbench.bench.report.runs import read_run_json

    run_dir = request.run_dir
    info = read_run_json(run_dir)
    runs = _merge_runs_csv(run_dir, records, request.profile["name"])
    entry = {
        "at": provenance.now(),
        "argv": sys.argv[1:],
        "method": request.method,
        "encoder": request.encoder.spec,
        "cells": [r["cell_id"] for r in records],
        "metrics": request.sizes,
        "device": request.device,
        "git_commit": provenance.git_commit(),
    }
    if info is None:  # a folder of its own: run.json as the runner writes it
        info = {
            "profile": request.profile["name"],
            "primary_metric": request.primary,
            "git_commit": provenance.git_commit(),
            "versions": provenance.versions(),
            "config": {
                "name": request.profile["name"],
                "metrics": request.sizes,
                "primary_metric": request.primary,
            },
            "data_sources": {n: d.describe() for n, d in request.datasets.items()},
        }
    info.setdefault("scored", []).append(entry)
    write_json(run_dir / "run.json", info)
    primary = info.get("primary_metric") or request.primary
    reports.write_leaderboard(runs, run_dir, primary)
    log("\n" + reports.console_summary(runs, primary))
    log(f"tables: {run_dir / 'runs.csv'}, {run_dir / 'leaderboard.md'}")
    if request.report:
        log(f"report: {reports.build_report([run_dir], run_dir / 'report', primary)}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise BenchError(f"score: {message}")


def parser() -> argparse.ArgumentParser:
    from disentbench.bench.devices import CHOICES as DEVICE_CHOICES
    from disentbench.choices import SOURCES

    p = _Parser(
        prog="run_benchmark.py score",
        description="Score an encoder trained elsewhere (a Python callable or a TorchScript file mapping images "
        "(N, C, 64, 64) in [0, 1] to codes (N, D)) on ground-truth datasets; write a run folder that `report` "
        "merges with trained runs.",
    )
    p.add_argument("--encoder", required=True, metavar="SPEC", help=FORMS)
    p.add_argument("--datasets", help="comma-separated dataset names or file:PATH (default: the profile's)")
    p.add_argument("--metrics", help="comma-separated metrics (default: the profile's)")
    p.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help="profile whose metrics and sample sizes are used (default quick); a metric of --metrics it does not "
        "list runs at its reference defaults",
    )
    p.add_argument("--results", help=f"run folder (default {DEFAULT_RESULTS})")
    p.add_argument("--name", help="the model's name: method external:NAME (default: from the spec)")
    p.add_argument("--device", default="auto", help=DEVICE_CHOICES)
    p.add_argument("--source", default="auto", choices=SOURCES, help=" | ".join(SOURCES))
    p.add_argument("--data-dir", help="folder holding official dataset files")
    p.add_argument("--no-verify", action="store_true", help="skip the checksum of official files")
    p.add_argument("--seed", type=int, default=0, help="seed of the metrics' samples and the probe (default 0)")
    p.add_argument("--replace", action="store_true", help="score an encoder already scored in the folder again")
    p.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE_OR_FILE.py", help="module registering datasets/metrics"
    )
    p.add_argument("--no-report", action="store_true", help="write the tables, skip figures and report.html")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        request = prepare(parser().parse_args(sys.argv[1:] if argv is None else argv))
        done, skipped = score(request)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not done:
        print(f"nothing scored: every cell is already in {request.run_dir}")
    else:
        print(f"scored {request.method} on {len(done)} dataset(s) in {request.run_dir}")
    return 0
