"""Experiment trackers: each cell logged as one run of TensorBoard or MLflow (`--log tensorboard,mlflow`,
or the profile's `log:` list).

A tracker is a small class registered by name (like methods and metrics): `start_cell(cell_dir, config)`
opens the cell's run and records its configuration and hyperparameters; `log_metrics(step, values)`
logs scalars at a training step (losses and diagnostics as `train/<name>`, learning-curve points as
`curve/<metric>`); `log_scores(scores)` logs the final metrics (`score/<metric>`, at the cell's last
step); `log_image(name, path)` logs a picture file (PNG or GIF); `end_cell(status)` closes the run.

Trackers live in the process that runs the cell (the driver, or a worker of a parallel run): the run
settings carry only their names and the optional tracking URI. The runner talks to them through
`CellTrackers`, which turns any exception of a tracker into one warning line for that cell and
drops the tracker for the rest of the cell: a tracker never fails a cell.

Which trackers are installed is checked before any training (`check_trackers`): asking for one
whose library is missing is a one-line error naming the pip extra that installs it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from disentbench.errors import BenchError
from disentbench.registry import Registry

#: names that mean "no tracker" on the command line
NONE = ("none", "")
#: the longest parameter value sent to a tracker (longer values are cut; the whole config is also logged)
MAX_PARAM_CHARS = 500


class Tracker:
    """One tracking backend, built in the process that runs a cell, for that cell only."""

    #: the pip extra that installs the backend (`pip install -e ".[<extra>]"`)
    extra: str = ""
    #: the module whose presence says the backend's library is installed
    module: str = ""

    def __init__(self, run_dir: Path, uri: str | None = None):
        self.run_dir = Path(run_dir)
        self.uri = uri

    def start_cell(self, cell_dir: Path, config: dict[str, Any]) -> None:
        raise NotImplementedError

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        raise NotImplementedError

    def log_scores(self, scores: dict[str, float]) -> None:
        raise NotImplementedError

    def log_image(self, name: str, path: Path) -> None:
        raise NotImplementedError

    def end_cell(self, status: str = "done") -> None:
        raise NotImplementedError


REGISTRY: Registry[Tracker] = Registry("tracker")
register = REGISTRY.register


def list_trackers() -> list[str]:
    return REGISTRY.names()


def parse_trackers(value: str | Iterable[str] | None) -> list[str]:
    """`tensorboard,mlflow` (or a profile's list) -> ["tensorboard", "mlflow"]; `none` -> []."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names = []
    for item in items:
        if not isinstance(item, str):
            raise BenchError(f"log: tracker names are strings, got {item!r}; choose from {', '.join(list_trackers())}")
        name = item.strip().lower()
        if name not in NONE and name not in names:
            names.append(name)
    return names


def check_trackers(names: list[str]) -> list[str]:
    """Each name registered and its library installed, else a one-line BenchError naming the extra."""
    for name in names:
        cls = REGISTRY.get(name)  # unknown name: one line naming the registered trackers
        if cls.module and importlib.util.find_spec(cls.module) is None:
            extra = cls.extra or name
            raise BenchError(
                f'--log {name} needs the {cls.module} package, which is not installed: pip install -e ".[{extra}]"'
            )
    return names


def flat_params(config: dict[str, Any]) -> dict[str, str | int | float | bool]:
    """The cell config as flat parameters: scalars as they are, `hparams.<name>` for each
    hyperparameter, `<key>.<name>` for other mappings, and JSON for lists; values cut at MAX_PARAM_CHARS."""
    out: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if isinstance(value, bool | int | float) or value is None:
            out[key] = "None" if value is None else value
        else:
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
            out[key] = text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 3] + "..."

    for key, value in sorted(config.items()):
        if isinstance(value, dict) and value:
            for sub, v in sorted(value.items()):
                put(f"{key}.{sub}", v)
        else:
            put(key, value)
    return out


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------
@register("tensorboard")
class TensorBoardTracker(Tracker):
    """Event files in `cells/<id>/tensorboard/` (point `tensorboard --logdir RUN/cells` at a run).
    The config is a text summary and the hyperparameters an HParams entry; images are stored as
    their encoded files, so a GIF stays animated in TensorBoard's image tab."""

    extra = "tensorboard"
    module = "tensorboard"
    FOLDER = "tensorboard"

    def start_cell(self, cell_dir: Path, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self.last_step = int(config.get("steps", 0))
        self.writer = SummaryWriter(log_dir=str(Path(cell_dir) / self.FOLDER))
        text = json.dumps(config, indent=2, sort_keys=True, default=str)
        self.writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)  # markdown code block
        metric_names = {f"score/{m}": math.nan for m in config.get("metrics") or {}}
        writer = self.writer._get_file_writer()
        for summary in hparams(flat_params(config), metric_names):
            writer.add_summary(summary)

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, float(value), int(step))
        self.writer.flush()

    def log_scores(self, scores: dict[str, float]) -> None:
        self.log_metrics(self.last_step, {f"score/{k}": v for k, v in scores.items()})

    def log_image(self, name: str, path: Path) -> None:
        from PIL import Image
        from tensorboard.compat.proto.summary_pb2 import Summary

        with Image.open(path) as im:
            width, height, channels = im.size[0], im.size[1], len(im.getbands())
        image = Summary.Image(
            height=height, width=width, colorspace=channels, encoded_image_string=Path(path).read_bytes()
        )
        summary = Summary(value=[Summary.Value(tag=name, image=image)])
        self.writer._get_file_writer().add_summary(summary, self.last_step)
        self.writer.flush()

    def end_cell(self, status: str = "done") -> None:
        self.writer.add_text("status", status, self.last_step)
        self.writer.close()


@register("mlflow")
class MlflowTracker(Tracker):
    """One MLflow run per cell (run name and tag `cell_id`) in the experiment `disentbench-<run folder
    name>`. The store: the tracking URI given (`--log-uri`, else $MLFLOW_TRACKING_URI), else a local
    file store in `<run>/mlruns` (`mlflow ui --backend-store-uri <run>/mlruns`). A resumed cell goes
    on logging into its earlier run. Pictures and config.json are the run's artifacts."""

    extra = "mlflow"
    module = "mlflow"
    STORE = "mlruns"

    def store_uri(self) -> str:
        uri = self.uri or os.environ.get("MLFLOW_TRACKING_URI")
        if uri:
            return uri
        # MLflow 3 refuses a file store unless told it is wanted; this local store is ours
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        return (self.run_dir / self.STORE).resolve().as_uri()

    def start_cell(self, cell_dir: Path, config: dict[str, Any]) -> None:
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.store_uri())
        self.last_step = int(config.get("steps", 0))
        name = f"disentbench-{self.run_dir.resolve().name}"
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                experiment_id = self.client.create_experiment(name)
            except MlflowException:  # created meanwhile by another cell's process
                experiment_id = self.client.get_experiment_by_name(name).experiment_id
        else:
            experiment_id = experiment.experiment_id
        cell_id = str(config.get("cell_id", Path(cell_dir).name))
        earlier = self.client.search_runs([experiment_id], f"tags.cell_id = '{cell_id}'", max_results=1)
        if earlier:
            run = earlier[0]
            self.client.update_run(run.info.run_id, status="RUNNING")
        else:
            tags = {"cell_id": cell_id, "run_dir": str(self.run_dir.resolve())}
            tags.update({k: str(config[k]) for k in ("method", "dataset", "seed", "profile") if k in config})
            run = self.client.create_run(experiment_id, run_name=cell_id, tags=tags)
        self.run_id = run.info.run_id
        have = dict(run.data.params)  # params are immutable in MLflow: a resumed run adds only new ones
        params = [Param(k, str(v)) for k, v in flat_params(config).items() if k not in have]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i : i + 100])
        config_file = Path(cell_dir) / "config.json"
        if config_file.is_file():
            self.client.log_artifact(self.run_id, str(config_file))

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, int(step)) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def log_scores(self, scores: dict[str, float]) -> None:
        self.log_metrics(self.last_step, {f"score/{k}": v for k, v in scores.items()})

    def log_image(self, name: str, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path="figures")

    def end_cell(self, status: str = "done") -> None:
        mlflow_status = {"done": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
        self.client.set_terminated(self.run_id, status=mlflow_status)


# --------------------------------------------------------------------------------------------
# What the runner uses
# --------------------------------------------------------------------------------------------
def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class CellTrackers:
    """The trackers of one cell behind one guard: a tracker that raises costs one warning line
    (`warn`, stderr by default) and is dropped for the rest of the cell; the cell goes on."""

    def __init__(self, trackers: dict[str, Tracker], cell_id: str, warn: Callable[[str], None] = _warn):
        self.trackers = dict(trackers)
        self.cell_id = cell_id
        self.warn = warn
        self.failed: dict[str, str] = {}

    @property
    def active(self) -> bool:
        return bool(self.trackers)

    def _each(self, what: str, call: Callable[[Tracker], None]) -> None:
        for name, tracker in list(self.trackers.items()):
            try:
                call(tracker)
            except Exception as exc:
                self.trackers.pop(name)
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                self.failed[name] = reason
                self.warn(
                    f"warning: tracker {name} failed in {what} of cell {self.cell_id} ({reason}); "
                    f"the cell goes on without it"
                )
                try:  # release what it holds (files, runs), quietly
                    tracker.end_cell("failed")
                except Exception:
                    pass

    def start_cell(self, cell_dir: Path, config: dict[str, Any]) -> None:
        self._each("start_cell", lambda t: t.start_cell(cell_dir, config))

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        if self.trackers and values:
            self._each("log_metrics", lambda t: t.log_metrics(step, dict(values)))

    def log_scores(self, scores: dict[str, float]) -> None:
        if self.trackers and scores:
            self._each("log_scores", lambda t: t.log_scores(dict(scores)))

    def log_image(self, name: str, path: Path) -> None:
        self._each("log_image", lambda t: t.log_image(name, Path(path)))

    def end_cell(self, status: str = "done") -> None:
        self._each("end_cell", lambda t: t.end_cell(status))
        self.trackers.clear()


def open_cell(
    names: Iterable[str], run_dir: Path, uri: str | None, cell_dir: Path, config: dict[str, Any]
) -> CellTrackers:
    """The named trackers, started for one cell (none: an inactive CellTrackers that logs nothing)."""
    cell_id = str(config.get("cell_id", Path(cell_dir).name))
    built: dict[str, Tracker] = {}
    log = CellTrackers({}, cell_id)
    for name in names:
        try:
            built[name] = REGISTRY.create(name, run_dir=Path(run_dir), uri=uri)
        except Exception as exc:
            log.warn(f"warning: tracker {name} could not be built for cell {cell_id} ({type(exc).__name__}: {exc})")
    log.trackers = built
    log.start_cell(Path(cell_dir), config)
    return log
