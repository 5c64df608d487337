"""Random kills: SIGKILL a small grid at random named fault points, rerun after each, compare.

    python -m disentbench.bench.evidence.kills --kills 20 [--seed 0] [--out DIR] [--fork]

One uninterrupted run of the grid is the reference. Then, in rounds, the same command runs with a
fault point and hit count drawn from a seeded numpy Generator (disentbench.faults: SIGKILL at the
COUNT-th hit of the point), again and again in the same results folder, until a run ends without
being killed; a last clean rerun completes it and its results are compared with the reference:
runs.csv's cell ids, metrics and values (as text: bit for bit), duplicated rows, lock files left,
the steps of every train_log.csv and every curve.csv. Rounds continue until `--kills` kills. One
JSON line of figures is printed at the end. Each run starts a new interpreter, or with `--fork` is
forked from one that imported disentbench and torch once (`Forker`: seconds less per run);
`tests/test_faults.py` runs 20 kills that way.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from disentbench.faults import ENV

PROFILE = """\
extends: smoke
description: the crash-consistency grid (tests/test_faults.py, bench/evidence/kills.py)
steps: 6
batch_size: 8
log_every: 2
checkpoint_every: 2
score_steps: [4]
primary_metric: mig
metrics:
  mig: {num_train: 200}
"""
METHODS = "vae,betavae"
LOG_STEPS = [2, 4, 6]
CURVE_STEPS = [4, 6]
#: the points a run of the grid passes, with how often a fresh run passes each (the draws' ceiling)
GRID_POINTS = {
    "train_step": 12,
    "after_log": 6,
    "after_checkpoint": 4,
    "write:checkpoint": 8,
    "curve_point": 2,
    "write:curve": 5,
    "scoring": 2,
    "write:scores": 2,
    "write:runs_csv": 1,
    "write:leaderboard": 2,
}


def write_profile(folder: Path) -> Path:
    path = Path(folder) / "faults.yaml"
    path.write_text(PROFILE)
    return path


def run_args(profile: Path, results: Path) -> list[str]:
    """The grid's command line (after `python -m disentbench`): 2 cells, CPU, one thread, no figures."""
    return [
        "--methods", METHODS, "--seeds", "1", "--profile", str(profile), "--results", str(results),
        "--device", "cpu", "--source", "procedural", "--threads", "1", "--no-report",
    ]  # fmt: skip


def launch(args: list[str], fault: str | None = None, timeout: float = 300) -> int:
    """Run `python -m disentbench ARGS` in a child process (with the fault armed); its return code
    (-9: killed by the fault)."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if fault:
        env[ENV] = fault
    proc = subprocess.run(
        [sys.executable, "-m", "disentbench", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    if proc.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"run with {ENV}={fault} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.returncode


#: the fork server's program: import the command line once, then for each request (a JSON line
#: [args, fault]) fork a child that arms the fault and runs `main(args)`; answer its exit code (-9:
#: killed). It never trains itself, so each child starts from a process that has run no torch op.
_SERVER = """\
import json, os, sys, traceback
from disentbench import faults
from disentbench.bench.cli import main
import disentbench.bench.report, disentbench.bench.rescore, disentbench.bench.zoo, disentbench.bench.perf.host
import tqdm.auto, torch._dynamo  # what a run imports on first use (torch's optimizers: _dynamo)
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # the runs' own output goes to the log
for request in sys.stdin:
    args, fault = json.loads(request)
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            faults.arm(fault)
            code = main(args)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    answers.write(f"{os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}\\n")
    answers.flush()
"""


class Forker:
    """`launch` without an interpreter's start per run: each run is a process forked from one that
    has imported disentbench and torch once (a context manager; the runs' output goes to `log`).
    A run then costs its own work, a fraction of a second for this grid instead of seconds."""

    def __init__(self, log: Path, timeout: float = 300):
        env = {k: v for k, v in os.environ.items() if k != ENV}
        self.log, self.timeout = Path(log), timeout
        with open(self.log, "ab") as err:
            self.server = subprocess.Popen(
                [sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                env=env, text=True,
            )  # fmt: skip

    def __call__(self, args: list[str], fault: str | None = None) -> int:
        """As `launch`: the return code of `python -m disentbench ARGS` with the fault armed."""
        self.server.stdin.write(json.dumps([args, fault]) + "\n")
        self.server.stdin.flush()
        ready, _, _ = select.select([self.server.stdout], [], [], self.timeout)
        answer = self.server.stdout.readline() if ready else ""
        if not answer:
            raise RuntimeError(f"the fork server gave no answer in {self.timeout} s; see {self.log}")
        code = int(answer)
        if code not in (0, -signal.SIGKILL):
            raise RuntimeError(f"run with {ENV}={fault} exited {code}; see {self.log}")
        return code

    def __enter__(self) -> Forker:
        return self

    def __exit__(self, *exc) -> None:
        self.server.stdin.close()
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()


def runs_table(run_dir: Path) -> pd.DataFrame:
    """runs.csv's ids and values as text (bit-for-bit comparison), in file order."""
    runs = pd.read_csv(Path(run_dir) / "runs.csv", dtype=str, keep_default_na=False)
    return runs[["cell_id", "method", "seed", "metric", "value"]].reset_index(drop=True)


def problems(run_dir: Path, reference: Path) -> list[str]:
    """What differs from the reference run, or is damaged; empty when the run is identical."""
    run_dir, out = Path(run_dir), []
    mine, theirs = runs_table(run_dir), runs_table(reference)
    if not mine.equals(theirs):
        out.append(f"runs.csv differs:\n{mine}\nreference:\n{theirs}")
    if mine.duplicated(["cell_id", "metric"]).any():
        out.append("runs.csv has a duplicated row")
    out += [f"lock left: {p}" for p in run_dir.rglob("lock")]
    out += [f"temporary file left: {p}" for p in run_dir.rglob(".*.tmp")]
    for cell in sorted((run_dir / "cells").iterdir()):
        steps = list(pd.read_csv(cell / "train_log.csv")["step"])
        if steps != LOG_STEPS:
            out.append(f"{cell.name}: train_log.csv steps {steps}, not {LOG_STEPS}")
        curve = pd.read_csv(cell / "curve.csv", dtype=str)[["step", "metric", "value"]]
        ref = pd.read_csv(Path(reference) / "cells" / cell.name / "curve.csv", dtype=str)[["step", "metric", "value"]]
        if not curve.equals(ref):
            out.append(f"{cell.name}: curve.csv differs: {curve.values.tolist()} vs {ref.values.tolist()}")
    return out


def draw_fault(rng: np.random.Generator) -> str:
    names = sorted(GRID_POINTS)
    name = names[int(rng.integers(len(names)))]
    return f"{name}:{int(rng.integers(1, GRID_POINTS[name] + 1))}"


def random_kills(kills: int, seed: int, work: Path, reference: Path | None = None, complete=None, run=launch) -> dict:
    """Kill the grid `kills` times at random points (rounds as in the module's docstring); figures.
    `run(args, fault)` runs the grid (`launch`: a new interpreter; a `Forker`), `complete(args)` the
    clean rerun that ends a round (default: `run`)."""
    complete = complete or run
    rng = np.random.default_rng(seed)
    work = Path(work)
    profile = write_profile(work)
    if reference is None:
        reference = work / "reference"
        run(run_args(profile, reference))
    figures = {"kills": 0, "runs": 0, "rounds": 0, "identical_rounds": 0, "faults": [], "problems": []}
    while figures["kills"] < kills:
        folder = work / f"round-{figures['rounds']}"
        shutil.rmtree(folder, ignore_errors=True)
        while figures["kills"] < kills:
            fault = draw_fault(rng)
            figures["runs"] += 1
            if run(run_args(profile, folder), fault) != -signal.SIGKILL:
                break  # the point was not reached: this run completed
            figures["kills"] += 1
            figures["faults"].append(fault)
        figures["runs"] += 1
        if complete(run_args(profile, folder)) != 0:  # the rerun that completes the round
            raise RuntimeError(f"the clean rerun of {folder} failed")
        found = problems(folder, reference)
        figures["rounds"] += 1
        figures["identical_rounds"] += not found
        figures["problems"] += found
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m disentbench.bench.evidence.kills", description=__doc__.split("\n")[0])
    p.add_argument("--kills", type=int, default=20, help="SIGKILLs in all (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws of fault point and hit count")
    p.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    p.add_argument(
        "--fork",
        action="store_true",
        help="fork every run from one process that imported disentbench once (Forker; the suite's way) "
        "instead of starting a new interpreter for each",
    )
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.fork:
            with Forker(work / "runs.log") as fork:
                figures = random_kills(args.kills, args.seed, work, run=fork)
        else:
            figures = random_kills(args.kills, args.seed, work)
    figures["seconds"] = round(time.perf_counter() - t0, 1)
    figures["rows_lost"] = 0 if not figures["problems"] else "see problems"
    print(json.dumps(figures))
    return 0 if not figures["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
