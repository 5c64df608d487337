"""Precision at the command line: an fp32 run on a host with fast bf16 units says in one line what bf16
would gain; `--precision bf16` on a device that cannot run it is a one-line error before training;
`auto` (flag or profile key) resolves to bf16 only on fast-bf16 devices, into the cells of that precision."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from disentbench.bench import devices
from disentbench.bench.cli import main
from disentbench.bench.errors import BenchError
from disentbench.bench.perf import host
from tests.helpers import tiny_cpu_args

NOTE = "note: this host has fast bf16 units"


@pytest.fixture
def tiny_profile(tiny_profile):
    """The shared tiny profile at batch 8: these tests train bf16 cells, which a CPU without bf16 units
    emulates at a thirteenth of the fp32 speed (AVX2-only EPYC: 14-25 s a test at batch 64)."""
    tiny_profile.write_text(tiny_profile.read_text() + "batch_size: 8\n")
    return tiny_profile


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


@pytest.mark.parametrize("fast, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_picks_bf16_only_where_the_device_has_fast_bf16_units(monkeypatch, fast, expected):
    monkeypatch.setattr(host, "fast_bf16", lambda device="cpu": fast)
    assert devices.resolve_precision("auto", "cpu") == expected
    for explicit in ("fp32", "bf16"):  # an explicit precision is never changed
        assert devices.resolve_precision(explicit, "cpu") == explicit
    with pytest.raises(BenchError, match="choose fp32, bf16 or auto"):
        devices.resolve_precision("fp16", "cpu")


def test_auto_over_several_devices_is_bf16_only_when_every_one_has_fast_units(monkeypatch):
    fast_ones = {"cuda:0", "cuda:2"}
    monkeypatch.setattr(host, "fast_bf16", lambda device="cpu": str(device) in fast_ones)
    assert devices.resolve_precision("auto", ["cuda:0", "cuda:2"]) == "bf16"
    # one device without fast bf16 units: the whole run trains in fp32, whichever device is first
    assert devices.resolve_precision("auto", ["cuda:0", "cuda:1"]) == "fp32"
    assert devices.resolve_precision("auto", ["cuda:1", "cuda:0"]) == "fp32"
    assert devices.resolve_precision("bf16", ["cuda:1"]) == "bf16"  # explicit: never changed


def _cells(run_dir):
    """(cell id, the precision its row's config records) for every row of the run."""
    rows = pd.read_csv(run_dir / "runs.csv")
    return sorted({(c, json.loads(cfg)["precision"]) for c, cfg in zip(rows["cell_id"], rows["config"], strict=True)})


@pytest.mark.parametrize("fast, resolved", [(True, "bf16"), (False, "fp32")])
def test_an_auto_run_trains_the_cells_of_the_precision_it_resolves_to(
    tiny_profile, tmp_path, capsys, monkeypatch, fast, resolved
):
    """Its cells, ids and rows are those of an explicit run in the resolved precision, and it says
    what it chose in one line."""
    monkeypatch.setattr(host, "fast_bf16", lambda device="cpu": fast)
    monkeypatch.setattr(host, "bf16_hint", lambda device="cpu": None)  # no matmul timing in a test
    assert main(tiny_cpu_args(tiny_profile, tmp_path / "auto", "--methods", "vae", "--precision", "auto")) == 0
    said = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("precision auto:")]
    assert said == [f"precision auto: {resolved} on cpu (bf16 units: {host.bf16_capability('cpu')})"]
    assert main(tiny_cpu_args(tiny_profile, tmp_path / "explicit", "--methods", "vae", "--precision", resolved)) == 0
    auto, explicit = _cells(tmp_path / "auto"), _cells(tmp_path / "explicit")
    assert auto == explicit and {p for _, p in auto} == {resolved}


def test_a_profile_may_ask_for_auto_and_the_flag_overrides_it(tiny_profile, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(host, "fast_bf16", lambda device="cpu": True)
    monkeypatch.setattr(host, "bf16_hint", lambda device="cpu": None)
    profile = tmp_path / "auto.yaml"
    profile.write_text(tiny_profile.read_text() + "precision: auto\n")
    assert main(tiny_cpu_args(profile, tmp_path / "a", "--methods", "vae")) == 0
    assert {p for _, p in _cells(tmp_path / "a")} == {"bf16"}
    assert main(tiny_cpu_args(profile, tmp_path / "b", "--methods", "vae", "--precision", "fp32")) == 0
    assert {p for _, p in _cells(tmp_path / "b")} == {"fp32"}
    profile.write_text(tiny_profile.read_text() + "precision: fp16\n")
    capsys.readouterr()
    assert main(tiny_cpu_args(profile, tmp_path / "c", "--methods", "vae")) == 2
    err = capsys.readouterr().err.strip()
    assert "precision must be fp32, bf16 or auto" in err and "\n" not in err
    assert not (tmp_path / "c").exists()
