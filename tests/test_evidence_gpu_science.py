"""The GPU science check, run end to end on a CPU at tiny sizes: both methods train at once through
the benchmark's own command, are scored, and are printed beside the published numbers."""

from __future__ import annotations

import json
import sys

from disentbench.bench.evidence import gpu_science


def test_tiny_run_prints_ours_beside_the_published_numbers(tmp_path, capsys):
    out = tmp_path / "gs"
    code = gpu_science.main(
        ["--out", str(out), "--device", "cpu", "--scale", "tiny", "--steps", "betavae=3,factorvae=2", "--budget", "500"]
        + ["--extra", "--jobs 1"]  # one process for both cells: the worker pool is tested elsewhere, here it cost 10 s
    )
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])  # the last line is one JSON object
    assert code == 0 and summary["benchmark_exit"] == 0 and not summary["stopped_at_budget"]
    for method, steps, reference in (("betavae", 3, 300_000), ("factorvae", 2, 150_000)):
        result = summary["methods"][method]
        assert result["complete"] and result["steps"] == steps and result["reference_steps"] == reference
        assert set(result["scores"]) == set(gpu_science.SCORED)
        assert all(0.0 <= v <= 1.0 for v in result["scores"].values())
        assert any(line.startswith(f"{method} ") and "short: not comparable" in line for line in lines)
    # FactorVAE at gamma 10 is the setting of the published row; beta-VAE's literature row has none
    assert summary["methods"]["factorvae"]["published"]["mig"]["value"] == 0.40
    assert summary["methods"]["factorvae"]["published"]["mig"]["setting"] == "gamma=10"
    assert summary["methods"]["betavae"]["published"]["dci"]["value"] == 0.41
    # a cell stopped before its end is scored from its latest checkpoint, with the steps it reached
    cell = gpu_science._cells(out / "run")["betavae"]
    (cell / "scores.json").unlink()
    partial = gpu_science.score_cell(cell, gpu_science.TINY_METRICS, "cpu")
    assert not partial["complete"] and partial["steps"] == 3
    assert set(partial["scores"]) == set(gpu_science.SCORED)


def test_training_is_stopped_with_sigterm_at_the_budget(tmp_path):
    script = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(143)); time.sleep(60)"
    code, seconds, stopped = gpu_science.run_training([sys.executable, "-c", script], 2.0, tmp_path / "log")
    assert stopped and code == 143 and seconds < 30
    code, _, stopped = gpu_science.run_training([sys.executable, "-c", "pass"], 30.0, tmp_path / "log")
    assert code == 0 and not stopped
