"""`--dry-run`: the plan and a projected wall time, exit 0, and nothing written to the results folder;
its training probe trains as the run would and agrees with the trainer's own speed."""

import dataclasses
import os
import re
import time

import pytest
import torch

from disentbench import datasets, methods
from disentbench.bench import dryrun
from disentbench.bench.cli import main
from disentbench.bench.grid import Cell
from disentbench.bench.training import RunSeeds, SpeedOptions, TrainOptions, train

CPU = torch.device("cpu")
RATE = r"[\d.]+ \([\d.]+-[\d.]+\)"  # the probe's steps/s and its range, e.g. 8.04 (7.61-8.52)


@pytest.fixture
def short_probe(monkeypatch):
    """A probe of a fraction of a second per method, for tests of what the plan shows."""
    monkeypatch.setattr(dryrun, "PROBE_SECONDS", 0.3)
    monkeypatch.setattr(dryrun, "WARMUP_SECONDS", 0.2)


def _snapshot(folder):
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")}


def _cell(method: str, batch_size: int, steps: int, precision: str = "fp32") -> Cell:
    return Cell("dsprites", "procedural", method, "{}", 0, steps, batch_size, "reference", precision)


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path, tiny_profile, capsys, short_probe):
    run_dir = tmp_path / "run"
    base = [
        "--methods",
        "vae,betavae",
        "--datasets",
        "dsprites",
        "--seeds",
        "2",
        "--profile",
        str(tiny_profile),
        "--results",
        str(run_dir),
        "--device",
        "cpu",
        "--source",
        "procedural",
        "--threads",
        "1",
    ]
    assert main(["--dry-run", *base]) == 0
    out = capsys.readouterr().out
    assert not run_dir.exists()  # not even the folder
    assert re.search(rf"\| dsprites \| procedural \| vae \| 1 \| 2 \| 6 \| 2 \| 0 \| {RATE} \|", out)
    assert re.search(rf"\| dsprites \| procedural \| betavae \| 1 \| 2 \| 6 \| 2 \| 0 \| {RATE} \|", out)
    assert "4 cell(s), 0 already complete, 4 to run." in out
    assert re.search(r"Projected wall time: \d+ s \(range [\d.]+( s)?-[\d.]+ s\)", out)
    assert "precision fp32, channels_last off, compile off, 1 torch thread(s)" in out

    assert main([*base, "--no-report", "--seeds", "1"]) == 0  # two cells complete now
    capsys.readouterr()
    before = _snapshot(run_dir)
    assert main(["--dry-run", *base]) == 0
    out = capsys.readouterr().out
    assert "| dsprites | procedural | vae | 1 | 2 | 6 | 2 | 1 |" in out
    assert "4 cell(s), 2 already complete, 2 to run." in out
    assert _snapshot(run_dir) == before  # no lock, no cell folder, no table rewritten
    assert not any(p.name.endswith(".lock") for p in run_dir.rglob("*"))


def test_paper_dry_run_shows_both_datasets_every_setting_and_factorvae_steps(tmp_path, capsys, short_probe):
    # the paper profile with one cheap metric, so the evaluation probe takes seconds, not minutes
    profile = tmp_path / "paper_cheap.yaml"
    profile.write_text("extends: paper\nmetrics:\n  mig: {num_train: 500}\n")
    args = ["--dry-run", "--profile", str(profile), "--source", "procedural", "--methods", "factorvae"]
    code = main([*args, "--results", str(tmp_path / "r"), "--device", "cpu", "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| dsprites | procedural | factorvae | 6 | 5 | 150,000 | 30 | 0 |" in out
    assert "| shapes3d | procedural | factorvae | 6 | 5 | 150,000 | 30 | 0 |" in out
    assert not os.path.exists(tmp_path / "r")


def test_probe_agrees_with_a_timed_training_run(one_thread):
    # The probe's steps/s against the trainer's own: 150 steps of betavae at batch 16 through
    # bench.training.train, timed whole (start-up included), between two probes that bracket it, so
    # that a change of the machine's load during the test (others' jobs come and go) moves them too.
    # Within 35% of the bracket.
    dataset = datasets.create("dsprites", source="procedural", device="cpu")
    cell = _cell("betavae", batch_size=16, steps=150)
    before = dryrun.probe_steps_per_second(cell, dataset, CPU)
    seeds = RunSeeds.from_seed(cell.seed)
    method = methods.create(cell.method, observation_shape=dataset.observation_shape, seed=seeds.init)
    start = time.perf_counter()
    train(method, dataset, TrainOptions(steps=cell.steps, batch_size=cell.batch_size, seed=cell.seed), device=CPU)
    real = cell.steps / (time.perf_counter() - start)
    after = dryrun.probe_steps_per_second(cell, dataset, CPU)
    assert len(before.rates) == dryrun.REPEATS and before.warmup_steps >= 1 + dryrun.WARMUP_STEPS
    low, high = sorted([before.median, after.median])
    assert low / 1.35 < real < high * 1.35, (
        f"trainer {real:.2f} steps/s, probe {before.median:.2f} ({before.low:.2f}-{before.high:.2f}) before "
        f"and {after.median:.2f} ({after.low:.2f}-{after.high:.2f}) after"
    )


def test_probe_trains_with_the_cells_precision_and_the_runs_options(tmp_path, monkeypatch, one_thread, short_probe):
    vae = methods.get("betavae")
    original = vae.train_step
    seen = []

    def spy(self, x, step, generator):
        # a conv weight whose layouts differ (dSprites' one-channel images read as either layout)
        weight = next(p for p in self.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] > 1)
        seen.append(
            {
                "autocast": torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16,
                "channels_last": weight.is_contiguous(memory_format=torch.channels_last),
                "threads": torch.get_num_threads(),
            }
        )
        return original(self, x, step, generator)

    monkeypatch.setattr(vae, "train_step", spy)
    dataset = datasets.create("dsprites", source="procedural", device="cpu")
    dryrun.probe_steps_per_second(_cell("betavae", 16, 100, "bf16"), dataset, CPU, SpeedOptions(channels_last=True))
    assert seen and all(s["autocast"] and s["channels_last"] for s in seen)
    seen.clear()
    dryrun.probe_steps_per_second(_cell("betavae", 16, 100), dataset, CPU)
    assert seen and not any(s["autocast"] or s["channels_last"] for s in seen)

    # through the command line: --precision, --channels-last, --compile and --threads reach the probe
    # (compile is recorded, then left out: compiling would take minutes), and the thread count is restored
    compiles = []

    def no_compile(method, speed):
        compiles.append(speed.compile)
        return real_speed_applied(method, dataclasses.replace(speed, compile=False))

    real_speed_applied = dryrun.speed_applied
    monkeypatch.setattr(dryrun, "speed_applied", no_compile)
    seen.clear()
    path = tmp_path / "smoke_cheap.yaml"
    path.write_text("extends: smoke\nbatch_size: 16\nmetrics:\n  mig: {num_train: 100}\n")
    args = ["--dry-run", "--methods", "betavae", "--profile", str(path), "--source", "procedural", "--device", "cpu"]
    assert main([*args, "--precision", "bf16", "--channels-last", "--compile", "--threads", "2"]) == 0
    assert seen and all(s["autocast"] and s["channels_last"] and s["threads"] == 2 for s in seen)
    assert compiles == ["default"] and torch.get_num_threads() == 1


def test_projection_is_a_range_from_the_repeats_and_the_evaluation_roughness():
    cells = [_cell("betavae", 64, 1000), _cell("factorvae", 64, 500)]
    rates = {
        ("dsprites", "betavae"): dryrun.StepRate(rates=(8.0, 10.0, 12.5), steps_per_repeat=5, warmup_steps=3),
        ("dsprites", "factorvae"): dryrun.StepRate(rates=(5.0, 4.0, 6.25), steps_per_repeat=3, warmup_steps=3),
    }
    p = dryrun.project(cells, rates, eval_seconds=30.0, parallel=2)
    assert p.train == pytest.approx((1000 / 10 + 500 / 5, 1000 / 12.5 + 500 / 6.25, 1000 / 8 + 500 / 4))
    r = dryrun.EVAL_ROUGHNESS
    assert p.eval_per_model == pytest.approx((30.0, 30.0 / r, 30.0 * r))
    assert p.total == pytest.approx(tuple((t + 2 * e) / 2 for t, e in zip(p.train, p.eval_per_model)))
    assert dryrun._duration_range(3 * 3600, 5 * 3600) == "3.0-5.0 h"
    assert dryrun._duration_range(50, 300) == "50 s-5 min"
    assert dryrun._duration_range(10, 10.2) == "10 s"


def test_projection_counts_each_score_set_of_a_cell(tmp_path):
    """A held-out cell is scored on its seen and its held-out combinations, and a correlated cell on
    the correlated distribution too when the profile asks: each set is one more evaluation."""
    plain = _cell("betavae", 64, 1000)
    held = dataclasses.replace(plain, holdout="dsprites_recomb_10")
    corr = dataclasses.replace(plain, correlation="dsprites_single_1_01")
    assert [dryrun.score_sets(c, {}) for c in (plain, held, corr)] == [1, 2, 1]
    assert dryrun.score_sets(corr, {"score_correlated": True}) == 2
    rates = {("dsprites", "betavae"): dryrun.StepRate(rates=(10.0, 10.0, 10.0), steps_per_repeat=5, warmup_steps=3)}
    work = {c: dryrun.remaining_work(tmp_path, c, {}) for c in (plain, held)}  # nothing run yet
    assert [w.steps for w in work.values()] == [1000, 1000]
    p = dryrun.project([plain, held], rates, eval_seconds=30.0, parallel=1, work=work.__getitem__)
    assert p.scorings == 3 and p.total[0] == pytest.approx(2 * 1000 / 10 + 3 * 30.0)  # three scorings: 1 + 2


def test_projection_counts_only_what_a_cell_has_left_and_its_unscored_curve_points(tmp_path):
    """A cell stopped at step 400 of 1,000 with its 100-step point scored and its 300-step point
    kept but unscored has 600 steps left and three scorings: 300, 600 and the final one (a curve
    point at the last step is the final scoring, not another one)."""
    from disentbench.bench import curve
    from disentbench.bench.checkpoint import CHECKPOINT, PREVIOUS, save_checkpoint
    from disentbench.bench.runner import cell_dir

    cell = _cell("betavae", 64, 1000)
    profile = {"score_steps": [100, 300, 600, 1000]}
    assert dryrun.remaining_work(tmp_path, cell, profile) == dryrun.CellWork(steps=1000, scorings=4)
    out = cell_dir(tmp_path, cell)
    out.mkdir(parents=True)
    save_checkpoint(out / CHECKPOINT, {"step": 400}, keep_previous=False)
    curve.append_point(out, 100, {"mig": 0.1}, 1.0)
    assert dryrun.remaining_work(tmp_path, cell, profile) == dryrun.CellWork(steps=600, scorings=3)
    held = dataclasses.replace(cell, holdout="dsprites_recomb_10")
    assert dryrun.remaining_work(tmp_path, held, profile).scorings == 4 * 2  # nothing of it ran; two sets
    save_checkpoint(out / CHECKPOINT, {"step": 500})  # the one at 400 becomes checkpoint.prev.pt
    (out / CHECKPOINT).write_bytes(b"truncated")  # unreadable: the runner resumes from the previous one
    assert dryrun.remaining_work(tmp_path, cell, profile).steps == 600
    (out / PREVIOUS).write_bytes(b"truncated")  # neither reads: the runner starts it again
    assert dryrun.remaining_work(tmp_path, cell, profile).steps == 1000
