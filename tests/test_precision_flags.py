"""Precision at the command line: an fp32 run on a host with fast bf16 units says in one line what bf16
would gain; `--precision bf16` on a device that cannot run it is a one-line error before training."""

from __future__ import annotations

import pytest
import torch

from disentbench.bench import devices
from disentbench.bench.cli import main
from disentbench.bench.errors import BenchError
from disentbench.bench.perf import host
from tests.helpers import tiny_cpu_args

NOTE = "note: this host has fast bf16 units"


@pytest.fixture
def fast_host(monkeypatch):
    monkeypatch.setattr(host, "fast_bf16", lambda device="cpu": True)
    monkeypatch.setattr(host, "bf16_capability", lambda device="cpu": "amx")
    peaks = {torch.float32: 160.0, torch.bfloat16: 1300.0}
    monkeypatch.setattr(host, "matmul_peak_gflop_s", lambda dtype, **kw: peaks[dtype])


def test_an_fp32_run_on_a_fast_bf16_host_says_what_it_would_gain(tiny_profile, tmp_path, capsys, fast_host):
    assert main(tiny_cpu_args(tiny_profile, tmp_path / "a", "--methods", "vae")) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(NOTE)]
    assert len(lines) == 1 and "1300 GFLOP/s in bf16 against 160 in fp32, x8.1" in lines[0]


def test_no_note_for_a_bf16_run_or_on_a_host_without_fast_bf16(tiny_profile, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(host, "fast_bf16", lambda device="cpu": False)
    assert main(tiny_cpu_args(tiny_profile, tmp_path / "a", "--methods", "vae")) == 0
    assert NOTE not in capsys.readouterr().out
    monkeypatch.setattr(host, "fast_bf16", lambda device="cpu": True)
    assert main(tiny_cpu_args(tiny_profile, tmp_path / "b", "--methods", "vae", "--precision", "bf16")) == 0
    assert NOTE not in capsys.readouterr().out


def test_bf16_on_a_device_that_cannot_run_it_is_a_one_line_error(tiny_profile, tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("In CPU autocast, but the target dtype is not supported.\nmore detail")

    monkeypatch.setattr(devices.torch, "autocast", refuse)
    with pytest.raises(BenchError, match="cannot run bf16 autocast"):
        devices.check_bf16(torch.device("cpu"))
    assert main(tiny_cpu_args(tiny_profile, tmp_path / "a", "--methods", "vae", "--precision", "bf16")) == 2
    err = capsys.readouterr().err.strip()
    assert "use --precision fp32" in err and "\n" not in err
    assert not (tmp_path / "a" / "cells").exists()


def test_bf16_works_where_autocast_does():
    devices.check_bf16(torch.device("cpu"))  # this CPU runs bf16 autocast: no error
