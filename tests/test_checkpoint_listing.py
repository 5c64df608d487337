"""A cell's checkpoints listed once for every tool that walks them (evidence.why, published_variant)."""

from __future__ import annotations

import pytest

from disentbench.bench.checkpoint import CHECKPOINT, cell_checkpoints, kept_path, save_checkpoint


def _write(path, step):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, {"step": step}, keep_previous=False)


def test_kept_then_latest_in_step_order_and_the_latest_under_the_step_it_records(tmp_path):
    for step in (30, 10):
        _write(kept_path(tmp_path, step), step)
    _write(tmp_path / CHECKPOINT, 42)
    assert cell_checkpoints(tmp_path) == {
        10: kept_path(tmp_path, 10),
        30: kept_path(tmp_path, 30),
        42: tmp_path / CHECKPOINT,
    }
    assert cell_checkpoints(tmp_path, latest=False) == {10: kept_path(tmp_path, 10), 30: kept_path(tmp_path, 30)}


def test_a_latest_checkpoint_at_a_kept_step_is_listed_once_as_the_kept_file(tmp_path):
    _write(kept_path(tmp_path, 30), 30)
    _write(tmp_path / CHECKPOINT, 30)
    assert cell_checkpoints(tmp_path) == {30: kept_path(tmp_path, 30)}


def test_a_cell_without_checkpoints_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint.pt and no kept checkpoints"):
        cell_checkpoints(tmp_path)
