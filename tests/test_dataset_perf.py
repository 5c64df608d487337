"""`python -m disentbench.bench.perf data --only file`: the user-file figures, each next to what a
training step consumes (tiny measurement times: this checks the script, not the speed)."""

from __future__ import annotations

import json

from disentbench.bench.perf.data import main


def test_perf_data_reports_user_files_next_to_a_training_step(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["--only", "file", "--seconds", "0.01", "--threads", "1", "--batch", "8"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(out[-1])
    for key in ("file_full_memory_img_s", "file_full_file_img_s", "file_sparse_fixed_factor_file_img_s"):
        assert figures[key] > 0
    assert figures["betavae_train_step_3ch_img_s"] > 0 and "dsprites_procedural_img_s" not in figures
    assert any(line.startswith("file_sparse_memory_img_s") and "x a training step's" in line for line in out)
