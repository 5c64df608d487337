"""Checkpoints hold everything needed to resume a cell exactly: the method's networks and
optimisers, the step, and the state of every random generator. They are written atomically, the
previous one is kept as a fallback, and they load with `weights_only=True` (nothing is unpickled)."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from disentbench import methods
from disentbench.atomic import atomic_path

FORMAT = 1
CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
#: the folder of a cell's kept checkpoints: one per scored step of its learning curve
KEPT_DIR = "checkpoints"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], keep_previous: bool = True) -> None:
    path = Path(path)
    if keep_previous and path.exists():
        os.replace(path, path.with_name(PREVIOUS))
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def kept_path(cell_dir: str | os.PathLike, step: int) -> Path:
    """Where the checkpoint kept at `step` lives (learning-curve points are scored from it)."""
    return Path(cell_dir) / KEPT_DIR / f"step-{int(step):09d}.pt"


def kept_steps(cell_dir: str | os.PathLike) -> list[int]:
    """The steps of a cell's kept checkpoints, increasing."""
    folder = Path(cell_dir) / KEPT_DIR
    if not folder.is_dir():
        return []
    return sorted(int(p.stem[5:]) for p in folder.glob("step-*.pt") if p.stem[5:].isdigit())


def cell_checkpoints(cell_dir: str | os.PathLike, latest: bool = True) -> dict[int, Path]:
    """{step: file} of a cell's checkpoints in step order: the kept learning-curve ones and, with
    `latest`, its `checkpoint.pt` under the step it records (left out when that step is kept too:
    the same weights). ValueError when there is none."""
    cell_dir = Path(cell_dir)
    found = {step: kept_path(cell_dir, step) for step in kept_steps(cell_dir)}
    rolling = cell_dir / CHECKPOINT
    if latest and rolling.is_file():
        found.setdefault(stored_step(rolling), rolling)
    if not found:
        raise ValueError(f"{cell_dir}: no {CHECKPOINT} and no kept checkpoints in {cell_dir / KEPT_DIR}")
    return dict(sorted(found.items()))


def keep_copy(cell_dir: str | os.PathLike, step: int) -> Path:
    """Copy the cell's current checkpoint (written at `step`) to its kept place, atomically."""
    target = kept_path(cell_dir, step)
    with atomic_path(target) as tmp:
        shutil.copyfile(Path(cell_dir) / CHECKPOINT, tmp)
    return target


def read_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """The checkpoint's state; ValueError for a file of another format. With `mmap` the tensors stay
    on disk until touched (reading the step alone costs no weights)."""
    state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a disentbench checkpoint of format {FORMAT}")
    return state


def stored_step(path: str | os.PathLike) -> int:
    """The step a checkpoint file was written at, read memory-mapped."""
    return int(read_checkpoint(path, mmap=True)["step"])


def checkpoint_step(cell_dir: str | os.PathLike) -> int:
    """The step a cell would resume from: its checkpoint.pt's, else (unreadable) the previous one's,
    as load_latest falls back; 0 when neither reads."""
    for name in (CHECKPOINT, PREVIOUS):
        try:
            return stored_step(Path(cell_dir) / name)
        except Exception:  # absent, truncated, an old format: try the previous one, then start at 0
            continue
    return 0


def load_latest(cell_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The newest readable checkpoint of a cell, falling back to the previous one with a warning
    when the latest is truncated or corrupt; None when there is none."""
    cell_dir = Path(cell_dir)
    for name in (CHECKPOINT, PREVIOUS):
        path = cell_dir / name
        if not path.exists():
            continue
        try:
            return read_checkpoint(path, map_location)
        except Exception as exc:  # truncated zip, bad pickle opcode, wrong format...
            warnings.warn(f"{path} is unreadable ({type(exc).__name__}); falling back", RuntimeWarning, stacklevel=2)
    return None


def build_method(state: dict[str, Any], device: str | torch.device = "cpu") -> methods.Method:
    """Re-create the method a checkpoint was written by and load its weights and optimisers."""
    method = methods.create(
        state["method_name"],
        observation_shape=tuple(state["observation_shape"]),
        seed=int(state["init_seed"]),
        init=state["init"],
        **methods.get(state["method_name"]).stored_hparams(state["hparams"]),
    )
    method.to(device)
    method.load_checkpoint_state(state["method_state"])
    return method


def load_method(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[methods.Method, dict]:
    state = read_checkpoint(path, map_location=device)
    return build_method(state, device), state
