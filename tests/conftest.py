"""Shared fixtures: a tiny profile so end-to-end runs take seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

TINY_PROFILE = """\
extends: smoke
description: tiny test profile
steps: 6
log_every: 3
checkpoint_every: 3
primary_metric: mig
# Cheap metrics only: DCI fits 11,300 small trees per model whatever the sample size (seconds
# each); it runs through the runner in test_cli.py::test_same_command_gives_identical_scores.
metrics:
  mig: {num_train: 200}
  sap: {num_train: 120, num_test: 60}
"""


@pytest.fixture(scope="session")
def _empty_zoo(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("empty_zoo")


@pytest.fixture(autouse=True)
def hermetic_zoo(_empty_zoo: Path, monkeypatch):
    """Every test sees an empty model zoo unless it sets DISENTBENCH_ZOO itself: the repository's
    zoo/ entries add rows to every published table, so tests of those tables would change with it
    (the repository's own entries are checked in test_zoo.py)."""
    monkeypatch.setenv("DISENTBENCH_ZOO", str(_empty_zoo))


@pytest.fixture
def tiny_profile(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_PROFILE)
    return path


@pytest.fixture
def one_thread():
    """Many tiny training steps run faster on one torch thread on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
