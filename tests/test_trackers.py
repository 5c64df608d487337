"""Trackers (bench/trackers.py): what TensorBoard and MLflow hold after a tiny run, read back with each
library's own reader and compared with the run's files (runs.csv, train_log.csv, curve.csv, the
traversal pictures); a tracker that is not installed or unknown is a one-line error before any
training; a tracker that fails mid-run costs one warning line and never the cell."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from disentbench.bench import trackers
from disentbench.bench.cli import main
from disentbench.bench.config import load_profile
from disentbench.bench.errors import BenchError
from disentbench.bench.runner import RunSettings
from disentbench.bench.worker import _settings_from_json, _settings_to_json
from tests.helpers import tiny_cpu_args


@pytest.fixture
def fake_tracker():
    """Register test trackers under fresh names, removed afterwards."""
    added = []

    def add(name: str, cls: type) -> None:
        trackers.register(name)(cls)
        added.append(name)

    yield add
    for name in added:
        trackers.REGISTRY._entries.pop(name, None)


def _run(tiny_profile, results, *extra: str) -> Path:
    argv = ["--methods", "vae", "--score-steps", "3", *tiny_cpu_args(tiny_profile, results, *extra)]
    assert main(argv) == 0
    (cell,) = (results / "cells").iterdir()
    return cell


def _logged_files(cell: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    runs = pd.read_csv(cell.parent.parent / "runs.csv")
    return runs, pd.read_csv(cell / "train_log.csv"), pd.read_csv(cell / "curve.csv")


def test_missing_or_unknown_tracker_is_one_line_before_training(tiny_profile, tmp_path, fake_tracker, capsys):
    class Missing(trackers.Tracker):
        extra = "nosuchextra"
        module = "disentbench_no_such_module_xyz"

    fake_tracker("missingtracker", Missing)
    for value, expected in [
        ("missingtracker", 'pip install -e ".[nosuchextra]"'),
        ("tensorbord", "unknown tracker 'tensorbord'; registered trackers:"),
    ]:
        assert main(tiny_cpu_args(tiny_profile, tmp_path / "r", "--log", value)) != 0
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r").exists()  # nothing written, nothing trained


def test_profile_log_key_is_validated(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("extends: smoke\nlog: [tensorboard, mlflow]\n")
    assert load_profile(str(good))["log"] == ["tensorboard", "mlflow"]
    for text in ("extends: smoke\nlog: tensorboard\n", "extends: smoke\nlog: [3]\n"):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(BenchError, match="log must be"):
            load_profile(str(bad))
    assert trackers.parse_trackers("TensorBoard, mlflow,tensorboard") == ["tensorboard", "mlflow"]
    assert trackers.parse_trackers("none") == []


def test_settings_with_trackers_travel_to_workers(tmp_path):
    settings = RunSettings(tmp_path, {"name": "x"}, "cpu", log=("tensorboard", "mlflow"), log_uri="file:///x")
    back = _settings_from_json(json.loads(json.dumps(_settings_to_json(settings))))
    assert tuple(back.log) == ("tensorboard", "mlflow") and back.log_uri == "file:///x"


def test_tensorboard_holds_what_the_run_wrote(tiny_profile, tmp_path, one_thread):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cell = _run(tiny_profile, tmp_path / "r", "--log", "tensorboard")
    runs, log, curve = _logged_files(cell)
    events = EventAccumulator(str(cell / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = events.Tags()
    losses = [c for c in log.columns if c not in ("step", "elapsed_seconds")]
    assert losses and {f"train/{c}" for c in losses} <= set(tags["scalars"])
    for loss in losses:  # the same values at the same steps as train_log.csv (float32 in the events)
        logged = {e.step: e.value for e in events.Scalars(f"train/{loss}")}
        assert sorted(logged) == log["step"].tolist() == [3, 6]
        for step, value in zip(log["step"], log[loss]):
            assert logged[step] == pytest.approx(value, rel=1e-6, abs=1e-6)
    for row in runs.itertuples():  # every final metric, at the last step, equal to runs.csv
        (event,) = events.Scalars(f"score/{row.metric}")
        assert event.step == 6 and event.value == pytest.approx(row.value, rel=1e-6, abs=1e-7)
    for row in curve.itertuples():  # every learning-curve point with its step
        logged = {e.step: e.value for e in events.Scalars(f"curve/{row.metric}")}
        assert logged[row.step] == pytest.approx(row.value, rel=1e-6, abs=1e-7)
    assert sorted(curve["step"].unique()) == [3, 6]
    for tag, suffix in [("traversal", ".png"), ("traversal_gif", ".gif")]:  # the pictures, byte for byte
        (image,) = events.Images(tag)
        (path,) = (cell / "figures").glob(f"traversal_*{suffix}")
        assert image.encoded_image_string == path.read_bytes()
    assert events.Images("traversal_gif")[0].encoded_image_string[:6] in (b"GIF87a", b"GIF89a")
    (text,) = events.Tensors("config/text_summary")
    assert '"method": "vae"' in text.tensor_proto.string_val[0].decode()


def test_mlflow_holds_what_the_run_wrote(tiny_profile, tmp_path, one_thread, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cell = _run(tiny_profile, tmp_path / "r", "--log", "mlflow")
    runs, log, curve = _logged_files(cell)
    store = tmp_path / "r" / "mlruns"
    assert store.is_dir()  # the local store inside the run folder
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    experiment = client.get_experiment_by_name("disentbench-r")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == cell.name and run.data.tags["cell_id"] == cell.name
    assert run.info.status == "FINISHED"
    config = json.loads((cell / "config.json").read_text())
    assert run.data.params["method"] == "vae" and run.data.params["seed"] == str(config["seed"])
    assert {k: run.data.params[f"hparams.{k}"] for k in config["hparams"]} == {
        k: str(v) for k, v in config["hparams"].items()
    }
    losses = [c for c in log.columns if c not in ("step", "elapsed_seconds")]
    for loss in losses:
        logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, f"train/{loss}")}
        assert logged == pytest.approx(dict(zip(log["step"], log[loss])), rel=1e-12)
    for row in runs.itertuples():
        (metric,) = client.get_metric_history(run.info.run_id, f"score/{row.metric}")
        assert metric.step == 6 and (metric.value == pytest.approx(row.value) or math.isnan(row.value))
    for row in curve.itertuples():
        logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, f"curve/{row.metric}")}
        assert logged[row.step] == pytest.approx(row.value)
    artifacts = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "figures")}
    assert {p.name for p in (cell / "figures").iterdir()} == artifacts
    assert any(name.endswith(".gif") for name in artifacts)


def test_a_failing_tracker_costs_one_warning_line_not_the_cell(tiny_profile, tmp_path, fake_tracker, capsys):
    calls: list[str] = []

    class Broken(trackers.Tracker):
        def start_cell(self, cell_dir, config):
            calls.append("start")

        def log_metrics(self, step, values):  # its store became unwritable
            calls.append("metrics")
            raise PermissionError(13, "Permission denied", "/store/metrics")

        def log_scores(self, scores):
            calls.append("scores")

        def log_image(self, name, path):
            calls.append("image")

        def end_cell(self, status="done"):
            calls.append(f"end:{status}")

    class Fine(Broken):
        def log_metrics(self, step, values):
            calls.append(f"fine:{step}")

    fake_tracker("brokentracker", Broken)
    fake_tracker("finetracker", Fine)
    cell = _run(tiny_profile, tmp_path / "r", "--log", "brokentracker,finetracker")
    assert (cell / "scores.json").is_file() and (tmp_path / "r" / "runs.csv").is_file()
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning: tracker" in line]
    assert len(warnings) == 1 and "brokentracker" in warnings[0] and "PermissionError" in warnings[0]
    assert calls.count("metrics") == 1  # dropped after its first failure
    assert "fine:3" in calls and "fine:6" in calls and calls[-1] == "end:done"  # the other goes on
